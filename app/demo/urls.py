from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    # The benchmark's I/O-bound endpoint: the same work, once for a WSGI worker
    # (Gunicorn gevent or sync) and once as an async view for an ASGI server.
    path("bench/io", views.bench_io, name="bench-io"),
    path("bench/io-async", views.bench_io_async, name="bench-io-async"),
]
