import re
from decimal import Decimal

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import money
from core.api.serializers import StrictSerializer

from ..models import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PRODUCT_NAME_LENGTH,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
    Order,
    OrderEvent,
)
from ..state_machine import OrderStatus, public_description

# The Idempotency-Key header: printable ASCII without spaces, e.g. a UUID.
IDEMPOTENCY_KEY_PATTERN = re.compile(rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$")


@extend_schema_field({"type": "string", "enum": settings.ORDER_CURRENCIES})
class CurrencyField(serializers.CharField):
    """An ISO 4217 code from ORDER_CURRENCIES (checked by the serializer, at request time)."""


@extend_schema_field(
    {
        "type": "string",
        # What the checks below accept, as one pattern: 0.01 to 1000000.00, 2 decimals at most.
        "pattern": r"^(1000000(\.00?)?|[1-9]\d{0,5}(\.\d\d?)?|0\.(0[1-9]|[1-9]\d?))$",
        "example": "12.50",
    }
)
class MoneyField(serializers.DecimalField):
    """An amount written as a decimal string ("12.50"): a JSON number may have lost cents."""

    default_error_messages = {"invalid": 'Write the amount as a decimal string, e.g. "12.50".'}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(r"\d+(\.\d+)?", data):
            self.fail("invalid")
        return super().to_internal_value(data)


class MinorUnitsField(serializers.DecimalField):
    """Shows an amount stored in minor units (`source`) as a decimal string in major units of
    the object's currency ("25.00"): the API speaks decimals, the database integers."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance):
        return money.to_major(super().get_attribute(instance), instance.currency)

    def to_representation(self, value):
        return str(value)  # to_major already has the currency's places


@extend_schema_field({"type": "string", "pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"})
class ProductNameField(serializers.CharField):
    """Any text with something besides white space, kept as written (no trimming, so the
    length limit counts what is stored); NUL bytes are refused, as by every CharField."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):  # CharField would take 123 as "123"
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not value.strip():
            self.fail("blank")
        return value


class OrderCreateInputSerializer(StrictSerializer):
    product_name = ProductNameField(min_length=1, max_length=MAX_PRODUCT_NAME_LENGTH)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    unit_price = MoneyField(
        max_digits=9, decimal_places=2, min_value=Decimal("0.01"), max_value=MAX_UNIT_PRICE
    )
    currency = CurrencyField(
        required=False,
        min_length=3,
        max_length=3,
        help_text="ORDER_DEFAULT_CURRENCY when left out.",
    )

    def validate_currency(self, value: str) -> str:
        if value not in settings.ORDER_CURRENCIES:
            raise serializers.ValidationError(
                "Use an upper-case ISO 4217 code accepted here: "
                f"{', '.join(settings.ORDER_CURRENCIES)}.",
                code="invalid_choice",
            )
        return value

    def validate(self, attrs: dict) -> dict:
        """Fills in the default currency and gives the price in its minor units, as
        ordering's services take it."""
        attrs.setdefault("currency", settings.ORDER_DEFAULT_CURRENCY)
        try:
            attrs["unit_price_minor"] = money.to_minor(attrs.pop("unit_price"), attrs["currency"])
        except ValueError:
            raise serializers.ValidationError(
                {"unit_price": [f"Too many decimal places for {attrs['currency']}."]},
                code="max_decimal_places",
            ) from None
        return attrs


class OrderEventSerializer(serializers.ModelSerializer):
    """One change of an order's status: a public description for everyone, and its internal
    cause for staff only."""

    # Who asks comes from context["request"]; without one, nobody is staff.

    description = serializers.SerializerMethodField(
        help_text="What happened, in words meant for the buyer; stable, safe to show as is."
    )
    cause = serializers.SerializerMethodField(
        help_text="Staff only: the internal cause (a fraud rule, a staff user, a dead-letter "
        "reason). Null for buyers."
    )

    class Meta:
        model = OrderEvent
        fields = ["from_status", "to_status", "description", "cause", "message_id", "version", "at"]

    def get_description(self, event: OrderEvent) -> str:
        return public_description(from_status=event.from_status, to_status=event.to_status)

    @extend_schema_field({"type": "string", "nullable": True})
    def get_cause(self, event: OrderEvent) -> str | None:
        request = self.context.get("request")
        return event.cause if request is not None and request.user.is_staff else None


class OrderSerializer(serializers.ModelSerializer):
    # The same schema as the DecimalFields these were before money moved to minor units.
    unit_price = MinorUnitsField(source="unit_price_minor", max_digits=9, decimal_places=2)
    total = MinorUnitsField(source="total_minor", max_digits=12, decimal_places=2)
    failed_from = serializers.ChoiceField(
        choices=OrderStatus.choices,
        allow_blank=True,
        read_only=True,
        help_text="The status the order failed from; empty unless the order is FAILED.",
    )

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
