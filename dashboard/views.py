"""The operations dashboard: the order flow, the queues and the new dead letters at a glance."""

from django.conf import settings
from django.template.response import TemplateResponse
from django.urls import reverse

from messaging import selectors as messaging

from . import selectors as orders
from .charts import Series, minute_chart

REFRESH_SECONDS = 15
DEAD_LETTERS_LISTED = 10


def dashboard(request, *, context: dict) -> TemplateResponse:
    """Read-only: every figure comes from a selector (README, "For operators: the dashboard")."""
    flow = orders.order_flow()
    minutes = [m.minute for m in flow.minutes]
    orders_chart = minute_chart(
        minutes=minutes,
        bars=Series("placed", "placed", [m.placed for m in flow.minutes]),
        lines=[Series("finished", "finished", [m.finished.finished for m in flow.minutes])],
    )
    latency_chart = minute_chart(
        minutes=minutes,
        lines=[
            Series("p50", "p50", [_seconds(m.finished.p50) for m in flow.minutes]),
            Series("p95", "p95", [_seconds(m.finished.p95) for m in flow.minutes]),
        ],
        unit=" s",
    )
    changelist = reverse("admin:ordering_order_changelist")
    may_see_dead_letters = request.user.has_perm("messaging.view_deadletter")
    refresh = request.GET.get("refresh") != "off"
    return TemplateResponse(
        request,
        "dashboard/dashboard.html",
        {
            **context,
            "title": "Operations dashboard",
            "refresh_seconds": REFRESH_SECONDS if refresh else None,
            "statuses": [
                {"status": status, "count": count, "url": f"{changelist}?status__exact={status}"}
                for status, count in orders.count_orders_by_status().items()
            ],
            "stuck": {
                "count": orders.count_stuck_orders(),
                "url": f"{changelist}?way_forward=none",  # ordering.admin.WayForwardFilter
            },
            "flow": flow,
            "orders_chart": orders_chart,
            "latency_chart": latency_chart,
            "queues": messaging.queue_depths(),
            "dead_letters": messaging.new_dead_letters(limit=DEAD_LETTERS_LISTED),
            "may_see_dead_letters": may_see_dead_letters,
            "dead_letters_url": reverse("admin:messaging_deadletter_changelist"),
            # Unset (empty) settings draw no link: nothing points at a tool that is not there.
            "tools": [
                {"name": name, "url": url, "id": tool_id}
                for tool_id, name, url in (
                    ("flower", "Flower (Celery workers and tasks)", settings.FLOWER_URL),
                    (
                        "rabbitmq-management",
                        "RabbitMQ management",
                        settings.RABBITMQ_MANAGEMENT_URL,
                    ),
                )
                if url
            ],
        },
    )


def _seconds(duration) -> float | None:
    return None if duration is None else round(duration.total_seconds(), 2)
