"""The tables of what core/ shares."""

from django.db import models


class ApiRequestCount(models.Model):
    """Requests per client and time window: the API throttle's counters.

    One row per throttle key (user or address) and window; each request adds one with a
    single upsert (core/api/throttling.py). Windows that ended are deleted as new ones
    start, so the table holds about one row per client active in the last window.
    """

    key = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        # The table it had in ordering, where it started: renaming it would break the
        # processes still running the old code while `release` migrates.
        db_table = "ordering_apirequestcount"
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="api_request_count_once")
        ]
        indexes = [models.Index(fields=["window_start"], name="api_request_count_window_idx")]

    def __str__(self) -> str:
        return f"{self.key}: {self.count} since {self.window_start:%H:%M:%S}"
