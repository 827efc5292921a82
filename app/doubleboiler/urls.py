from django.urls import include, path

from jobs import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/", include("jobs.urls")),
    path("", include("demo.urls")),
]
