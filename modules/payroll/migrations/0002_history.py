from django.db import migrations

from core.history import TrackHistory


class Migration(migrations.Migration):
    dependencies = [("payroll", "0001_initial"), ("core", "0002_history_triggers")]

    operations = [
        TrackHistory("payroll_paymentcycle"),
        TrackHistory("payroll_paymentplan"),
        TrackHistory("payroll_paymentpoint"),
        TrackHistory("payroll_payroll"),
        TrackHistory("payroll_benefitconsumption"),
    ]
