"""What every app may import and nothing app-specific: error base classes, log ids, the
request middleware and the API-wide parser. It imports no app; apps import it."""
