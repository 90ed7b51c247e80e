"""The Celery app: configured from Django settings (CELERY_* names), queues and routes here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("orderflow")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_configure.connect
def _configure_queues(sender: Celery, **kwargs) -> None:
    from messaging.topology import work_queues

    sender.conf.task_queues = work_queues()
    # Tasks are named "<queue>.<step>": fraud.screen_order, billing.charge_order.
    sender.conf.task_routes = {f"{queue.name}.*": {"queue": queue.name} for queue in work_queues()}


app.autodiscover_tasks()
