"""`celery -A bench.plain_worker worker`: the plain implementation's worker (bench/plain.py).

bench.plain imports models (it is also a view module), so Django is set up before it loads.
"""

import django

from config.celery import app  # sets DJANGO_SETTINGS_MODULE

django.setup()

from bench import plain  # noqa: E402 - registers the plain tasks on `app`

app.conf.task_queues = [*app.conf.task_queues, plain.FRAUD, plain.BILLING]  # for -Q

__all__ = ["app"]
