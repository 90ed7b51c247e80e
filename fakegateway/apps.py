from django.apps import AppConfig


class FakeGatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fakegateway"
    verbose_name = "Fake payment gateway"
