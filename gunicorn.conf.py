"""gunicorn's settings (it reads this file from the working directory), from the environment.

Command-line options win over these: tests pass --bind and --workers of their own.
"""

import os

# Heroku-style platforms give the web process its port in PORT.
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Worker processes; Heroku sets WEB_CONCURRENCY from the dyno's memory.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A worker silent this long is killed and replaced (Heroku's router gives up at 30 s).
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# Trust X-Forwarded-Proto/-For from any address: the router is the only way in on such a
# platform. Name the proxy's address instead when the web process can be reached directly.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
accesslog = "-"
# gunicorn's control socket lives at one path per user, so two gunicorns on a machine (a
# developer's and the tests') would take it from each other; nothing here uses it.
control_socket_disable = True


# Metrics in multiprocess mode (monitoring/exposition.py), when PROMETHEUS_MULTIPROC_DIR is set
# in gunicorn's environment: the master empties the directory before it forks any worker, and
# drops a dead worker's live-gauge files (its counters stay counted).
def on_starting(server) -> None:
    from core.metrics import empty_multiprocess_dir

    empty_multiprocess_dir()


def child_exit(server, worker) -> None:
    from core.metrics import process_exited

    process_exited(worker.pid)
