from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", include("ordering.api.urls")),
    path("api/", include("webhooks.api.urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("health.urls")),
    path("", include("monitoring.urls")),
]

handler404 = "core.error_pages.not_found"
handler500 = "core.error_pages.server_error"
