# FakeGatewayCharge and FakeGatewayFault move here from billing with their tables and rows:
# only Django's state changes (billing's 0004 forgets them). Their content types move too,
# so the permissions granted on them and the admin's history stay attached.

from django.db import migrations, models

MOVED = {"fakegatewaycharge", "fakegatewayfault"}


def move_content_types(apps, schema_editor, *, source="billing", target="fakegateway"):
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(
        schema_editor.connection.alias
    )
    for model in MOVED:
        if not content_types.filter(app_label=target, model=model).exists():
            content_types.filter(app_label=source, model=model).update(app_label=target)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, source="fakegateway", target="billing")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0003_fake_gateway_fault_targets'),  # where the tables were created
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='FakeGatewayCharge',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('idempotency_key', models.CharField(max_length=255, unique=True)),
                        ('order_ref', models.CharField(db_index=True, max_length=100)),
                        ('amount', models.DecimalField(decimal_places=2, max_digits=12)),
                        ('currency', models.CharField(max_length=3)),
                        ('outcome', models.CharField(choices=[('CHARGED', 'Charged'), ('DECLINED', 'Declined')], max_length=10)),
                        ('reference', models.CharField(max_length=100, unique=True)),
                        ('requests', models.PositiveIntegerField(default=1)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'billing_fakegatewaycharge',
                    },
                ),
                migrations.CreateModel(
                    name='FakeGatewayFault',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('remaining', models.PositiveIntegerField(default=1)),
                        ('order_ref', models.CharField(blank=True, default='', max_length=100)),
                        ('after_charge', models.BooleanField(default=False)),
                        ('crash', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'billing_fakegatewayfault',
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
