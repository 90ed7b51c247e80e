"""Creates the database cache's table, so `migrate` alone readies a database for the API.

The API's throttles keep their counts in Django's cache (CACHE_URL), a database table by
default. Django makes that table with `createcachetable`, which every deploy, script and
test harness would otherwise have to remember; it does nothing for other cache backends.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("ordering", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
