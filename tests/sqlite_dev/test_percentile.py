"""The dashboard's percentile on SQLite (development only) computes what PostgreSQL's does."""

import sqlite3

import pytest
from django.db import connection

from sqlite_dev import percentile

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "values", [[1.0], [3.0, 1.0], [5.0, 1.0, 4.0, 2.0, 3.0], [0.5, 10.0, 10.0, 7.25, 99.0, 1.0]]
)
@pytest.mark.parametrize("fraction", [0, 0.5, 0.95, 1])
def test_the_sqlite_percentile_matches_postgresql_s_percentile_cont(values, fraction):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY v) FROM unnest(%s::float8[]) v",
            [fraction, values],
        )
        expected = cursor.fetchone()[0]
    sqlite = sqlite3.connect(":memory:")
    percentile.register_on_sqlite(None, _SqliteWrapper(sqlite))
    sqlite.execute("CREATE TABLE t (v REAL)")
    sqlite.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])

    (got,) = sqlite.execute(
        f"SELECT {percentile.SQLITE_FUNCTION}(v, ?) FROM t",  # noqa: S608 - a constant
        [fraction],
    ).fetchone()

    assert got == pytest.approx(expected)


class _SqliteWrapper:
    """What Django's connection_created signal passes: vendor, and the DB-API connection."""

    vendor = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.connection = raw
