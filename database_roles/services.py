"""Create each process's PostgreSQL role and grant it its privileges from grants.py."""

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.db import connection, transaction
from psycopg import sql

from core.errors import ApplicationError

from .grants import GRANTS, privileges_by_table


class RoleNotSeparate(ApplicationError):
    """A process's login would hold more than its grants: the owner, a superuser, or one of
    the owner's members."""


@dataclass(frozen=True)
class Login:
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> "Login":
        parts = urlsplit(url)
        return cls(user=unquote(parts.username or ""), password=unquote(parts.password or ""))


def setup_roles(*, logins: dict[str, Login]) -> list[str]:
    """Make each process's role hold exactly its privileges of grants.py; what was done.

    Runs on the owner's connection (the one that migrates), in one transaction, so no
    process ever sees its privileges half granted. A role that does not exist is created
    with the login's password (which needs CREATEROLE); one that exists, as a platform's
    managed credential does, keeps its password. Everything a role held on the tables
    and sequences of the schema is revoked first, so a privilege removed from grants.py
    is removed from the database too. Run it again after every migration (the release
    phase does): a new table is granted only then.
    """
    done = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database(), current_schema()")
        owner, database, schema = cursor.fetchone()
        for process, login in logins.items():
            if process not in GRANTS:
                raise ValueError(f"no grants for a process named {process!r}")
            done.append(_ensure_role(cursor, login))
            _check_separate(cursor, process, login.user, owner=owner)
            role = sql.Identifier(login.user)
            _run(
                cursor,
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}"),
                sql.Identifier(database),
                role,
            )
            _run(cursor, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}"), sql.Identifier(schema), role)
            for kind in ("TABLES", "SEQUENCES"):
                _run(
                    cursor,
                    sql.SQL(f"REVOKE ALL ON ALL {kind} IN SCHEMA {{}} FROM {{}}"),
                    sql.Identifier(schema),
                    role,
                )
            tables = privileges_by_table(process)
            for table, privileges in tables.items():
                _run(
                    cursor,
                    sql.SQL("GRANT {} ON TABLE {} TO {}"),
                    sql.SQL(", ").join(map(sql.SQL, privileges)),
                    sql.Identifier(table),
                    role,
                )
            for sequence in _sequences(cursor, [t for t, p in tables.items() if "INSERT" in p]):
                _run(cursor, sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}"), sql.SQL(sequence), role)
            done.append(f"{process}: {login.user} granted on {len(tables)} tables")
    return done


def _ensure_role(cursor, login: Login) -> str:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [login.user])
    if cursor.fetchone():
        return f"{login.user}: exists, password left as it is"
    _run(
        cursor,
        sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"),
        sql.Identifier(login.user),
        sql.Literal(login.password),
    )
    return f"{login.user}: created"


def _check_separate(cursor, process: str, user: str, *, owner: str) -> None:
    cursor.execute(
        "SELECT rolsuper OR rolbypassrls, pg_has_role(%s, %s, 'MEMBER') FROM pg_roles"
        " WHERE rolname = %s",
        [user, owner, user],
    )
    privileged, member_of_owner = cursor.fetchone()
    if user == owner or privileged or member_of_owner:
        raise RoleNotSeparate(
            f"DATABASE_URL_{process.upper()} connects as {user}, which is the owner, a "
            "superuser or a member of the owner: it would keep every privilege. Give the "
            "process a login of its own."
        )


def _sequences(cursor, tables: list[str]) -> list[str]:
    """The sequences behind those tables' serial and identity columns, quoted."""
    cursor.execute(
        "SELECT DISTINCT seq.oid::regclass::text FROM pg_depend dep"
        " JOIN pg_class seq ON seq.oid = dep.objid AND seq.relkind = 'S'"
        " WHERE dep.refobjid = ANY(%s::regclass[]) AND dep.deptype IN ('a', 'i')",
        [tables],
    )
    return sorted(row[0] for row in cursor.fetchall())


def _run(cursor, statement: sql.SQL, *parts: sql.Composable) -> None:
    """A utility statement (GRANT, CREATE ROLE) takes no parameters: names and literals are
    quoted by psycopg, never formatted in by hand."""
    cursor.execute(statement.format(*parts).as_string(connection.connection))
