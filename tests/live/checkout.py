"""A copy of the project in a temporary directory, as a fresh clone would be."""

import os
import shutil
import sys
from pathlib import Path

from chaos.processes import ROOT

NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "var", "db.sqlite3", "staticfiles", "test-artifacts", "__pycache__", ".*cache"
)


def fresh_checkout(directory: Path) -> Path:
    checkout = directory / "orderflow"
    shutil.copytree(ROOT, checkout, ignore=NOT_COPIED)
    return checkout


def bare_env(**extra: str) -> dict[str, str]:
    """This test run's environment without the services and settings it was given."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "CELERY_BROKER_URL", "CLOUDAMQP_URL", "SECRET_KEY"}
        and not name.startswith(("DJANGO_", "PYTEST_"))
    }
    # The virtualenv this suite runs in already holds requirements.txt: no download needed.
    return env | {"VENV": str(Path(sys.executable).parent.parent), **extra}
