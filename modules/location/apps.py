from django.apps import AppConfig


class LocationConfig(AppConfig):
    name = "modules.location"
    label = "location"
    verbose_name = "Locations"
    default_auto_field = "django.db.models.BigAutoField"
