"""Percentiles computed in the database: PostgreSQL's percentile_cont.

(On SQLite, for development only, the sqlite_dev app supplies the same aggregate.)
"""

from django.db.models import Aggregate


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
