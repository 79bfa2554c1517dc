"""The import's report moves to the core's ``ImportReport`` / ``ImportIssue`` (one report for
every import): the reports of imports made before are copied there, then the module's own
table goes."""

from django.db import migrations

COPY = """
INSERT INTO core_importreport (job_id, module, mode, counts, created_at, updated_at)
SELECT r.job_id, 'individual', r.mode, r.counts, r.created_at, now() FROM individual_importrun r
ON CONFLICT (job_id) DO NOTHING;
INSERT INTO core_importissue (report_id, row, field, code, message, raw_value, blocking, stage)
SELECT rep.id, i.row, i.field, i.code, i.message, '', i.blocking, i.checked_by
FROM individual_importissue i JOIN core_importreport rep ON rep.job_id = i.job_id
ORDER BY i.id;
"""


class Migration(migrations.Migration):
    dependencies = [("individual", "0005_permission_codes"), ("core", "0012_conventions_import_report")]

    operations = [
        # Backwards, the module's table comes back empty: the reports stay in the core's.
        migrations.RunSQL(COPY, migrations.RunSQL.noop),
        migrations.DeleteModel(name="ImportIssue"),
    ]
