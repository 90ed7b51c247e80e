"""The project's real processes (web, worker, relay...) started as subprocesses, for tests
and for the chaos harness."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


class ManagedProcess:
    """One subprocess, its output in test-artifacts/<name>.log, stopped for sure at the end."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path = ARTIFACTS,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.cwd = cwd
        self.argv = argv
        self.env = env
        self.log_dir = log_dir
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "ManagedProcess":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== start {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self._offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(  # noqa: S603 - our own commands
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What the process wrote since its last start."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            return log.read().decode(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output()):
                return
            if not self.running:
                raise RuntimeError(f"{self.name} exited early:\n{self.output()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name}: no {pattern!r} in {timeout}s:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        if self.running:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def celery_worker_argv(
    *,
    hostname: str,
    queues: str = "fraud,billing",
    concurrency: int = 2,
    loglevel: str = "INFO",
    app: str = "config",
    pool: str = "prefork",
) -> list[str]:
    """The Procfile's worker, with what tests and harnesses vary; no gossip or mingle."""
    return [
        venv_bin("celery"), "-A", app, "worker", "--queues", queues, "--pool", pool,
        "--concurrency", str(concurrency), "--hostname", hostname,
        "--without-gossip", "--without-mingle", "--loglevel", loglevel,
    ]  # fmt: skip


def gunicorn_argv(*, port: int, workers: int = 2, extra: tuple[str, ...] = ()) -> list[str]:
    """The Procfile's web process on a local port."""
    return [
        venv_bin("gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), *extra,
    ]  # fmt: skip


def relay_and_dead_letter_consumer(
    env: dict[str, str], log_dir: Path
) -> tuple[ManagedProcess, ManagedProcess]:
    """The Procfile's relay (polling twice a second) and deadletters processes."""
    relay = ManagedProcess(
        "relay", python_argv("manage.py", "relay_outbox", "--interval", "0.5"), env, log_dir
    )
    deadletters = ManagedProcess(
        "deadletters", python_argv("manage.py", "consume_dead_letters"), env, log_dir
    )
    return relay, deadletters


def start_and_wait_until_ready(
    *,
    web: ManagedProcess,
    workers: list[ManagedProcess],
    others: list[ManagedProcess],
    worker_timeout: float,
) -> None:
    """Start every process of a system, then wait until each says it is serving."""
    for process in (web, *workers, *others):
        process.start()
    for worker in workers:
        worker.wait_for_output(r"ready\.", timeout=worker_timeout)
    ready_lines = {"relay": "relay started", "deadletters": "dead-letter consumer ready"}
    for process in others:
        process.wait_for_output(ready_lines[process.name], timeout=60)
    web.wait_for_output("Booting worker", timeout=60)


def run_harness(argv: list[str], *, timeout: float, **options) -> subprocess.CompletedProcess:
    """Run a harness command (a chaos or cluster run) to its end, text output captured.

    On a timeout its whole process tree is killed before TimeoutExpired is raised: the
    system processes it started live in sessions of their own, and left running they would
    consume the next run's messages.
    """
    import psutil  # the test tooling's (requirements-dev.txt)

    process = subprocess.Popen(  # noqa: S603 - our own harness
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        tree = [process.pid, *(child.pid for child in psutil.Process(process.pid).children(True))]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
