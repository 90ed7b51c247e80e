from uuid import UUID

from config.celery import app
from ordering.pipeline import OrderStepTask

from . import services


@app.task(base=OrderStepTask, bind=True, name="fraud.screen_order")
def screen_order(self: OrderStepTask, *, order_id: UUID) -> None:
    """Screen an order for fraud: PENDING -> APPROVED (then billing) or CANCELED_FRAUD."""
    services.screen(order_id=order_id, message_id=self.message_id)
