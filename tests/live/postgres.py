"""A private PostgreSQL cluster for tests that need a server configured otherwise (TLS).

As scripts/lib/services.sh starts one: initdb into a fresh directory, loopback only, on a
free port, as the `postgres` user when run as root (PostgreSQL refuses root). Never the
machine's own server, whose configuration other runs rely on.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaos.proxy import free_port


def server_bin(name: str) -> str:
    """Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin, off PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for directory in [*map(str, versions), *os.environ.get("PATH", "").split(os.pathsep)]:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError(
        f"no {name} found: install the PostgreSQL server (Debian: apt-get install postgresql)"
    )


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def private_postgres(*, settings: dict[str, str], files: dict[str, Path]) -> Iterator[int]:
    """A fresh cluster with `settings` (postgresql.conf names) and `files` copied into its
    data directory (owner-only, as PostgreSQL wants its key); its port. Removed at the end."""
    initdb, pg_ctl = server_bin("initdb"), server_bin("pg_ctl")
    directory = Path(tempfile.mkdtemp(prefix="orderflow-pg-"))
    data = directory / "data"
    port = free_port()
    try:
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        subprocess.run(  # noqa: S603
            _as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                          "--no-locale", "-E", "UTF8", "--no-sync"]),
            check=True, capture_output=True,
        )  # fmt: skip
        for name, source in files.items():
            shutil.copyfile(source, data / name)
            (data / name).chmod(0o600)
            if os.geteuid() == 0:
                shutil.chown(data / name, "postgres", "postgres")
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        started = subprocess.run(  # noqa: S603
            _as_postgres([pg_ctl, "-D", str(data), "-l", str(directory / "server.log"), "-w",
                          "-t", "30", "start", "-o",
                          f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} "
                          f"-c fsync=off {options}"]),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if started.returncode != 0:
            log = directory / "server.log"
            raise RuntimeError(
                f"the private PostgreSQL did not start: {started.stderr}\n"
                + (log.read_text()[-3000:] if log.exists() else "")
            )
        yield port
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(  # noqa: S603
                _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True, check=False,
            )  # fmt: skip
        shutil.rmtree(directory, ignore_errors=True)
