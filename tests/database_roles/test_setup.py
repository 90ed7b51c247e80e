"""setup_database_roles: one table covers every table, a re-run takes back what the table no
longer gives, the owner is never handed out as a process's login, and each process picks
its own DATABASE_URL_<PROCESS> from its command line."""

import io
import os
import secrets
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from chaos.processes import ROOT
from config.processes import DATABASE_PROCESSES, PROCESSES, process_of
from database_roles import grants, services
from database_roles.grants import GRANTS, tables_by_group

from ..live.least_privilege import drop_database_role


def test_every_table_of_the_database_is_in_a_group(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        in_database = {row[0] for row in cursor.fetchall()} - {"django_migrations"}

    assert in_database == {table for tables in tables_by_group().values() for table in tables}
    assert set(GRANTS) == set(DATABASE_PROCESSES)


@pytest.fixture
def throwaway_login(django_db_blocker):
    login = services.Login(
        user=f"orderflow_test_{os.getpid()}_{secrets.token_hex(4)}_web", password="x"
    )
    yield login
    with django_db_blocker.unblock():
        connection.close()
        with connection.cursor() as cursor:
            drop_database_role(cursor, login.user)


def privilege(login, table: str, kind: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [login.user, table, kind])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_rerun_takes_back_a_privilege_the_table_no_longer_gives(throwaway_login, monkeypatch):
    services.setup_roles(logins={"web": throwaway_login})
    assert privilege(throwaway_login, "ordering_order", "INSERT")

    monkeypatch.setitem(GRANTS, "web", {**GRANTS["web"], "orders": grants.S})
    services.setup_roles(logins={"web": throwaway_login})

    assert not privilege(throwaway_login, "ordering_order", "INSERT")
    assert privilege(throwaway_login, "ordering_order", "SELECT")


@pytest.mark.django_db(transaction=True)
def test_the_owner_is_refused_as_a_process_login(settings):
    settings.DATABASE_PROCESS_URLS = {
        "web": f"postgres://{connection.settings_dict['USER']}@127.0.0.1/x"
    }

    with pytest.raises(CommandError, match="DATABASE_URL_WEB connects as"):
        call_command("setup_database_roles")


@pytest.mark.parametrize(
    ("argv", "process"),
    [
        (["/app/.venv/bin/gunicorn", "config.wsgi"], "web"),
        (["/usr/lib/python3/site-packages/gunicorn/__main__.py", "config.wsgi"], "web"),
        (["celery", "-A", "config", "worker", "--queues", "fraud,billing,maintenance"], "worker"),
        (["celery", "-A", "config", "worker", "--queues", "webhooks", "-c", "4"], "webhooks"),
        (["celery", "-A", "config", "worker", "-Qwebhooks"], "webhooks"),
        (["celery", "-A", "config", "worker", "--queues=webhooks,billing"], "worker"),
        (["manage.py", "relay_outbox"], "relay"),
        (["manage.py", "relay_outbox", "--lane", "webhooks"], "relay"),  # webhooks_relay
        (["manage.py", "consume_dead_letters"], "deadletters"),
        (["manage.py", "release"], "release"),
        (["manage.py", "migrate"], None),
        (["celery", "-A", "config", "beat"], "beat"),
        (["pytest"], None),
    ],
)
def test_a_process_is_known_by_its_command_line(argv, process):
    assert process_of(argv) == process


def test_every_procfile_process_with_a_role_is_recognised():
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    # sys.argv as each one sees it: `python manage.py x` runs with ["manage.py", "x"].
    argvs = {name: command.split() for name, command in lines.items()}
    argvs = {name: argv[1:] if argv[0] == "python" else argv for name, argv in argvs.items()}
    found = {name: process_of(argv) for name, argv in argvs.items()}

    # Each process is the one of its name, but the webhooks relay, a relay like the other.
    assert {name: process for name, process in found.items() if process} == {
        **{process: process for process in PROCESSES},
        "webhooks_relay": "relay",
    }


OWNER_URL = "postgres://the_owner:a@db.example/orderflow"
WEB_URL = "postgres://the_web:b@db.example/orderflow"


def settings_of(argv: list[str], env: dict[str, str]) -> list[str]:
    """The database user and OUTBOX_PUBLISH_ON_COMMIT of a process started with `argv`."""
    code = (
        f"import sys; sys.argv = {argv!r}; import django; django.setup();"
        "from django.conf import settings;"
        "print(settings.DATABASES['default']['USER'], settings.OUTBOX_PUBLISH_ON_COMMIT)"
    )
    names = ("DATABASE_URL", *(f"DATABASE_URL_{p.upper()}" for p in DATABASE_PROCESSES))
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in names},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_process_connects_with_its_own_url_and_the_rest_with_the_owners():
    env = {"DATABASE_URL": OWNER_URL, "DATABASE_URL_WEB": WEB_URL}

    assert settings_of(["gunicorn", "config.wsgi"], env) == ["the_web", "False"]
    assert settings_of(["manage.py", "migrate"], env) == ["the_owner", "False"]
    assert settings_of(["manage.py", "relay_outbox"], env) == ["the_owner", "False"]


def test_a_process_needs_no_owner_url_beside_its_own():
    """Where only the release phase is given DATABASE_URL, the web is PostgreSQL all the same
    (not the SQLite default, which would publish on commit)."""
    assert settings_of(["gunicorn", "config.wsgi"], {"DATABASE_URL_WEB": WEB_URL}) == [
        "the_web",
        "False",
    ]


def documented_grants() -> dict[str, dict[str, str]]:
    """docs/security.md's table under "## Database": process -> group -> letters."""
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("\n## Database\n", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|")
    ]
    header, body = rows[0], [row for row in rows[2:]]
    processes = header[2:]
    return {
        process: {row[0].strip("`"): row[2 + index] for row in body if row[2 + index] != "refused"}
        for index, process in enumerate(processes)
    }


def test_the_documented_table_is_the_one_in_code():
    in_code = {
        process: {group: "".join(p[0] for p in privileges) for group, privileges in groups.items()}
        for process, groups in GRANTS.items()
    }

    assert documented_grants() == in_code


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_the_release_phase_grants_the_roles_after_migrating(throwaway_login, settings):
    settings.DATABASE_PROCESS_URLS = {
        "web": f"postgres://{throwaway_login.user}:{throwaway_login.password}@127.0.0.1/x"
    }
    out = io.StringIO()

    call_command("release", stdout=out)

    assert f"web: {throwaway_login.user} granted" in out.getvalue()
    assert privilege(throwaway_login, "ordering_order", "INSERT")
    assert not privilege(throwaway_login, "billing_charge", "INSERT")
