"""The individual module's GraphQL surface, in the shapes openIMIS frontends send."""

from __future__ import annotations

from typing import Any

import graphene
from django.db.models import QuerySet

from core.graphql.fields import ProtectedConnectionField
from core.graphql.history import history_connection
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import (
    CoreNode,
    CountableConnection,
    UserType,  # noqa: F401 - resolves userCreated/userUpdated
)
from modules.individual import services
from modules.individual.errors import IndividualErrorCode
from modules.individual.export_schema import ExportMutation
from modules.individual.filters import GroupFilter, GroupIndividualFilter, IndividualFilter
from modules.individual.import_schema import ImportMutation, ImportQuery
from modules.individual.models import Group, GroupIndividual, Individual
from modules.individual.permissions import (
    REGISTRY_CREATE,
    REGISTRY_DELETE,
    REGISTRY_SEARCH,
    REGISTRY_UPDATE,
)
from modules.location.schema import LocationGQLType  # noqa: F401 - resolves location

AUDIT_FIELDS = ("id", "json_ext", "is_deleted", "version", "date_created", "date_updated",
                "user_created", "user_updated")


class IndividualGQLType(CoreNode):
    class Meta:
        model = Individual
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = IndividualFilter
        fields = ("first_name", "last_name", "dob", "sex", "location", *AUDIT_FIELDS)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return services.visible_individuals(info.context.user, queryset)


class GroupGQLType(CoreNode):
    class Meta:
        model = Group
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = GroupFilter
        fields = ("code", "location", "head", *AUDIT_FIELDS)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return services.visible_groups(info.context.user, queryset)


class GroupIndividualGQLType(CoreNode):
    class Meta:
        model = GroupIndividual
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = GroupIndividualFilter
        fields = ("group", "individual", "role", "recipient_type", *AUDIT_FIELDS)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return services.visible_memberships(info.context.user, queryset)


def _visible(kind: str) -> Any:
    def visible(queryset: QuerySet, user: Any) -> QuerySet:
        return services.visible_individuals(user, queryset) if kind == "individual" else services.visible_groups(user, queryset)

    return visible


def _contributed_filters() -> dict[str, tuple[Any, Any]]:
    """Arguments other modules add to the individual list (e.g. ``benefitPlanToEnroll``)."""
    from core.hooks import hook

    merged: dict[str, tuple[Any, Any]] = {}
    for contribution in hook().individual_list_filters():
        merged.update(contribution)
    return merged


CONTRIBUTED_FILTERS = _contributed_filters()


def _apply_contributed(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
    for name, (_, apply) in CONTRIBUTED_FILTERS.items():
        if args.get(name) is not None:
            queryset = apply(queryset, args[name])
    return queryset


class Query(ImportQuery):
    individual = ProtectedConnectionField(
        IndividualGQLType, permission=REGISTRY_SEARCH, custom_filters=True,
        order_fields=["id", "first_name", "last_name", "dob", "sex", "date_created", "date_updated", "location__name"],
        queryset_hook=_apply_contributed, **{name: arg for name, (arg, _) in CONTRIBUTED_FILTERS.items()},
    )
    group = ProtectedConnectionField(
        GroupGQLType, permission=REGISTRY_SEARCH, custom_filters=True,
        order_fields=["id", "code", "date_created", "date_updated", "location__name", "head__last_name"],
    )
    group_individual = ProtectedConnectionField(
        GroupIndividualGQLType, permission=REGISTRY_SEARCH,
        order_fields=["role", "recipient_type", "individual__last_name", "individual__first_name",
                      "individual__dob", "group__code", "date_created"],
    )
    individual_history = history_connection(Individual, REGISTRY_SEARCH, _visible("individual"))
    group_history = history_connection(Group, REGISTRY_SEARCH, _visible("group"))


# --- mutations -------------------------------------------------------------------------------


class IndividualInput(CoreMutation.Input):
    first_name = graphene.String()
    last_name = graphene.String()
    dob = graphene.Date()
    sex = graphene.String()
    location_id = UUID()
    json_ext = graphene.JSONString()


class CreateIndividualMutation(CoreMutation):
    """Register a person; ``jsonExt`` is checked against the deployment's schema."""

    permission = REGISTRY_CREATE
    error_codes = IndividualErrorCode
    individual = graphene.Field(IndividualGQLType)

    class Input(IndividualInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"individual": services.create_individual(
            user, first_name=data.get("first_name") or "", last_name=data.get("last_name") or "",
            dob=data.get("dob"), sex=data.get("sex") or "", location_id=data.get("location_id"),
            json_ext=data.get("json_ext"),
        )}


class UpdateIndividualMutation(CoreMutation):
    """Change a person; omitted fields stay; send ``version`` to refuse a stale edit."""

    permission = REGISTRY_UPDATE
    error_codes = IndividualErrorCode
    individual = graphene.Field(IndividualGQLType)

    class Input(IndividualInput):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        pk, version = data.pop("id"), data.pop("version", None)
        return {"individual": services.update_individual(user, pk, version=version, **data)}


class IdsInput(CoreMutation.Input):
    ids = graphene.List(graphene.NonNull(UUID), required=True)


def _for_each_id(name: str, doc: str, field: str, node: type, action: Any) -> type[CoreMutation]:
    """A mutation applying ``action(user, id)`` to every id in one transaction (all or none),
    in the ``input: {ids: [...]}`` shape openIMIS frontends send for deletes."""

    def perform(cls: Any, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {field: [action(user, pk) for pk in data["ids"]]}

    return type(name, (CoreMutation,), {
        "__doc__": doc, "permission": REGISTRY_DELETE, "error_codes": IndividualErrorCode,
        field: graphene.List(graphene.NonNull(node)),
        "Input": type("Input", (IdsInput,), {}), "perform": classmethod(perform),
    })


class GroupInput(CoreMutation.Input):
    code = graphene.String()
    location_id = UUID()
    json_ext = graphene.JSONString()


class CreateGroupMutation(CoreMutation):
    permission = REGISTRY_CREATE
    error_codes = IndividualErrorCode
    group = graphene.Field(GroupGQLType)

    class Input(GroupInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"group": services.create_group(
            user, code=data.get("code") or "", location_id=data.get("location_id"), json_ext=data.get("json_ext"))}


class UpdateGroupMutation(CoreMutation):
    permission = REGISTRY_UPDATE
    error_codes = IndividualErrorCode
    group = graphene.Field(GroupGQLType)

    class Input(GroupInput):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        pk, version = data.pop("id"), data.pop("version", None)
        return {"group": services.update_group(user, pk, version=version, **data)}


DeleteIndividualMutation = _for_each_id(
    "DeleteIndividualMutation", "Soft-delete people (they leave their household); all or none.",
    "individuals", IndividualGQLType, services.delete_individual)
UndoDeleteIndividualMutation = _for_each_id(
    "UndoDeleteIndividualMutation", "Restore soft-deleted people.", "individuals", IndividualGQLType,
    services.restore_individual)
DeleteGroupMutation = _for_each_id(
    "DeleteGroupMutation", "Soft-delete households and their memberships; the people stay registered.",
    "groups", GroupGQLType, services.delete_group)
UndoDeleteGroupMutation = _for_each_id(
    "UndoDeleteGroupMutation", "Restore soft-deleted households.", "groups", GroupGQLType,
    services.restore_group)


class MemberInput(CoreMutation.Input):
    role = graphene.String()
    recipient_type = graphene.String()


class CreateGroupIndividualMutation(CoreMutation):
    """Add a person to a household (one head and one primary recipient per household)."""

    permission = REGISTRY_UPDATE
    error_codes = IndividualErrorCode
    group_individual = graphene.Field(GroupIndividualGQLType)

    class Input(MemberInput):
        group_id = UUID(required=True)
        individual_id = UUID(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"group_individual": services.add_member(
            user, group_id=data["group_id"], individual_id=data["individual_id"],
            role=data.get("role") or "OTHER_RELATIVE", recipient_type=data.get("recipient_type"))}


class UpdateGroupIndividualMutation(CoreMutation):
    permission = REGISTRY_UPDATE
    error_codes = IndividualErrorCode
    group_individual = graphene.Field(GroupIndividualGQLType)

    class Input(MemberInput):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        changes = {k: data[k] for k in ("role", "recipient_type") if k in data}
        return {"group_individual": services.edit_member(user, data["id"], version=data.get("version"), **changes)}


class RemoveGroupIndividualMutation(CoreMutation):
    permission = REGISTRY_UPDATE
    error_codes = IndividualErrorCode
    group_individual = graphene.Field(GroupIndividualGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"group_individual": services.remove_member(user, data["id"])}


class MoveGroupIndividualMutation(CoreMutation):
    """Move a person to another household in one step."""

    permission = REGISTRY_UPDATE
    error_codes = IndividualErrorCode
    group_individual = graphene.Field(GroupIndividualGQLType)

    class Input(MemberInput):
        individual_id = UUID(required=True)
        group_id = UUID(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"group_individual": services.move_member(
            user, individual_id=data["individual_id"], group_id=data["group_id"],
            role=data.get("role") or "OTHER_RELATIVE", recipient_type=data.get("recipient_type"))}


class Mutation(ExportMutation, ImportMutation):
    create_individual = CreateIndividualMutation.Field()
    update_individual = UpdateIndividualMutation.Field()
    delete_individual = DeleteIndividualMutation.Field()
    undo_delete_individual = UndoDeleteIndividualMutation.Field()
    create_group = CreateGroupMutation.Field()
    update_group = UpdateGroupMutation.Field()
    delete_group = DeleteGroupMutation.Field()
    undo_delete_group = UndoDeleteGroupMutation.Field()
    create_group_individual = CreateGroupIndividualMutation.Field()
    update_group_individual = UpdateGroupIndividualMutation.Field()
    remove_group_individual = RemoveGroupIndividualMutation.Field()
    move_group_individual = MoveGroupIndividualMutation.Field()
