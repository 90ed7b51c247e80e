"""The base task of the order pipeline's steps (fraud.screen_order, billing.charge_order)."""

import uuid

from rest_framework import serializers

from messaging.pipeline import PipelineTask, UUIDText

from . import services


class OrderStepPayload(serializers.Serializer):
    """A step's message: the order's id and nothing else; the step reads the order itself."""

    order_id = UUIDText()


class OrderStepTask(PipelineTask):
    """A step on one order: its dead letter fails the order, its replay resumes the order."""

    payload = OrderStepPayload

    def on_dead_letter(self, *, kwargs: dict, reason: str) -> None:
        if (order_id := _order_id(kwargs)) is not None:
            services.fail_order(order_id=order_id, cause=f"{self.name} dead-lettered: {reason}")

    def on_replay(self, *, kwargs: dict) -> None:
        if (order_id := _order_id(kwargs)) is not None:
            services.resume_order(order_id=order_id, cause=f"{self.name} replayed")


def _order_id(kwargs: dict) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(kwargs.get("order_id")))
    except ValueError:
        return None
