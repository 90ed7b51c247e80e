"""Connection passwords never reach the logs, even when the broker is down."""

import pytest
from kombu.utils.url import parse_url

from .test_pipeline import post_order, wait_for_terminal

pytestmark = pytest.mark.timeout(120)


def test_no_process_logs_the_broker_or_database_password(system, buyer_api):
    system.proxy.cut()  # the relay fails to publish, and logs it
    order_id = post_order(buyer_api)
    system.relay.wait_for_output("not confirmed", timeout=30)
    system.proxy.restore()
    wait_for_terminal(order_id)

    password = parse_url(system.broker_url)["password"]
    logs = {
        process.name: process.log_path.read_text(errors="replace")
        for process in (system.web, system.worker, system.relay, system.deadletters)
    }
    for name, text in logs.items():
        assert f":{password}@" not in text, f"{name} logged a connection URL with its password"
    assert "amqp://" in logs["worker"]  # Celery's banner names the broker, password masked
