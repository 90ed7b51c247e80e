# ApiRequestCount now belongs to core (core's 0001 took it over with its table): ordering
# forgets it without touching the database.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('ordering', '0003_api_request_count'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='ApiRequestCount')],
        ),
    ]
