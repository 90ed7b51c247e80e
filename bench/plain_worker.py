"""`celery -A bench.plain_worker worker`: the plain implementation's worker (bench/plain.py).

bench.plain imports models (it is also a view module), so Django is set up before it loads.
"""

import django

from config.celery import app  # sets DJANGO_SETTINGS_MODULE

django.setup()

from bench import plain  # noqa: E402, F401 - registers the plain tasks and queues on `app`

__all__ = ["app"]
