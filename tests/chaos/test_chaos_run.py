"""A bounded chaos run as part of the suite: real processes, real faults, invariants checked."""

import os
import sys

import pytest
from django.conf import settings
from django.db import connection

from chaos.processes import ARTIFACTS, ROOT, run_harness

pytestmark = [pytest.mark.broker, pytest.mark.timeout(360)]

BOUNDED_RUN = [
    "--orders",
    "200",
    "--worker-kills",
    "2",
    "--broker-restarts",
    "1",
    "--db-faults",
    "1",
    "--duplicates",
    "0.1",
    "--late",
    "0.05",
    "--poison",
    "3",
    "--seed",
    "7",
]


def test_a_bounded_chaos_run_loses_nothing_and_charges_nothing_twice():
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
            f":{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    report = ARTIFACTS / "chaos" / "bounded-run.json"

    result = run_harness(
        [sys.executable, "-m", "chaos", *BOUNDED_RUN, "--report", str(report)],
        cwd=ROOT,
        env=env,
        timeout=330,
    )

    print(result.stdout)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
