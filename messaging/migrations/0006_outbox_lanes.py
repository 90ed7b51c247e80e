"""Outbox lanes: each relay publishes its own lane (messaging.topology.lane_of), and the
commit's NOTIFY names the lane, so a relay wakes only for its own messages."""

from django.db import migrations, models

CHANNEL = "orderflow_outbox"  # messaging.relay.NOTIFY_CHANNEL

NOTIFY_THE_LANE = f"""
CREATE OR REPLACE FUNCTION messaging_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.lane);
    RETURN NULL;
END
$$;
"""

NOTIFY_ANY = f"""
CREATE OR REPLACE FUNCTION messaging_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END
$$;
"""

# Webhook deliveries still waiting go to their lane; published rows are history.
WAITING_WEBHOOKS_TO_THEIR_LANE = """
UPDATE messaging_outboxmessage SET lane = 'webhooks'
WHERE published_at IS NULL AND task_name LIKE 'webhooks.%'
"""


def notify_the_lane(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_THE_LANE)


def notify_any(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_ANY)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0005_outbox_notify")]

    operations = [
        migrations.RemoveIndex(model_name="outboxmessage", name="outbox_unpublished_idx"),
        migrations.AddField(
            model_name="outboxmessage",
            name="lane",
            field=models.CharField(default="main", max_length=50),
        ),
        migrations.AddIndex(
            model_name="outboxmessage",
            index=models.Index(
                condition=models.Q(("published_at__isnull", True)),
                fields=["lane", "created_at"],
                name="outbox_unpublished_idx",
            ),
        ),
        migrations.RunSQL(WAITING_WEBHOOKS_TO_THEIR_LANE, migrations.RunSQL.noop),
        migrations.RunPython(notify_the_lane, notify_any),
    ]
