"""What the environment turns into: TLS options for the broker, refusals of what would connect
without TLS or with options py-amqp ignores, and a verify-full DATABASE_URL through settings.py
as the processes read it."""

import os
import ssl
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.tls import amqp_ssl_options


def test_plain_amqp_gets_no_tls():
    assert amqp_ssl_options("amqp://u:p@rabbit.example.com//") is False
    assert amqp_ssl_options("filesystem://") is False


def test_amqps_requires_a_certificate_for_the_urls_host_name():
    options = amqp_ssl_options("amqps://u:p@rabbit.example.com/v", ca_file="/etc/ca.pem")

    assert options == {
        "cert_reqs": ssl.CERT_REQUIRED,
        "ca_certs": "/etc/ca.pem",
        "server_hostname": "rabbit.example.com",
    }
    assert amqp_ssl_options("amqps://u:p@rabbit.example.com/v")["ca_certs"] is None


def test_failover_nodes_of_one_name_or_a_name_given_are_checked_for_that_name():
    one_name = "amqps://u:p@rabbit.example.com:5671//;amqps://u:p@rabbit.example.com:5672//"
    assert amqp_ssl_options(one_name)["server_hostname"] == "rabbit.example.com"
    two_names = "amqps://u:p@r1.example.com//;amqps://u:p@r2.example.com//"
    with pytest.raises(ImproperlyConfigured, match="BROKER_SSL_SERVER_NAME"):
        amqp_ssl_options(two_names)
    given = amqp_ssl_options(two_names, server_name="rabbit.example.com")
    assert given["server_hostname"] == "rabbit.example.com"


@pytest.mark.parametrize(
    "url",
    [
        "amqps://u:p@r1.example.com//;amqp://u:p@r2.example.com//",  # TLS to some nodes only
        "amqps://u:p@rabbit.example.com//?ssl_cert_reqs=none",  # kombu's redis names
    ],
)
def test_a_url_that_would_not_be_verified_as_it_reads_is_refused(url):
    with pytest.raises(ImproperlyConfigured):
        amqp_ssl_options(url)


def python_with(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh process whose settings read `env` (no role of its own)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "PROCESS_"))}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=settings.BASE_DIR,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_celery_connects_with_the_options_of_an_amqps_url(authority):
    shown = python_with(
        {
            "CELERY_BROKER_URL": "amqps://u:p@rabbit.example.com/orderflow",
            "BROKER_SSL_CA_FILE": str(authority / "ca.pem"),
        },
        "from config.celery import app; c = app.connection_for_write(); "
        "print(c.ssl['cert_reqs'] == 2, c.ssl['server_hostname'], c.ssl['ca_certs'])",
    )

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["True", "rabbit.example.com", str(authority / "ca.pem")]


def test_a_ca_file_with_a_plain_amqp_url_is_refused(authority):
    shown = python_with(
        {
            "CELERY_BROKER_URL": "amqp://u:p@rabbit//",
            "BROKER_SSL_CA_FILE": str(authority / "ca.pem"),
        },
        "",
    )

    assert shown.returncode != 0
    assert "not amqps://" in shown.stderr


def test_a_verify_full_database_url_connects_over_tls_through_the_settings(
    tls_database_port, authority
):
    """As a process reads DATABASE_URL: its connection, and readiness's own."""
    url = (
        f"postgres://postgres@localhost:{tls_database_port}/postgres"
        f"?sslmode=verify-full&sslrootcert={authority / 'ca.pem'}"
    )
    code = (
        "from django.db import connection\n"
        "from health.checks import ping_database\n"
        "ping_database(timeout=5)\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')\n"
        "    print(cursor.fetchone()[0])\n"
    )

    shown = python_with({"DATABASE_URL": url}, code)
    refused = python_with(
        {"DATABASE_URL": url.replace("ca.pem", "stranger.pem")},
        "\n" + code.split("\n")[1] + "\nping_database(timeout=5)",
    )

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[-1] == "True"
    assert refused.returncode != 0
    assert "certificate verify failed" in refused.stderr
