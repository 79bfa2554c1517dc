"""The approvals GraphQL surface, in the shapes openIMIS task-management frontends send:
``task``, ``taskGroup``, ``createTaskGroup``, ``updateTaskGroup``, ``resolveTask``."""

from __future__ import annotations

import json
import uuid
from typing import Any

import django_filters
import graphene
from django.db.models import Q, QuerySet
from graphene_django import DjangoConnectionField, DjangoObjectType
from graphene_django.filter import ListFilter, TypedFilter
from graphql_relay import from_global_id

from core.approvals import services
from core.approvals.actions import approval_actions, task_source, tasks_of_source
from core.approvals.errors import ApprovalErrorCode
from core.errors import CoreErrorCode, FieldError, ServiceError, ValidationFailed
from core.graphql.fields import ProtectedConnectionField, ProtectedField, selects
from core.graphql.history import history_connection
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import CoreNode, CountableConnection, UserType
from core.models import ApprovalDecision, ApprovalRoute, ApprovalTask, TaskGroup, TaskGroupChecker
from core.permissions import (
    APPROVAL_ROUTE_MANAGE,
    TASK_GROUP_MANAGE,
    TASK_GROUP_SEARCH,
    TASK_RESOLVE,
    TASK_VIEW,
)

# What openIMIS frontends read in executorActionEvent: the executors' job is to approve.
EXECUTOR_ACTION_EVENT = "approve"
# openIMIS frontends write and read a rejection as "FAILED".
BUSINESS_STATUS_OF = {ApprovalDecision.APPROVED: "APPROVED", ApprovalDecision.REJECTED: "FAILED"}
DECISION_OF = {"APPROVED": ApprovalDecision.APPROVED, "REJECTED": ApprovalDecision.REJECTED,
               "FAILED": ApprovalDecision.REJECTED}


class TaskStatus(graphene.Enum):
    RECEIVED = ApprovalTask.RECEIVED
    ACCEPTED = ApprovalTask.ACCEPTED
    COMPLETED = ApprovalTask.COMPLETED
    FAILED = ApprovalTask.FAILED
    ERROR = ApprovalTask.ERROR


class TaskGroupCompletionPolicy(graphene.Enum):
    ANY = TaskGroup.ANY
    ALL = TaskGroup.ALL
    N_OF = TaskGroup.N_OF


class TaskDecisionValue(graphene.Enum):
    APPROVED = ApprovalDecision.APPROVED
    REJECTED = ApprovalDecision.REJECTED


class TaskExecutorGQLType(DjangoObjectType):
    """A checker's membership of a task group (openIMIS calls checkers executors)."""

    class Meta:
        model = TaskGroupChecker
        name = "TaskExecutorGQLType"
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = ("id", "user")


def _filter_by_node_id(type_name: str) -> TypedFilter:
    """``id: "<uuid or Relay id>"``, as openIMIS frontends fetch one task or group."""

    def by_id(queryset: QuerySet, name: str, value: Any) -> QuerySet:
        try:
            return queryset.filter(pk=_node_uuid(value, type_name, "id"))
        except ValidationFailed:
            return queryset.none()

    return TypedFilter(input_type=graphene.ID, method=by_id)


class TaskGroupFilter(django_filters.FilterSet):
    id = _filter_by_node_id("TaskGroupGQLType")
    uuid = django_filters.UUIDFilter(field_name="id")
    search = django_filters.CharFilter(method="filter_search", label="code or name contains (openIMIS's picker)")

    def filter_search(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value)) if value else queryset

    class Meta:
        model = TaskGroup
        fields = {
            "code": ["exact", "iexact", "istartswith", "icontains"],
            "name": ["icontains"],
            "completion_policy": ["exact"],
            "is_deleted": ["exact"],
        }


class TaskGroupGQLType(CoreNode):
    class Meta:
        model = TaskGroup
        name = "TaskGroupGQLType"
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = TaskGroupFilter
        fields = ("id", "code", "name", "required_approvals", "is_deleted", "version",
                  "date_created", "date_updated")

    completion_policy = graphene.Field(TaskGroupCompletionPolicy, required=True)
    checkers = graphene.List(graphene.NonNull(UserType), required=True)
    taskexecutor_set = DjangoConnectionField(TaskExecutorGQLType, description="the checkers, "
                                             "in the shape openIMIS frontends read")

    def resolve_checkers(self, info: Any) -> list[Any]:
        return [m.user for m in self.memberships.all()]

    def resolve_taskexecutor_set(self, info: Any, **kwargs: Any) -> list[TaskGroupChecker]:
        return list(self.memberships.all())

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        if selects(info, "checkers") or selects(info, "taskexecutorSet"):
            return queryset.prefetch_related("memberships__user")
        return queryset


class TaskDecisionGQLType(DjangoObjectType):
    class Meta:
        model = ApprovalDecision
        name = "TaskDecisionGQLType"
        fields = ("id", "checker", "comment", "decided_at")

    decision = graphene.Field(TaskDecisionValue, required=True)


class TaskFilter(django_filters.FilterSet):
    id = _filter_by_node_id("TaskGQLType")
    uuid = django_filters.UUIDFilter(field_name="id")
    task_group__id = django_filters.UUIDFilter(field_name="task_group_id")
    task_group_id = django_filters.UUIDFilter(field_name="task_group_id",
                                              label="the openIMIS name of taskGroup_Id")
    # (field_name: what the filter narrows, besides the action, for the index test to see)
    source = django_filters.CharFilter(field_name="module", method="_source",
                                       label="the task source (see TaskGQLType.source)")
    source__icontains = django_filters.CharFilter(field_name="module", lookup_expr="icontains",
                                                  method="_source_icontains")
    business_event = django_filters.CharFilter(field_name="action", label="the action")
    business_event__icontains = django_filters.CharFilter(field_name="action", lookup_expr="icontains")
    entity_ids = ListFilter(field_name="entity_id", lookup_expr="in",
                            input_type=graphene.List(graphene.NonNull(graphene.String)))

    def _source(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(tasks_of_source(value)) if value else queryset

    def _source_icontains(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(tasks_of_source(value, "icontains")) if value else queryset

    class Meta:
        model = ApprovalTask
        fields = {
            "status": ["exact"],
            "action": ["exact", "istartswith"],
            "entity_type": ["exact"],
            "entity_id": ["exact"],
            "is_deleted": ["exact"],
            "date_created": ["lt", "lte", "gt", "gte"],
        }


class TaskGQLType(CoreNode):
    """An approval task. ``businessStatus`` is ``{"<checker uuid>": "APPROVED" | "FAILED"}``;
    ``decisions`` says the same with comments and dates."""

    class Meta:
        model = ApprovalTask
        name = "TaskGQLType"
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = TaskFilter
        fields = ("id", "module", "action", "entity_type", "entity_id", "data", "maker",
                  "task_group", "executed_at", "job", "result", "error", "is_deleted", "version",
                  "date_created", "date_updated")

    status = graphene.Field(TaskStatus, required=True)
    source = graphene.String(required=True, description="openIMIS's task source: the module that asked for "
                                                        "approval, or the name its screens use for the action "
                                                        "(payroll_reconciliation for a payroll's closing)")
    business_event = graphene.String(required=True, description="the action (openIMIS name)")
    executor_action_event = graphene.String(required=True)
    business_status = graphene.JSONString(required=True)
    business_data = graphene.JSONString(description="the proposed data (openIMIS name of data)")
    current_entity_data = graphene.JSONString(
        description="the entity as it is now, when the action can tell (one lookup per task)")
    description = graphene.String(description="a sentence for checkers, when the action gives one")
    decisions = graphene.List(graphene.NonNull(TaskDecisionGQLType), required=True)

    # --- openIMIS frontend: the task list's "entity" column and its json_ext
    entity_string = graphene.String(required=True, description="the entity in a few words: the action's "
                                                              "description, else '<entity type> <id>'")
    json_ext = graphene.JSONString(description="openIMIS's json_ext of a task: what its checkers added when "
                                               "they decided; none here (the proposal is businessData, the "
                                               "outcome result and error)")

    # the wide columns these resolvers read (core.graphql.fields.select_selection); an action's
    # describe and current_data read the proposal
    selection_reads = {"businessData": ("data",), "description": ("data",), "entityString": ("data",),
                       "currentEntityData": ("data",)}

    def resolve_entity_string(self, info: Any) -> str:
        described = TaskGQLType.resolve_description(self, info)
        return described or f"{self.entity_type} {self.entity_id}"

    def resolve_json_ext(self, info: Any) -> None:
        # openIMIS keeps only the checkers' additional resolve data there. Its task page draws a
        # task's "current data" row whenever jsonExt is not empty, and for a payroll task that row
        # is a payroll page with no payroll, which sends the browser away from the task.
        return None

    def resolve_source(self, info: Any) -> str:
        return task_source(self.module, self.action)

    def resolve_business_event(self, info: Any) -> str:
        return self.action

    def resolve_executor_action_event(self, info: Any) -> str:
        return EXECUTOR_ACTION_EVENT

    def resolve_business_status(self, info: Any) -> dict[str, str]:
        return {str(d.checker_id): BUSINESS_STATUS_OF[d.decision] for d in self.decisions.all()}

    def resolve_business_data(self, info: Any) -> Any:
        return self.data

    def resolve_decisions(self, info: Any) -> list[ApprovalDecision]:
        return sorted(self.decisions.all(), key=lambda d: d.decided_at)

    def resolve_current_entity_data(self, info: Any) -> Any:
        found = approval_actions().get(self.action)
        if found is None or found[1].current_data is None:
            return None
        return found[1].current_data(self)

    def resolve_description(self, info: Any) -> str | None:
        found = approval_actions().get(self.action)
        if found is None or found[1].describe is None:
            return None
        return found[1].describe(self)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        # The foreign keys a request selects (taskGroup, maker, job) are joined by the list
        # itself; what is read through a set is prefetched only when a field asks for it.
        if selects(info, "decisions", "checker"):
            queryset = queryset.prefetch_related("decisions__checker")
        elif selects(info, "decisions") or selects(info, "businessStatus"):
            queryset = queryset.prefetch_related("decisions")
        if selects(info, "taskGroup", "checkers") or selects(info, "taskGroup", "taskexecutorSet"):
            queryset = queryset.prefetch_related("task_group__memberships__user")
        return services.visible_tasks(queryset, info.context.user)


class ApprovalRouteSource(graphene.Enum):
    RUNTIME = services.RUNTIME
    CONFIG = services.CONFIG


class ApprovalRouteGQLType(graphene.ObjectType):
    """Where an action's approvals go: ``taskGroup`` decides, or nobody (``needsApproval``
    false: the action runs at once). ``source`` says whether the route was set at run time
    (``setApprovalRoute``; ``reason``, ``dateUpdated`` and ``userUpdated`` say by whom and why)
    or comes from ``modules_config.json``."""

    action = graphene.String(required=True)
    module = graphene.String(required=True)
    needs_approval = graphene.Boolean(required=True)
    task_group_code = graphene.String()
    task_group = graphene.Field(TaskGroupGQLType, description="null when the routed group does not exist")
    source = graphene.Field(ApprovalRouteSource)
    reason = graphene.String()
    version = graphene.Int()
    date_updated = graphene.DateTime()
    user_updated = graphene.Field(UserType)

    @staticmethod
    def of(route: services.Route) -> ApprovalRouteGQLType:
        row = route.route
        return ApprovalRouteGQLType(
            action=route.action, module=route.module, needs_approval=route.task_group_code is not None,
            task_group_code=route.task_group_code, task_group=route.task_group, source=route.source,
            reason=row.reason if row else None, version=row.version if row else None,
            date_updated=row.date_updated if row else None, user_updated=row.user_updated if row else None)


class Query(graphene.ObjectType):
    approval_routes = ProtectedField(
        graphene.List(graphene.NonNull(ApprovalRouteGQLType), required=True),
        permission=APPROVAL_ROUTE_MANAGE, action=graphene.String(),
        description="Every action a module lets deployers put behind approval, with its route now.",
    )
    approval_route_history = history_connection(ApprovalRoute, APPROVAL_ROUTE_MANAGE, lambda qs, user: qs)

    def resolve_approval_routes(self, info: Any, action: str | None = None) -> list[ApprovalRouteGQLType]:
        return [ApprovalRouteGQLType.of(r) for r in services.approval_routes() if action in (None, r.action)]

    task = ProtectedConnectionField(
        TaskGQLType, permission=TASK_VIEW,
        order_fields=["date_created", "date_updated", "status", "action", "module", "entity_type"],
    )
    task_group = ProtectedConnectionField(
        TaskGroupGQLType, permission=TASK_GROUP_SEARCH,
        order_fields=["code", "name", "date_created"],
    )


def _node_uuid(value: Any, type_name: str, field: str) -> uuid.UUID:
    """A UUID, or the Relay id of a ``type_name`` node (openIMIS frontends send either)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        pass
    try:
        kind, raw = from_global_id(str(value))
        if kind == type_name:
            return uuid.UUID(raw)
    except (ValueError, TypeError, UnicodeDecodeError):
        pass
    raise ValidationFailed([FieldError(field, CoreErrorCode.INVALID_ID,
                                       f"'{value}' is neither a UUID nor a {type_name} id.")])


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def parse_business_status(raw: str, user: Any) -> str:
    """The acting user's decision from ``businessStatus``.

    Accepts the openIMIS form, a JSON object string ``{"<user uuid>": "APPROVED" | "FAILED"}``
    (only the caller's own entry; a decision for someone else is refused), and the plain
    words ``APPROVED`` / ``REJECTED``.
    """
    text = (raw or "").strip()
    word: Any = text
    if text.startswith("{"):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ServiceError(ApprovalErrorCode.INVALID_BUSINESS_STATUS,
                               f"businessStatus is not valid JSON: {exc.msg}.", "businessStatus") from exc
        if not isinstance(entries, dict) or len(entries) != 1:
            raise ServiceError(ApprovalErrorCode.INVALID_BUSINESS_STATUS,
                               'Send one entry, {"<your user id>": "APPROVED" or "FAILED"}.',
                               "businessStatus")
        (key, word), = entries.items()
        try:
            own = uuid.UUID(str(key)) == user.pk
        except ValueError:
            own = False
        if not own:
            raise ServiceError(ApprovalErrorCode.NOT_YOUR_DECISION,
                               "businessStatus may only hold your own decision, keyed by your "
                               "user id.", "businessStatus")
    decision = DECISION_OF.get(str(word).upper()) if isinstance(word, str) else None
    if decision is None:
        raise ServiceError(ApprovalErrorCode.INVALID_DECISION,
                           f"'{word}' is not a decision; send APPROVED or REJECTED (or FAILED).",
                           "businessStatus")
    return decision


class CreateTaskGroupMutation(CoreMutation):
    """Create a group of checkers with its completion policy (``requiredApprovals`` for N_OF)."""

    permission = TASK_GROUP_MANAGE
    error_codes = ApprovalErrorCode
    task_group = graphene.Field(TaskGroupGQLType)

    class Input(CoreMutation.Input):
        code = graphene.String(required=True)
        name = graphene.String()
        completion_policy = TaskGroupCompletionPolicy(required=True)
        required_approvals = graphene.Int()
        user_ids = graphene.List(graphene.NonNull(UUID), description="the checkers")

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_create_task_group(
            user, code=data["code"], name=data.get("name") or "", completion_policy=_enum_value(data["completion_policy"]),
            required_approvals=data.get("required_approvals"), checker_ids=data.get("user_ids") or [])
        return {"task_group": services.do_create_task_group(request)}


class UpdateTaskGroupMutation(CoreMutation):
    """Change a group; ``userIds`` replaces its checkers. Send ``version`` to refuse the change
    if someone else changed the group meanwhile."""

    permission = TASK_GROUP_MANAGE
    error_codes = ApprovalErrorCode
    task_group = graphene.Field(TaskGroupGQLType)

    class Input(CoreMutation.Input):
        id = graphene.ID(required=True, description="a UUID or a TaskGroupGQLType id")
        version = graphene.Int()
        code = graphene.String()
        name = graphene.String()
        completion_policy = TaskGroupCompletionPolicy()
        required_approvals = graphene.Int()
        user_ids = graphene.List(graphene.NonNull(UUID))

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_update_task_group(
            user, _node_uuid(data["id"], "TaskGroupGQLType", "id"), version=data.get("version"), code=data.get("code"),
            name=data.get("name"), completion_policy=_enum_value(data.get("completion_policy")),
            required_approvals=data.get("required_approvals", ...), checker_ids=data.get("user_ids"))
        return {"task_group": services.do_update_task_group(request)}


class ResolveTaskMutation(CoreMutation):
    """Approve or reject a task of one of your task groups. ``businessStatus`` is
    ``"{\\"<your user id>\\": \\"APPROVED\\"}"`` (openIMIS form; ``FAILED`` rejects) or simply
    ``"APPROVED"`` / ``"REJECTED"``. Returns the task: ``COMPLETED`` when your approval met the
    group's policy (``executedAt`` once the action ran, or its ``job``), ``FAILED`` after a
    rejection, ``ERROR`` when the approved action itself failed: the decision stands and the
    answer carries ``ACTION_FAILED`` (the mutation log records an error)."""

    permission = TASK_RESOLVE
    error_codes = ApprovalErrorCode
    task = graphene.Field(TaskGQLType)

    class Input(CoreMutation.Input):
        id = graphene.ID(required=True, description="a UUID or a TaskGQLType id")
        business_status = graphene.String(required=True)
        comment = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_resolve_task(user, _node_uuid(data["id"], "TaskGQLType", "id"),
                                              parse_business_status(data["business_status"], user),
                                              data.get("comment") or "")
        task = services.do_resolve_task(request)
        return {"task": task, "errors": services.action_failures(task)}


class SetApprovalRouteMutation(CoreMutation):
    """Route an action's approvals to a task group (``taskGroupCode``), or with
    ``taskGroupCode: null`` let it run without approval, from now on and until set again;
    overrides ``modules_config.json``. ``reason`` is kept in history (``approvalRouteHistory``)."""

    permission = APPROVAL_ROUTE_MANAGE
    error_codes = ApprovalErrorCode
    route = graphene.Field(ApprovalRouteGQLType)

    class Input(CoreMutation.Input):
        action = graphene.String(required=True, description="e.g. payroll.approve")
        task_group_code = graphene.String(description="null: the action needs no approval")
        reason = graphene.String(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_set_approval_route(user, data["action"], data.get("task_group_code"), data["reason"])
        return {"route": ApprovalRouteGQLType.of(services.do_set_approval_route(request))}


class Mutation(graphene.ObjectType):
    set_approval_route = SetApprovalRouteMutation.Field()
    create_task_group = CreateTaskGroupMutation.Field()
    update_task_group = UpdateTaskGroupMutation.Field()
    resolve_task = ResolveTaskMutation.Field()
