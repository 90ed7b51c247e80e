"""A closed-loop HTTP load generator: K threads, each posting in a loop until the deadline.

Each thread is one client with its own token: it sends a request, waits for the answer, and
sends the next, so the offered load adapts to the server (closed loop) rather than piling up.
Every request opens a new connection (no keep-alive: gunicorn's sync workers close each one
anyway). Non-2xx answers and exceptions are counted by kind, never dropped.

The client is Python threads under one GIL: at a few hundred requests/s it can be the client,
not the server, that saturates, so absolute requests/s are a floor. It is the same client for
both sides of every comparison, so the ratios are fair.
"""

import http.client
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from tqdm import tqdm

from .common import percentiles

REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Sample:
    started: float  # time.monotonic() when the request was sent
    latency_ms: float
    status: int  # 0 when an exception left no HTTP answer
    error: str = ""  # the exception's class name, or ""


@dataclass
class LoadResult:
    seconds: float
    samples: list[Sample]  # the measured window only, warm-up excluded
    warmup_requests: int
    errors: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> list[Sample]:
        return [sample for sample in self.samples if 200 <= sample.status < 300]

    @property
    def requests_per_s(self) -> float:
        """Successful requests per second of the measured window."""
        return round(len(self.ok) / self.seconds, 1)

    @property
    def error_rate(self) -> float:
        return sum(self.errors.values()) / len(self.samples) if self.samples else 1.0

    def figures(self) -> dict:
        return {
            "requests": len(self.samples),
            "ok": len(self.ok),
            "errors": dict(self.errors),
            "warmup_requests": self.warmup_requests,
            "requests_per_s": self.requests_per_s,
            "latency_ms": percentiles([sample.latency_ms for sample in self.ok]),
        }


def closed_loop(
    url: str, *, tokens: list[str], body: dict, seconds: float, warmup: float, desc: str
) -> LoadResult:
    """POST `body` to `url` from one thread per token for warmup + seconds.

    Requests sent during the warm-up are made but not measured.
    """
    target = urlsplit(url)
    payload = json.dumps(body).encode()
    started = time.monotonic()
    measure_from = started + warmup
    deadline = measure_from + seconds
    outputs: list[list[Sample]] = [[] for _ in tokens]
    threads = [
        threading.Thread(
            target=_client, args=(target, token, payload, deadline, output), daemon=True
        )
        for token, output in zip(tokens, outputs, strict=True)
    ]
    for thread in threads:
        thread.start()
    total = warmup + seconds
    with tqdm(total=round(total, 1), desc=desc, unit="s", file=sys.stderr, leave=False) as progress:
        while any(thread.is_alive() for thread in threads):
            progress.n = round(min(time.monotonic() - started, total), 1)
            progress.set_postfix(requests=sum(map(len, outputs)), refresh=False)
            progress.refresh()
            time.sleep(0.2)
    for thread in threads:
        thread.join()

    everything = [sample for output in outputs for sample in output]
    measured = [sample for sample in everything if sample.started >= measure_from]
    errors = Counter(
        sample.error or f"HTTP {sample.status}"
        for sample in measured
        if not 200 <= sample.status < 300
    )
    return LoadResult(
        seconds=seconds,
        samples=measured,
        warmup_requests=len(everything) - len(measured),
        errors=errors,
    )


def _client(
    target: SplitResult, token: str, payload: bytes, deadline: float, output: list[Sample]
) -> None:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Token {token}",
        "Connection": "close",
    }
    while (started := time.monotonic()) < deadline:
        status, error = 0, ""
        connection = http.client.HTTPConnection(
            target.hostname, target.port, timeout=REQUEST_TIMEOUT_S
        )
        try:
            connection.request("POST", target.path, body=payload, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exception:
            error = type(exception).__name__
        finally:
            connection.close()
        output.append(Sample(started, (time.monotonic() - started) * 1000, status, error))
