from django.urls import include, path

from jobs import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/", include("jobs.urls")),
    path("api/", include("scheduling.urls")),
    path("", include("demo.urls")),
]

# Errors answer in JSON, without a trace or a setting (jobs.views).
handler400 = "jobs.views.bad_request"
handler403 = "jobs.views.permission_denied"
handler404 = "jobs.views.page_not_found"
handler500 = "jobs.views.server_error"
