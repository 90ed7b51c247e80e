"""The only code that writes webhook endpoints and deliveries.

An event becomes one delivery per subscribed endpoint, written with its message in the
transaction of the change it tells of (emit). The `webhooks.deliver` task sends it (deliver):
2xx delivers it; a failure worth retrying raises DeliveryFailed, which the broker retries
with backoff; any other raises DeliveryRefused, a dead letter. A dead letter fails the
delivery and counts toward disabling the endpoint (fail_delivery); a replay of it by an
operator, or a redelivery the owner asks for, sends it again with the same event id.
"""

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from messaging import deadletters, outbox
from messaging import selectors as messaging_selectors

from . import events, sender, signing, targets
from .errors import (
    DeliveryFailed,
    DeliveryNotFound,
    DeliveryNotRedeliverable,
    DeliveryRefused,
    EndpointLimitReached,
    EndpointNotFound,
    UnknownEventTypes,
)
from .models import MAX_ERROR_LENGTH, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
# Event ids are derived, not drawn: the same event has the same id whoever asks.
EVENT_ID_NAMESPACE = uuid.UUID("5d0e7c1a-6f3b-4e29-9a0c-2b8f4d1e7a63")

Status = WebhookDelivery.Status


def event_id_of(*, subject_id: uuid.UUID, subject_version: int) -> uuid.UUID:
    """The event of `subject_id` reaching `subject_version`: one id, stable for receivers."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{subject_id}:{subject_version}")


# Endpoints ------------------------------------------------------------------------------


def create_endpoint(
    *, owner: AbstractBaseUser, url: str, event_types: list[str], description: str = ""
) -> WebhookEndpoint:
    """Register an endpoint after check_endpoint(); its secret is on the returned object,
    the only time the owner is shown it."""
    check_endpoint(owner=owner, url=url, event_types=event_types)
    with transaction.atomic():
        # The owner's row serialises their registrations, so the limit holds under races.
        type(owner).objects.select_for_update().filter(pk=owner.pk).first()
        _check_room(owner)
        endpoint = WebhookEndpoint.objects.create(
            owner=owner,
            url=url,
            event_types=sorted(set(event_types)),
            description=description,
            secret=signing.new_secret(),
        )
    logger.info("webhook endpoint %s registered by user=%s", endpoint.id, owner.pk)
    return endpoint


def check_endpoint(*, owner: AbstractBaseUser, url: str, event_types: list[str]) -> None:
    """Raise what registering this endpoint would be refused for: an unknown event type, a
    URL webhooks may not go to (TargetRefused) or that does not resolve, no room left."""
    if not event_types:
        raise UnknownEventTypes("Name at least one event type.")
    if unknown := sorted(set(event_types) - set(events.EVENT_TYPES)):
        raise UnknownEventTypes(f"Unknown event types: {', '.join(unknown)}.")
    targets.resolve(url)
    _check_room(owner)


def _check_room(owner: AbstractBaseUser) -> None:
    limit = settings.WEBHOOK_MAX_ENDPOINTS_PER_OWNER
    if WebhookEndpoint.objects.filter(owner=owner).count() >= limit:
        raise EndpointLimitReached(f"At most {limit} webhook endpoints per account.")


def disable_endpoint(*, endpoint_id: uuid.UUID, reason: str) -> WebhookEndpoint:
    """Stop sending to an endpoint; deliveries on their way fail without being sent."""
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint_id)
        if endpoint.is_active:
            endpoint.is_active = False
            endpoint.disabled_reason = reason[:MAX_ERROR_LENGTH] or "disabled"
            endpoint.disabled_at = timezone.now()
            endpoint.save(
                update_fields=["is_active", "disabled_reason", "disabled_at", "updated_at"]
            )
    logger.info("webhook endpoint %s disabled: %s", endpoint_id, reason)
    return endpoint


def enable_endpoint(*, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """Send to an endpoint again, its count of failures reset; what failed meanwhile is
    redelivered only on request."""
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint_id)
        endpoint.is_active = True
        endpoint.disabled_reason = ""
        endpoint.disabled_at = None
        endpoint.consecutive_failures = 0
        endpoint.save()
    return endpoint


def rotate_secret(*, endpoint_id: uuid.UUID, grace: timedelta | None = None) -> WebhookEndpoint:
    """Give an endpoint a new secret; the old one still signs (a second `v1`) for `grace`
    (WEBHOOK_SECRET_GRACE_HOURS by default; zero ends it at once)."""
    if grace is None:
        grace = timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint_id)
        endpoint.previous_secret = endpoint.secret if grace > timedelta(0) else ""
        endpoint.previous_secret_expires_at = timezone.now() + grace if grace else None
        endpoint.secret = signing.new_secret()
        endpoint.save()
    logger.info("webhook endpoint %s secret rotated, grace %s", endpoint_id, grace)
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets that sign a request to `endpoint` now: the current one first."""
    now = now or timezone.now()
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


# Events ---------------------------------------------------------------------------------


def emit(
    *,
    event_type: str,
    owner_id: int,
    subject_id: uuid.UUID,
    subject_version: int,
    data: Callable[[], dict],
) -> int:
    """Write a delivery of this event, and its message, for each of the owner's active
    endpoints that want `event_type`; how many. Runs in the caller's transaction.

    `data` builds the event's `data` only when someone is subscribed. The body is fixed
    here, so every attempt sends the same bytes and the event's `occurred_at` is now.
    """
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(owner_id=owner_id, is_active=True).only(
            "id", "event_types"
        )
        if event_type in endpoint.event_types
    ]
    if not endpoints:
        return 0
    event_id = event_id_of(subject_id=subject_id, subject_version=subject_version)
    body = json.dumps(
        {
            "id": str(event_id),
            "type": event_type,
            "occurred_at": timezone.now(),
            "data": data(),
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            event_id=event_id,
            endpoint_id=endpoint.id,
            event_type=event_type,
            subject_id=subject_id,
            subject_version=subject_version,
            body=body,
        )
        for endpoint in endpoints
    )
    outbox.enqueue_new(
        task_name=DELIVER_TASK,
        kwargs_by_id={delivery.id: {"delivery_id": str(delivery.id)} for delivery in deliveries},
    )
    return len(deliveries)


# Delivering -----------------------------------------------------------------------------


def deliver(*, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a PENDING delivery once, and record how it went.

    Returns quietly when the delivery is not due (delivered by another copy of its
    message, failed meanwhile) or its endpoint is disabled (the delivery fails, unsent).
    Raises DeliveryFailed (retried) or DeliveryRefused (dead-lettered) when the receiver
    did not take it. No transaction or lock is held while the request is out.
    """
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        raise DeliveryNotFound(f"Webhook delivery {delivery_id} does not exist.")
    if delivery.status != Status.PENDING:
        logger.info("webhook delivery %s not due: it is %s", delivery_id, delivery.status)
        return delivery
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        _record(
            delivery, status=Status.FAILED, error=f"endpoint disabled: {endpoint.disabled_reason}"
        )
        return delivery
    try:
        target = targets.resolve(endpoint.url)
    except targets.TargetRefused as error:
        _record(delivery, attempted=True, error=error.message)
        raise DeliveryRefused(error.message) from None
    except targets.TargetUnresolvable as error:
        _record(delivery, attempted=True, error=error.message)
        raise DeliveryFailed(error.message) from None
    answer = sender.post(target=target, body=delivery.body.encode(), headers=_headers(delivery))
    if answer.delivered:
        _record(delivery, attempted=True, status=Status.DELIVERED, status_code=answer.status_code)
        if endpoint.consecutive_failures:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        return delivery
    _record(delivery, attempted=True, status_code=answer.status_code, error=answer.error)
    logger.info(
        "webhook delivery %s to endpoint %s not taken: status=%s retryable=%s",
        delivery.id,
        endpoint.id,
        answer.status_code,
        answer.retryable,
    )
    raise (DeliveryFailed if answer.retryable else DeliveryRefused)(answer.error)


def _headers(delivery: WebhookDelivery) -> dict[str, str]:
    secrets_ = signing_secrets(delivery.endpoint)
    timestamp = int(time.time())
    return {
        "Orderflow-Event-Id": str(delivery.event_id),
        "Orderflow-Event-Type": delivery.event_type,
        "Orderflow-Delivery-Id": str(delivery.id),
        signing.SIGNATURE_HEADER: signing.signature_header(
            secrets_=secrets_, timestamp=timestamp, body=delivery.body.encode()
        ),
    }


def _record(
    delivery: WebhookDelivery,
    *,
    attempted: bool = False,
    status: str | None = None,
    status_code: int | None = None,
    error: str = "",
) -> None:
    now = timezone.now()
    changes: dict = {"last_error": error[:MAX_ERROR_LENGTH]}
    if attempted:
        changes |= {"attempts": F("attempts") + 1, "last_attempt_at": now}
        changes["last_status_code"] = status_code
    if status is not None:
        changes["status"] = status
    if status == Status.DELIVERED:
        changes["delivered_at"] = now
    # Only while PENDING, unless delivered: a copy that delivered it is the truth, whatever
    # else happened meanwhile; a failed attempt must not undo another copy's success.
    rows = WebhookDelivery.objects.filter(pk=delivery.pk)
    if status != Status.DELIVERED:
        rows = rows.filter(status=Status.PENDING)
    rows.update(**changes)


# Dead letters, replays, redeliveries ----------------------------------------------------


def fail_delivery(*, delivery_id: uuid.UUID, reason: str) -> bool:
    """What a dead letter of a delivery's message does: the delivery fails, and its endpoint
    is disabled after WEBHOOK_DISABLE_AFTER_FAILURES in a row. False (a stale dead letter)
    when another copy delivered it. Runs in the caller's transaction."""
    with transaction.atomic(savepoint=False):
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            logger.warning("dead letter names no webhook delivery: %s", delivery_id)
            return True
        if delivery.status == Status.DELIVERED:
            return False
        if delivery.status == Status.PENDING:
            delivery.status = Status.FAILED
            delivery.last_error = (delivery.last_error or f"dead-lettered ({reason})")[
                :MAX_ERROR_LENGTH
            ]
            delivery.save(update_fields=["status", "last_error"])
            _count_failure(delivery)
    return True


def _count_failure(delivery: WebhookDelivery) -> None:
    endpoint = _locked_endpoint(delivery.endpoint_id)
    endpoint.consecutive_failures += 1
    endpoint.save(update_fields=["consecutive_failures", "updated_at"])
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if endpoint.is_active and endpoint.consecutive_failures >= limit:
        disable_endpoint(
            endpoint_id=endpoint.id,
            reason=f"{endpoint.consecutive_failures} deliveries in a row failed; the last: "
            f"{delivery.last_error}",
        )
        logger.warning("webhook endpoint %s disabled after %s failures", endpoint.id, limit)


def resume_delivery(*, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Make a delivery PENDING again before its message is sent again (a replay or a
    redelivery); refused while it is on its way or its endpoint is disabled. Runs in the
    caller's transaction, which writes the message."""
    with transaction.atomic(savepoint=False):
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            raise DeliveryNotFound(f"Webhook delivery {delivery_id} does not exist.")
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            raise DeliveryNotRedeliverable(
                f"The endpoint is disabled ({endpoint.disabled_reason}); enable it first.",
                extra={"status": delivery.status},
            )
        delivery.status = Status.PENDING
        delivery.redelivery_count += 1
        delivery.save(update_fields=["status", "redelivery_count"])
    return delivery


def redeliver(*, delivery_id: uuid.UUID, actor: AbstractBaseUser) -> WebhookDelivery:
    """Send a delivery again at its owner's (or staff's) request: a failed one, or a
    delivered one the receiver lost. Refused while one is on its way. A failed delivery's
    open dead letter is replayed, so the operator's queue shows it handled."""
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        raise DeliveryNotFound(f"Webhook delivery {delivery_id} does not exist.")
    if delivery.status == Status.PENDING:
        raise DeliveryNotRedeliverable(
            "This delivery is on its way already.", extra={"status": delivery.status}
        )
    # The dead letter first, then the delivery: the order the dead-letter consumer locks in.
    dead_letter_id = messaging_selectors.open_dead_letter_id(message_id=str(delivery.id))
    if dead_letter_id is not None:
        deadletters.replay(dead_letter_id=dead_letter_id, actor=actor)  # calls resume_delivery
    else:
        with transaction.atomic():
            delivery = resume_delivery(delivery_id=delivery_id)
            _enqueue(delivery)
    logger.info("webhook delivery %s redelivered at the request of user=%s", delivery_id, actor.pk)
    return WebhookDelivery.objects.get(pk=delivery_id)


def _enqueue(delivery: WebhookDelivery) -> None:
    # The delivery's id is its message's id (emit): sent again, it is the same message.
    outbox.enqueue(
        task_name=DELIVER_TASK, kwargs={"delivery_id": str(delivery.id)}, message_id=delivery.id
    )


def _locked_endpoint(endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise EndpointNotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return endpoint


def prune_deliveries(*, older_than: timedelta) -> int:
    """Delete deliveries that ended more than `older_than` ago; how many. PENDING ones are
    on their way and kept; past the retention a buyer can no longer redeliver an event."""
    cutoff = timezone.now() - older_than
    return (
        WebhookDelivery.objects.exclude(status=Status.PENDING)
        .filter(created_at__lt=cutoff)
        .delete()[0]
    )
