from django.apps import AppConfig


class IndividualConfig(AppConfig):
    name = "modules.individual"
    label = "individual"
    verbose_name = "Individuals and households"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from modules.individual.unique_keys import sync_unique_key_indexes

        # Unique keys come from modules_config.json, so their indexes follow the configuration
        # after every migrate rather than living in a migration file.
        post_migrate.connect(sync_unique_key_indexes, sender=self)
