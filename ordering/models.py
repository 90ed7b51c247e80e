"""Orders and their history. The rules live in the database as constraints, too."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .state_machine import FAILABLE_STATUSES, TERMINAL_STATUSES, OrderStatus

MAX_QUANTITY = 1000
# The API's limit on a unit price, in major units; and the database's, in minor units.
MAX_UNIT_PRICE = Decimal("1000000.00")
MAX_UNIT_PRICE_MINOR = 100_000_000  # MAX_UNIT_PRICE in a currency with two decimal places
MAX_PRODUCT_NAME_LENGTH = 200
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class Order(models.Model):
    Status = OrderStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    product_name = models.CharField(max_length=MAX_PRODUCT_NAME_LENGTH)
    quantity = models.PositiveIntegerField()
    # Money in integer minor units of `currency` (1999 is 19.99 EUR), as payment APIs take
    # it: exact on every database. core.money converts; the API shows decimal strings.
    unit_price_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. EUR.")
    # Stored, not derived on read: it is what gets charged, and a constraint keeps it honest.
    total_minor = models.PositiveBigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # The status a FAILED order stopped at; empty unless status is FAILED.
    failed_from = models.CharField(max_length=20, choices=Status.choices, blank=True, default="")
    # Bumped by every transition: an optimistic version clients and tests can compare.
    version = models.PositiveIntegerField(default=1)
    # NULL, not "", when absent: the per-buyer unique constraint only applies to given keys.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A buyer's list, optionally filtered by status; staff's list of all.
            models.Index(fields=["buyer", "-created_at"], name="order_buyer_created_idx"),
            models.Index(fields=["buyer", "status", "-created_at"], name="order_buyer_status_idx"),
            models.Index(fields=["status", "-created_at"], name="order_status_created_idx"),
            models.Index(fields=["-created_at"], name="order_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(product_name=""), name="order_product_name_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1, quantity__lte=MAX_QUANTITY),
                name="order_quantity_in_range",
            ),
            models.CheckConstraint(
                condition=Q(unit_price_minor__gt=0, unit_price_minor__lte=MAX_UNIT_PRICE_MINOR),
                name="order_unit_price_in_range",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="order_currency_iso4217"
            ),
            # Exact: integers multiply without rounding, on PostgreSQL and SQLite alike.
            models.CheckConstraint(
                condition=Q(total_minor=F("quantity") * F("unit_price_minor")),
                name="order_total_is_quantity_times_price",
            ),
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="order_status_known"
            ),
            models.CheckConstraint(
                condition=(Q(status=OrderStatus.FAILED) & Q(failed_from__in=FAILABLE_STATUSES))
                | (~Q(status=OrderStatus.FAILED) & Q(failed_from="")),
                name="order_failed_from_only_when_failed",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="order_version_positive"),
            models.UniqueConstraint(
                fields=["buyer", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="order_idempotency_key_unique_per_buyer",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class OrderEvent(models.Model):
    """One applied transition of an order: the audit trail, written with the change."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    # Empty for the event that records the order's creation.
    from_status = models.CharField(
        max_length=20, choices=OrderStatus.choices, blank=True, default=""
    )
    to_status = models.CharField(max_length=20, choices=OrderStatus.choices)
    cause = models.CharField(max_length=255)
    # The id of the message whose consumer made the change; empty for API and admin changes.
    message_id = models.UUIDField(null=True, blank=True)
    # The order's version after this change.
    version = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "version"]
        indexes = [
            # The dashboard's time to terminal over the last hour: one row per finished order.
            models.Index(
                fields=["at"],
                condition=Q(to_status__in=sorted(TERMINAL_STATUSES)),
                name="order_event_terminal_at_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["order", "version"], name="order_event_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} -> {self.to_status}"
