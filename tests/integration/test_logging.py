"""Log lines of the pipeline carry the ids, and the request id travels from HTTP to every task."""

import json
import uuid

import pytest

from chaos.broker import publish_raw
from fakegateway.models import FakeGatewayFault

from ..live.wait import wait_until
from .test_pipeline import NORMAL, wait_for_terminal

pytestmark = pytest.mark.timeout(120)


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # Celery's start-up banner is plain text
    return lines


def test_the_request_id_reaches_every_task_it_causes_with_the_order_and_attempt(system, buyer_api):
    request_id = f"test-{uuid.uuid4().hex}"
    # Plant the fault before the order exists: its billing step times out once, then retries.
    system.proxy.cut()
    response = buyer_api.post("/api/orders/", NORMAL, headers={"X-Request-ID": request_id})
    order_id = response.body["id"]
    FakeGatewayFault.objects.create(remaining=1, order_ref=order_id)
    system.proxy.restore()

    assert response.headers["X-Request-ID"] == request_id
    assert wait_for_terminal(uuid.UUID(order_id)).status == "PROCESSED"

    def lines_of_the_request():
        found = [
            line
            for line in json_lines(system.worker.output())
            if line.get("request_id") == request_id
        ]
        succeeded = [line for line in found if "succeeded" in line["message"]]
        return found if len(succeeded) == 2 else None  # both steps are done and logged

    lines = wait_until(lines_of_the_request, timeout=10, what="both steps' log lines")
    assert {line["task"] for line in lines} == {"fraud.screen_order", "billing.charge_order"}
    for line in lines:
        assert line["order_id"] == order_id
        assert line["task_id"] == line["message_id"]
        assert uuid.UUID(line["task_id"])
        assert {"time", "level", "logger", "attempt"} <= set(line)
    billing_attempts = {line["attempt"] for line in lines if line["task"] == "billing.charge_order"}
    assert billing_attempts == {"1", "2"}  # the retry kept the request id


def test_a_request_without_an_id_gets_one(system, buyer_api):
    first = buyer_api.get("/api/orders/")
    second = buyer_api.get("/api/orders/")

    assert len(first.headers["X-Request-ID"]) == 32
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_a_request_id_that_is_not_sane_is_replaced(system, buyer_api):
    response = buyer_api.request("GET", "/api/orders/", headers={"X-Request-ID": "x" * 500})

    assert response.headers["X-Request-ID"] != "x" * 500


@pytest.mark.parametrize(
    ("sent", "logged"),
    [("test-dead-1", "test-dead-1"), ("forged\nINFO all is well", None)],
)
def test_a_dead_letter_is_logged_with_the_ids_of_its_message(system, sent, logged):
    message_id = str(uuid.uuid4())
    headers = {"task": "fraud.screen_order", "id": message_id, "lang": "py", "request_id": sent}
    body = json.dumps([[], {"order_id": str(uuid.uuid4()), "amount": "0.01"}, {}]).encode()

    publish_raw(
        system.broker_url,
        queue="fraud",
        body=body,
        content_type="application/json",
        headers=headers,
    )

    def recorded():
        return next(
            (
                line
                for line in json_lines(system.deadletters.output())
                if line.get("message_id") == message_id and "recorded" in line["message"]
            ),
            None,
        )

    line = wait_until(recorded, timeout=10, what="the dead letter's log line")
    assert line["request_id"] == logged  # a header that is not a sane id is not logged
    assert line["task"] == "fraud.screen_order"
    rejected = [
        line for line in json_lines(system.worker.output()) if line.get("task_id") == message_id
    ]
    assert rejected and all(line["request_id"] == logged for line in rejected)
