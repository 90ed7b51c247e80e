"""Structured logs: the ids on each line, JSON or text, and the request id on messages."""

import io
import json
import logging
import logging.config
import uuid

import pytest
from celery.exceptions import Reject

import fraud.tasks  # noqa: F401 - registers fraud.screen_order, as the worker does
from config.celery import app
from core import logcontext
from messaging import outbox


def logger_writing_to(stream: io.StringIO, *, json_lines: bool) -> logging.Logger:
    config = logcontext.logging_config(level="INFO", json_lines=json_lines)
    config["handlers"]["console"]["stream"] = stream
    config["loggers"] = {"orderflow.test": config["loggers"]["ordering"]}
    config["root"] = {"level": "WARNING", "handlers": []}
    logging.config.dictConfig(config)
    return logging.getLogger("orderflow.test")


@pytest.fixture(autouse=True)
def _django_logging_back(settings):
    yield
    logging.config.dictConfig(settings.LOGGING)


def test_a_json_line_carries_every_bound_id():
    stream = io.StringIO()
    log = logger_writing_to(stream, json_lines=True)

    with logcontext.bound(request_id="req-1", order_id="o-1", attempt=2):
        log.info("charged %s", "o-1")
    log.info("outside")

    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "charged o-1"
    assert (inside["level"], inside["logger"]) == ("INFO", "orderflow.test")
    assert (inside["request_id"], inside["order_id"], inside["attempt"]) == ("req-1", "o-1", "2")
    assert inside["task_id"] is None
    assert outside["request_id"] is None
    assert set(outside) >= {"time", *logcontext.FIELDS}


def test_a_text_line_names_only_the_known_ids():
    stream = io.StringIO()
    log = logger_writing_to(stream, json_lines=False)

    with logcontext.bound(request_id="req-1", task="fraud.screen_order"):
        log.info("screened")

    assert (
        stream.getvalue()
        .rstrip()
        .endswith("INFO orderflow.test screened  request_id=req-1 task=fraud.screen_order")
    )


def test_bindings_nest_and_unwind():
    with logcontext.bound(request_id="outer"):
        with logcontext.bound(order_id="o"):
            assert logcontext.current_request_id() == "outer"
        with logcontext.bound(request_id="inner"):
            assert logcontext.current_request_id() == "inner"
        assert logcontext.current_request_id() == "outer"
    assert logcontext.current_request_id() is None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("3f1c2d4e-8a6b-4c2d-9e1f-0a1b2c3d4e5f", True),
        ("router:abc.123_x", True),
        ("x" * 201, False),
        ("has space", False),
        ("<script>", False),
        ("", False),
        (None, False),
    ],
)
def test_a_request_id_from_outside_is_kept_only_when_sane(given, kept):
    request_id = logcontext.request_id_from(given)

    assert (request_id == given) is kept
    assert logcontext.REQUEST_ID_PATTERN.fullmatch(request_id)


@pytest.mark.django_db
def test_a_message_enqueued_during_a_request_carries_its_id():
    with logcontext.bound(request_id="req-9"):
        message = outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "x"})
    other = outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "y"})

    assert message.headers == {"request_id": "req-9"}
    assert other.headers == {}


def test_every_response_names_its_request_id(client):
    response = client.get("/healthz-does-not-exist/", HTTP_X_REQUEST_ID="abc-1")

    assert response["X-Request-ID"] == "abc-1"


FORGED = "\n2026-01-01 00:00:00,000 INFO ordering.services order charged  request_id=forged"


@pytest.fixture
def text_log(settings) -> io.StringIO:
    """The project's own logging config, text format, with every handler writing here."""
    stream = io.StringIO()
    config = logcontext.logging_config(level=settings.LOG_LEVEL, json_lines=False)
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    return stream


def records_in(stream: io.StringIO) -> list[str]:
    lines = stream.getvalue().splitlines()
    # Each record is one line that starts with its time (2026-01-01 ...), nothing else.
    assert all(line[:4].isdigit() and line[4] == "-" for line in lines), lines
    return lines


def test_a_newline_in_a_message_id_or_a_field_name_cannot_forge_a_text_line(text_log):
    task = app.tasks["fraud.screen_order"]
    deliveries = [
        (f"{uuid.uuid4()}{FORGED}", {"order_id": str(uuid.uuid4())}),
        (str(uuid.uuid4()), {"order_id": str(uuid.uuid4()), f"field{FORGED}": 1}),
    ]
    for message_id, kwargs in deliveries:
        task.push_request(id=message_id)
        logcontext.bind_for_task(task.log_ids(kwargs))  # as the worker does (task_prerun)
        try:
            with pytest.raises(Reject):
                task(**kwargs)
        finally:
            logcontext.forget()
            task.pop_request()

    lines = records_in(text_log)
    assert len(lines) == 2
    assert all("dead-lettering task=fraud.screen_order" in line for line in lines)
    assert f"message_id={deliveries[0][0]}".replace("\n", "\\n") in lines[0]
    assert "unknown fields: field\\n2026-01-01" in lines[1]


def test_a_request_path_with_a_newline_stays_on_its_line(text_log, client):
    client.get("/no-such-page%0D%0A2026-01-01%2000:00:00,000%20INFO%20forged%1B[2J")

    (line,) = records_in(text_log)
    # Django writes the path's control characters as Python escapes; their backslashes are
    # escaped in turn, as JSON would.
    assert "Not Found: /no-such-page\\\\r\\\\n2026-01-01 00:00:00,000 INFO forged" in line


def test_escaping_writes_unsafe_characters_as_json_does():
    assert logcontext.escaped('a\nb\tc\x00d\\e"f\u2028g\x85é') == (
        'a\\nb\\tc\\u0000d\\\\e"f\\u2028g\\u0085é'
    )


@pytest.mark.django_db
def test_a_newline_in_a_password_guesser_s_user_agent_stays_on_its_line(text_log, client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/admin/login/",
            {"username": "admin", "password": "guess"},
            HTTP_USER_AGENT=f"curl{FORGED}",
        )

    lines = records_in(text_log)  # django-axes logs each failure, the user agent as sent
    assert len(lines) == settings.AXES_FAILURE_LIMIT + 2  # the failures, the lockout, its 429
    assert "Locking out" in lines[-2] and "curl\\n2026-01-01" in lines[-2]
