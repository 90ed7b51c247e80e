"""The admin site: Django's, plus the operations dashboard at /admin/dashboard/."""

from django.contrib import admin
from django.urls import path

from . import views


class OrderflowAdminSite(admin.AdminSite):
    """Every ModelAdmin registers here as on Django's default site (it replaces admin.site).

    The dashboard is a view of the site rather than of one model: it spans orders, queues
    and dead letters. admin_view() makes it staff-only and sends anyone else to the login.
    """

    site_header = "Orderflow administration"
    site_title = "Orderflow admin"
    index_template = "admin/orderflow_index.html"

    def get_urls(self):
        dashboard = path("dashboard/", self.admin_view(self.dashboard_view), name="dashboard")
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request):
        return views.dashboard(request, context=self.each_context(request))
