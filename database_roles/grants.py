"""Which PostgreSQL privileges each process's role holds: the one table, read by
`manage.py setup_database_roles` and kept equal to docs/security.md by a test.

The owner (DATABASE_URL, which the release phase migrates with) owns every table; a process
that connects with DATABASE_URL_<PROCESS> gets only what its job needs, so a bug or an
injection in the web process cannot write charges, the gateway's ledger or the schema.
A privilege a role lacks here is refused by the database itself.
"""

from django.apps import apps

SELECT, INSERT, UPDATE, DELETE = "SELECT", "INSERT", "UPDATE", "DELETE"
PRIVILEGES = (SELECT, INSERT, UPDATE, DELETE)

# A table group: the models (app label.Model) or whole apps (app label) whose tables it
# holds. A model's own entry wins over its app's. Every model must be in one group.
GROUPS: dict[str, tuple[str, ...]] = {
    "orders": ("ordering.Order", "ordering.OrderEvent"),
    "fraud-assessments": ("fraud.FraudAssessment",),
    "fraud-blocklist": ("fraud.BlockedBuyer",),
    "charges": ("billing.Charge",),
    "gateway-ledger": ("fakegateway.FakeGatewayCharge",),
    "gateway-faults": ("fakegateway.FakeGatewayFault",),
    "outbox": ("messaging.OutboxMessage",),
    "applied-messages": ("messaging.ProcessedMessage",),
    "dead-letters": ("messaging.DeadLetter",),
    "webhook-endpoints": ("webhooks.WebhookEndpoint",),
    "webhook-deliveries": ("webhooks.WebhookDelivery",),
    "task-results": ("django_celery_results",),
    "throttle-counters": ("core.ApiRequestCount",),
    "accounts": ("auth", "authtoken"),
    "sessions": ("sessions",),
    "login-attempts": ("axes",),
    "admin-log": ("admin",),
    "catalog": ("contenttypes", "auth.Permission"),
}

S, SI, SU, SD = (SELECT,), (SELECT, INSERT), (SELECT, UPDATE), (SELECT, DELETE)
SIU, SID, SIUD = (SELECT, INSERT, UPDATE), (SELECT, INSERT, DELETE), PRIVILEGES

# process -> table group -> privileges. A group a process does not name is refused to it.
GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    # The API and the admin: orders and cancels, replays and discards (which resume orders
    # and write outbox rows), webhook endpoints, logins, sessions, the throttle's counters.
    # It reads the pipeline's records and writes none of them: no charge, no ledger entry,
    # no assessment, no applied-message record.
    "web": {
        "orders": SIU,
        "fraud-assessments": S,
        "fraud-blocklist": SIUD,
        "charges": S,
        "gateway-ledger": S,
        "gateway-faults": SIUD,
        "outbox": SIU,
        "applied-messages": S,
        "dead-letters": SU,
        "webhook-endpoints": SIU,
        "webhook-deliveries": SIU,
        "task-results": SD,
        "throttle-counters": SIUD,
        "accounts": SIUD,
        "sessions": SIUD,
        "login-attempts": SIUD,
        "admin-log": SID,
        "catalog": S,
    },
    # Fraud screening and billing (the gateway's ledger is the fake gateway's, in the
    # worker's process), and beat's housekeeping: the prunes delete old bookkeeping.
    "worker": {
        "orders": SIU,
        "fraud-assessments": SIU,  # a replayed screening replaces its assessment
        "fraud-blocklist": S,
        "charges": SIU,
        "gateway-ledger": SIU,
        "gateway-faults": SU,
        "outbox": SIUD,
        "applied-messages": SID,
        "dead-letters": SD,
        "webhook-endpoints": S,
        "webhook-deliveries": SID,
        "task-results": SIUD,
        "accounts": S,
    },
    # Webhook deliveries: each attempt's outcome, and an endpoint's failure count.
    "webhooks": {
        "webhook-endpoints": SU,
        "webhook-deliveries": SU,
        "task-results": SIU,
    },
    # The outbox relay: reads what is due and marks what the broker confirmed.
    "relay": {
        "outbox": SU,
    },
    # The dead-letter consumer: records dead letters, fails their orders (whose change of
    # status may be told to webhook endpoints) and their webhook deliveries.
    "deadletters": {
        "orders": SIU,
        "outbox": SI,
        "dead-letters": SIU,
        "webhook-endpoints": SU,
        "webhook-deliveries": SIU,
        "task-results": S,
        "accounts": S,
    },
}


def group_of(model) -> str:
    """The table group a model's table is in; LookupError for one no group names."""
    for key in (model._meta.label, model._meta.app_label):
        for group, members in GROUPS.items():
            if key in members:
                return group
    raise LookupError(
        f"{model._meta.label} ({model._meta.db_table}) is in no table group of "
        "database_roles/grants.py: add it, and decide which processes may write it."
    )


def tables_by_group() -> dict[str, list[str]]:
    """Every table of the installed models (many-to-many tables too), by table group."""
    tables: dict[str, list[str]] = {group: [] for group in GROUPS}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            tables[group_of(model)].append(model._meta.db_table)
    return {group: sorted(names) for group, names in tables.items()}


def privileges_by_table(process: str) -> dict[str, tuple[str, ...]]:
    """table -> privileges of `process`'s role, for every table it may touch at all."""
    return {
        table: privileges
        for group, privileges in GRANTS[process].items()
        for table in tables_by_group()[group]
    }
