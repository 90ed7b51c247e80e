"""Static files as production serves them: collectstatic, then whitenoise in gunicorn, DEBUG off."""

import re
import subprocess
import sys
import urllib.request

import pytest

from chaos.http import wait_for_http
from chaos.processes import ARTIFACTS, ManagedProcess, venv_bin
from chaos.proxy import free_port

from ..live.checkout import bare_env, fresh_checkout

pytestmark = pytest.mark.timeout(120)


def test_the_admin_css_is_served_by_gunicorn_with_debug_off(tmp_path):
    checkout = fresh_checkout(tmp_path)
    port = free_port()
    env = bare_env(
        DEBUG="0",
        SECRET_KEY="static-files-test",
        SECURE_SSL_REDIRECT="0",
        CELERY_BROKER_URL="filesystem://",
        PORT=str(port),
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    # gunicorn as the Procfile runs it: its settings from the checkout's gunicorn.conf.py.
    web = ManagedProcess(
        "web-static", [venv_bin("gunicorn"), "config.wsgi"], env, ARTIFACTS, cwd=checkout
    ).start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/healthz")
        with urllib.request.urlopen(base + "/admin/login/") as page:  # noqa: S310 - local
            stylesheet = re.search(
                r'href="(/static/admin/css/base\.\w+\.css)"', page.read().decode()
            )
        assert stylesheet, "the login page links no hashed admin stylesheet"
        with urllib.request.urlopen(base + stylesheet.group(1)) as css:  # noqa: S310 - local
            assert css.status == 200
            assert css.headers["Content-Type"].startswith("text/css")
            assert "immutable" in css.headers["Cache-Control"]  # hashed names cache forever
    finally:
        web.stop()
