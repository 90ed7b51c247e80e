from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class DashboardConfig(AppConfig):
    default = True
    name = "dashboard"


class OrderflowAdminConfig(admin_apps.AdminConfig):
    """Django's admin, on a site that adds the operations dashboard (dashboard.sites)."""

    default = False
    default_site = "dashboard.sites.OrderflowAdminSite"
