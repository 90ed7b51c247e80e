"""Idempotent consumers: a message id is applied at most once per consumer."""

import time
import uuid

import pytest
from django.db import transaction

from messaging.idempotency import claim_message
from messaging.models import ProcessedMessage

from ..ordering.test_concurrency import run_together

pytestmark = pytest.mark.django_db


class Boom(Exception):
    """The effects of the message failed, so its transaction rolls back."""


def claim(message_id: uuid.UUID, consumer: str = "billing.charge_order") -> bool:
    with transaction.atomic():
        return claim_message(consumer=consumer, message_id=message_id)


@pytest.mark.django_db(transaction=True)
def test_claiming_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        claim_message(consumer="billing.charge_order", message_id=uuid.uuid4())

    assert not ProcessedMessage.objects.exists()


def test_first_claim_succeeds_and_the_second_is_refused():
    message_id = uuid.uuid4()

    assert claim(message_id) is True
    assert claim(message_id) is False
    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 1


def test_claims_are_per_consumer():
    message_id = uuid.uuid4()

    assert claim(message_id, consumer="fraud.screen_order") is True
    assert claim(message_id, consumer="billing.charge_order") is True
    assert claim(message_id, consumer="billing.charge_order") is False


def test_a_refused_claim_leaves_the_callers_transaction_usable():
    message_id = uuid.uuid4()
    claim(message_id)

    with transaction.atomic():
        assert claim_message(consumer="billing.charge_order", message_id=message_id) is False
        ProcessedMessage.objects.create(consumer="other", message_id=message_id)

    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 2


def test_a_claim_rolled_back_with_its_transaction_can_be_claimed_again():
    message_id = uuid.uuid4()

    with pytest.raises(Boom), transaction.atomic():
        assert claim_message(consumer="billing.charge_order", message_id=message_id)
        raise Boom

    assert not applied(consumer="billing.charge_order", message_id=message_id)
    assert claim(message_id) is True


def applied(*, consumer: str, message_id: uuid.UUID) -> bool:
    return ProcessedMessage.objects.filter(consumer=consumer, message_id=message_id).exists()


def test_a_claim_is_recorded_per_consumer():
    message_id = uuid.uuid4()
    assert not applied(consumer="billing.charge_order", message_id=message_id)

    claim(message_id)

    assert applied(consumer="billing.charge_order", message_id=message_id)
    assert not applied(consumer="fraud.screen_order", message_id=message_id)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_message_let_exactly_one_through():
    message_id = uuid.uuid4()

    def claim_and_work() -> bool:
        with transaction.atomic():
            claimed = claim_message(consumer="billing.charge_order", message_id=message_id)
            time.sleep(0.05)  # the effects take a while; the other claim waits on the index
            return claimed

    results = run_together(claim_and_work, claim_and_work)

    assert sorted(results) == [False, True]
    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 1
