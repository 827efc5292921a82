"""The shipped app's routes plus the benchmark's endpoints (bench.settings only)."""

from django.urls import path

from doubleboiler.urls import urlpatterns as app_urlpatterns

from . import views

urlpatterns = [
    path("bench/io", views.bench_io, name="bench-io"),
    path("bench/io-async", views.bench_io_async, name="bench-io-async"),
    *app_urlpatterns,
]
