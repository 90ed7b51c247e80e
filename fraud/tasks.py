from config.celery import app
from messaging.pipeline import PipelineTask, uuid_from

from . import services


@app.task(base=PipelineTask, bind=True, name="fraud.screen_order")
def screen_order(self: PipelineTask, *, order_id: str) -> None:
    """Screen an order for fraud: PENDING -> APPROVED (then billing) or CANCELED_FRAUD."""
    services.screen(order_id=uuid_from(order_id, field="order_id"), message_id=self.message_id)
