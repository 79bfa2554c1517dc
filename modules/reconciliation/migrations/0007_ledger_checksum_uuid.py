"""The ledger's checksum becomes a uuid: the first 128 bits of the same SHA-256, so every line
already stored keeps being recognised (``left(checksum, 32)::uuid`` is what ``Row.checksum``
now computes). Its unique index shrinks to a third, and each of a national file's 315,000
lines is inserted into or looked up in it. Not reversible: the other 128 bits are gone."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0006_lean_ledger_indexes'),
    ]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE reconciliation_providerreport ALTER COLUMN checksum TYPE uuid USING left(checksum, 32)::uuid",
            reverse_sql=None,
            state_operations=[
                migrations.AlterField(model_name='providerreport', name='checksum', field=models.UUIDField()),
            ],
        ),
    ]
