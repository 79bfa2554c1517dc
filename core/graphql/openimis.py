"""The start-up queries of openIMIS's frontend that belong to no module: ``moduleConfigurations``
(what each enabled module's frontend package is configured with, from the ``frontend``
section of ``modules_config.json``) and ``languages``."""

from __future__ import annotations

import json
from typing import Any

import graphene
from django.conf import settings
from django.utils.translation import get_language_info

from core.graphql.fields import ProtectedField
from core.graphql.permissions import AUTHENTICATED, mark


class ModuleConfigurationControlType(graphene.ObjectType):
    field = graphene.String(required=True)
    usage = graphene.String(required=True)


class ModuleConfigurationType(graphene.ObjectType):
    """One frontend package's configuration (openIMIS's shape: ``config`` is a JSON text)."""

    module = graphene.String(required=True, description="the frontend package, e.g. fe-individual")
    layer = graphene.String(required=True)
    config = graphene.String(required=True, description="JSON object")
    controls = graphene.List(graphene.NonNull(ModuleConfigurationControlType), required=True)


class LanguageType(graphene.ObjectType):
    code = graphene.String(required=True)
    name = graphene.String(required=True)
    sort_order = graphene.Int(required=True)


def frontend_configurations() -> list[dict[str, Any]]:
    from core.loader import get_registry

    out = []
    for packages in get_registry().frontend.values():
        for package, config in packages.items():
            controls = config.get("controls") or []
            own = {k: v for k, v in config.items() if k != "controls"}
            out.append({"module": package, "layer": "fe", "config": json.dumps(own), "controls": [
                ModuleConfigurationControlType(field=str(c.get("field", "")), usage=str(c.get("usage", "")))
                for c in controls if isinstance(c, dict)]})
    return out


class Query(graphene.ObjectType):
    # Asked before anyone logs in (the frontend cannot start without it); it holds screen
    # settings only, never a secret.
    module_configurations = mark(graphene.Field(
        graphene.List(graphene.NonNull(ModuleConfigurationType)), required=True,
        description="The frontend packages' settings (modules_config.json 'frontend'), enabled modules only.",
    ), "public")
    languages = ProtectedField(graphene.List(graphene.NonNull(LanguageType)), permission=AUTHENTICATED,
                               description="The languages the deployment offers (COREMIS_LANGUAGES), first the default.")

    def resolve_module_configurations(self, info: Any) -> list[ModuleConfigurationType]:
        return [ModuleConfigurationType(**c) for c in frontend_configurations()]

    def resolve_languages(self, info: Any) -> list[LanguageType]:
        out = []
        for order, code in enumerate(settings.COREMIS.get("LANGUAGES", ["en"])):
            try:
                name = get_language_info(code)["name_local"]
            except KeyError:
                name = code
            out.append(LanguageType(code=code, name=name, sort_order=order))
        return out
