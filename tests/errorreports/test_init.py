"""Sentry is on exactly when SENTRY_DSN is set, in every process that loads the settings."""

import json
import os
import subprocess
import sys

from django.conf import settings

DSN = "http://public@127.0.0.1:9/1"  # never contacted: these processes send nothing

PROBE = (
    "import sys, django; django.setup(); import sentry_sdk; client = sentry_sdk.get_client(); "
    "print('on' if client.is_active() else 'off', 'pii' if client.should_send_default_pii() else "
    "'no-pii', sep='/')"
)
LOADED = "import sys, django; django.setup(); print('sentry_sdk' in sys.modules)"


def settings_loaded(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    return subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=environ | {"DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()[-1]


def test_without_a_dsn_sentry_is_neither_imported_nor_initialised():
    assert settings_loaded(LOADED) == "False"
    assert settings_loaded(PROBE) == "off/no-pii"


def test_with_a_dsn_every_process_loading_the_settings_reports():
    assert settings_loaded(PROBE, SENTRY_DSN=DSN) == "on/no-pii"


SCRUBBED = (
    "import django; django.setup(); import json, sentry_sdk; "
    "hook = sentry_sdk.get_client().options['before_send']; "
    "event = {'message': 'connecting to amqp://app:broker-secret@mq.example:5672//', "
    "'extra': {'vars': ['postgres://app:db-secret@db.example/orderflow', 'key-secret']}}; "
    "print(json.dumps(hook(event, {})))"
)


def test_reports_never_carry_the_connection_passwords_or_the_secret_key():
    event = json.loads(
        settings_loaded(
            SCRUBBED,
            SENTRY_DSN=DSN,
            DATABASE_URL="postgres://app:db-secret@db.example/orderflow",
            CELERY_BROKER_URL="amqp://app:broker-secret@mq.example:5672//",
            SECRET_KEY="key-secret",
        )
    )

    assert "secret" not in json.dumps(event)
    assert event["message"] == "connecting to amqp://app:[Filtered]@mq.example:5672//"


TRACING = (
    "import django; django.setup(); import sentry_sdk; "
    "print(sentry_sdk.get_client().options['traces_sample_rate'])"
)


def test_a_sample_rate_of_0_turns_sentry_tracing_off_not_merely_unsampled():
    # An explicit 0.0 keeps the SDK's tracing on, only unsampled; the bench
    # measured that at a third of the pipeline's throughput (docs/benchmarks, observability).
    assert settings_loaded(TRACING, SENTRY_DSN=DSN) == "None"
    assert settings_loaded(TRACING, SENTRY_DSN=DSN, SENTRY_TRACES_SAMPLE_RATE="0.25") == "0.25"
