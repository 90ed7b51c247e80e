from django.apps import AppConfig


class SqliteDevConfig(AppConfig):
    """Registers, on each SQLite connection, what the production modules use and SQLite lacks."""

    name = "sqlite_dev"
    verbose_name = "SQLite for development"

    def ready(self) -> None:
        from . import percentile

        percentile.install()
