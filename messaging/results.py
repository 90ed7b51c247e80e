"""Task results, stored best effort: a result is for people to look at, not part of the work.

django-celery-results keeps results in the database. When the database is down, Celery's
attempt to store a task's state fails outside the task body, and Celery then treats the task
as failed: the message is rejected (dead-lettered) even though the task retried or succeeded.
This backend logs such a failure and carries on, so the broker message's fate depends only
on what the task did.
"""

import logging

from django.db import DatabaseError
from django_celery_results.backends import DatabaseBackend

logger = logging.getLogger(__name__)


class BestEffortDatabaseBackend(DatabaseBackend):
    def store_result(self, task_id, result, state, traceback=None, request=None, **kwargs):
        try:
            return super().store_result(task_id, result, state, traceback, request, **kwargs)
        except DatabaseError as error:
            logger.warning("result of task %s (%s) not stored: %s", task_id, state, error)
            return result
