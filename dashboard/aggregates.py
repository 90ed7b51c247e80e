"""Percentiles computed in the database: PostgreSQL's percentile_cont, and the same on SQLite.

SQLite has no percentile aggregate; like Django's own STDDEV_POP there, one is registered on
each new SQLite connection (DashboardConfig.ready), so selectors have one code path.
"""

import math

from django.db.backends.signals import connection_created
from django.db.models import Aggregate

SQLITE_FUNCTION = "ORDERFLOW_PERCENTILE_CONT"


class PercentileCont(Aggregate):
    """The continuous percentile of an expression (linear interpolation, like PostgreSQL's).

    `PercentileCont(F("x"), fraction=0.95)` is the 95th percentile; NULLs are ignored and an
    empty group gives NULL. Works on numbers and on durations.
    """

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)r) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, fraction: float, **extra) -> None:
        fraction = float(fraction)
        if not 0 <= fraction <= 1:
            raise ValueError(f"a percentile's fraction is between 0 and 1, not {fraction}")
        super().__init__(expression, fraction=fraction, **extra)

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            function=SQLITE_FUNCTION,
            template="%(function)s(%(expressions)s, %(fraction)r)",
            **extra_context,
        )


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """What percentile_cont computes: interpolate between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below, above = math.floor(position), math.ceil(position)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


class _SqlitePercentileCont:
    """The SQLite aggregate behind PercentileCont.as_sqlite."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return percentile_cont(self.values, self.fraction)


def register_on_sqlite(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate(SQLITE_FUNCTION, 2, _SqlitePercentileCont)


def connect() -> None:
    connection_created.connect(register_on_sqlite, dispatch_uid="orderflow_percentile_cont")
