"""The dead-letter consumer never loses a dead letter: real broker, real database, real process.

A consumer of our own reaches PostgreSQL through a TCP proxy the test cuts, so a database
outage is real for it alone. Every test ends with dead_letter and dead_letter_parked empty.
"""

import io
import json
import os
import signal
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from kombu import Producer, Queue

from chaos.broker import connect, publish_raw, queue_depth
from chaos.processes import ManagedProcess, python_argv
from chaos.proxy import TcpProxy
from messaging import parking
from messaging.models import DeadLetter
from messaging.topology import (
    DEAD_LETTER_QUEUE,
    PARKING_QUEUE,
    dead_letter_exchange,
    dead_letter_queue,
)

from ..live.system import process_env
from ..live.wait import wait_until
from .test_dead_letters import dead_letter_of, send_task

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]


def depth(system, name: str) -> int:
    return queue_depth(system.broker_url, name)


def unpark() -> str:
    out = io.StringIO()
    call_command("deadletters", "unpark", stdout=out)
    return out.getvalue()


@pytest.fixture
def db_proxy(system):
    parts = urlsplit(system.db_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    yield proxy
    proxy.cut()


@pytest.fixture
def own_consumer(system, db_proxy):
    """Replaces the system's dead-letter consumer by one whose database the test can cut."""
    parts = urlsplit(system.db_url)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{db_proxy.port}"
    db_url = urlunsplit(parts._replace(netloc=netloc))
    started: list[ManagedProcess] = []

    def start(**settings: str) -> ManagedProcess:
        env = process_env(db_url, system.broker_url, **settings)
        process = ManagedProcess(
            "deadletters-own", python_argv("manage.py", "consume_dead_letters"), env
        )
        started.append(process.start())
        return process

    system.deadletters.stop()
    try:
        yield start
    finally:
        for process in started:
            process.stop()
        system.deadletters.start()
        system.deadletters.wait_for_output("dead-letter consumer ready")
    assert (depth(system, DEAD_LETTER_QUEUE), depth(system, PARKING_QUEUE)) == (0, 0)


def test_dead_letters_the_database_cannot_take_are_parked_then_unparked_and_recorded_once(
    system, db_proxy, own_consumer
):
    db_proxy.cut()  # the database is gone for longer than the consumer's retries
    consumer = own_consumer(
        DEAD_LETTER_RECORD_ATTEMPTS="3",
        DEAD_LETTER_RETRY_BASE_SECONDS="0.2",
        DEAD_LETTER_RETRY_MAX_SECONDS="0.4",
    )
    consumer.wait_for_output("dead-letter consumer ready")
    message_ids = [send_task("fraud.no_such_step") for _ in range(3)]

    wait_until(lambda: depth(system, PARKING_QUEUE) == 3, timeout=30, what="3 parked")
    assert depth(system, DEAD_LETTER_QUEUE) == 0
    assert "(try 3 of 3)" in consumer.output()
    assert not DeadLetter.objects.exists()

    db_proxy.restore()  # the database is back; the operator unparks
    assert "moved 3 parked dead letter(s)" in unpark()

    for message_id in message_ids:
        dead_letter = dead_letter_of(message_id, timeout=15)
        assert (dead_letter.queue, dead_letter.reason, dead_letter.task_name) == (
            "fraud",
            "rejected",
            "fraud.no_such_step",
        )
        assert dead_letter.death_count == 1
    assert depth(system, PARKING_QUEUE) == 0


def test_a_consumer_killed_on_every_delivery_loses_nothing(system, db_proxy, own_consumer):
    """Past dead_letter's delivery limit the broker parks the message: it never drops it."""
    db_proxy.cut()  # each delivery waits in retries, and the process is killed meanwhile
    message_id = send_task("fraud.no_such_step")
    wait_until(lambda: depth(system, DEAD_LETTER_QUEUE) == 1, what="the dead letter")

    kills = 0
    while depth(system, PARKING_QUEUE) == 0:
        assert kills <= 15, "still not parked after 15 kills"
        consumer = own_consumer(DEAD_LETTER_RECORD_ATTEMPTS="1000")
        consumer.wait_for_output("could not record dead letter", timeout=30)
        os.killpg(consumer.process.pid, signal.SIGKILL)
        consumer.process.wait(10)
        kills += 1
        wait_until(
            lambda: depth(system, DEAD_LETTER_QUEUE) + depth(system, PARKING_QUEUE) == 1,
            timeout=10,
            what="the message back in a queue",
        )

    assert kills >= 5
    assert depth(system, DEAD_LETTER_QUEUE) == 0
    db_proxy.restore()
    consumer = own_consumer()
    assert "moved 1 parked" in unpark()
    dead_letter = dead_letter_of(message_id, timeout=15)
    # The death recorded is the one in fraud, not the one in dead_letter that parked it.
    assert (dead_letter.queue, dead_letter.reason, dead_letter.death_count) == (
        "fraud",
        "rejected",
        1,
    )


def test_an_id_with_a_nul_byte_is_recorded(system):
    publish_raw(
        system.broker_url,
        queue="fraud",
        body=json.dumps([[], {"order_id": str(uuid.uuid4())}, {}]).encode(),
        content_type="application/json",
        headers={"task": "fraud.no_such_step", "id": "nul\x00id", "lang": "py"},
    )

    dead_letter = dead_letter_of("nul\\x00id")

    assert (dead_letter.queue, dead_letter.reason) == ("fraud", "rejected")
    assert dead_letter.headers["id"] == "nul\\x00id"


def test_a_copy_of_a_death_already_recorded_is_not_counted_again(system):
    """What the broker delivers again when the consumer died after recording, before its ack."""
    system.deadletters.stop()
    try:
        message_id = send_task("fraud.no_such_step")
        wait_until(lambda: depth(system, DEAD_LETTER_QUEUE) == 1, what="the dead letter")
        with connect(system.broker_url) as connection:
            channel = connection.channel()
            message = channel.basic_get(queue=DEAD_LETTER_QUEUE, no_ack=False)
            for _ in range(2):  # the death, twice, with the headers the broker gave it
                parking.republish(
                    channel,
                    body=message.body,
                    properties=message.properties,
                    headers=message.properties["application_headers"],
                    queue=DEAD_LETTER_QUEUE,
                )
            channel.basic_ack(message.delivery_tag)
    finally:
        system.deadletters.start()
        system.deadletters.wait_for_output("dead-letter consumer ready")

    dead_letter_of(message_id)
    wait_until(lambda: depth(system, DEAD_LETTER_QUEUE) == 0, what="dead_letter drained")
    system.wait_until_idle()
    assert DeadLetter.objects.get(message_id=message_id).death_count == 1


def old_dead_letter_queue() -> Queue:
    """dead_letter as the previous release declared it: no delivery limit of its own."""
    return Queue(
        DEAD_LETTER_QUEUE,
        exchange=dead_letter_exchange,
        routing_key="#",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def test_the_release_replaces_an_old_dead_letter_queue_keeping_its_messages(system):
    system.deadletters.stop()
    try:
        with connect(system.broker_url) as connection:
            channel = connection.channel()
            channel.queue_delete(queue=DEAD_LETTER_QUEUE)
            old_dead_letter_queue().bind(channel).declare()
            for n in range(2):
                Producer(channel).publish(
                    f"waiting {n}".encode(),
                    exchange=dead_letter_exchange.name,
                    routing_key="fraud",
                    headers={"id": f"old-{n}", "x-first-death-queue": "fraud"},
                    delivery_mode=2,
                )

        call_command("setup_broker", stdout=io.StringIO())

        with connect(system.broker_url) as connection:
            # Declaring it with this release's arguments succeeds: they are the queue's now.
            _, waiting, _ = connection.default_channel.queue_declare(
                queue=DEAD_LETTER_QUEUE,
                durable=True,
                auto_delete=False,
                arguments=dead_letter_queue().queue_arguments,
            )
    finally:
        system.deadletters.start()
        system.deadletters.wait_for_output("dead-letter consumer ready")

    assert waiting == 2
    for n in range(2):
        assert bytes(dead_letter_of(f"old-{n}").body) == f"waiting {n}".encode()


def test_the_release_refuses_to_replace_a_dead_letter_queue_someone_consumes(system):
    """A message a consumer holds unacked would go with the deleted queue."""
    system.deadletters.stop()
    try:
        with connect(system.broker_url) as connection:
            channel = connection.channel()
            channel.queue_delete(queue=DEAD_LETTER_QUEUE)
            old_dead_letter_queue().bind(channel).declare()
            channel.basic_consume(queue=DEAD_LETTER_QUEUE, callback=lambda message: None)

            with pytest.raises(CommandError, match="stop the deadletters process"):
                call_command("setup_broker", stdout=io.StringIO())
    finally:
        call_command("setup_broker", stdout=io.StringIO())
        system.deadletters.start()
        system.deadletters.wait_for_output("dead-letter consumer ready")
