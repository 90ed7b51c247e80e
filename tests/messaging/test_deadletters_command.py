"""`manage.py deadletters {list,show,replay,discard}`: the operator's command line."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_results.models import TaskResult

from messaging.models import DeadLetter
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

    assert out.strip() == "done: replay"
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

    assert out.strip() == "done: discard"
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
