"""The pipeline's state, read from the database at each scrape (not gauges kept in memory).

Four small queries per scrape, in one read-only transaction bounded by STATE_QUERY_TIMEOUT_MS
on PostgreSQL. When the database cannot answer, the scrape still succeeds: it reports
orderflow_state_database_up 0 and leaves the state metrics out (absent, not stale zeros).
"""

import logging

from django.db import DatabaseError, InterfaceError, connection, transaction
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from dashboard.selectors import count_orders_by_status
from messaging.selectors import count_new_dead_letters, unpublished_outbox
from ordering.selectors import stuck_orders

logger = logging.getLogger(__name__)

# Well under Prometheus's default scrape timeout (10 s): a slow database costs one scrape's
# state, not the whole scrape.
STATE_QUERY_TIMEOUT_MS = 3000


class PipelineStateCollector:
    """Orders by status, the outbox backlog, NEW dead letters and orders with no way forward."""

    def describe(self) -> list:
        return []  # nothing to check at registration; never query the database then

    def collect(self):
        up = GaugeMetricFamily(
            "orderflow_state_database_up",
            "1 when the state metrics of this scrape could be read from the database, else 0.",
        )
        try:
            state = self._read()
        except (DatabaseError, InterfaceError) as error:
            logger.warning("metrics: pipeline state unavailable: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from state

    def _read(self) -> list[GaugeMetricFamily]:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {STATE_QUERY_TIMEOUT_MS}")
            by_status = count_orders_by_status()
            outbox = unpublished_outbox()
            new_dead_letters = count_new_dead_letters()
            stuck = stuck_orders().count()

        orders = GaugeMetricFamily(
            "orderflow_orders", "Orders in the database, by status.", labels=["status"]
        )
        for status, count in by_status.items():
            orders.add_metric([status], count)
        waiting = GaugeMetricFamily(
            "orderflow_outbox_unpublished_messages",
            "Outbox rows not yet confirmed by the broker, by lane (the relay that publishes them).",
            labels=["lane"],
        )
        oldest = GaugeMetricFamily(
            "orderflow_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished outbox row, by lane; 0 when there is none.",
            labels=["lane"],
        )
        now = timezone.now()
        for lane, unpublished in outbox.items():
            waiting.add_metric([lane], unpublished.count)
            created = unpublished.oldest_created_at
            oldest.add_metric([lane], max(0.0, (now - created).total_seconds()) if created else 0.0)
        return [
            orders,
            waiting,
            oldest,
            GaugeMetricFamily(
                "orderflow_dead_letters_new",
                "Dead letters waiting for an operator (status NEW).",
                value=new_dead_letters,
            ),
            GaugeMetricFamily(
                "orderflow_orders_without_a_way_forward",
                "Orders unchanged for STUCK_ORDER_MINUTES with no unpublished outbox row and "
                "no NEW dead letter (ordering.selectors.stuck_orders).",
                value=stuck,
            ),
        ]
