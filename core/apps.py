from django.apps import AppConfig


class CoreConfig(AppConfig):
    """An app only to own the tables of what it shares (the API throttle's counters)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
