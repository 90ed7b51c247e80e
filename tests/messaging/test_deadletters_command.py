"""`manage.py deadletters {list,show,replay,discard}`: the operator's command line."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_results.models import TaskResult

from messaging.models import DeadLetter
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import DeadLetterFactory, OrderFactory
from .test_deadletters import ReplayRecorder

pytestmark = pytest.mark.django_db

NEW, STALE, REPLAYED, DISCARDED = DeadLetter.Status


@pytest.fixture
def replays() -> ReplayRecorder:
    return ReplayRecorder()


def deadletters_command(*args: str) -> tuple[str, str]:
    """Run the command; what it wrote to stdout and stderr."""
    stdout, stderr = StringIO(), StringIO()
    call_command("deadletters", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def listed(*args: str) -> list[int]:
    out, _ = deadletters_command("list", *args)
    header, *rows = out.splitlines()
    assert header.split() == ["id", "status", "reason", "count", "queue", "task", "/", "order"]
    return [int(row.split()[0]) for row in rows]


def statuses(*dead_letters: DeadLetter) -> list[str]:
    return [DeadLetter.objects.get(pk=d.pk).status for d in dead_letters]


# list and show ---------------------------------------------------------------------------------


def test_list_shows_the_new_ones_oldest_death_first():
    older, newer = DeadLetterFactory(), DeadLetterFactory()
    DeadLetterFactory(status=REPLAYED), DeadLetterFactory(status=DISCARDED)

    assert listed() == [older.pk, newer.pk]


def test_list_all_shows_every_status():
    dead_letters = [DeadLetterFactory(status=status) for status in (NEW, REPLAYED, DISCARDED)]

    assert listed("--all") == [d.pk for d in dead_letters]


def test_a_listed_row_says_what_died_where_and_why():
    dead_letter = DeadLetterFactory(reason="delivery_limit", death_count=3)
    unknown = DeadLetterFactory(task_name="", subject_id=None)

    out, _ = deadletters_command("list")

    row, unknown_row = out.splitlines()[1:]
    assert row.split() == [
        str(dead_letter.pk),
        "NEW",
        "delivery_limit",
        "3",
        "fraud",
        "fraud.screen_order",
        str(dead_letter.subject_id),
    ]
    assert unknown_row.split() == [str(unknown.pk), "NEW", "rejected", "1", "fraud", "?"]


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["--queue", "billing"], "billing"),
        (["--task", "billing.charge_order"], "billing"),
        (["--id", "<fraud>"], "fraud"),
        (["--id", "<replayed>"], "replayed"),  # an id selects it whatever its status
        (["--queue", "fraud", "--all"], "fraud+replayed"),
    ],
)
def test_list_filters_by_queue_task_and_id(args, wanted):
    dead_letters = {
        "fraud": DeadLetterFactory(),
        "billing": DeadLetterFactory(queue="billing", task_name="billing.charge_order"),
        "replayed": DeadLetterFactory(status=REPLAYED),
    }
    args = [str(dead_letters[a[1:-1]].pk) if a.startswith("<") else a for a in args]

    assert listed(*args) == [dead_letters[name].pk for name in wanted.split("+")]


def test_list_takes_several_ids():
    first, _, third = DeadLetterFactory(), DeadLetterFactory(), DeadLetterFactory()

    assert listed("--id", str(third.pk), "--id", str(first.pk)) == [first.pk, third.pk]


def test_show_prints_the_fields_the_error_and_the_body():
    dead_letter = DeadLetterFactory(reason="delivery_limit", body=b'[[], {"order_id": 1}, {}]')
    TaskResult.objects.create(task_id=dead_letter.message_id, traceback="Traceback: Boom")

    out, _ = deadletters_command("show", "--id", str(dead_letter.pk))

    assert out.startswith(f"dead letter {dead_letter.pk}: fraud.screen_order ")
    for line in (
        f"  message_id: {dead_letter.message_id}",
        "  queue: fraud",
        "  task_name: fraud.screen_order",
        f"  subject_id: {dead_letter.subject_id}",
        "  reason: delivery_limit",
        "  death_count: 1",
        "  status: NEW",
        "  replay_count: 0",
        "  last error: Traceback: Boom",
        "  body: b'[[], {\"order_id\": 1}, {}]'",
    ):
        assert line in out.splitlines()
    assert "  headers: {" in out and "'x-death'" in out


def test_show_prints_a_binary_body_as_escaped_bytes():
    dead_letter = DeadLetterFactory(body=b"\xff\x00binary")

    out, _ = deadletters_command("show", "--id", str(dead_letter.pk))

    assert "  body: b'\\xff\\x00binary'" in out.splitlines()
    assert "  last error: unknown" in out.splitlines()


# replay and discard -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_replay_or_discard_without_a_selection_is_refused(replays, action):
    dead_letter = DeadLetterFactory()

    with pytest.raises(CommandError, match=f"Say which to {action}"):
        deadletters_command(action)

    assert statuses(dead_letter) == [NEW]
    assert replays.published == []


def test_replay_by_id_replays_that_one_and_resumes_its_order(replays):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    chosen, other = DeadLetterFactory(subject_id=order.id), DeadLetterFactory()

    out, _ = deadletters_command("replay", "--id", str(chosen.pk))

    assert out.strip() == "replayed 1 dead letter(s)"
    assert [p["pk"] for p in replays.published] == [chosen.pk]
    assert statuses(chosen, other) == [REPLAYED, NEW]
    chosen.refresh_from_db()
    assert (chosen.replay_count, chosen.acted_by) == (1, None)
    assert chosen.acted_at is not None
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_replay_all_replays_every_new_one(replays):
    dead_letters = [DeadLetterFactory(), DeadLetterFactory(queue="billing"), DeadLetterFactory()]

    deadletters_command("replay", "--all")

    assert [p["pk"] for p in replays.published] == [d.pk for d in dead_letters]
    assert statuses(*dead_letters) == [REPLAYED] * 3


def test_replay_all_leaves_replayed_and_discarded_ones_alone(replays):
    new = DeadLetterFactory()
    DeadLetterFactory(status=REPLAYED), DeadLetterFactory(status=DISCARDED)

    deadletters_command("replay", "--all")

    assert [p["pk"] for p in replays.published] == [new.pk]


def test_discard_by_queue_discards_only_the_new_ones_of_that_queue(replays):
    fraud = [DeadLetterFactory(), DeadLetterFactory()]
    billing = DeadLetterFactory(queue="billing", task_name="billing.charge_order")
    replayed = DeadLetterFactory(status=REPLAYED)

    out, _ = deadletters_command("discard", "--queue", "fraud")

    assert out.strip() == "discarded 2 dead letter(s)"
    assert statuses(*fraud, billing, replayed) == [DISCARDED, DISCARDED, NEW, REPLAYED]
    assert replays.published == []


def test_discard_by_task(replays):
    fraud = DeadLetterFactory()
    billing = DeadLetterFactory(queue="billing", task_name="billing.charge_order")

    deadletters_command("discard", "--task", "billing.charge_order")

    assert statuses(fraud, billing) == [NEW, DISCARDED]


def test_a_refused_replay_fails_the_command_after_the_others_are_replayed(replays):
    order = OrderFactory(status=OrderStatus.APPROVED)  # it has passed fraud screening
    first, refused, last = (
        DeadLetterFactory(),
        DeadLetterFactory(subject_id=order.id),
        DeadLetterFactory(),
    )
    stdout, stderr = StringIO(), StringIO()

    with pytest.raises(CommandError, match=r"^1 dead letter\(s\) could not be replayed\.$"):
        call_command("deadletters", "replay", "--all", stdout=stdout, stderr=stderr)

    assert f"#{refused.pk}: Order {order.id} is APPROVED: it has passed" in stderr.getvalue()
    assert "done" not in stdout.getvalue()
    assert [p["pk"] for p in replays.published] == [first.pk, last.pk]
    assert statuses(first, refused, last) == [REPLAYED, NEW, REPLAYED]
    order.refresh_from_db()
    assert (order.status, order.version) == (OrderStatus.APPROVED, 1)


def test_replaying_a_discarded_one_by_id_is_reported_as_a_failure(replays):
    discarded = DeadLetterFactory(status=DISCARDED)
    stderr = StringIO()

    with pytest.raises(CommandError, match="1 dead letter"):
        call_command("deadletters", "replay", "--id", str(discarded.pk), stderr=stderr)

    assert f"#{discarded.pk}: Dead letter {discarded.pk} cannot be replayed" in stderr.getvalue()
    assert replays.published == []


@pytest.mark.django_db
def test_replay_of_an_unknown_id_is_an_error():
    with pytest.raises(CommandError, match="No dead letter with id 999"):
        call_command("deadletters", "replay", "--id", "999", stdout=StringIO(), stderr=StringIO())


# bulk replay by filter ---------------------------------------------------------------------------


def died_at(dead_letter: DeadLetter, when: str) -> DeadLetter:
    from django.utils.dateparse import parse_datetime

    DeadLetter.objects.filter(pk=dead_letter.pk).update(last_death_at=parse_datetime(when))
    return dead_letter


@pytest.fixture
def a_morning_of_dead_letters() -> dict[str, DeadLetter]:
    """Billing timeouts at 09:10 and 09:50, one of fraud at 09:30, one of billing at 11:00
    that crashed its worker, and one already replayed."""
    billing = {"queue": "billing", "task_name": "billing.charge_order"}
    return {
        "early": died_at(DeadLetterFactory(**billing), "2025-03-01T09:10:00+00:00"),
        "fraud": died_at(DeadLetterFactory(), "2025-03-01T09:30:00+00:00"),
        "late": died_at(DeadLetterFactory(**billing), "2025-03-01T09:50:00+00:00"),
        "crash": died_at(
            DeadLetterFactory(**billing, reason="delivery_limit"), "2025-03-01T11:00:00+00:00"
        ),
        "done": died_at(DeadLetterFactory(**billing, status=REPLAYED), "2025-03-01T09:20:00Z"),
    }


BILLING_TIMEOUTS = (
    "--task",
    "billing.charge_order",
    "--reason",
    "REJECT",
    "--since",
    "2025-03-01T09:00:00+00:00",
    "--until",
    "2025-03-01T10:00:00+00:00",
)


def test_a_dry_run_counts_and_lists_what_matches_and_replays_nothing(
    replays, a_morning_of_dead_letters
):
    letters = a_morning_of_dead_letters

    out, _ = deadletters_command("replay", *BILLING_TIMEOUTS, "--dry-run")

    assert out.splitlines() == [
        "2 dead letter(s) match; --dry-run: none replayed.",
        f"ids: {letters['early'].pk} {letters['late'].pk}",
    ]
    assert replays.published == []
    assert statuses(*letters.values()) == [NEW, NEW, NEW, NEW, REPLAYED]


def test_replay_by_task_reason_and_time_replays_exactly_those(replays, a_morning_of_dead_letters):
    letters = a_morning_of_dead_letters

    out, _ = deadletters_command("replay", *BILLING_TIMEOUTS)

    assert out.strip() == "replayed 2 dead letter(s)"
    assert [p["pk"] for p in replays.published] == [letters["early"].pk, letters["late"].pk]
    assert statuses(*letters.values()) == [REPLAYED, NEW, REPLAYED, NEW, REPLAYED]


def test_a_bulk_replay_names_each_one_refused_and_why(replays, a_morning_of_dead_letters):
    letters = a_morning_of_dead_letters
    # The early one's order was charged meanwhile (another copy did it): refused.
    Order.objects.filter(pk=letters["early"].subject_id).update(
        status=OrderStatus.PROCESSED, failed_from=""
    )
    stdout, stderr = StringIO(), StringIO()

    with pytest.raises(CommandError, match=r"^1 dead letter\(s\) could not be replayed\.$"):
        call_command("deadletters", "replay", *BILLING_TIMEOUTS, stdout=stdout, stderr=stderr)

    assert stdout.getvalue().strip() == "replayed 1 dead letter(s)"
    order = letters["early"].subject_id
    assert f"#{letters['early'].pk}: Order {order} is PROCESSED" in stderr.getvalue()
    assert statuses(letters["early"], letters["late"]) == [NEW, REPLAYED]


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01"])
def test_a_time_it_cannot_read_is_refused(bad):
    with pytest.raises(CommandError, match="--since"):
        deadletters_command("replay", "--since", bad, "--dry-run")
