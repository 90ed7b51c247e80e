"""read_death(): whatever a dead letter carries in its headers, it can be recorded.

A foreign publisher (or a bug) can put anything in an AMQP table: NUL bytes in ids, keys and
values, bytes that are not UTF-8, huge values, deep nesting, decimals and floats JSON has no
word for. PostgreSQL refuses NUL in text and JSON, and lone surrogates; a row that cannot be
stored is a dead letter recorded never.
"""

import hashlib
import json
import math
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from messaging import deadletters
from messaging.deadletters import DeadLetterNotReplayable
from messaging.models import DeadLetter, OutboxMessage

from .test_deadletters import DIED_AT, celery_message, died_again


def stored(death: deadletters.Death) -> DeadLetter:
    deadletters.record(death)
    return DeadLetter.objects.get(message_id=death.message_id)


def assert_storable(value) -> None:
    """What PostgreSQL's jsonb takes: strict JSON, no NUL, valid UTF-8."""
    text = json.dumps(value, allow_nan=False)
    assert "\\u0000" not in text
    text.encode("utf-8")  # no lone surrogates


@pytest.mark.django_db
def test_an_id_with_a_nul_byte_is_recorded_under_an_escaped_id():
    message = celery_message(message_id="abc\x00def")

    death = deadletters.read_death(**message)
    row = stored(death)

    assert row.message_id == death.message_id == "abc\\x00def"


@pytest.mark.django_db
def test_nul_bytes_in_keys_values_and_nested_tables_are_escaped_and_recorded():
    message = celery_message()
    message["headers"] |= {
        "k\x00ey": "v\x00alue",
        "bytes": b"\x00\x00",
        "nested": {"in\x00ner": ["\x00", {"deep\x00": b"x\x00y"}]},
        "task": "fraud.\x00screen",
    }
    message["properties"]["correlation_id"] = "c\x00id"

    row = stored(deadletters.read_death(**message))

    assert row.headers["k\\x00ey"] == "v\\x00alue"
    assert row.headers["nested"] == {"in\\x00ner": ["\\x00", {"deep\\x00": "x\\x00y"}]}
    assert row.task_name == "fraud.\\x00screen"
    assert_storable(row.headers)
    assert_storable(row.properties)


@pytest.mark.django_db
def test_bytes_that_are_not_utf8_and_lone_surrogates_are_escaped_and_recorded():
    message = celery_message(message_id="id-\udcff")
    message["headers"] |= {"raw": b"\xff\xfe\x80", "surrogate": "a\ud800b", "\udcffkey": 1}

    row = stored(deadletters.read_death(**message))

    assert row.message_id == "id-\\udcff"
    assert row.headers["raw"] == "\\xff\\xfe\\x80"
    assert row.headers["surrogate"] == "a\\ud800b"
    assert row.headers["\\udcffkey"] == 1


@pytest.mark.django_db
def test_ids_too_long_for_the_column_are_named_by_their_digest_and_stay_distinct():
    first = deadletters.read_death(**celery_message(message_id="x" * 300))
    second = deadletters.read_death(**celery_message(message_id="x" * 299 + "y"))

    assert first.message_id != second.message_id
    assert len(first.message_id) <= deadletters.MAX_ID_LENGTH
    assert first.message_id.startswith("sha256-id:")
    stored(first), stored(second)
    assert DeadLetter.objects.count() == 2


ID_COLUMN = DeadLetter._meta.get_field("message_id").max_length


@pytest.mark.django_db
@pytest.mark.parametrize(
    "message_id",
    ["i" * ID_COLUMN, "é" * ID_COLUMN],  # the column counts characters, not bytes
    ids=["ascii", "multibyte"],
)
def test_an_id_as_long_as_the_column_is_kept_as_it_is(message_id):
    row = stored(deadletters.read_death(**celery_message(message_id=message_id)))

    assert row.message_id == message_id


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("message_id", "as_stored"),
    [
        ("i" * (ID_COLUMN + 1), "i" * (ID_COLUMN + 1)),
        ("i" * 100_000, "i" * 100_000),
        # Short enough as sent, one character over once its NUL is escaped.
        ("i" * (ID_COLUMN - 3) + "\x00", "i" * (ID_COLUMN - 3) + "\\x00"),
    ],
    ids=["one-over", "very-long", "over-once-escaped"],
)
def test_an_id_over_the_column_is_recorded_under_its_digest_once_per_death(message_id, as_stored):
    """The same name every delivery: a redelivery is recognised, a second death counted."""
    message = celery_message(message_id=message_id)
    digest = f"sha256-id:{hashlib.sha256(as_stored.encode()).hexdigest()}"

    row = stored(deadletters.read_death(**message))
    deadletters.record(deadletters.read_death(**message))
    again = stored(deadletters.read_death(**died_again(message)))

    assert row.message_id == again.message_id == digest
    assert (DeadLetter.objects.count(), again.death_count) == (1, 2)


@pytest.mark.django_db
def test_a_dead_letter_named_by_a_digest_is_refused_replay_and_can_be_discarded():
    row = stored(deadletters.read_death(**celery_message(message_id="i" * (ID_COLUMN + 1))))

    with pytest.raises(DeadLetterNotReplayable, match="not a task message of this system"):
        deadletters.replay(dead_letter_id=row.pk, actor=None)
    deadletters.discard(dead_letter_id=row.pk, actor=None)

    assert DeadLetter.objects.get().status == DeadLetter.Status.DISCARDED
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_huge_headers_are_cut_to_a_bounded_size_keeping_the_death_headers():
    message = celery_message(queue="billing")
    message["headers"] = {
        "big": "v" * 1_000_000,
        **{f"h{n}": "w" * 1000 for n in range(500)},
        "list": list(range(100_000)),
        **message["headers"],  # the death headers last: they are still kept
    }

    death = deadletters.read_death(**message)
    row = stored(death)

    size = len(json.dumps(row.headers))
    assert size < 2 * deadletters.MAX_HEADERS_CHARS
    assert row.headers["big"].endswith("cut]")
    assert row.headers["x-death"][0]["queue"] == "billing"
    assert row.headers["x-first-death-queue"] == "billing"
    assert "..." in row.headers  # a note of the headers left off
    assert (death.queue, death.reason) == ("billing", "rejected")


@pytest.mark.django_db
def test_deep_nesting_is_cut_at_a_bounded_depth():
    nested: dict = {"leaf": 1}
    for _ in range(500):
        nested = {"n": nested, "l": [nested]}
    message = celery_message()
    message["headers"]["deep"] = nested

    row = stored(deadletters.read_death(**message))

    depth, node = 0, row.headers["deep"]
    while isinstance(node, dict):
        depth, node = depth + 1, node["n"]
    assert depth < deadletters.MAX_DEPTH
    assert "nested deeper" in node
    assert_storable(row.headers)


@pytest.mark.django_db
def test_odd_types_become_json():
    message = celery_message()
    message["headers"] |= {
        "decimal": Decimal("1.10"),
        "nan": math.nan,
        "inf": -math.inf,
        "bytearray": bytearray(b"ab"),
        "memoryview": memoryview(b"cd"),
        "uuid": uuid.UUID(int=1),
        "when": datetime(2025, 1, 2, tzinfo=UTC),
        "set": {1},
        "huge_int": 2**70,
    }

    row = stored(deadletters.read_death(**message))

    assert row.headers["decimal"] == "1.10"
    assert (row.headers["nan"], row.headers["inf"]) == ("nan", "-inf")
    assert (row.headers["bytearray"], row.headers["memoryview"]) == ("ab", "cd")
    assert row.headers["when"] == "2025-01-02T00:00:00+00:00"
    assert row.headers["huge_int"] == 2**70
    assert_storable(row.headers)


@pytest.mark.parametrize(
    "x_death",
    ["garbage", [None, "x", 3], [{"queue": b"fr\x00aud", "routing-keys": "not-a-list"}], {}],
    ids=["text", "not-tables", "odd-fields", "table"],
)
@pytest.mark.django_db
def test_an_x_death_header_of_the_wrong_shape_does_not_stop_the_recording(x_death):
    message = celery_message()
    message["headers"]["x-death"] = x_death

    row = stored(deadletters.read_death(**message))

    assert row.reason  # "rejected" from x-first-death-reason where x-death says nothing
    assert_storable(row.headers)


def test_a_death_in_dead_letter_itself_is_not_taken_for_the_original_one():
    """Past dead_letter's delivery limit RabbitMQ parks the message, adding that death first."""
    message = celery_message(queue="billing")
    message["headers"]["x-death"].insert(
        0, {"count": 1, "reason": "delivery_limit", "queue": "dead_letter", "time": DIED_AT}
    )

    death = deadletters.read_death(**message)

    assert (death.queue, death.reason, death.routing_key) == ("billing", "rejected", "billing")


def test_a_redelivered_copy_has_the_death_mark_of_the_first_and_a_second_death_another():
    message = celery_message()
    first = deadletters.read_death(**message)
    message["headers"]["x-delivery-count"] = 7  # a redelivery: only the delivery count grows
    redelivered = deadletters.read_death(**message)
    message["headers"]["x-death"][0]["time"] = datetime(2025, 3, 1, 12, 31, tzinfo=UTC)
    died_again = deadletters.read_death(**message)
    message["headers"]["x-death"][0] |= {"time": DIED_AT, "count": 2}
    counted_again = deadletters.read_death(**message)

    assert deadletters.death_mark(first.headers) == deadletters.death_mark(redelivered.headers)
    assert deadletters.death_mark(died_again.headers) != deadletters.death_mark(first.headers)
    assert deadletters.death_mark(counted_again.headers) != deadletters.death_mark(first.headers)
    assert deadletters.death_mark({}) is None


def random_value(rng: random.Random, depth: int = 0):
    kinds = ["text", "bytes", "int", "float", "none", "bool", "decimal", "time"]
    if depth < 12:
        kinds += ["table", "array"]
    kind = rng.choice(kinds)
    if kind == "table":
        return {random_text(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if kind == "array":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        "text": lambda: random_text(rng),
        "bytes": lambda: rng.randbytes(rng.choice([0, 3, 50, 5000])),
        "int": lambda: rng.randint(-(2**63), 2**63),
        "float": lambda: rng.choice([0.5, math.nan, math.inf, -1e308]),
        "none": lambda: None,
        "bool": lambda: rng.random() < 0.5,
        "decimal": lambda: Decimal(rng.randint(0, 10**6)) / 100,
        "time": lambda: datetime.fromtimestamp(rng.randint(0, 2**31), UTC),
    }[kind]()


def random_text(rng: random.Random) -> str:
    alphabet = "a\x00\x01\udcff\ud800é€😀\\\"'\n"
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 8, 300, 9000])))


@pytest.mark.django_db
def test_random_headers_are_always_recordable():
    rng = random.Random(20250301)  # fixed: the same cases on every run
    for case in range(150):
        headers = {random_text(rng): random_value(rng) for _ in range(rng.randint(0, 6))}
        headers["id"] = random_value(rng) if case % 2 else random_text(rng)
        properties = {"content_type": random_text(rng), "correlation_id": random_value(rng)}

        death = deadletters.read_death(
            body=rng.randbytes(20), headers=headers, properties=properties
        )
        row = stored(death)
        assert_storable(row.headers)
        assert_storable(row.properties)
        assert len(json.dumps(row.headers)) < 8 * deadletters.MAX_HEADERS_CHARS, case
