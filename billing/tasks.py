from config.celery import app
from messaging.pipeline import PipelineTask, uuid_from

from . import services


@app.task(base=PipelineTask, bind=True, name="billing.charge_order")
def charge_order(self: PipelineTask, *, order_id: str) -> None:
    """Charge an approved order: APPROVED -> PROCESSED or PAYMENT_FAILED."""
    services.charge(order_id=uuid_from(order_id, field="order_id"), message_id=self.message_id)
