"""Migrations that move a model between apps keep its table, its rows and its permissions;
the one that moves money to integer minor units keeps every amount exactly, both ways.

Each test migrates the test database back to before the move, writes a row there as the old
code would, migrates forward again and reads it through today's model.
"""

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import Charge
from core.models import ApiRequestCount
from fakegateway.models import FakeGatewayCharge, FakeGatewayFault
from ordering.models import Order


def migrate_to(targets: list[tuple[str, str | None]]):
    """Migrates the database to `targets` and returns the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    applied = [target for target in targets if target[1] is not None]  # (app, None): none of it
    return executor.loader.project_state(applied).apps


def migrate_to_the_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_throttle_counters_keep_their_rows_and_permissions_when_core_takes_them_over():
    old = migrate_to([("ordering", "0003_api_request_count"), ("core", None)])
    old.get_model("ordering", "ApiRequestCount").objects.create(
        key="throttle_user_1", window_start="2026-01-01T00:00Z", count=7
    )
    content_type = ContentType.objects.get(model="apirequestcount")
    assert content_type.app_label == "ordering"

    migrate_to_the_latest()

    assert list(ApiRequestCount.objects.values_list("key", "count")) == [("throttle_user_1", 7)]
    content_type.refresh_from_db()
    assert content_type.app_label == "core"  # its permissions, granted to staff, went along


@pytest.mark.django_db(transaction=True)
def test_the_fake_gateways_ledger_and_faults_keep_their_rows_when_its_app_takes_them_over():
    old = migrate_to([("billing", "0003_fake_gateway_fault_targets"), ("fakegateway", None)])
    old.get_model("billing", "FakeGatewayCharge").objects.create(
        idempotency_key="k1",
        order_ref="o1",
        amount="12.50",
        currency="EUR",
        outcome="CHARGED",
        reference="ch_1",
    )
    old.get_model("billing", "FakeGatewayFault").objects.create(remaining=3, order_ref="o2")
    moved = ["fakegatewaycharge", "fakegatewayfault"]
    assert set(ContentType.objects.filter(model__in=moved).values_list("app_label", flat=True)) == {
        "billing"
    }

    migrate_to_the_latest()

    assert list(FakeGatewayCharge.objects.values_list("reference", "amount_minor")) == [
        ("ch_1", 1250)
    ]
    assert list(FakeGatewayFault.objects.values_list("remaining", "order_ref")) == [(3, "o2")]
    assert set(ContentType.objects.filter(model__in=moved).values_list("app_label", flat=True)) == {
        "fakegateway"
    }


@pytest.mark.django_db(transaction=True)
def test_money_moves_to_minor_units_exactly_and_back():
    before = [
        ("ordering", "0004_api_request_count_moves_to_core"),
        ("billing", "0004_fake_gateway_moves_to_its_app"),
        ("fakegateway", "0001_initial"),
    ]
    old = migrate_to(before)
    buyer = old.get_model("auth", "User").objects.create(username="migrated")
    order = old.get_model("ordering", "Order").objects.create(
        buyer=buyer,
        product_name="Teapot",
        quantity=3,
        unit_price=Decimal("333333.33"),  # 999999.99: a float has no exact cents for these
        total=Decimal("999999.99"),
        currency="EUR",
    )
    old.get_model("billing", "Charge").objects.create(
        order_id=order.pk, amount=Decimal("999999.99"), currency="EUR"
    )
    old.get_model("fakegateway", "FakeGatewayCharge").objects.create(
        idempotency_key="k1",
        order_ref=str(order.pk),
        amount=Decimal("0.07"),
        currency="EUR",
        outcome="CHARGED",
        reference="ch_1",
    )

    migrate_to_the_latest()

    assert list(Order.objects.values_list("unit_price_minor", "total_minor")) == [
        (33_333_333, 99_999_999)
    ]
    assert list(Charge.objects.values_list("amount_minor", flat=True)) == [99_999_999]
    assert list(FakeGatewayCharge.objects.values_list("amount_minor", flat=True)) == [7]

    old = migrate_to(before)  # and back, as a rollback of a release would

    assert list(old.get_model("ordering", "Order").objects.values_list("unit_price", "total")) == [
        (Decimal("333333.33"), Decimal("999999.99"))
    ]
    assert list(old.get_model("billing", "Charge").objects.values_list("amount", flat=True)) == [
        Decimal("999999.99")
    ]
    ledger = old.get_model("fakegateway", "FakeGatewayCharge").objects
    assert list(ledger.values_list("amount", flat=True)) == [Decimal("0.07")]
    migrate_to_the_latest()
