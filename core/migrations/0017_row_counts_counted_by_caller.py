"""The counting trigger function skips the statements of a bulk path that counts its own rows
(``core.row_counts.counted_by_caller``, named in a transaction-local setting); with the setting
unset it counts exactly as before, so going back needs no other function."""

from django.db import migrations

from core.row_counts import COUNT_FUNCTIONS


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0016_row_counts"),
    ]

    operations = [
        migrations.RunSQL(COUNT_FUNCTIONS, reverse_sql=migrations.RunSQL.noop),
    ]
