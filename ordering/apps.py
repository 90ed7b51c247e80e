from django.apps import AppConfig


class OrderingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ordering"

    def ready(self) -> None:
        from . import events

        events.register_event_types()
