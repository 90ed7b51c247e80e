"""Fraud screening: judge a PENDING order by the rules and approve or cancel it."""

import logging
import uuid
from dataclasses import dataclass

from django.db import transaction

from messaging import outbox
from messaging.idempotency import claim_message
from ordering import selectors as order_selectors
from ordering import services as order_services
from ordering.state_machine import OrderStatus

from .models import FraudAssessment
from .rules import REJECT_SCORE, RULES

logger = logging.getLogger(__name__)

CONSUMER = "fraud.screen_order"


@dataclass(frozen=True)
class Assessment:
    verdict: FraudAssessment.Verdict
    score: int
    reasons: list[dict]


def assess(order) -> Assessment:
    """Run every rule against the order; no writes."""
    reasons, score = [], 0
    for rule in RULES:
        detail = rule.check(order)
        if detail is not None:
            reasons.append({"rule": rule.name, "detail": detail})
            score += rule.weight
    verdict = (
        FraudAssessment.Verdict.REJECTED
        if score >= REJECT_SCORE
        else FraudAssessment.Verdict.APPROVED
    )
    return Assessment(verdict=verdict, score=score, reasons=reasons)


def screen(*, order_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """Screen an order: store the assessment and move it PENDING -> APPROVED or CANCELED_FRAUD.

    An approved order gets its billing message in the same transaction. A message already
    applied, or an order that is no longer PENDING, changes nothing, and is not recorded as
    applied: a replay of it after the order was failed and resumed still works.
    """
    order = order_selectors.get_order(order_id=order_id)
    assessment = assess(order)
    approved = assessment.verdict == FraudAssessment.Verdict.APPROVED
    with transaction.atomic():
        # A duplicate finds the order past PENDING (refused) or its id claimed: no effect.
        result = order_services.transition(
            order_id=order_id,
            to=OrderStatus.APPROVED if approved else OrderStatus.CANCELED_FRAUD,
            cause="fraud screening: "
            + ("passed" if approved else "; ".join(r["rule"] for r in assessment.reasons)),
            message_id=message_id,
        )
        if not result.applied or not claim_message(consumer=CONSUMER, message_id=message_id):
            transaction.set_rollback(True)
            return
        # One upsert: an order screened again after a replay keeps one assessment.
        FraudAssessment.objects.bulk_create(
            [
                FraudAssessment(
                    order_id=order_id,
                    verdict=assessment.verdict,
                    score=assessment.score,
                    reasons=assessment.reasons,
                    message_id=message_id,
                )
            ],
            update_conflicts=True,
            unique_fields=["order"],
            update_fields=["verdict", "score", "reasons", "message_id", "assessed_at"],
        )
        if approved:
            outbox.enqueue(task_name="billing.charge_order", kwargs={"order_id": str(order_id)})
