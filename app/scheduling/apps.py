from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The embedded beat's bootstep and its fork hygiene.
        from . import worker  # noqa: F401
