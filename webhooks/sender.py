"""One webhook request: POST the body to the checked address, and judge the answer.

What a receiver sends back is not trusted: only the status code is read, plus a short,
escaped excerpt of the body for the owner to debug with; its headers are never read or
logged. Redirects are not followed (a 3xx is a failure), proxies from the environment are
not used, and each request has a connection of its own: a pooled one may have been verified
for another name on the same address.
"""

import functools
import ssl
import time
from dataclasses import dataclass

import httpx
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from .targets import Target

USER_AGENT = "Orderflow-Webhooks/1"
EXCERPT_BYTES = 200  # of a failed answer's body, kept on the delivery
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Answer:
    """How a request went: the status code (None without an answer) and what went wrong."""

    status_code: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """Worth another attempt: no answer, a 5xx, a 408 or a 429. Other 4xx and 3xx are
        the receiver's settled answer."""
        code = self.status_code
        return code is None or code >= 500 or code in RETRYABLE_STATUSES


@functools.cache
def tls_context() -> ssl.SSLContext:
    """How every request verifies TLS (httpx's defaults: certifi's CAs, the name checked),
    made once per process: loading the CAs costs some 30 ms of CPU, more than all the rest
    of a delivery. It keeps no connection or session; each request verifies on its own."""
    return httpx.create_ssl_context()


def post(*, target: Target, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `target`, waiting WEBHOOK_TIMEOUT_SECONDS per read at most, and in all
    until the task's soft time limit (a little over WEBHOOK_DEADLINE_SECONDS)."""
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    deadline = time.monotonic() + settings.WEBHOOK_DEADLINE_SECONDS
    try:
        with (
            httpx.Client(
                verify=tls_context(), timeout=timeout, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST", target.connect_url, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            if 200 <= response.status_code < 300:
                return Answer(response.status_code)
            excerpt = _excerpt(response, deadline)
    except httpx.TimeoutException:
        return Answer(None, f"no answer within {settings.WEBHOOK_TIMEOUT_SECONDS:g} s")
    except SoftTimeLimitExceeded:
        # The task's time limit (webhooks.tasks): a receiver that trickles its answer, each
        # read inside the timeout, is cut off here.
        return Answer(None, "no complete answer within the task's time limit")
    except httpx.TransportError as error:
        return Answer(None, f"connection failed: {type(error).__name__}: {_escaped(str(error))}")
    what = "a redirect, which is not followed" if 300 <= response.status_code < 400 else "refused"
    return Answer(response.status_code, f"HTTP {response.status_code}, {what}: {excerpt}")


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The first EXCERPT_BYTES of the body, escaped, read until the deadline at most."""
    data = b""
    for chunk in response.iter_raw():
        data += chunk
        if len(data) >= EXCERPT_BYTES or time.monotonic() > deadline:
            break
    return _escaped(data[:EXCERPT_BYTES].decode("utf-8", "replace"))


def _escaped(text: str) -> str:
    """Printable on one line: what a receiver writes cannot forge a log line or markup."""
    return text.encode("unicode_escape").decode("ascii")[:EXCERPT_BYTES]
