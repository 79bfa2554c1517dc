"""The start-up queries of openIMIS's frontend that belong to no module: ``moduleConfigurations``
(what each enabled module's frontend package is configured with, from the ``frontend``
section of ``modules_config.json``) and ``languages``; and :func:`speaks_openimis`.

One schema answers at two addresses: ``/graphql`` (coremis's clients) and ``/api/graphql``,
openIMIS's own address, where its frontends talk. The few values whose vocabulary differs
between the two systems (a payroll's status and payment method, a payment's status: openIMIS
has four payroll statuses where coremis tracks eight) are answered in openIMIS's words at
openIMIS's address, so its screens' conditions (``status === "APPROVE_FOR_PAYMENT"``) hold, and
in coremis's words at coremis's. Filters on them take openIMIS's words too (at its address,
where the same word may mean more: its RECONCILED payment is one the provider paid)."""

from __future__ import annotations

import json
from typing import Any

import graphene
from django.conf import settings
from django.utils.translation import get_language_info

from core.graphql.fields import ProtectedField
from core.graphql.permissions import AUTHENTICATED, mark

OPENIMIS_PATH = "/api/graphql"


def speaks_openimis(info: Any) -> bool:
    """Whether the request came to openIMIS's address: the values of differing vocabulary are
    then answered in openIMIS's words (module docstring)."""
    return request_speaks_openimis(info.context)


def request_speaks_openimis(request: Any) -> bool:
    """:func:`speaks_openimis` for a filter, which has the request and not the resolve info."""
    path = getattr(request, "path", "") or ""
    return path.rstrip("/") == OPENIMIS_PATH


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
            language = _language(code)
            language.sort_order = order
            out.append(language)
        return out


# --- ``user``: the logged-in user in openIMIS's shape -----------------------------------------
# coremis has no health facilities, claim administrators or enrolment officers: those links are
# always null, typed so the frontend's query validates.


class _PlaceType(graphene.ObjectType):
    id = graphene.String()
    uuid = graphene.String()
    code = graphene.String()
    name = graphene.String()
    type = graphene.String()
    parent = graphene.Field(lambda: _PlaceType)


class _PricelistType(graphene.ObjectType):
    id = graphene.String()
    uuid = graphene.String()


class HealthFacilityType(graphene.ObjectType):
    """Not a coremis concept: always null."""

    id = graphene.String()
    uuid = graphene.String()
    code = graphene.String()
    name = graphene.String()
    level = graphene.String()
    services_pricelist = graphene.Field(_PricelistType)
    items_pricelist = graphene.Field(_PricelistType)
    contract_start_date = graphene.Date()
    contract_end_date = graphene.Date()
    location = graphene.Field(_PlaceType)


class ClaimAdminType(graphene.ObjectType):
    """Not a coremis concept: always null."""

    id = graphene.String()
    uuid = graphene.String()
    code = graphene.String()


class OfficerType(graphene.ObjectType):
    """Not a coremis concept: always null."""

    id = graphene.String()
    uuid = graphene.String()
    code = graphene.String()
    dob = graphene.Date()
    address = graphene.String()
    location = graphene.Field(_PlaceType)


class InteractiveUserType(graphene.ObjectType):
    id = graphene.String(required=True)
    uuid = graphene.String(required=True)
    language = graphene.Field(LanguageType, required=True)
    other_names = graphene.String()
    last_name = graphene.String()


class CurrentUserType(graphene.ObjectType):
    """The caller, as openIMIS's ``user`` query answers: ``rights`` are openIMIS's numbers."""

    id = graphene.String(required=True)
    username = graphene.String(required=True)
    rights = graphene.List(graphene.NonNull(graphene.Int), required=True)
    email = graphene.String()
    last_name = graphene.String()
    other_names = graphene.String()
    phone = graphene.String()
    i_user = graphene.Field(InteractiveUserType, required=True)
    health_facility = graphene.Field(HealthFacilityType)
    claim_admin = graphene.Field(ClaimAdminType)
    officer = graphene.Field(OfficerType)


def _language(code: str) -> LanguageType:
    try:
        name = get_language_info(code)["name_local"]
    except KeyError:
        name = code
    return LanguageType(code=code, name=name, sort_order=0)


class UserQuery(graphene.ObjectType):
    user = ProtectedField(CurrentUserType, permission=AUTHENTICATED,
                          description="The logged-in user in openIMIS's shape (numeric rights, language).")

    def resolve_user(self, info: Any) -> CurrentUserType:
        from core.openimis import language_of, openimis_rights

        user = info.context.user
        return CurrentUserType(
            id=str(user.uuid), username=user.username, rights=openimis_rights(user), email=user.email,
            last_name=user.last_name, other_names=user.first_name, phone=None,
            i_user=InteractiveUserType(id=str(user.uuid), uuid=str(user.uuid), language=_language(language_of(user)),
                                       other_names=user.first_name, last_name=user.last_name),
        )


# --- ``customFilters``: what the advanced filters of a list may ask of ``json_ext`` ----------


class PossibleFilterType(graphene.ObjectType):
    field = graphene.String(required=True)
    filter = graphene.String(required=True, description="a lookup of customFilters: exact, icontains, lt…")
    type = graphene.String(required=True, description="string, integer, decimal, boolean or date")


class CustomFilterType(graphene.ObjectType):
    """One ``json_ext`` property and the filters it accepts (``field__filter__type=value``)."""

    code = graphene.String(required=True)
    type = graphene.String(required=True)
    possible_filters = graphene.List(graphene.NonNull(PossibleFilterType), required=True)


def _filter_type(spec: dict[str, Any]) -> str | None:
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string":
        return "date" if spec.get("format") in {"date", "date-time"} else "string"
    return {"integer": "integer", "number": "decimal", "boolean": "boolean"}.get(str(kind))


LOOKUPS_BY_TYPE = {
    "string": ("iexact", "icontains", "exact", "isnull"),
    "integer": ("exact", "lt", "lte", "gt", "gte", "isnull"),
    "decimal": ("exact", "lt", "lte", "gt", "gte", "isnull"),
    "date": ("exact", "lt", "lte", "gt", "gte", "isnull"),
    "boolean": ("exact", "isnull"),
}


def custom_filters_of(schema: dict[str, Any]) -> list[CustomFilterType]:
    out = []
    for name, spec in (schema.get("properties") or {}).items():
        kind = _filter_type(spec if isinstance(spec, dict) else {})
        if kind is None:
            continue  # objects and arrays: customFilters compares scalars only
        out.append(CustomFilterType(code=name, type=kind, possible_filters=[
            PossibleFilterType(field=name, filter=lookup, type=kind) for lookup in LOOKUPS_BY_TYPE[kind]]))
    return out


class CustomFiltersQuery(graphene.ObjectType):
    custom_filters = ProtectedField(
        graphene.List(graphene.NonNull(CustomFilterType)), permission=AUTHENTICATED,
        module_name=graphene.String(required=True), object_type_name=graphene.String(required=True),
        uuid_of_object=graphene.String(), additional_params=graphene.String(description="JSON object"),
        description="The json_ext properties a list's customFilters may filter on, with their lookups. The "
                    "module owning the object type checks the caller's right to it.",
    )

    def resolve_custom_filters(self, info: Any, module_name: str, object_type_name: str,
                               uuid_of_object: str | None = None, additional_params: str | None = None) -> Any:
        from graphql import GraphQLError

        from core.errors import CoreErrorCode, ServiceError
        from core.hooks import hook

        params: Any = {}
        if additional_params:
            try:
                params = json.loads(additional_params)
            except ValueError:
                params = None
            if not isinstance(params, dict):
                raise GraphQLError("additionalParams must be a JSON object.",
                                   extensions={"code": CoreErrorCode.INVALID_VALUE, "field": "additionalParams"})
        try:
            schema = hook().coremis_custom_filter_schema(
                actor=info.context.user, module_name=module_name, object_type_name=object_type_name,
                uuid_of_object=uuid_of_object, additional_params=params)
        except ServiceError as exc:
            raise GraphQLError(exc.message, extensions={"code": exc.code, "field": exc.field}) from exc
        if schema is None:
            raise GraphQLError(f"No enabled module has custom filters for {module_name}.{object_type_name}.",
                               extensions={"code": CoreErrorCode.NOT_FOUND, "field": "objectTypeName"})
        return custom_filters_of(schema)


class WorkflowType(graphene.ObjectType):
    """openIMIS's upload workflow: the upload dialog lists ``name``s and posts the chosen one back
    (``workflow_name`` / ``workflow_group``)."""

    name = graphene.String(required=True)
    group = graphene.String(required=True)
    description = graphene.String(required=True, description="what this way of processing the upload does")


class UploadWorkflowsQuery(graphene.ObjectType):
    workflow = ProtectedField(
        graphene.List(graphene.NonNull(WorkflowType)), permission=AUTHENTICATED,
        group=graphene.String(),
        description="openIMIS's upload workflows of a group (its upload dialogs): the ways the module owning "
                    "the group can process an upload for the caller, empty for one who may not upload there "
                    "and for a group no enabled module owns.",
    )

    def resolve_workflow(self, info: Any, group: str | None = None) -> list[WorkflowType]:
        from core.hooks import hook

        if not group:
            return []
        answer = hook().coremis_upload_workflows(actor=info.context.user, group=group) or []
        return [WorkflowType(name=name, group=group, description=description) for name, description in answer]
