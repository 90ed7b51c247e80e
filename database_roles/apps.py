from django.apps import AppConfig


class DatabaseRolesConfig(AppConfig):
    name = "database_roles"
    verbose_name = "database roles"
