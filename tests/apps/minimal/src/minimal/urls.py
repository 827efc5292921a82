from django.urls import path

from . import views

urlpatterns = [
    path("healthz", views.healthz),
    path("jobs", views.jobs),
    path("jobs/<int:pk>", views.job),
]
