from django.apps import AppConfig


class GrievanceConfig(AppConfig):
    name = "modules.grievance"
    label = "grievance"
    verbose_name = "Grievances"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # What JSON Schema cannot check (a flag or workflow named but not declared, a category
        # declared twice) stops the start, as the loader does for the schema itself.
        from core.errors import ModuleConfigurationError
        from modules.grievance.configuration import ConfigProblem, config

        try:
            config()
        except ConfigProblem as exc:
            raise ModuleConfigurationError("grievance", f"modules_config.json: {exc}",
                                           "declare what the configuration names, once") from exc
