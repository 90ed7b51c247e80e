"""Task results are stored best effort: a database outage must not fail the task itself."""

import pytest
from django.db import OperationalError
from django_celery_results.backends import DatabaseBackend
from django_celery_results.models import TaskResult

from config.celery import app
from messaging.results import BestEffortDatabaseBackend


def test_the_app_stores_results_best_effort():
    assert isinstance(app.backend, BestEffortDatabaseBackend)


def test_a_result_that_cannot_be_stored_is_logged_not_raised(monkeypatch, caplog):
    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(DatabaseBackend, "_store_result", database_down)

    app.backend.store_result("a-task-id", None, "RETRY")

    assert "not stored" in caplog.text


@pytest.mark.django_db
def test_a_result_is_still_stored_when_the_database_is_up():
    app.backend.store_result("another-task-id", {"ok": True}, "SUCCESS")

    assert TaskResult.objects.get(task_id="another-task-id").status == "SUCCESS"
