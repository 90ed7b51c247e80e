import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.serializers import StrictSerializer

from .. import events
from ..models import MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH, WebhookDelivery, WebhookEndpoint


class EventTypesField(serializers.ListField):
    """Event types, each one of those registered (read when the URLs load, after every app
    registered its own), without repeats."""

    def __init__(self, **kwargs):
        choices = sorted(events.EVENT_TYPES)
        child = serializers.ChoiceField(choices=choices)
        super().__init__(child=child, min_length=1, max_length=len(choices), **kwargs)

    def to_internal_value(self, data):
        return sorted(set(super().to_internal_value(data)))


class EndpointCreateInputSerializer(StrictSerializer):
    url = serializers.URLField(max_length=MAX_URL_LENGTH, help_text="An https:// URL.")
    event_types = EventTypesField(help_text="The event types to send, e.g. order.processed.")
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True
    )


class RotateSecretInputSerializer(StrictSerializer):
    grace_hours = serializers.IntegerField(
        min_value=0,
        max_value=7 * 24,
        required=False,
        help_text="How long the old secret still signs, beside the new one "
        "(WEBHOOK_SECRET_GRACE_HOURS when left out; 0 ends it now).",
    )


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_reason",
            "disabled_at",
            "consecutive_failures",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    """An endpoint as created or rotated: the only answers that show its secret."""

    secret = serializers.CharField(read_only=True, help_text="Shown this once: keep it.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    event = serializers.SerializerMethodField(help_text="The event, as it is POSTed.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "endpoint",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "last_attempt_at",
            "delivered_at",
            "redelivery_count",
            "created_at",
            "event",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "object"})
    def get_event(self, delivery: WebhookDelivery) -> dict:
        return json.loads(delivery.body)
