"""What must hold once a chaos run has settled: nothing lost, nothing done twice, nothing stuck.

Every check reads the run's database through the ORM with a fixed number of queries, however
many orders there are. Queue depths are measured by the caller and passed in, so this module
never touches the broker and can be tested on a database alone.
"""

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from django.db import models
from django.db.models import Count, Exists, OuterRef

from core import money
from fakegateway.models import FakeGatewayCharge
from messaging.models import DeadLetter, OutboxMessage
from messaging.topology import DEAD_LETTER_QUEUE, PARKING_QUEUE, WORK_QUEUES
from ordering import selectors as order_selectors
from ordering.events import event_type_of
from ordering.models import Order, OrderEvent
from ordering.state_machine import TERMINAL_STATUSES, OrderStatus, can_transition
from webhooks import signing
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import DELIVER_TASK

from .receiver import Received

# Problem examples kept per check: enough to start debugging, short enough to read.
MAX_EXAMPLES = 10

S = OrderStatus
CHARGED = FakeGatewayCharge.Outcome.CHARGED
Delivery = WebhookDelivery.Status
# How webhooks.services.deliver fails a delivery it never sent: its endpoint was disabled.
DISABLED_UNSENT = "endpoint disabled"


@dataclass(frozen=True)
class Check:
    """One invariant's verdict: a row of the report, with examples of what broke it."""

    name: str
    figure: str
    ok: bool
    problems: list[str] = field(default_factory=list)


def check_invariants(
    *,
    accepted: dict[uuid.UUID, str],
    queue_depths: dict[str, int],
    poison_sent: int,
    dead_letters: Mapping[str, set[str]] | None = None,
    workers: Sequence[str] = (),
    workers_not_answering: Sequence[str] = (),
    webhook_requests: Sequence[Received] | None = None,
) -> list[Check]:
    """Check every invariant, in the order the report shows them.

    `dead_letters` is the message ids of the dead letters each fault kind made, when the
    harness knows them all: then exactly those must be recorded. `workers` are the run's
    worker node names, and `workers_not_answering` those that did not answer a ping.
    `webhook_requests` is every request the run's webhook receiver got, when it had one.
    """
    accepted = {uuid.UUID(str(order_id)): status for order_id, status in accepted.items()}
    extra = [] if dead_letters is None else [_dead_letters_as_made(dead_letters)]
    if workers:
        extra.append(_workers_answer(workers, workers_not_answering))
    if webhook_requests is not None:
        extra += [
            _webhooks_delivered_or_dead_lettered(),
            _webhook_requests_verify(webhook_requests),
            _delivered_webhooks_seen(webhook_requests),
        ]
    return [
        _orders_stored(accepted),
        _orders_finished(),
        _way_forward(),
        _outcomes_as_expected(accepted),
        _charges_per_order(),
        _charged_is_processed(),
        _histories_valid(),
        _queues_empty("messages left in work queues", WORK_QUEUES, queue_depths),
        _queues_empty(
            "dead_letter queue drained", (DEAD_LETTER_QUEUE, PARKING_QUEUE), queue_depths
        ),
        _outbox_published(),
        _poison_dead_lettered(poison_sent),
        *extra,
    ]


def all_hold(checks: Iterable[Check]) -> bool:
    return all(check.ok for check in checks)


def render_table(checks: list[Check]) -> str:
    """An aligned plain-text table (invariant, figure, PASS/FAIL), then the failures' examples."""
    rows = [("invariant", "figure", "result")]
    rows += [(check.name, check.figure, "PASS" if check.ok else "FAIL") for check in checks]
    name_width = max(len(name) for name, _, _ in rows)
    figure_width = max(len(figure) for _, figure, _ in rows)
    lines = [
        f"{name:<{name_width}}  {figure:<{figure_width}}  {result}" for name, figure, result in rows
    ]
    lines.insert(1, f"{'-' * name_width}  {'-' * figure_width}  ------")
    for check in checks:
        if not check.ok:
            lines += ["", f"FAIL {check.name}:"]
            lines += [f"  - {problem}" for problem in check.problems]
    return "\n".join(lines)


# --- orders ---------------------------------------------------------------------------------


def _orders_stored(accepted: Mapping[uuid.UUID, str]) -> Check:
    stored = dict(Order.objects.order_by().values_list("id", "status"))
    lost = _sorted(accepted.keys() - stored.keys())
    extra = _sorted(stored.keys() - accepted.keys())
    problems = [f"lost: order {i} (expected {accepted[i]}) is not in the database" for i in lost]
    problems += [f"extra: order {i} ({stored[i]}) was never accepted" for i in extra]
    return Check(
        name="orders accepted vs stored",
        figure=(
            f"accepted {len(accepted)}, stored {len(stored)}, lost {len(lost)}, extra {len(extra)}"
        ),
        ok=not lost and not extra,
        problems=_examples(problems),
    )


def _orders_finished() -> Check:
    """Terminal, or FAILED and waiting for an operator as a dead letter."""
    unfinished = (
        Order.objects.exclude(status__in=TERMINAL_STATUSES)
        .annotate(dead_lettered=Exists(DeadLetter.objects.filter(subject_id=OuterRef("pk"))))
        .order_by("id")
        .values_list("id", "status", "failed_from", "dead_lettered")
    )
    parked, problems = 0, []
    for order_id, status, failed_from, dead_lettered in unfinished:
        if status == S.FAILED and dead_lettered:
            parked += 1
        elif status == S.FAILED:
            problems.append(f"order {order_id} FAILED (from {failed_from}) without a dead letter")
        else:
            problems.append(f"order {order_id} left {status}")
    terminal = Order.objects.filter(status__in=TERMINAL_STATUSES).count()
    return Check(
        name="orders finished",
        figure=(
            f"terminal {terminal}, FAILED with dead letter {parked}, unfinished {len(problems)}"
        ),
        ok=not problems,
        problems=_examples(problems),
    )


def _way_forward() -> Check:
    """Every non-terminal order can still move: its message waits in the outbox, or its
    dead letter waits for an operator (NEW). Read once the queues are empty."""
    stuck = list(
        order_selectors.orders_without_a_way_forward()
        .order_by("id")
        .values_list("id", "status", "failed_from")
    )
    problems = [
        f"order {order_id} is {status}{f' (from {failed_from})' if failed_from else ''} with "
        "no unpublished outbox row and no NEW dead letter"
        for order_id, status, failed_from in stuck
    ]
    return Check(
        name="every order has a way forward",
        figure=f"stuck {len(stuck)}",
        ok=not stuck,
        problems=_examples(problems),
    )


def _outcomes_as_expected(accepted: Mapping[uuid.UUID, str]) -> Check:
    """Terminal orders only: FAILED ones have no outcome yet, and extras have no expectation."""
    terminal = Order.objects.filter(status__in=TERMINAL_STATUSES).order_by("id")
    compared, problems = 0, []
    for order_id, status in terminal.values_list("id", "status"):
        expected = accepted.get(order_id)
        if expected is None:
            continue
        compared += 1
        if status != expected:
            problems.append(f"order {order_id} ended {status}, expected {expected}")
    failed = Order.objects.filter(status=S.FAILED).count()
    return Check(
        name="outcomes as expected",
        figure=(
            f"as expected {compared - len(problems)} / {compared} terminal, "
            f"FAILED not counted {failed}"
        ),
        ok=not problems,
        problems=_examples(problems),
    )


# --- charges (the fake gateway's ledger is what the buyer's card statement would show) ------


def _charges_per_order() -> Check:
    charged = FakeGatewayCharge.objects.filter(outcome=CHARGED)
    per_order = charged.values("order_ref").annotate(charges=Count("id"))
    doubled = list(per_order.filter(charges__gt=1).order_by("-charges", "order_ref"))
    most = doubled[0]["charges"] if doubled else int(charged.exists())
    keys = defaultdict(list)
    shown = [row["order_ref"] for row in doubled[:MAX_EXAMPLES]]
    for order_ref, key in (
        charged.filter(order_ref__in=shown)
        .order_by("id")
        .values_list("order_ref", "idempotency_key")
    ):
        keys[order_ref].append(key)
    problems = [
        f"order {row['order_ref']} charged {row['charges']} times "
        f"(idempotency keys: {', '.join(keys[row['order_ref']])})"
        for row in doubled
    ]
    return Check(
        name="charges per order <= 1",
        figure=f"max charges for one order: {most}",
        ok=most <= 1,
        problems=_examples(problems),
    )


def _charged_is_processed() -> Check:
    """Money was taken exactly for the PROCESSED orders, and exactly their total."""
    charges = list(
        FakeGatewayCharge.objects.filter(outcome=CHARGED)
        .order_by("order_ref", "id")
        .values_list("order_ref", "amount_minor", "currency")
    )
    processed = {
        str(order_id): (total, currency)
        for order_id, total, currency in Order.objects.filter(status=S.PROCESSED)
        .order_by("id")
        .values_list("id", "total_minor", "currency")
    }
    charged_refs = {order_ref for order_ref, _, _ in charges}
    not_processed = sorted(charged_refs - processed.keys())
    not_charged = sorted(processed.keys() - charged_refs)
    wrong_amount = [
        (order_ref, amount, currency)
        for order_ref, amount, currency in charges
        if order_ref in processed and (amount, currency) != processed[order_ref]
    ]

    statuses = _statuses(not_processed[:MAX_EXAMPLES])
    problems = [
        f"order {order_ref} charged, but {statuses.get(order_ref, 'no such order')}"
        for order_ref in not_processed
    ]
    problems += [f"order {order_ref} PROCESSED, but never charged" for order_ref in not_charged]
    problems += [
        f"order {order_ref} charged {money.display(amount, currency)}, "
        f"its total is {money.display(*processed[order_ref])}"
        for order_ref, amount, currency in wrong_amount
    ]
    return Check(
        name="charged == PROCESSED",
        figure=(
            f"charged {len(charged_refs)}, PROCESSED {len(processed)}, "
            f"not PROCESSED {len(not_processed)}, not charged {len(not_charged)}, "
            f"wrong amount {len(wrong_amount)}"
        ),
        ok=not problems,
        problems=_examples(problems),
    )


def _statuses(order_refs: Sequence[str]) -> dict[str, str]:
    """The status of each ledger order_ref that names an existing order."""
    ids = []
    for order_ref in order_refs:
        try:
            ids.append(uuid.UUID(order_ref))
        except ValueError:
            continue
    if not ids:
        return {}
    return {
        str(order_id): status
        for order_id, status in Order.objects.filter(id__in=ids).values_list("id", "status")
    }


# --- histories ------------------------------------------------------------------------------


def _histories_valid() -> Check:
    events = defaultdict(list)
    for event in OrderEvent.objects.order_by("order_id", "version").values_list(
        "order_id", "version", "from_status", "to_status", named=True
    ):
        events[event.order_id].append(event)
    orders = Order.objects.order_by("id").values_list("id", "status", "failed_from", "version")
    checked, problems = 0, []
    for order_id, status, failed_from, version in orders:
        checked += 1
        problem = _history_problem(
            status=status, failed_from=failed_from, version=version, events=events[order_id]
        )
        if problem:
            problems.append(f"order {order_id}: {problem}")
    return Check(
        name="histories valid",
        figure=f"invalid {len(problems)} / {checked} orders",
        ok=not problems,
        problems=_examples(problems),
    )


def _history_problem(*, status: str, failed_from: str, version: int, events: list) -> str | None:
    """What is wrong with one order's history, or None if it walks legally to its status.

    `events` are ordered by version and have `version`, `from_status` and `to_status`.
    """
    if not events:
        return "no history events"
    for expected, event in enumerate(events, start=1):
        if event.version != expected:
            return f"gap: event v{event.version} where v{expected} belongs"
    if len(events) != version:
        return f"{len(events)} events, but the order is at version {version}"
    first = events[0]
    if (first.from_status, first.to_status) != ("", S.PENDING):
        return f"v1 {_step(first)}, expected (created) -> PENDING"
    # The status the latest FAILED was entered from: the only way out of FAILED is back to it.
    entered_failed_from = ""
    for previous, event in pairwise(events):
        if event.from_status != previous.to_status:
            return (
                f"v{event.version} {_step(event)} starts from {event.from_status}, "
                f"but v{previous.version} ended in {previous.to_status}"
            )
        if not can_transition(
            current=event.from_status, to=event.to_status, failed_from=entered_failed_from
        ):
            why = (
                f" (it failed from {entered_failed_from})" if event.from_status == S.FAILED else ""
            )
            return f"v{event.version} {_step(event)} is not allowed{why}"
        if event.to_status == S.FAILED:
            entered_failed_from = event.from_status
    last = events[-1]
    if last.to_status != status:
        return f"history ends in {last.to_status}, but the order is {status}"
    if status == S.FAILED and failed_from != entered_failed_from:
        return f"failed_from is {failed_from}, but the history failed from {entered_failed_from}"
    return None


def _step(event) -> str:
    return f"{event.from_status or '(created)'} -> {event.to_status}"


# --- broker and messages --------------------------------------------------------------------


def _queues_empty(name: str, queues: Sequence[str], queue_depths: Mapping[str, int]) -> Check:
    """A queue the caller did not measure fails: an unmeasured queue is not an empty one."""
    problems = []
    for queue in queues:
        depth = queue_depths.get(queue)
        if depth is None:
            problems.append(f"{queue}: not measured")
        elif depth:
            problems.append(f"{queue}: {depth} ready message(s) left")
    return Check(
        name=name,
        figure=", ".join(f"{queue} {queue_depths.get(queue, '?')}" for queue in queues),
        ok=not problems,
        problems=problems,
    )


def _outbox_published() -> Check:
    unpublished = OutboxMessage.objects.filter(published_at__isnull=True)
    count = unpublished.count()
    examples = unpublished.order_by("created_at", "id").values_list(
        "id", "task_name", "attempts", "last_error"
    )[:MAX_EXAMPLES]
    problems = [
        f"{task_name} {message_id}: {attempts} failed attempt(s)"
        + (f", last error: {last_error[:120]}" if last_error else "")
        for message_id, task_name, attempts, last_error in examples
    ]
    if count > MAX_EXAMPLES:
        problems.append(f"... and {count - MAX_EXAMPLES} more")
    return Check(
        name="outbox rows unpublished",
        figure=f"unpublished {count} / {OutboxMessage.objects.count()}",
        ok=count == 0,
        problems=problems,
    )


def _poison_dead_lettered(poison_sent: int) -> Check:
    """Poison messages are not orders: they end as dead letters linked to no order."""
    unlinked = (
        _pipeline_dead_letters()
        .exclude(Exists(Order.objects.filter(pk=OuterRef("subject_id"))))
        .count()
    )
    problems = []
    if unlinked < poison_sent:
        problems.append(
            f"{poison_sent - unlinked} of {poison_sent} poison message(s) did not end as a "
            "dead letter"
        )
    return Check(
        name="poison dead-lettered",
        figure=f"sent {poison_sent}, dead letters {unlinked}",
        ok=not problems,
        problems=problems,
    )


def _dead_letters_as_made(made: Mapping[str, set[str]]) -> Check:
    """Exactly the dead letters the faults made are recorded, each death once; those of real
    orders are done with (STALE, or REPLAYED), and poison waits NEW for an operator."""
    expected = set().union(*made.values()) if made else set()
    rows = list(
        _pipeline_dead_letters()
        .annotate(of_an_order=Exists(Order.objects.filter(pk=OuterRef("subject_id"))))
        .order_by("message_id")
        .values_list("message_id", "status", "death_count", "of_an_order")
    )
    recorded = {message_id for message_id, *_ in rows}
    problems = [f"dead letter of {m} never recorded" for m in sorted(expected - recorded)]
    problems += [
        f"dead letter {m} recorded, but no fault made it" for m in sorted(recorded - expected)
    ]
    twice = [m for m, _, deaths, _ in rows if deaths > 1]
    problems += [f"dead letter {m}: one death counted more than once" for m in twice]
    problems += [
        f"dead letter {m} of an order left {status}"
        for m, status, _, of_an_order in rows
        if of_an_order and status not in (DeadLetter.Status.STALE, DeadLetter.Status.REPLAYED)
    ]
    return Check(
        name="dead letters recorded as made",
        figure=(
            f"recorded {len(recorded & expected)} / made {len(expected)}, "
            f"unexpected {len(recorded - expected)}, counted twice {len(twice)}"
        ),
        ok=not problems,
        problems=_examples(problems),
    )


def _pipeline_dead_letters() -> models.QuerySet[DeadLetter]:
    """Dead letters but those of webhook deliveries: retries running out is one of a
    delivery's ends, which the webhooks check accounts for."""
    return DeadLetter.objects.exclude(task_name=DELIVER_TASK)


def _workers_answer(workers: Sequence[str], not_answering: Sequence[str]) -> Check:
    return Check(
        name="every worker answers remote control",
        figure=f"{len(workers) - len(not_answering)} / {len(workers)} answer ping",
        ok=not not_answering,
        problems=[f"{name} did not answer ping" for name in not_answering],
    )


# --- webhooks (with a receiver of the run's own) ---------------------------------------------


def _webhooks_delivered_or_dead_lettered() -> Check:
    """Each change of an order's status has one delivery per endpoint of its buyer subscribed
    to it then, and every delivery has ended: DELIVERED, FAILED with its dead letter (retries
    ran out, or a 4xx), or FAILED unsent because its endpoint was disabled. None is lost."""
    endpoints = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.order_by("created_at").values_list(
        "id", "owner_id", "event_types", "created_at", "disabled_at", named=True
    ):
        endpoints[endpoint.owner_id].append(endpoint)
    changes = OrderEvent.objects.exclude(from_status="").values_list(
        "order_id", "order__buyer_id", "version", "to_status", "at"
    )  # creation is no change: it emits no event
    expected = {
        (order_id, version, endpoint.id)
        for order_id, buyer_id, version, to_status, at in changes
        for endpoint in endpoints[buyer_id]
        if event_type_of(to_status) in endpoint.event_types
        and endpoint.created_at <= at
        and (endpoint.disabled_at is None or endpoint.disabled_at > at)
    }
    dead_lettered = set(
        DeadLetter.objects.filter(task_name=DELIVER_TASK).values_list("message_id", flat=True)
    )
    deliveries = list(
        WebhookDelivery.objects.order_by("created_at", "id").values_list(
            "id", "subject_id", "subject_version", "endpoint_id", "status", "attempts",
            "last_error", named=True,
        )
    )  # fmt: skip
    found = Counter((d.subject_id, d.subject_version, d.endpoint_id) for d in deliveries)
    problems = [
        f"order {order_id} v{version} -> endpoint {endpoint_id}: no delivery"
        for order_id, version, endpoint_id in sorted(expected - found.keys(), key=str)
    ]
    problems += [
        f"order {order_id} v{version} -> endpoint {endpoint_id}: {count} deliveries"
        for (order_id, version, endpoint_id), count in found.items()
        if count > 1
    ]
    ends = Counter()
    for d in deliveries:
        if (d.subject_id, d.subject_version, d.endpoint_id) not in expected:
            problems.append(f"delivery {d.id}: of no status change (order {d.subject_id})")
        if d.status == Delivery.DELIVERED:
            ends["DELIVERED"] += 1
        elif d.status == Delivery.FAILED and str(d.id) in dead_lettered:
            ends["dead-lettered"] += 1
        elif d.status == Delivery.FAILED and d.last_error.startswith(DISABLED_UNSENT):
            ends["unsent"] += 1
        else:
            why = "FAILED without a dead letter" if d.status == Delivery.FAILED else "left PENDING"
            problems.append(
                f"delivery {d.id} (order {d.subject_id} v{d.subject_version}) {why} after "
                f"{d.attempts} attempt(s)"
                + (f", last error: {d.last_error}" if d.last_error else "")
            )
    return Check(
        name="webhooks delivered or dead-lettered",
        figure=(
            f"expected {len(expected)}, deliveries {len(deliveries)}: DELIVERED "
            f"{ends['DELIVERED']}, dead-lettered {ends['dead-lettered']}, unsent (endpoint "
            f"disabled) {ends['unsent']}, not ended {len(deliveries) - ends.total()}"
        ),
        ok=not problems,
        problems=_examples(problems),
    )


def _webhook_requests_verify(requests: Sequence[Received]) -> Check:
    """Every request the receiver got names a delivery, carries its event id (header and
    body) and is signed with its endpoint's secret, whatever the receiver answered."""
    secrets_of = {}
    rows = WebhookDelivery.objects.filter(
        id__in={_delivery_id(request) for request in requests} - {None}
    ).values_list("id", "event_id", "endpoint__secret", "endpoint__previous_secret")
    for delivery_id, event_id, secret, previous in rows:
        secrets_of[delivery_id] = (str(event_id), [s for s in (secret, previous) if s])
    problems = []
    for request in requests:
        delivery_id = _delivery_id(request)
        if delivery_id not in secrets_of:
            problems.append(f"a request for no delivery: {request.headers!r:.200}")
            continue
        event_id, secrets_ = secrets_of[delivery_id]
        if request.headers.get("Orderflow-Event-Id") != event_id:
            problems.append(f"delivery {delivery_id}: event id header is not {event_id}")
        if _body_event_id(request.body) != event_id:
            problems.append(f"delivery {delivery_id}: body's event id is not {event_id}")
        if not _signed_by_one_of(request, secrets_):
            problems.append(f"delivery {delivery_id}: signature does not verify")
    return Check(
        name="webhook requests verify",
        figure=f"requests {len(requests)}, not verified {len(problems)}",
        ok=not problems,
        problems=_examples(problems),
    )


def _delivered_webhooks_seen(requests: Sequence[Received]) -> Check:
    """A delivery is DELIVERED only on a 2xx, so the receiver took each at least once."""
    taken = Counter(_delivery_id(r) for r in requests if 200 <= r.status < 300)
    delivered = list(
        WebhookDelivery.objects.filter(status=Delivery.DELIVERED)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    unseen = [d for d in delivered if not taken[d]]
    return Check(
        name="receiver took each DELIVERED event",
        figure=(
            f"DELIVERED {len(delivered)}, never taken {len(unseen)}, "
            f"taken more than once {sum(1 for d in delivered if taken[d] > 1)}"
        ),
        ok=not unseen,
        problems=_examples(
            [f"delivery {d} DELIVERED, but the receiver never took it" for d in unseen]
        ),
    )


def _delivery_id(request: Received) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.headers.get("Orderflow-Delivery-Id", ""))
    except ValueError:
        return None


def _body_event_id(body: bytes) -> str | None:
    try:
        return json.loads(body).get("id")
    except (ValueError, AttributeError):
        return None


def _signed_by_one_of(request: Received, secrets_: Sequence[str]) -> bool:
    """The header's timestamp and v1 values, as a receiver checks them (README's snippet)."""
    parts = [p.partition("=") for p in request.headers.get(signing.SIGNATURE_HEADER, "").split(",")]
    timestamps = [value for key, _, value in parts if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    signed = {value for key, _, value in parts if key == "v1"}
    return any(
        signing.signature(secret=secret, timestamp=int(timestamps[0]), body=request.body) in signed
        for secret in secrets_
    )


def fault_table(
    *,
    windows: Sequence[tuple[str, float, float]],
    made: Mapping[str, set[str]],
    accepted_at: Mapping[uuid.UUID, float],
    started_wall: float,
) -> list[dict]:
    """Per fault kind: how often it fired, the orders in flight while it did (accepted before
    it ended, finished after it began), and how many of those were lost, charged twice or
    left with no way forward; and the dead letters it made, recorded / expected."""
    finished = {
        order_id: at.timestamp() - started_wall
        for order_id, at in OrderEvent.objects.order_by()
        .values("order_id")
        .annotate(last=models.Max("at"))
        .values_list("order_id", "last")
    }
    stored = set(finished)
    doubled = {
        uuid.UUID(ref)
        for ref in FakeGatewayCharge.objects.filter(outcome=CHARGED)
        .values("order_ref")
        .annotate(charges=Count("id"))
        .filter(charges__gt=1)
        .values_list("order_ref", flat=True)
    }
    stuck = set(order_selectors.orders_without_a_way_forward().values_list("id", flat=True))
    recorded = set(DeadLetter.objects.values_list("message_id", flat=True))
    rows = []
    for kind in dict.fromkeys(kind for kind, _, _ in windows):
        spans = [(start, end) for k, start, end in windows if k == kind]
        in_flight = {
            order_id
            for order_id, accepted in accepted_at.items()
            for start, end in spans
            if accepted <= end and finished.get(order_id, float("inf")) >= start
        }
        rows.append(
            {
                "fault": kind,
                "fired": len(spans),
                "orders": len(in_flight),
                "lost": len(in_flight - stored),
                "charged_twice": len(in_flight & doubled),
                "stuck": len(in_flight & stuck),
                "dead_letters_recorded": len(made.get(kind, set()) & recorded),
                "dead_letters_expected": len(made.get(kind, set())),
            }
        )
    return rows


# --- report helpers -------------------------------------------------------------------------


def _sorted(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    return sorted(ids, key=str)


def _examples(problems: Sequence[str]) -> list[str]:
    """The first MAX_EXAMPLES problems, and how many more there were."""
    shown = list(problems[:MAX_EXAMPLES])
    if len(problems) > MAX_EXAMPLES:
        shown.append(f"... and {len(problems) - MAX_EXAMPLES} more")
    return shown


# --- a RabbitMQ cluster's quorum queues (measured by the caller, chaos.cluster_run) ---------


def quorum_checks(
    *,
    nodes: Sequence[str],
    queues: Mapping[str, Mapping],
    statuses: Mapping[str, Sequence[Mapping]],
    node_stops: Sequence[Mapping],
    election_limit: float,
) -> list[Check]:
    """Every quorum queue keeps a leader and its replicas catch up.

    `queues` is {name: {"leader", "members", "online"}} for every quorum queue,
    `statuses` is rabbitmq-queues quorum_status rows of some of them, `node_stops` the
    {"node", "leaders_elected_s", "replicas_online_s"} timings of each node stopped.
    """
    return [
        _queues_led(nodes, queues),
        _replicas_caught_up(nodes, statuses),
        _leaders_after_stops(node_stops, election_limit),
    ]


def _queues_led(nodes: Sequence[str], queues: Mapping[str, Mapping]) -> Check:
    problems = []
    for name, queue in sorted(queues.items()):
        if queue["leader"] not in nodes:
            problems.append(f"{name}: no leader ({queue['leader'] or 'none'})")
        offline = sorted(set(nodes) - set(queue["online"]))
        if offline:
            problems.append(f"{name}: replicas offline on {', '.join(offline)}")
    return Check(
        name="quorum queues led, replicas online",
        figure=f"{len(queues)} quorum queues on {len(nodes)} nodes, problems {len(problems)}",
        ok=bool(queues) and not problems,
        problems=_examples(problems or ([] if queues else ["no quorum queue found"])),
    )


def _replicas_caught_up(nodes: Sequence[str], statuses: Mapping[str, Sequence[Mapping]]) -> Check:
    problems, figures = [], []
    for name, rows in sorted(statuses.items()):
        leaders = [row["Node Name"] for row in rows if row["Raft State"] == "leader"]
        indexes = {row["Node Name"]: row["Commit Index"] for row in rows}
        figures.append(f"{name} {'/'.join(str(indexes[n]) for n in sorted(indexes))}")
        if len(leaders) != 1:
            problems.append(f"{name}: {len(leaders)} leaders")
        if sorted(indexes) != sorted(nodes):
            problems.append(f"{name}: replicas on {sorted(indexes)}, expected {sorted(nodes)}")
        if len(set(indexes.values())) > 1:
            problems.append(f"{name}: commit indexes differ: {indexes}")
    return Check(
        name="replicas caught up (commit index)",
        figure=", ".join(figures),
        ok=bool(statuses) and not problems,
        problems=_examples(problems),
    )


def _leaders_after_stops(node_stops: Sequence[Mapping], election_limit: float) -> Check:
    problems = []
    for stop in node_stops:
        elected, online = stop["leaders_elected_s"], stop["replicas_online_s"]
        if elected is None or elected > election_limit:
            problems.append(f"{stop['node']} stopped: no leader for every queue in time")
        if online is None:
            problems.append(f"{stop['node']} restarted: its replicas never came back online")
    elections = [s["leaders_elected_s"] for s in node_stops if s["leaders_elected_s"] is not None]
    rejoins = [s["replicas_online_s"] for s in node_stops if s["replicas_online_s"] is not None]
    return Check(
        name="leaders after each node stop",
        figure=(
            f"{len(node_stops)} stops, longest election {max(elections, default=0)} s, "
            f"longest rejoin {max(rejoins, default=0)} s"
        ),
        ok=not problems,
        problems=problems,
    )
