# Money moves from decimal columns in major units (19.99) to integer minor units (1999), as
# payment APIs keep it: exact on every database, so the total constraint is exact again.
# Rows are converted in Python with Decimal, never a float, and each must be a whole number
# of cents; the reverse migration converts them back. Every currency accepted so far has two
# decimal places (README), so the factor is 100 for all of them.

from decimal import Decimal

from django.db import migrations, models

SCALE = 100
BATCH = 1000
# old decimal field -> new integer field
FIELDS = {"unit_price": "unit_price_minor", "total": "total_minor"}


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
    order = apps.get_model("ordering", "Order")
    convert(order, schema_editor.connection.alias, FIELDS, to_minor)


def backward(apps, schema_editor):
    order = apps.get_model("ordering", "Order")
    back = {new: old for old, new in FIELDS.items()}
    convert(order, schema_editor.connection.alias, back, to_major)


class Migration(migrations.Migration):

    dependencies = [
        ('ordering', '0004_api_request_count_moves_to_core'),
    ]

    operations = [
        migrations.RemoveConstraint(model_name='order', name='order_unit_price_in_range'),
        migrations.RemoveConstraint(
            model_name='order', name='order_total_is_quantity_times_price'
        ),
        # Nullable while both exist, so that each direction can add its columns to full tables.
        migrations.AlterField(
            model_name='order',
            name='unit_price',
            field=models.DecimalField(decimal_places=2, max_digits=9, null=True),
        ),
        migrations.AlterField(
            model_name='order',
            name='total',
            field=models.DecimalField(decimal_places=2, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name='order',
            name='unit_price_minor',
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name='order',
            name='total_minor',
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.RunPython(forward, backward),
        migrations.RemoveField(model_name='order', name='unit_price'),
        migrations.RemoveField(model_name='order', name='total'),
        migrations.AlterField(
            model_name='order',
            name='unit_price_minor',
            field=models.PositiveBigIntegerField(),
        ),
        migrations.AlterField(
            model_name='order',
            name='total_minor',
            field=models.PositiveBigIntegerField(),
        ),
        migrations.AddConstraint(
            model_name='order',
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ('unit_price_minor__gt', 0), ('unit_price_minor__lte', 100000000)
                ),
                name='order_unit_price_in_range',
            ),
        ),
        migrations.AddConstraint(
            model_name='order',
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ('total_minor', models.F('quantity') * models.F('unit_price_minor'))
                ),
                name='order_total_is_quantity_times_price',
            ),
        ),
    ]
