"""The Celery app: configured from Django settings (CELERY_* names), queues, routes, the
database-connection rule for tasks, and the metrics hooks (messaging/metrics.py)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("orderflow")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_configure.connect
def _configure_queues(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    from messaging.topology import work_queues

    # Declared by the worker as it consumes, and before each publish, unless this process's
    # broker user may not (BROKER_DECLARES_TOPOLOGY): then the release declared them.
    sender.conf.task_queues = work_queues(declare=settings.BROKER_DECLARES_TOPOLOGY)
    # Tasks are named "<queue>.<step>": fraud.screen_order, billing.charge_order.
    sender.conf.task_routes = {f"{queue.name}.*": {"queue": queue.name} for queue in work_queues()}


@signals.setup_logging.connect
def _logging_as_django_configures_it(**kwargs) -> None:
    # The worker logs like the web process (JSON lines with the ids) instead of installing
    # Celery's own format; connecting this signal is how Celery is told so.
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.task_prerun.connect
def _bind_log_ids(task, kwargs: dict, **_) -> None:
    # Bound from here to task_postrun, so Celery's own lines about the task (succeeded,
    # retry, failed) carry the ids too, not only the task's.
    from core import logcontext

    log_ids = getattr(task, "log_ids", None)
    logcontext.bind_for_task(log_ids(kwargs if isinstance(kwargs, dict) else {}) if log_ids else {})


@signals.task_postrun.connect
def _forget_log_ids(**_) -> None:
    from core import logcontext

    logcontext.forget()


@signals.task_prerun.connect
def _database_connections_as_django_would(**kwargs) -> None:
    # What Django does at each request: drop a connection that is broken or past CONN_MAX_AGE,
    # and health-check the kept one before its next use.
    from django.db import close_old_connections

    close_old_connections()


@signals.task_prerun.connect
def _time_the_run(task_id: str, **_) -> None:
    from messaging import metrics

    metrics.task_started(task_id=task_id)


@signals.task_postrun.connect
def _count_the_outcome(task, task_id: str, state: str | None = None, **_) -> None:
    from messaging import metrics

    metrics.task_finished(task_name=task.name, task_id=task_id, state=state)


@signals.task_retry.connect
def _count_the_retry(sender, reason, **_) -> None:
    from messaging import metrics

    metrics.task_retried(task_name=sender.name, reason=reason)


@signals.worker_init.connect
def _forget_an_earlier_runs_metrics(**_) -> None:
    # In the main process, before the pool forks its children.
    from core.metrics import empty_multiprocess_dir

    empty_multiprocess_dir()


@signals.worker_ready.connect
def _serve_worker_metrics(**_) -> None:
    # Once, in the main process; the children's metrics reach it through
    # PROMETHEUS_MULTIPROC_DIR. Started after the pool, so no child inherits the thread.
    from django.conf import settings

    if settings.WORKER_METRICS_PORT:
        from core.metrics import serve

        serve(port=settings.WORKER_METRICS_PORT, process="worker")


@signals.worker_process_shutdown.connect
def _forget_a_childs_live_gauges(pid: int, **_) -> None:
    from core.metrics import process_exited

    process_exited(pid)


@signals.worker_process_init.connect
def _start_tracing_in_each_child(**_) -> None:
    # In the child, after the fork: the span exporter's thread would not survive it.
    from config import tracing

    tracing.init(process="worker")


@signals.worker_init.connect
def _start_tracing_without_children(sender, **_) -> None:
    # The solo and threads pools run tasks in this process, which never forks.
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool

    from config import tracing

    if not issubclass(get_implementation(sender.pool_cls), TaskPool):
        tracing.init(process="worker")


@signals.worker_process_shutdown.connect
def _flush_spans(**_) -> None:
    # A prefork child ends without exit handlers, which would flush the last spans.
    from config import tracing

    tracing.flush()


app.autodiscover_tasks()
