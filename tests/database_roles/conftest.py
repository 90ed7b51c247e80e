"""The processes' database roles, made for real in the test database.

Roles belong to the whole PostgreSQL server, which other runs share: each run's are named
with a prefix of its own and dropped at the end, their privileges first (DROP OWNED BY).
"""

import contextlib
import os
import secrets

import psycopg
import pytest
from django.db import connection

from database_roles.grants import GRANTS
from database_roles.services import Login, setup_roles

from ..live.least_privilege import drop_database_role


@pytest.fixture(scope="session")
def process_logins(django_db_setup, django_db_blocker) -> dict[str, Login]:
    """A login per process, its role made by setup_roles() as the release phase would."""
    prefix = f"orderflow_test_{os.getpid()}_{secrets.token_hex(4)}"
    logins = {
        process: Login(user=f"{prefix}_{process}", password=secrets.token_urlsafe(16))
        for process in GRANTS
    }
    with django_db_blocker.unblock():
        try:
            setup_roles(logins=logins)
            yield logins
        finally:
            connection.close()  # a test may have left it connected as a role
            with connection.cursor() as cursor:
                for login in logins.values():
                    drop_database_role(cursor, login.user)


def connect(login: Login) -> psycopg.Connection:
    """A connection of that role's own to the test database, as its process would open."""
    params = connection.settings_dict
    return psycopg.connect(
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        dbname=params["NAME"],
        user=login.user,
        password=login.password,
    )


@pytest.fixture(scope="session")
def role_connections(process_logins, django_db_blocker):
    """One connection per role, kept for the run; each statement tried is rolled back."""
    opened: dict[str, psycopg.Connection] = {}

    def get(process: str) -> psycopg.Connection:
        if process not in opened:
            with django_db_blocker.unblock():
                opened[process] = connect(process_logins[process])
        return opened[process]

    yield get
    for conn in opened.values():
        conn.close()


@contextlib.contextmanager
def connected_as(login: Login):
    """Django's own connection logs in as `login` for the block: services, views and the
    ORM run with that role's privileges, as in its process. Needs a transactional test
    (the role's connection sees only what was committed)."""
    saved = {key: connection.settings_dict[key] for key in ("USER", "PASSWORD")}
    connection.close()
    connection.settings_dict.update(USER=login.user, PASSWORD=login.password)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
