"""Background jobs over GraphQL: the ``jobs`` list, each job's history, ``retryJob`` and
``cancelJob``. ``core_schema`` composes these into the core's Query and Mutation."""

from __future__ import annotations

import uuid
from typing import Any

import django_filters
import graphene
from django.db.models import Prefetch, QuerySet
from graphql import GraphQLError
from graphql_relay import from_global_id

from core import jobs
from core.errors import CoreErrorCode, ServiceError
from core.graphql.choices import ChoiceCodeFilter, choice_enum
from core.graphql.fields import ProtectedConnectionField, selects
from core.graphql.mutations import CoreMutation
from core.graphql.types import CoreNode, CountableConnection
from core.models import Job, JobEvent
from core.permissions import JOB_MANAGE, JOB_VIEW, JOB_VIEW_ALL, has_permission


def job_uuid(value: str, field: str = "id") -> uuid.UUID:
    """A job's UUID from its ``uuid`` or its Relay ``id`` (what ``jobs`` returns as ``id``)."""
    text = (value or "").strip()
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    try:
        type_name, raw = from_global_id(text)
        if type_name == JobType._meta.name:
            return uuid.UUID(raw)
    except (ValueError, TypeError, UnicodeDecodeError):
        pass
    raise ServiceError(CoreErrorCode.INVALID_ID, f"'{value[:100]}' is neither a job's uuid nor its id.", field)


JobState = choice_enum("JobState", Job.STATES, "Where a background job stands.")
JobEventKind = choice_enum("JobEventKind", JobEvent.EVENTS, "What happened to a job.")


class JobFilter(django_filters.FilterSet):
    id = django_filters.CharFilter(method="filter_id", label="the job's Relay id (or its uuid)")
    uuid = django_filters.UUIDFilter(field_name="id")
    state = ChoiceCodeFilter(field_name="state", choices=Job.STATES)

    class Meta:
        model = Job
        fields = {"kind": ["exact"], "state": ["exact"], "module": ["exact"]}

    def filter_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            return queryset.filter(pk=job_uuid(value))
        except ServiceError as exc:
            raise GraphQLError(exc.message, extensions={"code": exc.code}) from exc


class JobEventType(graphene.ObjectType):
    """One entry of a job's history: a run started, was lost, retried, finished; who retried
    or cancelled it."""

    at = graphene.DateTime(required=True)
    event = graphene.Field(JobEventKind, required=True)
    attempt = graphene.Int(required=True, description="the run it is about")
    state = graphene.Field(JobState, required=True, description="the job's state after it")
    message = graphene.String(required=True)
    username = graphene.String(description="who did it, for retried and cancelled")

    @staticmethod
    def resolve_username(event: JobEvent, info: Any) -> str | None:
        return event.user.username if event.user_id else None


def _events() -> Prefetch:
    return Prefetch("events", queryset=JobEvent.objects.select_related("user").order_by("at", "id"))


class JobType(CoreNode):
    class Meta:
        model = Job
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = JobFilter
        fields = (
            "id", "kind", "module", "stage", "params", "processed", "total", "error_count",
            "errors", "result", "message", "attempts", "failures", "max_failures", "created_at",
            "started_at", "finished_at", "heartbeat_at", "lease_expires_at", "available_at",
            "cancel_requested_at",
        )

    state = graphene.Field(JobState, required=True)
    error_code = graphene.String(description="why a FAILED job failed, as a declared error code (INTERNAL for a "
                                             "crash, RUNS_LOST when it gave up); null otherwise")
    history = graphene.List(graphene.NonNull(JobEventType), required=True,
                            description="what happened to the job, oldest first")

    @staticmethod
    def resolve_error_code(job: Job, info: Any) -> str | None:
        return job.error_code or None

    @staticmethod
    def resolve_history(job: Job, info: Any) -> list[JobEvent]:
        prefetched = getattr(job, "_prefetched_objects_cache", {}).get("events")
        if prefetched is not None:
            return list(prefetched)
        return list(job.events.select_related("user").order_by("at", "id"))

    @classmethod
    def list_queryset(cls, queryset: Any, info: Any) -> Any:
        user = info.context.user
        if not has_permission(user, JOB_VIEW_ALL):
            queryset = queryset.filter(created_by=user)
        if selects(info, "history"):
            queryset = queryset.prefetch_related(_events())
        return queryset


class Query(graphene.ObjectType):
    jobs = ProtectedConnectionField(
        JobType, permission=JOB_VIEW, order_fields=["created_at", "state", "kind"]
    )


class JobMutationInput(CoreMutation.Input):
    id = graphene.ID(required=True, description="the job's id or uuid")


class RetryJobMutation(CoreMutation):
    """Run a failed or cancelled job again, or now a job waiting for its back-off or to
    resume by itself. Its handler continues or redoes its work; nothing is done twice."""

    permission = JOB_MANAGE
    error_codes = jobs.JobErrorCode
    job = graphene.Field(JobType)

    class Input(JobMutationInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"job": jobs.do_retry_job(jobs.check_retry_job(user, job_uuid(data["id"])))}


class CancelJobMutation(CoreMutation):
    """Cancel a job: at once when it has not started, waits or lost its run; a running job
    stops at its next progress report (``cancelRequestedAt`` is set meanwhile)."""

    permission = JOB_MANAGE
    error_codes = jobs.JobErrorCode
    job = graphene.Field(JobType)

    class Input(JobMutationInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"job": jobs.do_cancel_job(jobs.check_cancel_job(user, job_uuid(data["id"])))}


class Mutation(graphene.ObjectType):
    retry_job = RetryJobMutation.Field()
    cancel_job = CancelJobMutation.Field()
