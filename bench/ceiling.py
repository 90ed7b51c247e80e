"""The ceiling: bare Celery on Orderflow's broker settings, no-op tasks over the same two hops.

Same app configuration (quorum queues on topic exchanges, confirms, acks_late, prefetch 1),
same hop count as an order (fraud, then billing), but the tasks do nothing except publish the
next hop and, at the end, note the time. Run a worker with `celery -A bench.ceiling worker`.
"""

import os
import time

from config.celery import app
from messaging.topology import work_queue

HOPS = ("bench_a", "bench_b")

app.conf.task_queues = [*app.conf.task_queues, *(work_queue(name) for name in HOPS)]
app.conf.task_routes = {
    **app.conf.task_routes,
    "bench.hop_a": {"queue": "bench_a"},
    "bench.hop_b": {"queue": "bench_b"},
}


@app.task(name="bench.hop_a", ignore_result=True)
def hop_a(chain: int, created: float) -> None:
    hop_b.apply_async(args=(chain, created))


@app.task(name="bench.hop_b", ignore_result=True)
def hop_b(chain: int, created: float) -> None:
    # One short append per chain: O_APPEND writes of one line do not interleave.
    with open(os.environ["BENCH_DONE_FILE"], "a") as done:
        done.write(f"{chain} {created} {time.time()}\n")
