# The fake gateway's ledger keeps amounts in integer minor units (1999 for 19.99), as Stripe
# does; converted exactly both ways, as ordering's 0005 does.

from decimal import Decimal

from django.db import migrations, models

SCALE = 100
BATCH = 1000
# old decimal field -> new integer field
FIELDS = {"amount": "amount_minor"}


def to_minor(value: Decimal) -> int:
    minor = Decimal(value) * SCALE
    if minor != minor.to_integral_value():
        raise ValueError(f"{value} is not a whole number of cents")
    return int(minor)


def to_major(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def convert(model, alias, fields, how) -> None:
    """Fills fields' targets from their sources, row by row in batches of BATCH."""
    batch = []
    for row in model.objects.using(alias).order_by("pk").iterator(chunk_size=BATCH):
        for source, target in fields.items():
            setattr(row, target, how(getattr(row, source)))
        batch.append(row)
        if len(batch) == BATCH:
            model.objects.using(alias).bulk_update(batch, list(fields.values()))
            batch = []
    if batch:
        model.objects.using(alias).bulk_update(batch, list(fields.values()))


def forward(apps, schema_editor):
    order = apps.get_model("fakegateway", "FakeGatewayCharge")
    convert(order, schema_editor.connection.alias, FIELDS, to_minor)


def backward(apps, schema_editor):
    order = apps.get_model("fakegateway", "FakeGatewayCharge")
    back = {new: old for old, new in FIELDS.items()}
    convert(order, schema_editor.connection.alias, back, to_major)


class Migration(migrations.Migration):

    dependencies = [
        ('fakegateway', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='fakegatewaycharge',
            name='amount',
            field=models.DecimalField(decimal_places=2, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name='fakegatewaycharge',
            name='amount_minor',
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.RunPython(forward, backward),
        migrations.RemoveField(model_name='fakegatewaycharge', name='amount'),
        migrations.AlterField(
            model_name='fakegatewaycharge',
            name='amount_minor',
            field=models.PositiveBigIntegerField(),
        ),
    ]
