from decimal import Decimal

from django.conf import settings
from rest_framework import serializers

from ..models import MAX_PRODUCT_NAME_LENGTH, MAX_QUANTITY, MAX_UNIT_PRICE, Order, OrderEvent


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is a 400 rather than silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class OrderCreateInputSerializer(StrictSerializer):
    product_name = serializers.CharField(min_length=1, max_length=MAX_PRODUCT_NAME_LENGTH)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    unit_price = serializers.DecimalField(
        max_digits=9, decimal_places=2, min_value=Decimal("0.01"), max_value=MAX_UNIT_PRICE
    )
    currency = serializers.CharField(required=False, min_length=3, max_length=3)

    def validate_currency(self, value: str) -> str:
        if value not in settings.ORDER_CURRENCIES:
            raise serializers.ValidationError(
                "Use an upper-case ISO 4217 code accepted here: "
                f"{', '.join(settings.ORDER_CURRENCIES)}.",
                code="invalid_choice",
            )
        return value

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("currency", settings.ORDER_DEFAULT_CURRENCY)
        return attrs


class OrderEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderEvent
        fields = ["from_status", "to_status", "cause", "message_id", "version", "at"]


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "failed_from",
            "product_name",
            "quantity",
            "unit_price",
            "currency",
            "total",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    history = OrderEventSerializer(source="events", many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "history"]
        read_only_fields = fields
