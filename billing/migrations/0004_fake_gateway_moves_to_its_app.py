# The fake gateway's models now belong to fakegateway (its 0001 took them over with their
# tables): billing forgets them without touching the database.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_fake_gateway_fault_targets'),
        ('fakegateway', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='FakeGatewayCharge'),
                migrations.DeleteModel(name='FakeGatewayFault'),
            ],
        ),
    ]
