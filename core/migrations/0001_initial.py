# ApiRequestCount moves here from ordering with its table and rows: only Django's state
# changes (ordering's 0004 forgets it). Its content type moves too, so the permissions
# granted on it and the admin's history stay attached.

from django.db import migrations, models

MOVED = {"apirequestcount"}


def move_content_types(apps, schema_editor, *, source="ordering", target="core"):
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(
        schema_editor.connection.alias
    )
    for model in MOVED:
        if not content_types.filter(app_label=target, model=model).exists():
            content_types.filter(app_label=source, model=model).update(app_label=target)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, source="core", target="ordering")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('ordering', '0003_api_request_count'),  # where the table was created
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ApiRequestCount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=200)),
                        ('window_start', models.DateTimeField()),
                        ('count', models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        'db_table': 'ordering_apirequestcount',
                        'indexes': [models.Index(fields=['window_start'], name='api_request_count_window_idx')],
                        'constraints': [models.UniqueConstraint(fields=('key', 'window_start'), name='api_request_count_once')],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
