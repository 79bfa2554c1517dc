from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "coremis core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.graphql.scalars import use_for_django_fields

        # Before any GraphQL type is built from a model or a filter.
        use_for_django_fields()
