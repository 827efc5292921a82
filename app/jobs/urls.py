from django.urls import path

from . import views

urlpatterns = [
    path("jobs", views.jobs_collection, name="jobs"),
    path("jobs/batch", views.create_batch, name="jobs-batch"),
    path("jobs/<int:job_id>", views.job_detail, name="job-detail"),
]
