"""The base task of the order pipeline's steps (ordering/steps.py names them)."""

import uuid

from rest_framework import serializers

from messaging.pipeline import PipelineTask, UUIDText

from . import services
from .errors import StepNotReplayable


class OrderStepPayload(serializers.Serializer):
    """A step's message: the order's id and nothing else; the step reads the order itself."""

    order_id = UUIDText()


class OrderStepTask(PipelineTask):
    """A step on one order: its dead letter fails the order if the step is still due, its
    replay resumes the order at the step; both know their step by the task's name."""

    payload = OrderStepPayload

    def log_ids(self, kwargs: dict) -> dict:
        return {**super().log_ids(kwargs), "order_id": kwargs.get("order_id")}

    def subject_of(self, kwargs: dict) -> uuid.UUID | None:
        return _order_id(kwargs)

    def on_dead_letter(self, *, kwargs: dict, reason: str) -> bool:
        if (order_id := _order_id(kwargs)) is None:
            return True  # names no order: nothing to fail, but an operator should see it
        return services.fail_step(
            task_name=self.name, order_id=order_id, cause=f"{self.name} dead-lettered: {reason}"
        )

    def on_replay(self, *, kwargs: dict) -> None:
        if (order_id := _order_id(kwargs)) is None:
            raise StepNotReplayable(f"The message names no order: {kwargs!r:.200}")
        services.resume_step(task_name=self.name, order_id=order_id, cause=f"{self.name} replayed")


def _order_id(kwargs: dict) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(kwargs.get("order_id")))
    except ValueError:
        return None
