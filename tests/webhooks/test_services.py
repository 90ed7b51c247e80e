"""Webhook deliveries, through the services, against a real receiver on loopback."""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from chaos.receiver import DOWN, ERROR, SLOW
from messaging.models import DeadLetter, OutboxMessage
from ordering import services as order_services
from ordering.state_machine import OrderStatus
from webhooks import sender, services
from webhooks.errors import (
    DeliveryFailed,
    DeliveryNotRedeliverable,
    DeliveryRefused,
    EndpointLimitReached,
    TargetRefused,
)
from webhooks.models import WebhookDelivery

from ..factories import OrderFactory, UserFactory
from .test_signing import readme_verify

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


def approve(order) -> WebhookDelivery | None:
    order_services.transition(order_id=order.id, to=OrderStatus.APPROVED, cause="test")
    return WebhookDelivery.objects.filter(subject_id=order.id).order_by("created_at").last()


def test_a_status_change_writes_one_delivery_and_its_message_in_its_transaction(endpoint):
    order = OrderFactory(buyer=endpoint.owner)

    delivery = approve(order)

    assert delivery.endpoint == endpoint
    assert delivery.event_type == "order.approved"
    assert delivery.status == Status.PENDING
    message = OutboxMessage.objects.get(pk=delivery.id)
    assert message.task_name == "webhooks.deliver"
    assert message.kwargs == {"delivery_id": str(delivery.id)}
    event = json.loads(delivery.body)
    assert event["id"] == str(delivery.event_id)
    assert event["type"] == "order.approved"
    assert event["data"]["order"]["id"] == str(order.id)
    assert event["data"]["order"]["status"] == "APPROVED"
    assert event["data"]["order"]["version"] == 2
    assert event["data"]["previous_status"] == "PENDING"
    assert event["data"]["description"] == "Approved"


def test_a_refused_transition_writes_no_delivery(endpoint):
    order = OrderFactory(buyer=endpoint.owner, status=OrderStatus.PROCESSED)

    order_services.transition(order_id=order.id, to=OrderStatus.APPROVED, cause="late copy")

    assert not WebhookDelivery.objects.exists()


def test_only_subscribed_active_endpoints_of_the_buyer_get_a_delivery(endpoint, receiver):
    owner = endpoint.owner
    services.create_endpoint(owner=owner, url=receiver.url, event_types=["order.canceled"])
    disabled = services.create_endpoint(
        owner=owner, url=receiver.url, event_types=["order.approved"]
    )
    services.disable_endpoint(endpoint_id=disabled.id, reason="test")
    services.create_endpoint(owner=UserFactory(), url=receiver.url, event_types=["order.approved"])

    approve(OrderFactory(buyer=owner))

    # Not the one for other events, not the disabled one, not another buyer's.
    assert list(WebhookDelivery.objects.values_list("endpoint", flat=True)) == [endpoint.id]


def test_the_event_id_is_the_same_for_every_endpoint_and_stable(endpoint, receiver):
    second = services.create_endpoint(
        owner=endpoint.owner, url=receiver.url, event_types=["order.approved"]
    )
    order = OrderFactory(buyer=endpoint.owner)

    approve(order)

    ids = set(WebhookDelivery.objects.values_list("event_id", flat=True))
    assert ids == {services.event_id_of(subject_id=order.id, subject_version=2)}
    assert WebhookDelivery.objects.filter(endpoint=second).exists()


def test_a_delivery_is_posted_signed_and_verifiable_with_the_readme_snippet(endpoint, receiver):
    delivery = approve(OrderFactory(buyer=endpoint.owner))

    services.deliver(delivery_id=delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 200
    [request] = receiver.taken()
    assert request.body == delivery.body.encode()
    assert request.headers["Orderflow-Event-Id"] == str(delivery.event_id)
    assert request.headers["Orderflow-Event-Type"] == "order.approved"
    assert request.headers["Content-Type"] == "application/json"
    assert readme_verify()(endpoint.secret, request.body, request.headers["Orderflow-Signature"])


def test_a_delivered_delivery_is_not_sent_again_by_a_duplicate_message(endpoint, receiver):
    delivery = approve(OrderFactory(buyer=endpoint.owner))
    services.deliver(delivery_id=delivery.id)

    services.deliver(delivery_id=delivery.id)

    assert len(receiver.received) == 1


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_a_5xx_408_or_429_is_retried(endpoint, receiver, status):
    receiver.status = status
    receiver.set(ERROR)
    delivery = approve(OrderFactory(buyer=endpoint.owner))

    with pytest.raises(DeliveryFailed):
        services.deliver(delivery_id=delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code == status


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
def test_other_4xx_and_redirects_fail_at_once(endpoint, receiver, status):
    receiver.status = status
    receiver.set(ERROR)
    delivery = approve(OrderFactory(buyer=endpoint.owner))

    with pytest.raises(DeliveryRefused):
        services.deliver(delivery_id=delivery.id)

    delivery.refresh_from_db()
    assert delivery.last_status_code == status


def test_a_timeout_and_a_refused_connection_are_retried(endpoint, receiver, settings):
    delivery = approve(OrderFactory(buyer=endpoint.owner))
    receiver.delay = 2
    receiver.set(SLOW)
    with pytest.raises(DeliveryFailed, match="no answer within"):
        services.deliver(delivery_id=delivery.id)

    receiver.set(DOWN)
    with pytest.raises(DeliveryFailed, match="connection failed"):
        services.deliver(delivery_id=delivery.id)

    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.last_status_code is None


def test_what_a_receiver_answers_is_kept_short_and_escaped(endpoint, receiver):
    delivery = approve(OrderFactory(buyer=endpoint.owner))
    receiver.mode, receiver.status = ERROR, 400
    receiver.answer = b"line one\nforged: log line \x1b[31m<b>" + b"x" * 1000

    with pytest.raises(DeliveryRefused):
        services.deliver(delivery_id=delivery.id)

    kept = WebhookDelivery.objects.get(pk=delivery.id).last_error
    assert kept.startswith("HTTP 400, refused: line one\\nforged: log line \\x1b[31m<b>xx")
    assert "\n" not in kept and "\x1b" not in kept
    assert len(kept) <= len("HTTP 400, refused: ") + sender.EXCERPT_BYTES


def test_a_target_that_now_resolves_to_a_private_address_fails_at_once(endpoint, settings):
    delivery = approve(OrderFactory(buyer=endpoint.owner))
    settings.WEBHOOK_ALLOW_LOOPBACK = False  # the receiver's 127.0.0.1 is refused now

    with pytest.raises(DeliveryRefused, match="loopback"):
        services.deliver(delivery_id=delivery.id)


def test_a_private_target_is_refused_at_registration(owner, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    with pytest.raises(TargetRefused):
        services.create_endpoint(
            owner=owner, url="http://127.0.0.1:8000/", event_types=["order.approved"]
        )
    with pytest.raises(TargetRefused):
        services.create_endpoint(
            owner=owner, url="https://10.0.0.1/", event_types=["order.approved"]
        )


def test_an_owner_has_at_most_the_configured_number_of_endpoints(owner, receiver, settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_OWNER = 2
    for _ in range(2):
        services.create_endpoint(owner=owner, url=receiver.url, event_types=["order.approved"])

    with pytest.raises(EndpointLimitReached):
        services.create_endpoint(owner=owner, url=receiver.url, event_types=["order.approved"])


def test_a_dead_letter_fails_the_delivery_and_enough_in_a_row_disable_the_endpoint(
    endpoint, settings
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    first = approve(OrderFactory(buyer=endpoint.owner))
    second = approve(OrderFactory(buyer=endpoint.owner))

    assert services.fail_delivery(delivery_id=first.id, reason="rejected") is True
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 1

    services.fail_delivery(delivery_id=second.id, reason="rejected")

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "2 deliveries in a row failed" in endpoint.disabled_reason
    first.refresh_from_db()
    assert first.status == Status.FAILED


def test_a_success_resets_the_count_of_failures(endpoint, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    services.fail_delivery(delivery_id=approve(OrderFactory(buyer=endpoint.owner)).id, reason="x")
    services.deliver(delivery_id=approve(OrderFactory(buyer=endpoint.owner)).id)
    services.fail_delivery(delivery_id=approve(OrderFactory(buyer=endpoint.owner)).id, reason="x")

    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert endpoint.consecutive_failures == 1


def test_a_dead_letter_of_a_delivered_delivery_is_stale(endpoint, receiver):
    delivery = approve(OrderFactory(buyer=endpoint.owner))
    services.deliver(delivery_id=delivery.id)

    assert services.fail_delivery(delivery_id=delivery.id, reason="rejected") is False

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED


def test_a_disabled_endpoints_pending_delivery_fails_unsent(endpoint, receiver):
    delivery = approve(OrderFactory(buyer=endpoint.owner))
    services.disable_endpoint(endpoint_id=endpoint.id, reason="by its owner")

    services.deliver(delivery_id=delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED
    assert "endpoint disabled" in delivery.last_error
    assert receiver.received == []


def test_redelivery_sends_the_same_event_again_as_the_same_message(endpoint, receiver, owner):
    delivery = approve(OrderFactory(buyer=owner))
    services.deliver(delivery_id=delivery.id)
    OutboxMessage.objects.filter(pk=delivery.id).update(published_at=timezone.now())

    services.redeliver(delivery_id=delivery.id, actor=owner)

    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.redelivery_count == 1
    assert OutboxMessage.objects.get(pk=delivery.id).published_at is None
    services.deliver(delivery_id=delivery.id)
    assert [r.headers["Orderflow-Event-Id"] for r in receiver.taken()] == [
        str(delivery.event_id)
    ] * 2


def test_redelivering_a_dead_lettered_delivery_replays_its_dead_letter(endpoint, owner):
    delivery = approve(OrderFactory(buyer=owner))
    dead_letter = DeadLetter.objects.create(
        message_id=str(delivery.id),
        queue="webhooks",
        task_name="webhooks.deliver",
        subject_id=delivery.id,
        reason="rejected",
        body=json.dumps([[], {"delivery_id": str(delivery.id)}, {}]).encode(),
        content_type="application/json",
        first_death_at=timezone.now(),
        last_death_at=timezone.now(),
    )
    services.fail_delivery(delivery_id=delivery.id, reason="rejected")

    services.redeliver(delivery_id=delivery.id, actor=owner)

    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.REPLAYED
    assert dead_letter.acted_by == owner
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING


def test_redelivery_is_refused_while_pending_or_while_the_endpoint_is_disabled(endpoint, owner):
    delivery = approve(OrderFactory(buyer=owner))
    with pytest.raises(DeliveryNotRedeliverable, match="on its way"):
        services.redeliver(delivery_id=delivery.id, actor=owner)

    services.fail_delivery(delivery_id=delivery.id, reason="rejected")
    services.disable_endpoint(endpoint_id=endpoint.id, reason="test")
    with pytest.raises(DeliveryNotRedeliverable, match="disabled"):
        services.redeliver(delivery_id=delivery.id, actor=owner)


def test_rotation_signs_with_both_secrets_until_the_grace_period_ends(endpoint, receiver):
    old = endpoint.secret
    rotated = services.rotate_secret(endpoint_id=endpoint.id, grace=timedelta(hours=1))
    verify = readme_verify()

    services.deliver(delivery_id=approve(OrderFactory(buyer=endpoint.owner)).id)
    request = receiver.taken()[-1]
    header = request.headers["Orderflow-Signature"]
    assert verify(rotated.secret, request.body, header)
    assert verify(old, request.body, header)

    later = timezone.now() + timedelta(hours=2)
    assert services.signing_secrets(rotated, now=later) == [rotated.secret]


def test_a_rotation_without_grace_drops_the_old_secret_at_once(endpoint):
    rotated = services.rotate_secret(endpoint_id=endpoint.id, grace=timedelta(0))

    assert services.signing_secrets(rotated) == [rotated.secret]
    assert rotated.secret != endpoint.secret


def test_a_missing_delivery_is_a_permanent_error():
    from webhooks.errors import DeliveryNotFound

    with pytest.raises(DeliveryNotFound):
        services.deliver(delivery_id=uuid.uuid4())


def test_pruning_keeps_pending_and_recent_deliveries(endpoint, receiver):
    old_delivered = approve(OrderFactory(buyer=endpoint.owner))
    services.deliver(delivery_id=old_delivered.id)
    old_pending = approve(OrderFactory(buyer=endpoint.owner))
    recent = approve(OrderFactory(buyer=endpoint.owner))
    services.fail_delivery(delivery_id=recent.id, reason="rejected")
    long_ago = timezone.now() - timedelta(days=40)
    WebhookDelivery.objects.filter(pk__in=[old_delivered.pk, old_pending.pk]).update(
        created_at=long_ago
    )

    assert services.prune_deliveries(older_than=timedelta(days=30)) == 1

    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {
        old_pending.pk,
        recent.pk,
    }
