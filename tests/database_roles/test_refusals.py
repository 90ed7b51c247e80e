"""Each process's role, connected as its process would, is refused what grants.py does not
give it: by PostgreSQL itself, statement by statement."""

import psycopg
import pytest
from django.db import connection
from psycopg import errors

from database_roles.grants import GRANTS, GROUPS, PRIVILEGES, tables_by_group

pytestmark = pytest.mark.django_db


def refused_cells() -> list[tuple[str, str, str]]:
    """(process, table group, privilege) for every privilege a role does not hold."""
    return [
        (process, group, privilege)
        for process, grants in GRANTS.items()
        for group in GROUPS
        for privilege in PRIVILEGES
        if privilege not in grants.get(group, ())
    ]


def attempt(conn: psycopg.Connection, statement: str) -> Exception | None:
    """Run one statement as the role and roll it back; the error it met, if any."""
    try:
        conn.execute(statement)
    except psycopg.Error as error:
        return error
    finally:
        conn.rollback()
    return None


def first_column(conn: psycopg.Connection, table: str) -> str:
    row = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum LIMIT 1",
        [table],
    ).fetchone()
    conn.rollback()
    return row[0]


def statement(conn: psycopg.Connection, privilege: str, table: str) -> str:
    """The least statement that needs `privilege` on `table` and nothing else; it would
    change nothing even if it ran. The names are the project's own tables."""
    column = first_column(conn, table)
    return {
        "SELECT": f'SELECT 1 FROM "{table}" WHERE false',  # noqa: S608
        "INSERT": f'INSERT INTO "{table}" DEFAULT VALUES',
        "UPDATE": f'UPDATE "{table}" SET "{column}" = DEFAULT WHERE false',  # noqa: S608
        "DELETE": f'DELETE FROM "{table}" WHERE false',  # noqa: S608
    }[privilege]


def assert_refused(conn: psycopg.Connection, sql: str) -> None:
    error = attempt(conn, sql)
    assert isinstance(error, errors.InsufficientPrivilege), f"{sql!r} was not refused: {error!r}"


@pytest.mark.parametrize(("process", "group", "privilege"), refused_cells(), ids="-".join)
def test_refused(role_connections, process, group, privilege):
    conn = role_connections(process)
    tables = tables_by_group()[group]
    assert tables, f"no table in {group}"

    for table in tables:
        assert_refused(conn, statement(conn, privilege, table))


@pytest.mark.parametrize(
    ("process", "group", "privilege"),
    [
        (process, group, privilege)
        for process, grants in GRANTS.items()
        for group, privileges in grants.items()
        for privilege in privileges
    ],
    ids="-".join,
)
def test_granted(role_connections, process, group, privilege):
    """What the table gives is given: the same statements pass the privilege check (an
    INSERT of no values then fails on a NOT NULL column, or inserts and is rolled back)."""
    conn = role_connections(process)

    for table in tables_by_group()[group]:
        error = attempt(conn, statement(conn, privilege, table))
        assert not isinstance(error, errors.InsufficientPrivilege), error


# The refusals that matter most, written out on their own ---------------------------------


def test_the_web_role_cannot_write_a_charge(role_connections):
    web = role_connections("web")

    assert_refused(
        web,
        "INSERT INTO billing_charge (order_id, amount_minor, currency, status, gateway_reference,"
        " decline_reason, attempts, last_error, created_at, updated_at) VALUES"
        " (gen_random_uuid(), 100, 'EUR', 'SUCCEEDED', 'forged', '', 1, '', now(), now())",
    )
    assert_refused(web, "UPDATE billing_charge SET status = 'SUCCEEDED'")
    assert_refused(web, "DELETE FROM billing_charge")


def test_the_web_role_cannot_write_the_gateway_ledger(role_connections):
    web = role_connections("web")

    assert_refused(
        web,
        "INSERT INTO billing_fakegatewaycharge (idempotency_key, order_ref, amount_minor,"
        " currency, outcome, reference, requests, created_at) VALUES"
        " ('forged', 'forged', 100, 'EUR', 'CHARGED', 'forged', 1, now())",
    )
    assert_refused(web, "UPDATE billing_fakegatewaycharge SET outcome = 'CHARGED'")


def test_the_relay_role_cannot_write_or_read_orders(role_connections):
    relay = role_connections("relay")

    assert_refused(relay, "UPDATE ordering_order SET status = 'PROCESSED'")
    assert_refused(relay, "SELECT * FROM ordering_order")


@pytest.mark.parametrize("process", GRANTS)
def test_no_process_role_can_change_the_schema(role_connections, process):
    conn = role_connections(process)

    assert_refused(conn, "ALTER TABLE ordering_order ADD COLUMN forged integer")
    assert_refused(conn, "ALTER TABLE billing_charge DISABLE TRIGGER ALL")
    assert_refused(conn, "DROP TABLE billing_charge")
    assert_refused(conn, "TRUNCATE billing_fakegatewaycharge")
    assert_refused(conn, "CREATE TABLE forged (id integer)")
    assert_refused(conn, "CREATE INDEX forged ON ordering_order (status)")
    assert_refused(conn, "ALTER TABLE billing_charge OWNER TO CURRENT_USER")


def test_the_owner_is_who_migrated(django_db_blocker, process_logins):
    """The migrations' connection (DATABASE_URL) owns every table; no process role does."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = current_schema()"
        )
        owners = {row[0] for row in cursor.fetchall()}
    assert owners == {connection.settings_dict["USER"]}
    assert owners.isdisjoint(login.user for login in process_logins.values())
