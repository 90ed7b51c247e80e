"""dashboard's PercentileCont on SQLite, which has no percentile_cont aggregate.

A Python aggregate is registered on each new SQLite connection, and PercentileCont gets an
`as_sqlite` that calls it: Django's documented way to give an expression another SQL on
one backend (`Length.as_sqlserver = ...` in its docs), so dashboard's selectors keep one
code path and dashboard's module knows only PostgreSQL.
"""

import math

from django.db.backends.signals import connection_created

from dashboard.aggregates import PercentileCont

SQLITE_FUNCTION = "ORDERFLOW_PERCENTILE_CONT"


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """What PostgreSQL's percentile_cont computes: interpolate between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below, above = math.floor(position), math.ceil(position)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


class _SqlitePercentileCont:
    """The SQLite aggregate behind PercentileCont on SQLite: step() per row, then finalize()."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return percentile_cont(self.values, self.fraction)


def as_sqlite(expression, compiler, connection, **extra_context):
    return expression.as_sql(
        compiler,
        connection,
        function=SQLITE_FUNCTION,
        template="%(function)s(%(expressions)s, %(fraction)r)",
        **extra_context,
    )


def register_on_sqlite(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate(SQLITE_FUNCTION, 2, _SqlitePercentileCont)


def install() -> None:
    PercentileCont.as_sqlite = as_sqlite
    connection_created.connect(register_on_sqlite, dispatch_uid="orderflow_percentile_cont")
