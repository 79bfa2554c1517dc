from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from core.history import TrackHistory


class Migration(migrations.Migration):
    """Trigram indexes make name_Icontains (UPPER(name) LIKE '%x%') an index scan on a
    registry of millions instead of a full table scan."""

    dependencies = [("individual", "0001_initial"), ("core", "0002_history_triggers")]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(
            """
            CREATE INDEX individual_last_name_trgm ON individual_individual
                USING gin ((UPPER(last_name::text)) gin_trgm_ops);
            CREATE INDEX individual_first_name_trgm ON individual_individual
                USING gin ((UPPER(first_name::text)) gin_trgm_ops);
            CREATE INDEX individual_group_code_trgm ON individual_group
                USING gin ((UPPER(code::text)) gin_trgm_ops);
            """,
            """
            DROP INDEX individual_last_name_trgm;
            DROP INDEX individual_first_name_trgm;
            DROP INDEX individual_group_code_trgm;
            """,
        ),
        TrackHistory("individual_individual"),
        TrackHistory("individual_group"),
        TrackHistory("individual_groupindividual"),
    ]
