from django.apps import AppConfig


class SocialProtectionConfig(AppConfig):
    name = "modules.social_protection"
    label = "social_protection"
    verbose_name = "Social protection"
    default_auto_field = "django.db.models.BigAutoField"
