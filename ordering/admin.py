import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core import money
from messaging.admin_search import UUIDSearchMixin

from . import selectors, services, timeline
from .errors import OrderNotCancelable, OrderNotFound
from .models import Order, OrderEvent


class WayForwardFilter(admin.SimpleListFilter):
    """Orders the stuck-order sweep reports: no way forward for STUCK_ORDER_MINUTES."""

    title = "way forward"
    parameter_name = "way_forward"
    NONE = "none"

    def lookups(self, request, model_admin):
        return [(self.NONE, "none (stuck)")]

    def queryset(self, request, queryset):
        if self.value() == self.NONE:
            return queryset.filter(pk__in=selectors.stuck_orders().values("pk"))
        return queryset


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fields = ["version", "from_status", "to_status", "cause", "message_id", "at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(UUIDSearchMixin, admin.ModelAdmin):
    """Orders are read here and changed only through the state machine (the cancel action)."""

    list_display = [
        "id",
        "buyer",
        "product_name",
        "quantity",
        "total",
        "currency",
        "status",
        "created_at",
    ]
    list_filter = ["status", WayForwardFilter, "currency", "created_at"]
    search_fields = ["buyer__username", "buyer__email", "product_name"]
    list_select_related = ["buyer"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "buyer",
        "product_name",
        "quantity",
        "unit_price",
        "currency",
        "total",
        "status",
        "failed_from",
        "version",
        "idempotency_key",
        "created_at",
        "updated_at",
        "timeline_link",
    ]
    inlines = [OrderEventInline]
    actions = ["cancel_orders"]

    # Stored in minor units; shown, like in the API, in major units of the order's currency.
    @admin.display(description="unit price", ordering="unit_price_minor")
    def unit_price(self, order: Order) -> str:
        return str(money.to_major(order.unit_price_minor, order.currency))

    @admin.display(description="total", ordering="total_minor")
    def total(self, order: Order) -> str:
        return str(money.to_major(order.total_minor, order.currency))

    @admin.display(description="timeline")
    def timeline_link(self, order: Order) -> str:
        return format_html(
            '<a id="timeline-link" href="{}">History and messages on one timeline</a>',
            reverse("admin:ordering_order_timeline", args=[order.pk]),
        )

    def get_urls(self):
        timeline_view = self.admin_site.admin_view(self.timeline_view)
        return [
            path("<path:object_id>/timeline/", timeline_view, name="ordering_order_timeline"),
            *super().get_urls(),
        ]

    # Each part of the timeline is shown to those who may view its model in the admin.
    PERMISSION_OF_KIND = {
        "message": "messaging.view_outboxmessage",
        "published": "messaging.view_outboxmessage",
        "result": "django_celery_results.view_taskresult",
        "death": "messaging.view_deadletter",
        "replay": "messaging.view_deadletter",
        "discard": "messaging.view_deadletter",
    }

    def timeline_view(self, request, object_id: str) -> TemplateResponse:
        """The order's events and every message of it, on one timeline (ordering.timeline)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            found = timeline.order_timeline(order_id=uuid.UUID(object_id))
        except (ValueError, OrderNotFound):
            raise Http404("No such order.") from None
        may = {perm: request.user.has_perm(perm) for perm in set(self.PERMISSION_OF_KIND.values())}
        shown = [e for e in found.entries if may.get(self.PERMISSION_OF_KIND.get(e.kind), True)]
        return TemplateResponse(
            request,
            "admin/ordering/order/timeline.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Timeline of order {found.order.pk}",
                "order": found.order,
                "messages_of_order": found.messages,
                "entries": shown,
                "may_view_outbox": may["messaging.view_outboxmessage"],
                "may_view_results": may["django_celery_results.view_taskresult"],
                "may_view_dead_letters": may["messaging.view_deadletter"],
            },
        )

    def has_add_permission(self, request) -> bool:
        return False  # orders come in through the API, which validates and publishes them

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an accepted order is never lost, not even by a click

    @admin.action(description="Cancel selected orders (PENDING only)", permissions=["change"])
    def cancel_orders(self, request, queryset) -> None:
        canceled, refused = 0, []
        for order_id in queryset.values_list("pk", flat=True):
            try:
                services.cancel_order(order_id=order_id, actor=request.user)
                canceled += 1
            except OrderNotCancelable:
                refused.append(str(order_id))
        if canceled:
            self.message_user(request, f"Canceled {canceled} order(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"Not canceled, no longer PENDING: {', '.join(refused)}.",
                messages.WARNING,
            )
