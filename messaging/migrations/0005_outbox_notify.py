"""Wake the relay at each commit that writes an unpublished outbox row (PostgreSQL NOTIFY).

NOTIFY is delivered when the transaction commits, and once per transaction however many rows
it wrote; a replay, which sets a kept row unpublished again, notifies too. Other databases
get nothing here: the relay polls them.
"""

from django.db import migrations

CHANNEL = "orderflow_outbox"  # messaging.relay.NOTIFY_CHANNEL

CREATE = f"""
CREATE FUNCTION messaging_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER messaging_outbox_notify
    AFTER INSERT OR UPDATE OF published_at ON messaging_outboxmessage
    FOR EACH ROW WHEN (NEW.published_at IS NULL)
    EXECUTE FUNCTION messaging_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS messaging_outbox_notify ON messaging_outboxmessage;
DROP FUNCTION IF EXISTS messaging_outbox_notify();
"""


def create_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0004_dead_letter_subject")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
