import django_filters

from core.api.filters import NoEmptyValuesForm

from .. import events
from ..models import WebhookDelivery


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=WebhookDelivery.Status.choices)
    endpoint = django_filters.UUIDFilter(field_name="endpoint_id")
    # Read when the URLs load, after every app registered its event types.
    event_type = django_filters.MultipleChoiceFilter(
        choices=[(name, name) for name in sorted(events.EVENT_TYPES)]
    )

    class Meta:
        model = WebhookDelivery
        fields = ["status", "endpoint", "event_type"]
        form = NoEmptyValuesForm
