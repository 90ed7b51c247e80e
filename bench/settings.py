"""Settings of the benchmarked web process: the project's own, plus the baseline views."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
