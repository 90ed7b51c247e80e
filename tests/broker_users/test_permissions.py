"""Each role's broker user on the real broker: refused outside its job, allowed inside it.

The expected table is written out here, apart from messaging.broker_users: loosening a
role's permissions there fails a refusal below. docs/security.md ("Broker") names these tests.
"""

import pytest
from amqp import Message
from amqp.exceptions import AccessRefused
from django.conf import settings
from kombu import Connection, Exchange

from chaos.broker import connect
from chaos.processes import ROOT
from messaging.topology import dead_letter_queue, parking_queue, work_queue

QUEUES = ("fraud", "billing", "maintenance", "webhooks", "dead_letter", "dead_letter_parked")
DELAYED = "celery_delayed_27"  # where Celery publishes a retry that waits (native delayed delivery)
DEFAULT = ""  # the default exchange: writing to it is writing to any queue by name
EXCHANGES = (*QUEUES, DELAYED)
PIPELINE = ("fraud", "billing", "maintenance", "webhooks")

# What each role may do; anything else is refused. "publish": exchanges (and the default
# one); "consume": queues; "declare-queue", "declare-exchange": the configure permission.
ALLOWED: dict[str, dict[str, set[str]]] = {
    "web": {},  # publishes nothing in the default configuration: the relay does
    "relay": {"publish": set(PIPELINE)},
    "worker": {
        "publish": {"fraud", "billing", "maintenance", DELAYED},  # its own queues' retries
        "consume": {"fraud", "billing", "maintenance"},
    },
    "webhooks": {"publish": {"webhooks", DELAYED}, "consume": {"webhooks"}},
    "deadletters": {
        "publish": {"dead_letter", "dead_letter_parked"},
        "consume": {"dead_letter", "dead_letter_parked"},
    },
    "beat": {"publish": {"maintenance"}},
    "release": {
        "publish": set(EXCHANGES),
        "consume": set(QUEUES),
        "declare-queue": set(QUEUES),
        "declare-exchange": set(EXCHANGES),
    },
}

CASES = [
    (role, action, resource)
    for role in ALLOWED
    for action, resources in (
        ("publish", (*EXCHANGES, DEFAULT)),
        ("consume", QUEUES),
        ("declare-queue", QUEUES),
        ("declare-exchange", EXCHANGES),
    )
    for resource in resources
]
REFUSED = [case for case in CASES if case[2] not in ALLOWED[case[0]].get(case[1], set())]
ALLOWED_CASES = [case for case in CASES if case not in REFUSED]


def case_id(case: tuple[str, str, str]) -> str:
    role, action, resource = case
    return f"{role}-{action}-{resource or 'default_exchange'}"


@pytest.fixture(scope="module")
def connections(broker_users):
    opened = {role: Connection(url, connect_timeout=5) for role, url in broker_users.items()}
    yield opened
    for connection in opened.values():
        connection.release()
    with connect(settings.CELERY_BROKER_URL) as admin:  # the probes the allowed publishes left
        for name in ("dead_letter", "dead_letter_parked"):
            admin.default_channel.queue_purge(name)


def attempt(connection: Connection, action: str, resource: str) -> None:
    """Try one operation on a channel of its own (a refusal closes the channel)."""
    channel = connection.channel()
    try:
        if action == "publish":
            channel.confirm_select()
            # Unroutable on the pipeline's topic exchanges, so nothing lands in a queue;
            # dead_letter and the parking queue take anything (purged by the test).
            key = resource or "probe-no-such-queue"
            channel.basic_publish_confirm(
                Message(b"probe"), exchange=resource, routing_key=f"probe.{key}"
            )
        elif action == "consume":
            tag = channel.basic_consume(queue=resource, callback=lambda message: None)
            channel.basic_cancel(tag)
        elif action == "declare-queue":
            queue = {"dead_letter": dead_letter_queue(), "dead_letter_parked": parking_queue()}
            queue.get(resource, work_queue(resource)).bind(channel).queue_declare()
        elif action == "declare-exchange":
            kind = "fanout" if resource == "dead_letter_parked" else "topic"
            Exchange(resource, type=kind, durable=True).bind(channel).declare()
    finally:
        if channel.is_open:
            channel.close()


@pytest.mark.parametrize("case", REFUSED, ids=case_id)
def test_role_refused_outside_its_job(connections, case):
    role, action, resource = case

    with pytest.raises(AccessRefused):
        attempt(connections[role], action, resource)


@pytest.mark.parametrize("case", ALLOWED_CASES, ids=case_id)
def test_role_allowed_its_job(connections, broker_users, case):
    role, action, resource = case

    attempt(connections[role], action, resource)


def test_nobody_but_the_release_may_delete_a_queue(connections):
    for role, connection in connections.items():
        if role == "release":
            continue
        channel = connection.channel()
        with pytest.raises(AccessRefused):
            channel.queue_delete("fraud")


def test_every_role_may_connect_and_passively_declare_every_queue(connections):
    """What readiness and the dashboard's queue depths do: no permission needed."""
    for connection in connections.values():
        channel = connection.channel()
        for name in QUEUES:
            channel.queue_declare(queue=name, passive=True)
        channel.close()


def test_the_security_doc_names_every_cell():
    """docs/security.md's table ("Broker") says what this module tests, cell by cell."""
    doc = (ROOT / "docs" / "security.md").read_text()

    for case in REFUSED:
        assert f"refused `{case_id(case)}`" in doc, case
    table = doc.split("### Who may do what")[1].split("\n\n")[2]
    assert table.count("| allowed") == len(ALLOWED_CASES)
