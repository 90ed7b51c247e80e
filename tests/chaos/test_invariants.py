"""chaos.invariants on small hand-built worlds: every check passes on a clean one, and each kind
of damage fails exactly the check that should catch it, naming the order and what is wrong."""

import json
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chaos.invariants import Check, all_hold, check_invariants, render_table
from chaos.receiver import Received
from fakegateway.models import FakeGatewayCharge
from messaging.models import DeadLetter, OutboxMessage
from messaging.topology import DEAD_LETTER_QUEUE, PARKING_QUEUE, WORK_QUEUES
from ordering import services
from ordering.models import Order, OrderEvent
from ordering.state_machine import OrderStatus
from webhooks import services as webhook_services
from webhooks import signing
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint

from ..factories import OrderFactory, OutboxMessageFactory, UserFactory

pytestmark = pytest.mark.django_db
S = OrderStatus
Outcome = FakeGatewayCharge.Outcome

CHECK_NAMES = [
    "orders accepted vs stored",
    "orders finished",
    "every order has a way forward",
    "outcomes as expected",
    "charges per order <= 1",
    "charged == PROCESSED",
    "histories valid",
    "messages left in work queues",
    "dead_letter queue drained",
    "outbox rows unpublished",
    "poison dead-lettered",
]


def walk(order: Order, *statuses: OrderStatus) -> Order:
    """Move an order through `statuses` the way the pipeline does, via transition()."""
    for status in statuses:
        assert services.transition(order_id=order.id, to=status, cause="test").applied
    order.refresh_from_db()
    return order


def ledger_entry(
    order_ref: str,
    *,
    amount_minor: int,
    currency: str = "EUR",
    key: str | None = None,
    outcome: str = Outcome.CHARGED,
) -> FakeGatewayCharge:
    return FakeGatewayCharge.objects.create(
        idempotency_key=key or order_ref,
        order_ref=order_ref,
        amount_minor=amount_minor,
        currency=currency,
        outcome=outcome,
        reference=f"ch_{uuid.uuid4().hex[:24]}",
    )


def charge(order: Order, **overrides) -> FakeGatewayCharge:
    return ledger_entry(
        str(order.id),
        **{"amount_minor": order.total_minor, "currency": order.currency, **overrides},
    )


def dead_letter(order_id: uuid.UUID | None = None) -> DeadLetter:
    now = timezone.now()
    return DeadLetter.objects.create(
        message_id=str(uuid.uuid4()),
        queue="billing",
        task_name="billing.charge_order",
        subject_id=order_id,
        reason="rejected",
        body=b"{}",
        first_death_at=now,
        last_death_at=now,
    )


def write_history(order: Order, *steps: tuple[str, str]) -> Order:
    """Append events straight to the table, bypassing the state machine, and match the row."""
    for from_status, to_status in steps:
        order.version += 1
        OrderEvent.objects.create(
            order=order,
            from_status=from_status,
            to_status=to_status,
            cause="written by hand",
            version=order.version,
        )
    Order.objects.filter(pk=order.pk).update(status=steps[-1][1], version=order.version)
    order.refresh_from_db()
    return order


class World:
    """The database a chaos run leaves behind, and what the harness measured around it."""

    def __init__(self) -> None:
        self.accepted: dict[uuid.UUID, str] = {}
        self.queue_depths = dict.fromkeys((*WORK_QUEUES, DEAD_LETTER_QUEUE, PARKING_QUEUE), 0)
        self.poison_sent = 0

    def accept(self, order: Order, expected: str) -> Order:
        self.accepted[order.id] = expected
        return order

    def processed(self) -> Order:
        order = walk(OrderFactory(), S.APPROVED, S.PROCESSED)
        charge(order)
        return self.accept(order, S.PROCESSED)

    def payment_failed(self) -> Order:
        order = walk(OrderFactory(), S.APPROVED, S.PAYMENT_FAILED)
        charge(order, outcome=Outcome.DECLINED)
        return self.accept(order, S.PAYMENT_FAILED)

    def canceled_fraud(self) -> Order:
        return self.accept(walk(OrderFactory(), S.CANCELED_FRAUD), S.CANCELED_FRAUD)

    def failed(self, *, expected: str = S.PROCESSED, dead_lettered: bool = True) -> Order:
        order = walk(OrderFactory(), S.APPROVED, S.FAILED)
        if dead_lettered:
            dead_letter(order.id)
        return self.accept(order, expected)

    def poison(self, *, order_id: uuid.UUID | None = None) -> None:
        dead_letter(order_id)
        self.poison_sent += 1

    def checks(self) -> list[Check]:
        return check_invariants(
            accepted=self.accepted, queue_depths=self.queue_depths, poison_sent=self.poison_sent
        )

    def check(self, name: str) -> Check:
        return next(check for check in self.checks() if check.name == name)

    def failing(self) -> set[str]:
        return {check.name for check in self.checks() if not check.ok}


@pytest.fixture
def world() -> World:
    """A clean run: every outcome, published outbox rows, poison dead-lettered."""
    world = World()
    world.processed()
    world.processed()
    world.payment_failed()
    world.canceled_fraud()
    world.poison()
    world.poison(order_id=uuid.uuid4())  # decodable, but names no order
    OutboxMessageFactory(published_at=timezone.now())
    return world


def problems(check: Check) -> str:
    return "\n".join(check.problems)


# --- a clean world ---------------------------------------------------------------------------


def test_a_clean_run_passes_every_check_in_the_reports_order(world):
    checks = world.checks()

    assert [check.name for check in checks] == CHECK_NAMES
    assert all_hold(checks)
    assert all(check.problems == [] for check in checks)


def test_a_clean_run_reports_its_figures(world):
    figures = {check.name: check.figure for check in world.checks()}

    assert figures["orders accepted vs stored"] == "accepted 4, stored 4, lost 0, extra 0"
    assert figures["charges per order <= 1"] == "max charges for one order: 1"
    assert figures["histories valid"] == "invalid 0 / 4 orders"
    assert (
        figures["messages left in work queues"] == "fraud 0, billing 0, maintenance 0, webhooks 0"
    )
    assert figures["poison dead-lettered"] == "sent 2, dead letters 2"


def test_accepted_ids_given_as_strings_are_matched_too(world):
    world.accepted = {str(order_id): status for order_id, status in world.accepted.items()}

    assert world.failing() == set()


def test_the_number_of_queries_does_not_grow_with_the_number_of_orders(world):
    with CaptureQueriesContext(connection) as small:
        world.checks()
    for _ in range(5):
        world.processed()
        world.canceled_fraud()
    with CaptureQueriesContext(connection) as large:
        checks = world.checks()

    assert all_hold(checks)
    assert len(large.captured_queries) == len(small.captured_queries)


# --- orders accepted vs stored ---------------------------------------------------------------


def test_an_accepted_order_missing_from_the_database_is_lost(world):
    lost = uuid.uuid4()
    world.accepted[lost] = S.PROCESSED

    check = world.check("orders accepted vs stored")

    assert world.failing() == {"orders accepted vs stored"}
    assert check.figure == "accepted 5, stored 4, lost 1, extra 0"
    assert f"lost: order {lost}" in problems(check)


def test_an_order_the_api_never_accepted_is_extra(world):
    extra = walk(OrderFactory(), S.CANCELED_FRAUD)

    check = world.check("orders accepted vs stored")

    assert world.failing() == {"orders accepted vs stored"}
    assert check.figure == "accepted 4, stored 5, lost 0, extra 1"
    assert f"extra: order {extra.id} (CANCELED_FRAUD)" in problems(check)


def test_problem_examples_are_capped_and_say_how_many_more(world):
    for _ in range(13):
        world.accepted[uuid.uuid4()] = S.PROCESSED

    check = world.check("orders accepted vs stored")

    assert len(check.problems) == 11
    assert check.problems[-1] == "... and 3 more"


# --- orders finished -------------------------------------------------------------------------


@pytest.mark.parametrize("leftover", [(), (S.APPROVED,)], ids=["PENDING", "APPROVED"])
def test_an_order_left_in_flight_is_unfinished(world, leftover):
    order = world.accept(walk(OrderFactory(), *leftover), S.PROCESSED)

    check = world.check("orders finished")

    assert world.failing() == {"orders finished", "every order has a way forward"}
    assert check.figure == "terminal 4, FAILED with dead letter 0, unfinished 1"
    assert f"order {order.id} left {order.status}" in problems(check)


def test_a_failed_order_without_a_dead_letter_is_unfinished(world):
    order = world.failed(dead_lettered=False)

    check = world.check("orders finished")

    assert world.failing() == {"orders finished", "every order has a way forward"}
    assert f"order {order.id} FAILED (from APPROVED) without a dead letter" in problems(check)


def test_a_failed_order_with_its_dead_letter_is_finished_and_not_an_outcome(world):
    world.failed()

    figures = {check.name: check.figure for check in world.checks()}

    assert world.failing() == set()
    assert figures["orders finished"] == "terminal 4, FAILED with dead letter 1, unfinished 0"
    assert figures["outcomes as expected"] == "as expected 4 / 4 terminal, FAILED not counted 1"


# --- every order has a way forward ----------------------------------------------------------


def test_an_order_whose_step_message_waits_in_the_outbox_has_a_way_forward(world):
    order = world.accept(walk(OrderFactory(), S.APPROVED), S.PROCESSED)
    OutboxMessageFactory(task_name="billing.charge_order", kwargs={"order_id": str(order.id)})

    check = world.check("every order has a way forward")

    assert (check.ok, check.figure) == (True, "stuck 0")


def test_an_approved_order_whose_messages_were_all_published_is_stuck(world):
    order = world.accept(walk(OrderFactory(), S.APPROVED), S.PROCESSED)
    OutboxMessageFactory(
        task_name="billing.charge_order",
        kwargs={"order_id": str(order.id)},
        published_at=timezone.now(),
    )
    OutboxMessageFactory(kwargs={"order_id": str(uuid.uuid4())})  # another order's

    check = world.check("every order has a way forward")

    assert (check.ok, check.figure) == (False, "stuck 1")
    assert check.problems == [
        f"order {order.id} is APPROVED with no unpublished outbox row and no NEW dead letter"
    ]


@pytest.mark.parametrize("status", [DeadLetter.Status.STALE, DeadLetter.Status.REPLAYED])
def test_a_failed_order_whose_dead_letter_is_not_new_is_stuck(world, status):
    order = world.failed()
    DeadLetter.objects.filter(subject_id=order.id).update(status=status)

    check = world.check("every order has a way forward")

    assert not check.ok
    assert check.problems == [
        f"order {order.id} is FAILED (from APPROVED) with no unpublished outbox row and "
        "no NEW dead letter"
    ]


# --- outcomes as expected --------------------------------------------------------------------


def test_a_terminal_order_with_another_outcome_than_expected_fails(world):
    order = world.processed()
    world.accepted[order.id] = S.PAYMENT_FAILED

    check = world.check("outcomes as expected")

    assert world.failing() == {"outcomes as expected"}
    assert check.figure == "as expected 4 / 5 terminal, FAILED not counted 0"
    assert f"order {order.id} ended PROCESSED, expected PAYMENT_FAILED" in problems(check)


# --- charges ---------------------------------------------------------------------------------


def test_two_charges_for_one_order_under_different_keys_is_a_double_charge(world):
    order = world.processed()
    charge(order, key="retry-with-a-new-key")

    check = world.check("charges per order <= 1")

    assert world.failing() == {"charges per order <= 1"}
    assert check.figure == "max charges for one order: 2"
    assert (
        f"order {order.id} charged 2 times (idempotency keys: {order.id}, retry-with-a-new-key)"
        in problems(check)
    )


def test_a_declined_ledger_row_is_not_a_charge(world):
    order = world.processed()
    charge(order, key="declined-first", outcome=Outcome.DECLINED)

    assert world.failing() == set()


def test_a_charge_for_an_order_that_is_not_processed_fails(world):
    order = world.payment_failed()
    charge(order, key="charged-anyway")
    ledger_entry("not-an-order", amount_minor=500)

    check = world.check("charged == PROCESSED")

    assert world.failing() == {"charged == PROCESSED"}
    assert "not PROCESSED 2" in check.figure
    assert f"order {order.id} charged, but PAYMENT_FAILED" in problems(check)
    assert "order not-an-order charged, but no such order" in problems(check)


def test_a_processed_order_without_a_charge_fails(world):
    order = world.processed()
    FakeGatewayCharge.objects.filter(order_ref=str(order.id)).delete()

    check = world.check("charged == PROCESSED")

    assert world.failing() == {"charged == PROCESSED"}
    assert "not charged 1" in check.figure
    assert f"order {order.id} PROCESSED, but never charged" in problems(check)


@pytest.mark.parametrize(("amount", "currency"), [("40.00", "EUR"), ("39.98", "USD")])
def test_a_charge_of_another_amount_or_currency_than_the_total_fails(world, amount, currency):
    order = walk(OrderFactory(), S.APPROVED, S.PROCESSED)  # total 39.98 EUR
    world.accept(order, S.PROCESSED)
    charge(order, amount_minor=int(Decimal(amount) * 100), currency=currency)

    check = world.check("charged == PROCESSED")

    assert world.failing() == {"charged == PROCESSED"}
    assert "wrong amount 1" in check.figure
    assert f"order {order.id} charged {amount} {currency}, its total is 39.98 EUR" in problems(
        check
    )


# --- histories -------------------------------------------------------------------------------


def test_a_history_with_a_missing_version_is_a_gap(world):
    order = world.processed()
    order.events.filter(version=2).delete()

    check = world.check("histories valid")

    assert world.failing() == {"histories valid"}
    assert check.figure == "invalid 1 / 5 orders"
    assert f"order {order.id}: gap: event v3 where v2 belongs" in problems(check)


def test_a_history_with_a_step_the_state_machine_forbids_is_invalid(world):
    order = world.accept(write_history(OrderFactory(), (S.PENDING, S.PROCESSED)), S.PROCESSED)
    charge(order)

    check = world.check("histories valid")

    assert world.failing() == {"histories valid"}
    assert f"order {order.id}: v2 PENDING -> PROCESSED is not allowed" in problems(check)


def test_resuming_as_approved_an_order_that_failed_from_pending_is_invalid(world):
    order = write_history(
        OrderFactory(),
        (S.PENDING, S.FAILED),
        (S.FAILED, S.APPROVED),
        (S.APPROVED, S.PROCESSED),
    )
    world.accept(order, S.PROCESSED)
    charge(order)

    check = world.check("histories valid")

    assert world.failing() == {"histories valid"}
    assert (
        f"order {order.id}: v3 FAILED -> APPROVED is not allowed (it failed from PENDING)"
        in problems(check)
    )


def test_resuming_as_approved_an_order_that_failed_from_approved_is_valid(world):
    order = walk(OrderFactory(), S.APPROVED, S.FAILED)
    services.resume_step(task_name="billing.charge_order", order_id=order.id, cause="replayed")
    order = world.accept(walk(order, S.PROCESSED), S.PROCESSED)
    charge(order)

    assert list(order.events.values_list("to_status", flat=True)) == [
        S.PENDING,
        S.APPROVED,
        S.FAILED,
        S.APPROVED,
        S.PROCESSED,
    ]
    assert world.failing() == set()


def test_a_history_whose_steps_do_not_chain_is_invalid(world):
    order = world.accept(
        write_history(OrderFactory(), (S.PENDING, S.APPROVED), (S.PENDING, S.CANCELED_FRAUD)),
        S.CANCELED_FRAUD,
    )

    check = world.check("histories valid")

    assert world.failing() == {"histories valid"}
    assert (
        f"order {order.id}: v3 PENDING -> CANCELED_FRAUD starts from PENDING, "
        "but v2 ended in APPROVED" in problems(check)
    )


def test_a_history_that_does_not_end_in_the_orders_status_is_invalid(world):
    order = world.canceled_fraud()
    Order.objects.filter(pk=order.pk).update(status=S.CANCELED)
    world.accepted[order.id] = S.CANCELED

    check = world.check("histories valid")

    assert world.failing() == {"histories valid"}
    assert f"order {order.id}: history ends in CANCELED_FRAUD, but the order is CANCELED" in (
        problems(check)
    )


def test_an_order_at_another_version_than_its_history_is_invalid(world):
    order = world.canceled_fraud()
    Order.objects.filter(pk=order.pk).update(version=3)

    check = world.check("histories valid")

    assert f"order {order.id}: 2 events, but the order is at version 3" in problems(check)


# --- queues, outbox, poison ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "name"),
    [
        ("fraud", "messages left in work queues"),
        ("billing", "messages left in work queues"),
        ("maintenance", "messages left in work queues"),
        ("webhooks", "messages left in work queues"),
        ("dead_letter", "dead_letter queue drained"),
        ("dead_letter_parked", "dead_letter queue drained"),
    ],
)
def test_messages_left_in_a_queue_fail_its_check(world, queue, name):
    world.queue_depths[queue] = 3

    check = world.check(name)

    assert world.failing() == {name}
    assert f"{queue} 3" in check.figure
    assert check.problems == [f"{queue}: 3 ready message(s) left"]


def test_a_queue_the_harness_did_not_measure_is_not_taken_as_empty(world):
    del world.queue_depths["billing"]

    check = world.check("messages left in work queues")

    assert world.failing() == {"messages left in work queues"}
    assert check.figure == "fraud 0, billing ?, maintenance 0, webhooks 0"
    assert check.problems == ["billing: not measured"]


def test_an_unpublished_outbox_row_fails(world):
    message = OutboxMessageFactory(task_name="billing.charge_order", attempts=2, last_error="boom")

    check = world.check("outbox rows unpublished")

    assert world.failing() == {"outbox rows unpublished"}
    assert check.figure == "unpublished 1 / 2"
    assert check.problems == [
        f"billing.charge_order {message.id}: 2 failed attempt(s), last error: boom"
    ]


def test_poison_messages_without_a_dead_letter_fail(world):
    world.poison_sent += 1

    check = world.check("poison dead-lettered")

    assert world.failing() == {"poison dead-lettered"}
    assert check.figure == "sent 3, dead letters 2"
    assert check.problems == ["1 of 3 poison message(s) did not end as a dead letter"]


def test_a_dead_letter_of_a_real_order_is_not_counted_as_poison(world):
    world.failed()  # its dead letter names an existing order
    world.poison_sent += 1

    assert world.check("poison dead-lettered").figure == "sent 3, dead letters 2"
    assert world.failing() == {"poison dead-lettered"}


# --- the report ------------------------------------------------------------------------------


def test_the_table_shows_every_check_with_pass_or_fail_then_the_failures_examples(world):
    lost = uuid.uuid4()
    world.accepted[lost] = S.PROCESSED

    table = render_table(world.checks())

    lines = table.splitlines()
    assert lines[0].split() == ["invariant", "figure", "result"]
    rows = lines[2 : 2 + len(CHECK_NAMES)]
    for name, row in zip(CHECK_NAMES, rows, strict=True):
        assert row.startswith(name)
        assert row.endswith("FAIL" if name == "orders accepted vs stored" else "PASS")
    assert len({row.rindex(" ") for row in rows}) == 1  # the result column is aligned
    assert "FAIL orders accepted vs stored:" in table
    assert f"  - lost: order {lost} (expected PROCESSED) is not in the database" in table


def test_the_table_of_a_clean_run_lists_no_failures(world):
    table = render_table(world.checks())

    rows = table.splitlines()[2:]
    assert len(rows) == len(CHECK_NAMES)
    assert all(row.endswith("  PASS") for row in rows)


# --- what the fault kinds made ---------------------------------------------------------------


def check_named(name: str, checks: list[Check]) -> Check:
    return next(check for check in checks if check.name == name)


def test_a_worker_that_does_not_answer_remote_control_fails(world):
    checks = check_invariants(
        accepted=world.accepted,
        queue_depths=world.queue_depths,
        poison_sent=world.poison_sent,
        workers=["chaos0@h", "chaos1@h"],
        workers_not_answering=["chaos1@h"],
    )

    check = check_named("every worker answers remote control", checks)
    assert (check.ok, check.figure) == (False, "1 / 2 answer ping")
    assert check.problems == ["chaos1@h did not answer ping"]
    assert check_named(
        "every worker answers remote control",
        check_invariants(
            accepted=world.accepted,
            queue_depths=world.queue_depths,
            poison_sent=world.poison_sent,
            workers=["chaos0@h", "chaos1@h"],
        ),
    ).ok


def test_dead_letters_are_checked_against_what_the_faults_made(world):
    made = {message.message_id for message in DeadLetter.objects.all()}
    stray = dead_letter()
    order = walk(OrderFactory(), S.APPROVED, S.FAILED)
    of_an_order = dead_letter(order.id)  # left NEW: its order has no way on
    made |= {of_an_order.message_id, "never-recorded"}
    DeadLetter.objects.filter(message_id=next(iter(made - {"never-recorded"}))).update(
        death_count=2
    )

    check = check_named(
        "dead letters recorded as made",
        check_invariants(
            accepted=world.accepted,
            queue_depths=world.queue_depths,
            poison_sent=world.poison_sent,
            dead_letters={"poison": made},
        ),
    )

    assert not check.ok
    assert "dead letter of never-recorded never recorded" in check.problems
    assert f"dead letter {stray.message_id} recorded, but no fault made it" in check.problems
    assert f"dead letter {of_an_order.message_id} of an order left NEW" in check.problems
    assert sum("counted more than once" in problem for problem in check.problems) == 1


# --- webhooks (a run with a receiver of its own) ---------------------------------------------

WEBHOOK_CHECKS = [
    "webhooks delivered or dead-lettered",
    "webhook requests verify",
    "receiver took each DELIVERED event",
]


def signed_request(delivery: WebhookDelivery, *, secret: str | None = None, status: int = 200):
    """The request webhooks.deliver sends for `delivery`, as the receiver records it."""
    body = delivery.body.encode()
    timestamp = int(time.time())
    return Received(
        headers={
            "Orderflow-Event-Id": str(delivery.event_id),
            "Orderflow-Delivery-Id": str(delivery.id),
            signing.SIGNATURE_HEADER: signing.signature_header(
                secrets_=[secret or delivery.endpoint.secret], timestamp=timestamp, body=body
            ),
        },
        body=body,
        status=status,
    )


class Hooked:
    """A buyer subscribed to every order event, one order of theirs PROCESSED, its two
    deliveries DELIVERED and taken by the receiver."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.poison_made = set(DeadLetter.objects.values_list("message_id", flat=True))
        self.endpoint = webhook_services.create_endpoint(
            owner=UserFactory(), url="http://127.0.0.1:9/hooks", event_types=list(EVENT_TYPES)
        )
        self.order = self.place()
        self.deliveries = list(WebhookDelivery.objects.order_by("subject_version"))
        self.requests = [signed_request(d) for d in self.deliveries]
        WebhookDelivery.objects.update(status="DELIVERED", delivered_at=timezone.now())

    def place(self) -> Order:
        order = walk(OrderFactory(buyer=self.endpoint.owner), S.APPROVED, S.PROCESSED)
        charge(order)
        OutboxMessage.objects.update(published_at=timezone.now())  # the relay's work
        return self.world.accept(order, S.PROCESSED)

    def checks(self) -> list[Check]:
        return check_invariants(
            accepted=self.world.accepted,
            queue_depths=self.world.queue_depths,
            poison_sent=self.world.poison_sent,
            dead_letters={"poison": self.poison_made},
            webhook_requests=self.requests,
        )

    def check(self, name: str) -> Check:
        return check_named(name, self.checks())

    def failing(self) -> set[str]:
        return {check.name for check in self.checks() if not check.ok}


@pytest.fixture
def hooked(world, settings) -> Hooked:
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    return Hooked(world)


def test_webhook_checks_follow_the_others_and_pass_when_every_event_was_taken(hooked):
    checks = hooked.checks()
    figures = {check.name: check.figure for check in checks}

    assert [check.name for check in checks][-3:] == WEBHOOK_CHECKS
    assert all_hold(checks)
    assert figures["webhooks delivered or dead-lettered"] == (
        "expected 2, deliveries 2: DELIVERED 2, dead-lettered 0, "
        "unsent (endpoint disabled) 0, not ended 0"
    )
    assert figures["webhook requests verify"] == "requests 2, not verified 0"
    assert figures["receiver took each DELIVERED event"] == (
        "DELIVERED 2, never taken 0, taken more than once 0"
    )


def test_a_delivery_left_pending_is_not_ended(hooked):
    delivery = hooked.deliveries[0]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="PENDING", attempts=3, last_error="HTTP 500, refused: ok"
    )

    check = hooked.check("webhooks delivered or dead-lettered")

    assert hooked.failing() == {"webhooks delivered or dead-lettered"}
    assert check.figure.endswith("not ended 1")
    assert (
        f"delivery {delivery.id} (order {hooked.order.id} v2) left PENDING after 3 attempt(s), "
        "last error: HTTP 500, refused: ok" in problems(check)
    )


def test_a_failed_delivery_ends_well_only_as_a_dead_letter_or_unsent_to_a_disabled_endpoint(
    hooked,
):
    dead, unsent = hooked.deliveries
    WebhookDelivery.objects.update(status="FAILED")
    WebhookDelivery.objects.filter(pk=unsent.pk).update(last_error="endpoint disabled: by owner")

    check = hooked.check("webhooks delivered or dead-lettered")
    assert f"delivery {dead.id} (order {hooked.order.id} v2) FAILED without a dead letter" in (
        problems(check)
    )

    letter = dead_letter(dead.id)
    DeadLetter.objects.filter(pk=letter.pk).update(
        message_id=str(dead.id), task_name="webhooks.deliver", queue="webhooks"
    )
    hooked.requests = []  # neither was taken

    assert hooked.failing() == set()  # nor is its dead letter one the faults should have made
    assert hooked.check("poison dead-lettered").figure == "sent 2, dead letters 2"
    assert hooked.check("webhooks delivered or dead-lettered").figure == (
        "expected 2, deliveries 2: DELIVERED 0, dead-lettered 1, "
        "unsent (endpoint disabled) 1, not ended 0"
    )


def test_a_status_change_without_its_delivery_is_lost(hooked):
    lost = hooked.deliveries[1]
    WebhookDelivery.objects.filter(pk=lost.pk).delete()
    hooked.requests = hooked.requests[:1]

    check = hooked.check("webhooks delivered or dead-lettered")

    assert hooked.failing() == {"webhooks delivered or dead-lettered"}
    assert f"order {hooked.order.id} v3 -> endpoint {hooked.endpoint.id}: no delivery" in problems(
        check
    )


def test_a_second_delivery_of_one_change_fails(hooked):
    first = hooked.deliveries[0]
    WebhookDelivery.objects.create(
        event_id=uuid.uuid4(),  # the unique event id per endpoint would refuse the same one
        endpoint=hooked.endpoint,
        event_type=first.event_type,
        subject_id=first.subject_id,
        subject_version=first.subject_version,
        body=first.body,
        status="DELIVERED",
        delivered_at=timezone.now(),
    )

    check = hooked.check("webhooks delivered or dead-lettered")

    assert not check.ok
    assert f"order {hooked.order.id} v2 -> endpoint {hooked.endpoint.id}: 2 deliveries" in problems(
        check
    )


def test_a_delivery_of_no_status_change_fails(hooked):
    stray = hooked.deliveries[0]
    WebhookDelivery.objects.filter(pk=stray.pk).update(subject_version=7)

    check = hooked.check("webhooks delivered or dead-lettered")

    assert hooked.failing() == {"webhooks delivered or dead-lettered"}
    assert f"delivery {stray.id}: of no status change (order {hooked.order.id})" in problems(check)
    assert f"order {hooked.order.id} v2 -> endpoint {hooked.endpoint.id}: no delivery" in (
        problems(check)
    )


def test_an_endpoint_registered_after_a_change_expects_no_delivery_of_it(hooked):
    WebhookEndpoint.objects.filter(pk=hooked.endpoint.pk).update(created_at=timezone.now())

    check = hooked.check("webhooks delivered or dead-lettered")

    assert check.figure.startswith("expected 0, deliveries 2")
    assert f"delivery {hooked.deliveries[0].id}: of no status change" in problems(check)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("secret", "signature does not verify"),
        ("event id header", "event id header is not"),
        ("body", "body's event id is not"),
        ("signature header", "signature does not verify"),
    ],
)
def test_a_request_not_signed_with_the_endpoints_secret_or_for_another_event_fails(
    hooked, damage, problem
):
    delivery = hooked.deliveries[0]
    if damage == "body":
        delivery.body = json.dumps({**json.loads(delivery.body), "id": str(uuid.uuid4())})
    request = signed_request(delivery, secret="whsec_someone-else" if damage == "secret" else None)
    if damage == "event id header":
        request.headers["Orderflow-Event-Id"] = str(uuid.uuid4())
    if damage == "signature header":
        request.headers[signing.SIGNATURE_HEADER] = "v1=" + "0" * 64
    hooked.requests.append(request)

    check = hooked.check("webhook requests verify")

    assert hooked.failing() == {"webhook requests verify"}
    assert check.figure == "requests 3, not verified 1"
    assert check.problems == [
        f"delivery {delivery.id}: {problem}"
        + (f" {delivery.event_id}" if "is not" in problem else "")
    ]


def test_a_request_naming_no_delivery_fails(hooked):
    hooked.requests.append(Received({"Orderflow-Delivery-Id": "nonsense"}, b"{}", 200))

    assert hooked.failing() == {"webhook requests verify"}


def test_a_delivered_event_the_receiver_never_took_fails(hooked):
    delivery = hooked.deliveries[1]
    hooked.requests[1] = signed_request(delivery, status=500)  # it saw it, and refused it

    check = hooked.check("receiver took each DELIVERED event")

    assert hooked.failing() == {"receiver took each DELIVERED event"}
    assert check.figure == "DELIVERED 2, never taken 1, taken more than once 0"
    assert check.problems == [f"delivery {delivery.id} DELIVERED, but the receiver never took it"]


def test_an_event_taken_twice_is_at_least_once_and_counted(hooked):
    hooked.requests.append(signed_request(hooked.deliveries[0]))

    assert hooked.failing() == set()
    assert hooked.check("receiver took each DELIVERED event").figure.endswith(
        "taken more than once 1"
    )


def test_the_webhook_checks_queries_do_not_grow_with_the_number_of_deliveries(hooked):
    with CaptureQueriesContext(connection) as small:
        hooked.checks()
    for _ in range(4):
        hooked.place()
    WebhookDelivery.objects.update(status="DELIVERED", delivered_at=timezone.now())
    hooked.requests = [signed_request(d) for d in WebhookDelivery.objects.all()]
    with CaptureQueriesContext(connection) as large:
        checks = hooked.checks()

    assert all_hold(checks)
    assert len(large.captured_queries) == len(small.captured_queries)
