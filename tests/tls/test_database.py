"""DATABASE_URL=postgres://...?sslmode=verify-full&sslrootcert=<ca> needs nothing of the
project: django-environ passes the query into OPTIONS and psycopg hands it to libpq, which
verifies the certificate and the host name. Shown against a PostgreSQL that a throwaway CA
signed for."""

import environ
import pytest
from django.db import DEFAULT_DB_ALIAS
from django.db.utils import OperationalError, load_backend


def database(url: str):
    """A Django connection made exactly as settings.py makes DATABASES["default"]."""
    settings_dict = environ.Env.db_url_config(url)
    for key, default in {
        "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False, "TIME_ZONE": None, "TEST": {},
    }.items():  # fmt: skip
        settings_dict.setdefault(key, default)
    return load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, DEFAULT_DB_ALIAS)


def url(port: int, *, host: str = "localhost", ca: str = "ca.pem", authority) -> str:
    return (
        f"postgres://postgres@{host}:{port}/postgres"
        f"?sslmode=verify-full&sslrootcert={authority / ca}&connect_timeout=5"
    )


def test_verify_full_connects_over_tls_and_runs_a_query(
    tls_database_port, authority, django_db_blocker
):
    connection = database(url(tls_database_port, authority=authority))
    with django_db_blocker.unblock():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                over_tls, version = cursor.fetchone()
        finally:
            connection.close()

    assert connection.settings_dict["OPTIONS"]["sslmode"] == "verify-full"
    assert over_tls is True
    assert version.startswith("TLSv1.")


def test_a_certificate_for_another_host_name_is_refused(
    tls_database_port, authority, django_db_blocker
):
    # The certificate names localhost; the URL names 127.0.0.1, the very same server.
    connection = database(url(tls_database_port, host="127.0.0.1", authority=authority))
    with django_db_blocker.unblock(), pytest.raises(OperationalError) as excinfo:
        connection.ensure_connection()

    assert 'does not match host name "127.0.0.1"' in str(excinfo.value)


def test_a_certificate_another_ca_signed_is_refused(
    tls_database_port, authority, django_db_blocker
):
    connection = database(url(tls_database_port, ca="stranger.pem", authority=authority))
    with django_db_blocker.unblock(), pytest.raises(OperationalError) as excinfo:
        connection.ensure_connection()

    assert "certificate verify failed" in str(excinfo.value)
