from django.db import migrations, models


SOURCES = [("CALLBACK", "Callback"), ("POLL", "Poll"), ("RESULT_FILE", "Result File"),
           ("OPENIMIS_CSV", "Openimis Csv"), ("CAMT053", "Camt053"), ("MT940", "Mt940"), ("PULL_API", "Pull Api")]


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0003_statement_sources")]

    operations = [
        migrations.AlterField(model_name="providerreport", name="source",
                              field=models.CharField(choices=SOURCES, max_length=20)),
        migrations.AlterField(model_name="reportfile", name="source",
                              field=models.CharField(choices=SOURCES, max_length=20)),
    ]
