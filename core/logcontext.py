"""The ids every log line carries: request, order, task, message and attempt.

They are bound where they become known (RequestIdMiddleware for a request, PipelineTask for
a message) and live in a context variable, so each request and each task sees its own. A
logging filter copies them onto every record; the formatters (JSON in production, text in
development) print them. The request id also travels in the `request_id` header of every
message the request causes (messaging.outbox), and of the messages those tasks cause.
"""

import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("request_id", "order_id", "task", "task_id", "message_id", "attempt")
# What a request id from outside (Heroku's router sets X-Request-ID) may look like.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,200}")

# Control characters (C0, DEL, C1), the Unicode line separators and the backslash: a raw one
# could end a text line and start a forged one, or move a terminal's cursor. The backslash too,
# so a backslash and an "n" that a client typed read differently from an escaped newline.
UNSAFE_IN_TEXT = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029]")

_ids: ContextVar[dict[str, str] | None] = ContextVar("log_ids", default=None)


def _current() -> dict[str, str]:
    return _ids.get() or {}


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Adds ids to every log line written inside the block (None leaves an id unset)."""
    token = _ids.set({**_current(), **_as_text(ids)})
    try:
        yield
    finally:
        _ids.reset(token)


def bind_for_task(ids: dict) -> None:
    """Replaces the ids for the task a worker process starts (its previous task's go)."""
    _ids.set(_as_text(ids))


def forget() -> None:
    _ids.set(None)


def _as_text(ids: dict) -> dict[str, str]:
    return {name: str(value)[:200] for name, value in ids.items() if value is not None}


def current_request_id() -> str | None:
    return _current().get("request_id")


def sane_request_id(value: object) -> str | None:
    """A request id from outside (a header, a message), or None when it is not a sane one:
    a log line must not carry what a client chose to write into it."""
    if isinstance(value, str) and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is a sane one, else a new one."""
    return sane_request_id(value) or uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Puts the bound ids on each record (None where unknown) for the JSON formatter, and
    the known ones as `ids` ("request_id=... order_id=...") for the text formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _current()
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, ids.get(name))
        record.ids = " ".join(f"{name}={ids[name]}" for name in FIELDS if name in ids)
        return True


def escaped(text: str) -> str:
    """`text` with each unsafe character written as JSON writes it (\\n, \\u001b, \\\\)."""
    return UNSAFE_IN_TEXT.sub(lambda match: json.dumps(match.group())[1:-1], text)


class TextFormatter(logging.Formatter):
    """The text format, one line per record whatever its values hold: message ids, task names,
    field names and paths come from clients and messages, and are escaped here, once, for
    every call site. A traceback stays on the record's line too (its newlines escaped), as
    the JSON format keeps it."""

    def format(self, record: logging.LogRecord) -> str:
        return escaped(super().format(record))


def logging_config(*, level: str, json_lines: bool) -> dict:
    """Django's LOGGING: one console handler, the project's loggers and Celery's at `level`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"ids": {"()": ContextFilter}},
        "formatters": {
            "text": {
                "()": TextFormatter,
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s  %(ids)s",
            },
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": " ".join(
                    f"%({name})s" for name in ("levelname", "name", "message", *FIELDS)
                ),
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",  # ISO 8601, UTC
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if json_lines else "text",
                "filters": ["ids"],
            }
        },
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            name: {"level": level, "handlers": ["console"], "propagate": False}
            for name in (
                "ordering",
                "fraud",
                "billing",
                "messaging",
                "config",
                "celery",
                "core",
                "monitoring",
            )
        },
    }
