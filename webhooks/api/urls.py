from rest_framework.routers import DefaultRouter

from .views import DeliveryViewSet, EndpointViewSet

router = DefaultRouter()
router.register("webhooks/endpoints", EndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", DeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls
