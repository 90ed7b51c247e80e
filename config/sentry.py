"""Error reports to Sentry: on only when SENTRY_DSN is set; without it nothing is imported.

Called at the end of config/settings.py, so every process that loads the settings reports:
web (gunicorn), worker (celery, initialised before it forks its pool), relay, dead-letter
consumer and beat. What the project reports beyond the integrations' own (dead letters) and
how a trace crosses the outbox is in core/errorreports.py.
"""


def init(
    *, dsn: str, environment: str, release: str, traces_sample_rate: float, secrets: list[str]
) -> None:
    """Start the SDK with the Django and Celery integrations; a no-op without a DSN.

    `secrets` (the passwords of the connection URLs, the secret key) are cut out of every
    event before it leaves, wherever they appear: the README promises they are never shown,
    and a frame's local variables can hold a connection URL.
    """
    if not dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    secrets = [secret for secret in secrets if secret]

    def hide_secrets(event, hint):
        return _without(event, secrets)

    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # No personal data (user, IP, cookies, bodies): the SDK's default. Not written out as
        # send_default_pii=False, which 2.x deprecates (for data_collection) with a warning at
        # every start; a test checks that the default holds.
        environment=environment or None,  # None: the SDK's own default ("production")
        release=release or None,
        # 0 is None, tracing off: an explicit 0.0 keeps the SDK's tracing on, only unsampled,
        # which cost the pipeline a third of its throughput (bench observability).
        traces_sample_rate=traces_sample_rate or None,
        before_send=hide_secrets,
        before_send_transaction=hide_secrets,
    )


def _without(value, secrets: list[str]):
    """`value` (an event, or a part of one) with each secret replaced by [Filtered]."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[Filtered]")
        return value
    if isinstance(value, dict):
        return {key: _without(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_without(item, secrets) for item in value]
    return value
