"""An import's approval, through the core's maker-checker (``core.approvals``) like every other
action: the approval action ``individual.import``.

When the deployment routes ``individual.import`` to a task group (``setApprovalRoute``, or
``individual.approvals`` in ``modules_config.json``), an import that passed its checks asks
for approval (:func:`ask_for_approval`, in the job: the uploader is the maker) and pauses,
its staged rows kept. A checker of the group decides with the core's ``resolveTask`` or with
the openIMIS-shaped ``approveIndividualImport`` / ``rejectIndividualImport``
(:func:`check_decide_import` / :func:`do_decide_import`, which go through the same core
decision). The core refuses the maker's own decision; the action refuses a checker whose
locations do not cover every row. The approval's executor (:func:`_commit_approved`) puts
the job back in the queue, and the job checks the registry again and commits; a rejection
(:func:`_rejected`) cancels the job and drops its staged rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.approvals import ApprovalAction, ApprovalContext
from core.approvals.errors import ApprovalErrorCode
from core.approvals.services import (
    ResolveRequest,
    action_failures,
    check_can_request,
    check_resolve_task,
    do_resolve_task,
    needs_approval,
    request_approval,
)
from core.errors import CoreErrorCode, NotFound, ServiceError
from core.jobs import dispatch_on_commit
from core.models import ApprovalDecision, ApprovalTask, Job, User
from core.permissions import require
from core.uploads import discard_on_commit
from modules.individual.bulk_import.checks import rows_outside_scope
from modules.individual.bulk_import.staging import OK, Staging, drop_staging
from modules.individual.errors import IndividualErrorCode
from modules.individual.import_models import ImportRun
from modules.individual.permissions import IMPORT_APPROVE
from modules.location.services import scope_paths

# The approval action: the same string as the job kind and the upload purpose on purpose
# (one import, three vocabularies; see ``permissions.py``). Declared once, used by the
# plug-in's registration and by every caller.
IMPORT_APPROVAL = "individual.import"
ENTITY_TYPE = "IndividualImport"

APPROVED = ApprovalDecision.APPROVED
REJECTED = ApprovalDecision.REJECTED


def import_needs_approval() -> bool:
    """Whether an import started now waits for a checker's approval before it writes."""
    return needs_approval(IMPORT_APPROVAL)


def check_can_ask(user: User) -> None:
    """Refuse an import at its start, before a million rows are staged, when its approval could
    never be asked for (no such task group, no checker besides the uploader)."""
    check_can_request(user, IMPORT_APPROVAL)


def _within(run: ImportRun) -> str:
    """The path of the deepest location holding every row to import ("" when they span the
    roots): the common prefix of the rows' paths, cut at a segment."""
    staging = Staging(run.job)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT min(coalesce(hl.path, l.path)), max(coalesce(hl.path, l.path)) FROM {staging.rows} s
            LEFT JOIN {staging.households} h ON h.code = s.household_code
            LEFT JOIN location_location l ON l.code = s.location_code AND NOT l.is_deleted
            LEFT JOIN location_location hl ON hl.id = h.location_id
            WHERE {OK}""")
        low, high = cursor.fetchone()
    if not low or not high:
        return ""
    if low == high:
        return str(low)
    common = os.path.commonprefix([low, high])
    return common[: common.rfind("/") + 1]


def _in_scope(user: User) -> Q:
    """The import tasks a checker sees: those whose rows all lie within one of their locations."""
    paths = scope_paths(user)
    if paths is None:
        return Q()
    admitted = Q(pk__in=[])
    for path in paths:
        admitted |= Q(data__within__startswith=path)
    return admitted


def ask_for_approval(run: ImportRun) -> ApprovalTask:
    """The task a checker decides on, asked for by the uploader; called in the transaction
    that moves the import to ``WAITING``. ``within`` places it for the checkers' scope."""
    counts = run.counts
    data = {"file_name": run.upload.filename, "sha256": run.sha256, "mode": run.mode, "within": _within(run),
            **{k: counts[k] for k in ("total", "valid", "invalid", "likely_duplicates") if k in counts}}
    return request_approval(run.job.created_by, IMPORT_APPROVAL, ENTITY_TYPE, run.job_id, data)


def open_task(job_id: Any) -> ApprovalTask | None:
    return (ApprovalTask.objects.filter(action=IMPORT_APPROVAL, entity_type=ENTITY_TYPE, entity_id=str(job_id),
                                        status__in=ApprovalTask.OPEN_STATUSES).first())


# --- the action ------------------------------------------------------------------------------


def _locked_waiting_run(job_id: Any) -> ImportRun:
    run = (ImportRun.objects.select_for_update(of=("self",)).select_related("job", "upload")
           .filter(job_id=job_id).first())
    if run is None:
        raise NotFound("Import", job_id)
    if run.phase != ImportRun.WAITING or run.job.state != Job.WAITING:
        raise ServiceError(IndividualErrorCode.NOT_AWAITING_APPROVAL,
                           f"This import is not waiting for approval (it is {run.job.state.lower()}).", "jobId")
    return run


def _commit_approved(task: ApprovalTask, context: ApprovalContext) -> dict[str, Any]:
    """The approval's executor: the import's job goes back to the queue to check the registry
    again and commit, as its uploader."""
    run = _locked_waiting_run(task.entity_id)
    run.phase, run.decided_by, run.decided_at = ImportRun.APPROVED, context.approver, timezone.now()
    run.save(update_fields=["phase", "decided_by", "decided_at"])
    job = run.job
    job.state, job.stage = Job.QUEUED, "approved"
    Job.objects.filter(pk=job.pk).update(state=job.state, stage=job.stage)
    dispatch_on_commit(job)
    return {"job_id": str(job.pk)}


def _rejected(task: ApprovalTask, checker: User, comment: str) -> None:
    """A checker said no: the job ends cancelled, nothing is written, the staged rows and the
    file go."""
    run = (ImportRun.objects.select_for_update(of=("self",)).select_related("job", "upload")
           .filter(job_id=task.entity_id).first())
    if run is None or run.phase != ImportRun.WAITING:
        return
    run.phase, run.decided_by, run.decided_at, run.decision_reason = (
        ImportRun.REJECTED, checker, timezone.now(), comment)
    run.save(update_fields=["phase", "decided_by", "decided_at", "decision_reason"])
    job = run.job
    job.state, job.stage, job.finished_at = Job.CANCELLED, "rejected", timezone.now()
    job.message = f"Rejected by {checker.username}: {comment}" if comment else f"Rejected by {checker.username}."
    Job.objects.filter(pk=job.pk).update(state=job.state, stage=job.stage, finished_at=job.finished_at,
                                         message=job.message)
    staging = Staging(job)
    transaction.on_commit(lambda: drop_staging(staging))
    discard_on_commit(run.upload)


def _covers_every_row(task: ApprovalTask, checker: User) -> None:
    run = ImportRun.objects.select_related("job").filter(job_id=task.entity_id).first()
    if run is None:
        return
    outside = rows_outside_scope(run, checker)
    if outside:
        raise ServiceError(CoreErrorCode.OUT_OF_SCOPE,
                           f"{outside} of the rows to import are in locations outside yours; "
                           "a checker whose locations cover them must decide on this import.", "jobId")


def _describe(task: ApprovalTask) -> str:
    data = task.data
    return (f"Import {data.get('valid', 0):,} of {data.get('total', 0):,} rows of "
            f"{data.get('file_name', 'a file')} into the registry ({data.get('mode', '')}).")


ACTIONS: dict[str, ApprovalAction] = {
    IMPORT_APPROVAL: ApprovalAction(execute=_commit_approved, permission=IMPORT_APPROVE, describe=_describe,
                                    check_decider=_covers_every_row, rejected=_rejected, in_scope=_in_scope),
}


# --- the openIMIS-shaped entry points --------------------------------------------------------


@dataclass(frozen=True)
class DecideImportRequest:
    actor: User
    job_id: Any
    resolve: ResolveRequest


@dataclass(frozen=True)
class ImportDecision:
    """The import's job after the decision, and what went wrong after it was recorded (an
    approval whose action failed: the decision stands, the import did not resume)."""

    job: Job
    errors: list[dict[str, Any]]


def _as_import_refusal(error: ServiceError) -> ServiceError:
    """A refusal of the core's decision in the import's words: the mutation's enum is the
    module's and its input names the job. Generic refusals (permission, scope) pass as they are."""
    value = str(error.code)
    if value not in {code.value for code in ApprovalErrorCode}:
        return error
    if value == ApprovalErrorCode.TASK_CLOSED:
        code = IndividualErrorCode.NOT_AWAITING_APPROVAL
    elif value in {code.value for code in IndividualErrorCode}:
        code = IndividualErrorCode(value)
    else:
        return error
    field = "jobId" if error.field in ("id", "businessStatus") else error.field
    return ServiceError(code, error.message, field)


def check_decide_import(actor: User, job_id: Any, decision: str, reason: str = "") -> DecideImportRequest:
    """Whether ``actor`` may approve (``APPROVED``) or reject (``REJECTED``, with a reason the
    uploader reads) the import of job ``job_id``: the core's checks of a decision (a checker of
    the task's group, not its maker), and the import's (rows within the checker's locations)."""
    require(actor, IMPORT_APPROVE)
    reason = (reason or "").strip()
    if decision == REJECTED and not reason:
        raise ServiceError(CoreErrorCode.REQUIRED, "Say why the import is rejected; its uploader reads it.", "reason")
    if not ImportRun.objects.filter(job_id=job_id).exists():
        raise NotFound("Import", job_id)
    task = open_task(job_id)
    if task is None:
        state = Job.objects.filter(pk=job_id).values_list("state", flat=True).first() or "gone"
        raise ServiceError(IndividualErrorCode.NOT_AWAITING_APPROVAL,
                           f"This import is not waiting for approval (it is {state.lower()}).", "jobId")
    # In the import's words before the core's: a checker whose locations miss rows is told how
    # many (the core would not show them the task at all).
    _covers_every_row(task, actor)
    try:
        resolve = check_resolve_task(actor, task.pk, decision, reason)
    except ServiceError as error:
        raise _as_import_refusal(error) from None
    return DecideImportRequest(actor, job_id, resolve)


def do_decide_import(request: DecideImportRequest) -> ImportDecision:
    """Record the decision through the core (it locks the task and checks again)."""
    try:
        task = do_resolve_task(request.resolve)
    except ServiceError as error:
        raise _as_import_refusal(error) from None
    errors = [{**failure, "code": IndividualErrorCode.ACTION_FAILED, "field": "jobId"}
              for failure in action_failures(task)]
    return ImportDecision(Job.objects.get(pk=request.job_id), errors)


__all__ = ["ACTIONS", "ENTITY_TYPE", "IMPORT_APPROVAL", "DecideImportRequest", "ImportDecision",
           "ask_for_approval", "check_can_ask", "check_decide_import", "do_decide_import", "import_needs_approval"]
