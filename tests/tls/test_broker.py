"""amqps:// to a RabbitMQ node whose certificate a throwaway CA signed: every connection the
project opens verifies the certificate and the host name, and the pipeline publishes and
consumes over it."""

import uuid

import pytest
from kombu import Connection

from config.celery import app
from messaging import broker, selectors
from messaging.broker import BROKER_ERRORS, broker_ssl

from ..live.node import celery_app_on

pytestmark = pytest.mark.broker


@pytest.fixture
def trusting(settings, authority):
    """Trust the CA of the given file name (in the authority's directory)."""

    def trust(ca: str) -> None:
        settings.BROKER_SSL_CA_FILE = str(authority / ca)

    return trust


def connect(url: str) -> Connection:
    connection = Connection(url, ssl=broker_ssl(url), connect_timeout=5)
    connection.ensure_connection(max_retries=1, interval_start=0)
    return connection


def refusal(excinfo: pytest.ExceptionInfo) -> str:
    """The error and its causes, as one string."""
    error, words = excinfo.value, []
    while error is not None:
        words.append(repr(error))
        error = error.__cause__ or error.__context__
    return " <- ".join(words)


def test_a_certificate_the_ca_signed_for_the_name_is_accepted(tls_broker, trusting):
    trusting("ca.pem")

    with connect(tls_broker.tls_url()) as connection:
        assert connection.connection.server_properties["product"] in (b"RabbitMQ", "RabbitMQ")
        assert connection.transport.driver_name == "py-amqp"
        assert connection.connection.transport.sock.version().startswith("TLSv1.")


def test_a_certificate_for_another_host_name_is_refused(tls_broker, trusting):
    trusting("ca.pem")

    # The certificate names localhost; the URL names 127.0.0.1, the very same server.
    with pytest.raises(BROKER_ERRORS) as excinfo:
        connect(tls_broker.tls_url(host="127.0.0.1"))

    assert "IP address mismatch" in refusal(excinfo)


def test_a_certificate_another_ca_signed_is_refused(tls_broker, trusting):
    trusting("stranger.pem")

    with pytest.raises(BROKER_ERRORS) as excinfo:
        connect(tls_broker.tls_url())

    assert "certificate verify failed" in refusal(excinfo)


def test_without_a_ca_file_the_systems_cas_decide_and_refuse_a_private_one(tls_broker, settings):
    settings.BROKER_SSL_CA_FILE = ""

    with pytest.raises(BROKER_ERRORS) as excinfo:
        connect(tls_broker.tls_url())

    assert "certificate verify failed" in refusal(excinfo)


def test_readiness_and_queue_depths_connect_over_verified_tls(tls_broker, trusting, settings):
    trusting("ca.pem")
    settings.CELERY_BROKER_URL = tls_broker.tls_url()

    broker.ping_broker(timeout=5)
    depths = selectors.queue_depths(url=tls_broker.tls_url(), timeout=5)

    assert depths and all(depth.name for depth in depths)  # answered, over TLS
    trusting("stranger.pem")
    with pytest.raises(BROKER_ERRORS):
        broker.ping_broker(timeout=5)
    assert not any(
        depth.available for depth in selectors.queue_depths(url=tls_broker.tls_url(), timeout=5)
    )


def test_a_step_published_over_tls_is_consumed_over_tls(tls_broker, trusting):
    """The outbox's two publishers (after commit, and the relay's batches) through Celery's
    own connections, configured by broker_use_ssl; a consumer takes both off the queue."""
    trusting("ca.pem")
    url = tls_broker.tls_url()
    one, batch = uuid.uuid4(), uuid.uuid4()
    message = {"task_name": "fraud.screen_order", "kwargs": {"order_id": str(uuid.uuid4())}}

    with celery_app_on(url):
        assert app.conf.broker_use_ssl["server_hostname"] == "localhost"
        broker.send_message(message_id=one, headers={}, **message)
        confirms = broker.send_messages([{**message, "message_id": batch, "headers": {}}])

    assert confirms.confirmed == {batch}, confirms.failed
    taken = set()
    with connect(url) as connection:
        channel = connection.default_channel
        while (got := channel.basic_get(queue="fraud", no_ack=True)) is not None:
            taken.add(got.headers["id"])
    assert taken == {str(one), str(batch)}
