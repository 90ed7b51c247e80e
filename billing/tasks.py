from uuid import UUID

from config.celery import app
from ordering.pipeline import OrderStepTask

from . import services


@app.task(base=OrderStepTask, bind=True, name="billing.charge_order")
def charge_order(self: OrderStepTask, *, order_id: UUID) -> None:
    """Charge an approved order: APPROVED -> PROCESSED or PAYMENT_FAILED."""
    services.charge(order_id=order_id, message_id=self.message_id)
