from django.db import migrations, models


class Migration(migrations.Migration):
    """A dead letter names what its message was about, as its task says, not an order."""

    dependencies = [("messaging", "0003_dead_letter_stale")]

    operations = [
        migrations.RenameField(model_name="deadletter", old_name="order_id", new_name="subject_id"),
    ]
