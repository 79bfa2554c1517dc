"""Live people and households per location, kept by triggers (``core.row_counts``), so the exact
``totalCount`` of a location-scoped list is a sum over the scope's locations instead of a scan
of every row in it (a province is hundreds of thousands of people)."""

from django.db import migrations

from core.row_counts import CountRows


class Migration(migrations.Migration):
    dependencies = [("core", "0016_row_counts"), ("individual", "0009_list_indexes_end_with_the_key")]

    operations = [
        CountRows("individual_individual", "location_id"),
        CountRows("individual_group", "location_id"),
    ]
