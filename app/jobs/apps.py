from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Worker-side signal handlers and the heartbeat bootstep; the storage
        # budget's system check and the `jobs.prune` task.
        from . import retention, worker  # noqa: F401
