"""Webhooks end to end: the real web, worker, webhooks worker, relay and dead-letter consumer
over RabbitMQ and PostgreSQL, sending to a real receiver on loopback."""

import json
import time
import uuid

from chaos.http import AdminSession
from chaos.receiver import DOWN, ERROR, OK, SLOW, TRICKLE
from messaging.models import DeadLetter
from ordering.models import Order
from webhooks.models import WebhookDelivery

from ..factories import web_superuser
from ..integration.test_pipeline import post_order, wait_for_terminal
from ..live.wait import wait_until
from ..webhooks.test_signing import readme_verify

EVERY_OUTCOME = ["order.approved", "order.processed", "order.failed", "order.pending"]


def register(api, receiver, event_types=None) -> dict:
    response = api.post(
        "/api/webhooks/endpoints/",
        {"url": receiver.url, "event_types": event_types or EVERY_OUTCOME},
    )
    assert response.status == 201, response.body
    return response.body


def deliveries_of(order_id: uuid.UUID) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(subject_id=order_id).order_by("subject_version"))


def wait_for_deliveries(order_id: uuid.UUID, count: int, status: str, timeout: float = 60):
    return wait_until(
        lambda: (
            (found := deliveries_of(order_id))
            and len(found) == count
            and all(d.status == status for d in found)
            and found
        ),
        timeout=timeout,
        what=f"{count} {status} deliveries of order {order_id}",
    )


def events_taken(receiver) -> list[dict]:
    return [json.loads(request.body) for request in receiver.taken()]


def test_each_change_is_posted_signed_once_with_the_order_as_the_api_shows_it(
    system, buyer_api, receiver
):
    endpoint = register(buyer_api, receiver)
    order_id = post_order(buyer_api)

    wait_for_terminal(order_id)
    delivered = wait_for_deliveries(order_id, 2, "DELIVERED")

    verify = readme_verify()
    for request in receiver.taken():
        assert verify(endpoint["secret"], request.body, request.headers["Orderflow-Signature"])
    events = sorted(events_taken(receiver), key=lambda e: e["data"]["order"]["version"])
    assert [e["type"] for e in events] == ["order.approved", "order.processed"]
    assert [e["id"] for e in events] == [str(d.event_id) for d in delivered]
    api_view = buyer_api.get(f"/api/orders/{order_id}/").body
    processed = events[1]["data"]["order"]
    assert processed == {k: v for k, v in api_view.items() if k != "history"}
    assert processed["version"] == Order.objects.get(pk=order_id).version


def test_500s_and_timeouts_are_retried_through_the_broker_until_taken(system, buyer_api, receiver):
    register(buyer_api, receiver, ["order.processed"])
    receiver.set(ERROR)
    order_id = post_order(buyer_api)
    wait_until(lambda: len(receiver.received) >= 2, what="two 500s")
    receiver.delay = 3  # past WEBHOOK_TIMEOUT_SECONDS
    receiver.set(SLOW)
    wait_until(lambda: len(receiver.received) >= 3, timeout=20, what="a timed-out attempt")
    receiver.set(OK)

    [delivery] = wait_for_deliveries(order_id, 1, "DELIVERED")

    assert delivery.attempts >= 4
    assert [r.status for r in receiver.received[:2]] == [500, 500]
    assert receiver.taken()[-1].headers["Orderflow-Event-Id"] == str(delivery.event_id)


def test_a_4xx_is_a_dead_letter_at_once_replayed_from_the_admin_with_the_same_event_id(
    system, buyer_api, receiver
):
    register(buyer_api, receiver, ["order.processed"])
    receiver.status = 410
    receiver.set(ERROR)
    order_id = post_order(buyer_api)

    [delivery] = wait_for_deliveries(order_id, 1, "FAILED")
    dead_letter = wait_until(
        lambda: DeadLetter.objects.filter(message_id=str(delivery.id)).first(),
        what="its dead letter",
    )
    assert (dead_letter.status, dead_letter.queue, dead_letter.subject_id) == (
        "NEW",
        "webhooks",
        delivery.id,
    )
    assert delivery.attempts == 1 and delivery.last_status_code == 410

    receiver.set(OK)  # the receiver is fixed; the operator replays from the admin
    system.restart_web()  # the admin's log entries need this test's content type ids
    web_superuser("operator", "pw")
    admin = AdminSession(system.base_url, "operator", "pw")
    reply = admin.post_form(
        "/admin/messaging/deadletter/",
        [("action", "replay_selected"), ("_selected_action", str(dead_letter.pk))],
    )
    assert "Replayed 1 dead letter(s)." in reply.body

    wait_for_deliveries(order_id, 1, "DELIVERED")
    [taken] = receiver.taken()
    assert taken.headers["Orderflow-Event-Id"] == str(delivery.event_id)


def test_exhausted_retries_and_a_minute_down_both_end_well(system, buyer_api, receiver):
    """One receiver answers 500 throughout: its delivery fails for good and the buyer
    redelivers it through the API. Another is down for a minute: it loses nothing."""
    from chaos.receiver import Receiver

    down = Receiver().start()
    try:
        register(buyer_api, receiver, ["order.processed"])
        register(buyer_api, down, ["order.processed"])
        receiver.set(ERROR)
        down.set(DOWN)
        down_since = time.monotonic()
        first, second = post_order(buyer_api), post_order(buyer_api)
        wait_until(lambda: time.monotonic() - down_since > 60, timeout=70, what="a minute")
        down.set(OK)

        delivered = wait_until(
            lambda: (
                WebhookDelivery.objects.filter(status="DELIVERED", endpoint__url=down.url).count()
                == 2
            ),
            timeout=30,
            what="the deliveries to the receiver that was down",
        )
        assert delivered
        taken = {json.loads(r.body)["data"]["order"]["id"] for r in down.taken()}
        assert taken == {str(first), str(second)}
        wait_until(
            lambda: (
                WebhookDelivery.objects.filter(status="FAILED", endpoint__url=receiver.url).count()
                == 2
            ),
            timeout=40,
            what="the 500s to exhaust their retries",
        )
        for delivery in WebhookDelivery.objects.filter(endpoint__url=receiver.url):
            assert delivery.attempts == 9
            assert DeadLetter.objects.get(message_id=str(delivery.id)).status == "NEW"

        receiver.set(OK)
        failed_list = buyer_api.get("/api/webhooks/deliveries/?status=FAILED").body["results"]
        assert len(failed_list) == 2
        for item in failed_list:
            answer = buyer_api.post(f"/api/webhooks/deliveries/{item['id']}/redeliver/")
            assert answer.status == 202, answer.body
        wait_until(
            lambda: len(receiver.taken()) == 2, timeout=30, what="the redeliveries to arrive"
        )
        assert not DeadLetter.objects.filter(status="NEW").exists()
    finally:
        down.stop()


def test_a_rotated_secret_signs_beside_the_new_one(system, buyer_api, receiver):
    endpoint = register(buyer_api, receiver, ["order.processed"])
    rotated = buyer_api.post(
        f"/api/webhooks/endpoints/{endpoint['id']}/rotate-secret/", {"grace_hours": 1}
    ).body

    order_id = post_order(buyer_api)
    wait_for_deliveries(order_id, 1, "DELIVERED")

    verify = readme_verify()
    [request] = receiver.taken()
    header = request.headers["Orderflow-Signature"]
    assert verify(rotated["secret"], request.body, header)
    assert verify(endpoint["secret"], request.body, header)


def test_a_private_target_is_refused_through_the_api(system, buyer_api):
    for url in ("https://10.0.0.1/hooks", "https://169.254.169.254/latest/meta-data/"):
        answer = buyer_api.post(
            "/api/webhooks/endpoints/", {"url": url, "event_types": ["order.processed"]}
        )
        assert answer.status == 400
        assert answer.body["code"] == "target_refused"


def test_a_receiver_that_trickles_its_answer_is_cut_off_and_the_delivery_retried(
    system, buyer_api, receiver
):
    """Each byte arrives inside the per-read timeout, so only the task's time limit (a little
    over WEBHOOK_DEADLINE_SECONDS) ends the attempt; the worker is not held for long."""
    register(buyer_api, receiver, ["order.processed"])
    receiver.delay = 60
    receiver.set(TRICKLE)
    order_id = post_order(buyer_api)
    wait_until(lambda: receiver.received, what="the first request")
    started = time.monotonic()
    wait_until(lambda: len(receiver.received) >= 2, timeout=30, what="a second attempt")
    receiver.set(OK)

    [delivery] = wait_for_deliveries(order_id, 1, "DELIVERED")

    assert time.monotonic() - started < 25
    assert delivery.attempts >= 3
