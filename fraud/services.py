"""Fraud screening: judge a PENDING order by the rules, approve it or cancel it."""

import logging
import uuid
from dataclasses import dataclass

from ordering import selectors as order_selectors
from ordering import services as order_services
from ordering.state_machine import OrderStatus

from .models import FraudAssessment
from .rules import REJECT_SCORE, RULES

logger = logging.getLogger(__name__)

STEP = "fraud.screen_order"  # this step's row in ordering/steps.py


@dataclass(frozen=True)
class Assessment:
    verdict: FraudAssessment.Verdict
    score: int
    reasons: list[dict]

    @property
    def approved(self) -> bool:
        return self.verdict == FraudAssessment.Verdict.APPROVED


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
    """Screen a PENDING order: store the assessment, move it to APPROVED or CANCELED_FRAUD.

    The decision is fraud's; applying it (with the billing step's message when approved) is
    ordering's complete_step(), in one transaction. An order no longer PENDING, or a message
    already applied, changes nothing.
    """
    order = order_selectors.order_at_step(order_id=order_id, task_name=STEP)
    if order is None:
        return
    assessment = assess(order)
    order_services.complete_step(
        task_name=STEP,
        order_id=order_id,
        message_id=message_id,
        outcome=OrderStatus.APPROVED if assessment.approved else OrderStatus.CANCELED_FRAUD,
        cause="fraud screening: "
        + ("passed" if assessment.approved else "; ".join(r["rule"] for r in assessment.reasons)),
        record=lambda: _store(assessment, order_id=order_id, message_id=message_id),
    )


def _store(assessment: Assessment, *, order_id: uuid.UUID, message_id: uuid.UUID) -> None:
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
