"""Metrics of the real processes: gunicorn with two workers and a prefork worker with two
children, each tree with its own PROMETHEUS_MULTIPROC_DIR, scraped as Prometheus would."""

import glob
import os
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from chaos.http import wait_for_http
from chaos.proxy import free_port
from ordering.models import Order
from ordering.state_machine import TERMINAL_STATUSES

from ..live.wait import wait_until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

TOKEN = "integration-metrics-token"


@pytest.fixture(scope="module")
def metered(live_system, tmp_path_factory):
    """The live system's web and worker restarted with metrics on, and back after the module."""
    web_dir = tmp_path_factory.mktemp("metrics-web")
    worker_dir = tmp_path_factory.mktemp("metrics-worker")
    worker_port = free_port()
    web, worker = live_system.web, live_system.worker
    originals = {web: web.env, worker: worker.env}
    web.stop()
    worker.stop()
    web.env = {**web.env, "PROMETHEUS_MULTIPROC_DIR": str(web_dir), "METRICS_TOKEN": TOKEN}
    worker.env = {
        **worker.env,
        "PROMETHEUS_MULTIPROC_DIR": str(worker_dir),
        "WORKER_METRICS_PORT": str(worker_port),
    }
    try:
        worker.start()
        web.start()
        worker.wait_for_output(r"ready\.", timeout=60)
        worker.wait_for_output("worker metrics served on port", timeout=10)
        wait_for_http(live_system.base_url + "/api/orders/")  # not /healthz, which is counted
        yield live_system, web_dir, f"http://127.0.0.1:{worker_port}/metrics"
    finally:
        for process, env in originals.items():
            process.stop()
            process.env = env
        worker.start()
        web.start()
        worker.wait_for_output(r"ready\.", timeout=60)
        wait_for_http(live_system.base_url + "/api/orders/")


def scrape(url: str, token: str | None = None) -> dict[str, list]:
    request = urllib.request.Request(url)  # noqa: S310 - a local test server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def total(samples: list, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def healthz_count_per_process(web_dir: Path) -> dict[str, float]:
    """Each gunicorn worker's own count of /healthz requests, read from its metrics file."""
    counts = {}
    for path in glob.glob(os.path.join(web_dir, "counter_*.db")):
        families = MultiProcessCollector.merge([path], accumulate=False)
        samples = [sample for family in families for sample in family.samples]
        counts[Path(path).stem] = total(samples, "orderflow_http_requests_total", view="healthz")
    return {process: count for process, count in counts.items() if count}


def get_healthz(base_url: str) -> int:
    with urllib.request.urlopen(base_url + "/healthz", timeout=10) as response:  # noqa: S310
        return response.status


def test_the_web_scrape_adds_up_the_requests_both_gunicorn_workers_served(metered):
    system, web_dir, _ = metered
    assert "--workers" in system.web.argv and "2" in system.web.argv
    sent = 0
    # Concurrent requests, so both sync workers take some; more rounds if one took them all.
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(healthz_count_per_process(web_dir)) < 2 and sent < 400:
            assert set(pool.map(get_healthz, [system.base_url] * 40)) == {200}
            sent += 40

    per_process = healthz_count_per_process(web_dir)
    assert len(per_process) == 2, per_process
    families = scrape(system.base_url + "/metrics", TOKEN)

    assert total(families["orderflow_http_requests"], "orderflow_http_requests_total",
                 view="healthz", status="200") == sent == sum(per_process.values())  # fmt: skip
    assert families["orderflow_state_database_up"][0].value == 1


def test_the_worker_port_counts_both_steps_of_orders_run_through_the_pipeline(metered, buyer_api):
    _, _, worker_url = metered
    order_ids = []
    for _ in range(3):
        response = buyer_api.post(
            "/api/orders/", {"product_name": "Teapot", "quantity": 1, "unit_price": "10.00"}
        )
        assert response.status == 201, response.body
        order_ids.append(uuid.UUID(response.body["id"]))
    wait_until(
        lambda: Order.objects.filter(pk__in=order_ids, status__in=TERMINAL_STATUSES).count() == 3,
        timeout=60,
        what="the orders to finish",
    )
    assert set(Order.objects.filter(pk__in=order_ids).values_list("status", flat=True)) == {
        "PROCESSED"
    }

    families = scrape(worker_url)

    outcomes = families["orderflow_task_outcomes"]
    durations = families["orderflow_task_duration_seconds"]
    for task in ("fraud.screen_order", "billing.charge_order"):
        assert total(outcomes, "orderflow_task_outcomes_total", task=task, outcome="success") == 3
        assert total(durations, "orderflow_task_duration_seconds_count", task=task) == 3
        assert total(durations, "orderflow_task_duration_seconds_sum", task=task) > 0
