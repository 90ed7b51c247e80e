from datetime import UTC

import django_filters
from django import forms
from django.conf import settings

from core.api.filters import NoEmptyValuesForm

from ..models import Order
from ..state_machine import OrderStatus


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, given to the database in UTC: PostgreSQL refuses offsets past
    15:59, which Python accepts up to 23:59."""

    def to_python(self, value):
        moment = super().to_python(value)
        try:
            return moment.astimezone(UTC) if moment else moment
        except OverflowError:  # year 1 at +01:00 is before the first moment in UTC
            raise forms.ValidationError("Out of range.", code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class OrderFilter(django_filters.FilterSet):
    """The list's query parameters. A value it cannot read is a 400 naming the parameter."""

    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    currency = django_filters.ChoiceFilter(choices=[(c, c) for c in settings.ORDER_CURRENCIES])
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")
    # Newest first unless asked otherwise; "-id" breaks ties so pages never overlap.
    ordering = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("total_minor", "total"),
        )
    )

    class Meta:
        model = Order
        fields = ["status", "currency", "created_after", "created_before"]
        form = NoEmptyValuesForm

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("ordering"):
            queryset = queryset.order_by(*queryset.query.order_by, "-id")
        return queryset
