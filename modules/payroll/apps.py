from django.apps import AppConfig


class PayrollConfig(AppConfig):
    name = "modules.payroll"
    label = "payroll"
    verbose_name = "Payroll"
    default_auto_field = "django.db.models.BigAutoField"
