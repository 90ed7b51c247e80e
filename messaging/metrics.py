"""Events of the pipeline counted where they happen: tasks run by a worker, outbox publishes.

Counters and histograms only: in multiprocess mode (PROMETHEUS_MULTIPROC_DIR) each process
writes its own file and a scrape adds them up, which works for these types as they are.
Labels are task names and fixed words, never message or order ids. The task hooks are
connected to Celery's signals in config/celery.py, so no task has to know about them.
"""

import time

from celery import states
from prometheus_client import Counter, Histogram

TASK_DURATION = Histogram(
    "orderflow_task_duration_seconds",
    "Time one run of a task took in a worker, whatever its outcome.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TASK_OUTCOMES = Counter(
    "orderflow_task_outcomes_total",
    "Runs of a task by how they ended: success, retry, dead-letter (rejected at once: a "
    "poison message or a permanent error) or failure (an unexpected error, or retries used "
    "up; also dead-lettered).",
    ["task", "outcome"],
)
TASK_RETRIES = Counter(
    "orderflow_task_retries_total",
    "Retries scheduled, by task and the kind of error that caused them.",
    ["task", "error"],
)
PUBLISH_BATCH_SIZE = Histogram(
    "orderflow_outbox_publish_batch_messages",
    "Messages in one batch the relay published.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
PUBLISH_CONFIRM_SECONDS = Histogram(
    "orderflow_outbox_publish_confirm_seconds",
    "From the start of a batch's publish until the broker settled all of it (or the deadline).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
PUBLISHED = Counter(
    "orderflow_outbox_messages_confirmed_total",
    "Outbox messages the broker confirmed, by who published them (relay or on_commit).",
    ["publisher"],
)
NOT_PUBLISHED = Counter(
    "orderflow_outbox_messages_failed_total",
    "Outbox messages the broker nacked or did not confirm in time; they stay in the outbox.",
    ["publisher"],
)

# Celery's final state of a run -> the outcome label. A rejected run was dead-lettered by
# the base task's policy; a failed one is rejected too (task_acks_on_failure off).
OUTCOMES = {
    states.SUCCESS: "success",
    states.RETRY: "retry",
    states.REJECTED: "dead-letter",
    states.FAILURE: "failure",
}

# Start times of the runs in progress in this process, by task id (prefork: one at a time).
_started: dict[str, float] = {}


def task_started(*, task_id: str) -> None:
    _started[task_id] = time.perf_counter()


def task_finished(*, task_name: str, task_id: str, state: str | None) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        TASK_DURATION.labels(task=task_name).observe(time.perf_counter() - started)
    TASK_OUTCOMES.labels(task=task_name, outcome=OUTCOMES.get(state, "failure")).inc()


def task_retried(*, task_name: str, reason: object) -> None:
    # The reason is the exception (or a Retry wrapping it): its class, a bounded set.
    error = getattr(reason, "exc", None) or reason
    TASK_RETRIES.labels(task=task_name, error=type(error).__name__).inc()
