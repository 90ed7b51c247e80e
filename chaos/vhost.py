"""A vhost for one run on a broker the run does not own, made with rabbitmqctl, then deleted.

Two runs (or a run and a test suite) on one broker then never consume each other's messages,
and a broker that has never seen the project needs nothing made beforehand.
"""

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit, urlunsplit


class VhostError(RuntimeError):
    """No vhost could be made (no rabbitmqctl here, or it failed)."""


@contextlib.contextmanager
def own_vhost(url: str, prefix: str) -> Iterator[str]:
    """`url` on a fresh vhost `<prefix>-<random>`, its user given every permission there."""
    if not shutil.which("rabbitmqctl"):
        raise VhostError("making a vhost for the run needs rabbitmqctl on PATH")
    name = f"{prefix}-{secrets.token_hex(4)}"
    parts = urlsplit(url)
    user = unquote(parts.username or "guest")
    _ctl("add_vhost", name)
    try:
        _ctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield urlunsplit(parts._replace(path="/" + quote(name, safe="")))
    finally:
        with contextlib.suppress(VhostError):
            _ctl("delete_vhost", name)


def _ctl(*args: str) -> None:
    try:
        subprocess.run(  # noqa: S603 - the admin tool on PATH
            ["rabbitmqctl", "-q", *args],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise VhostError(f"rabbitmqctl {' '.join(args)} failed: {error}") from error
