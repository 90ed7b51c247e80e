"""What every app may import and nothing app-specific: error base classes, log ids, the
request middleware, how a process exposes its metrics (metrics.py), and the API-wide parser,
throttles and pagination. It imports no app; apps import it.
It is an app only to own the throttle's counters (models.py)."""
