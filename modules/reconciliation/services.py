"""The reconciliation use cases (``check_*`` validates and authorises, ``do_*`` performs) and
the selectors the schema and views read through, each within the caller's location scope."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from core.errors import CoreErrorCode, FieldError, ServiceError, ValidationFailed
from core.jobs import JobContext, start_job
from core.models import Upload, User
from core.permissions import require
from modules.location.services import require_national, scope_paths, within_paths
from modules.payroll.models import BenefitConsumption, PaymentPoint, Payroll
from modules.payroll.services.selectors import visible_payrolls
from modules.reconciliation import ledger, statements
from modules.reconciliation.errors import ReconciliationErrorCode as E
from modules.reconciliation.models import (
    FileStatus,
    Mismatch,
    MismatchClass,
    MismatchEvent,
    MismatchStatus,
    PullToken,
    ReportFile,
    ReportStatus,
    Resolution,
    Source,
)
from modules.reconciliation.permissions import (
    MISMATCH_SEARCH,
    MISMATCH_UPDATE,
    PULL_TOKEN_REVOKE,
    REPORT_INGEST,
    REPORT_SEARCH,
)
from modules.reconciliation.reading import Counts, layout_for, read_rows

log = logging.getLogger("coremis.reconciliation")
PAYMENT_LOCATION = "individual__location"
FILE_SOURCES = (Source.RESULT_FILE, Source.OPENIMIS_CSV, Source.CAMT053, Source.MT940)
MAX_ROW_ERRORS = 1000


# --- scope -----------------------------------------------------------------------------------


def visible_payroll(user: User, payroll_id: Any) -> Payroll:
    payroll = visible_payrolls(user, Payroll.objects.all()).filter(pk=payroll_id).first()
    if payroll is None:
        raise ServiceError(CoreErrorCode.NOT_FOUND, f"Payroll {payroll_id} does not exist or is not visible to you.", "payrollId")
    return payroll


def visible_files(user: User, queryset: QuerySet) -> QuerySet:
    """Files of payrolls the user sees; files of no payroll (a point's result file) are
    national users'."""
    paths = scope_paths(user)
    if paths is None:
        return queryset
    return queryset.filter(payroll__in=visible_payrolls(user, Payroll.objects.all()))


def visible_mismatches(user: User, queryset: QuerySet) -> QuerySet:
    """Mismatches of payments in the user's scope; unknown references (no payment) are
    national users'."""
    paths = scope_paths(user)
    if paths is None:
        return queryset
    payments = BenefitConsumption.all_objects.filter(pk=OuterRef("payment_id")).filter(
        within_paths(paths, PAYMENT_LOCATION))
    return queryset.filter(Exists(payments))


# --- ingesting a file ------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestRequest:
    actor: User
    source: str
    upload: Upload
    payroll: Payroll | None
    point: PaymentPoint | None


def check_ingest(actor: User, *, source: str, upload: Upload, payroll_id: Any = None,
                 point_code: str | None = None) -> IngestRequest:
    """A provider's result file is read for its payment point (its column mapping), optionally
    restricted to one payroll; the openIMIS CSV is for one payroll."""
    require(actor, REPORT_INGEST)
    if source == Source.RESULT_FILE:
        source = statements.kind_of(Path(upload.stored_path)) or source
    if source not in FILE_SOURCES:
        raise ValidationFailed([FieldError("source", E.UNKNOWN_SOURCE, f"'{source}' is not a file source.")])
    payroll = visible_payroll(actor, payroll_id) if payroll_id else None
    point = None
    if point_code:
        point = PaymentPoint.objects.filter(code=point_code).first()
        if point is None:
            raise ServiceError(CoreErrorCode.NOT_FOUND, f"Payment point {point_code} does not exist.", "paymentPointCode")
    elif payroll is not None and payroll.payment_point_id:
        point = payroll.payment_point
    if source not in (Source.OPENIMIS_CSV,) and point is None:
        raise ValidationFailed([FieldError("paymentPointCode", E.POINT_REQUIRED,
                                           "Name the payment point whose result file this is.")])
    if source == Source.OPENIMIS_CSV and payroll is None:
        raise ValidationFailed([FieldError("payrollId", CoreErrorCode.REQUIRED, "Name the payroll (payroll_id).")])
    if payroll is None and scope_paths(actor) is not None:
        raise ServiceError(CoreErrorCode.OUT_OF_SCOPE, "A result file of a whole payment point needs national "
                                                       "scope; name the payroll.", "payrollId")
    return IngestRequest(actor, source, upload, payroll, point)


def do_ingest(request: IngestRequest) -> ReportFile:
    """Record the file (TRIGGERED) and read it in a background job; the same file handed in
    again is recognised by its checksum and read no more."""
    with transaction.atomic():
        earlier = ReportFile.objects.filter(checksum=request.upload.sha256, source=request.source,
                                            payment_point=request.point, duplicate_of__isnull=True,
                                            status__in=(FileStatus.SUCCESS, FileStatus.PARTIAL_SUCCESS)).first()
        file = ReportFile.objects.create(
            source=request.source, payroll=request.payroll, payment_point=request.point, upload=request.upload,
            file_name=request.upload.filename, checksum=request.upload.sha256, user_created=request.actor,
            status=FileStatus.SUCCESS if earlier else FileStatus.TRIGGERED, duplicate_of=earlier,
            json_ext={"note": "the same file was received before; nothing was read again"} if earlier else None)
        if earlier is None:
            file.job = start_job("reconciliation.ingest", {"file_id": str(file.pk)}, request.actor)
            file.save(update_fields=["job"])
    return file


def run_ingest(ctx: JobContext) -> dict[str, Any]:
    """The job: read, stage, store, match. A bad row is reported in the file's ``error``; a
    file that cannot be read at all is FAIL with why."""
    file = ReportFile.objects.select_related("payment_point", "payroll", "upload").get(pk=ctx.params["file_id"])
    ReportFile.objects.filter(pk=file.pk).update(status=FileStatus.IN_PROGRESS)
    ctx.progress(0, None, "reading")
    counts = Counts()
    point_code = file.payment_point.code if file.payment_point else None
    path = Path(file.upload.stored_path)
    try:
        if file.source in (Source.CAMT053, Source.MT940):
            rows = statements.read_statement(file.source, path, counts)
        else:
            rows = read_rows(path, layout_for(file.source, point_code), counts)
        # (a statement's reader is the slow half: it reads the next chunk while one is stored)
        result = ledger.store(rows, source=file.source, point_id=file.payment_point_id, file_id=file.pk,
                              user=ctx.user, payroll_id=file.payroll_id, scope=scope_paths(ctx.user),
                              chunk=ledger.STAGE_CHUNK if file.source in (Source.CAMT053, Source.MT940) else None)
    except ServiceError as exc:
        ReportFile.objects.filter(pk=file.pk).update(status=FileStatus.FAIL, error={"file": exc.message},
                                                     rows=counts.rows)
        return {"status": FileStatus.FAIL, "error": exc.message}
    errors = {str(i.line): f"{i.code}: {i.message}" for i in counts.issues[:MAX_ROW_ERRORS]}
    for line, code, message in result.pop("issues")[:MAX_ROW_ERRORS]:
        errors[str(line)] = f"{code}: {message}"
    bad = len(counts.issues) + result["refused"]
    if counts.rows == 0:
        status, errors = FileStatus.FAIL, {"file": "The file has a header but no rows."}
    elif bad == 0:
        status = FileStatus.SUCCESS
    elif bad >= counts.rows:
        status = FileStatus.FAIL
    else:
        status = FileStatus.PARTIAL_SUCCESS
    summary = {"rows": counts.rows, "ignored": counts.ignored, "bad_rows": bad, **result}
    ReportFile.objects.filter(pk=file.pk).update(status=status, error=errors, rows=counts.rows,
                                                 stored=result["stored"], json_ext=summary)
    ctx.progress(counts.rows, counts.rows, "matched")
    return {"status": status, **summary}


# --- what payroll heard ----------------------------------------------------------------------


def record_provider_outcomes(point: Any, source: str, outcomes: list[Any]) -> dict[str, int]:
    """Callbacks and polls, as payroll recorded them, written to the ledger (once each)."""
    from core.actors import system_actor
    from modules.reconciliation.reading import Row

    kinds = {"PAID": ReportStatus.PAID, "FAILED": ReportStatus.FAILED, "SENT": ReportStatus.ACCEPTED}
    rows = [Row(line=n, reference=o.reference[:100], status=kinds[o.status],
                provider_transaction_id=o.provider_transaction_id[:100], message=o.message[:255],
                raw=f"{o.reference},{o.status},{o.provider_transaction_id},{o.message}"[:2000])
            for n, o in enumerate(outcomes, start=1) if o.status in kinds]
    if not rows:
        return {"staged": 0, "stored": 0, "mismatches": 0}
    result = ledger.store(rows, source=source, point_id=point.pk, file_id=None, user=system_actor())
    result.pop("issues", None)
    return result


# --- mismatches ------------------------------------------------------------------------------


UNSET: Any = object()
# What each class may be resolved as.
RESOLUTIONS: dict[str, tuple[str, ...]] = {
    MismatchClass.AMOUNT_DIFFERS: (Resolution.ACCEPTED_WITH_REASON, Resolution.RECOVERY_REQUESTED,
                                   Resolution.PROVIDER_CORRECTED),
    MismatchClass.CURRENCY_DIFFERS: (Resolution.ACCEPTED_WITH_REASON, Resolution.RECOVERY_REQUESTED,
                                     Resolution.PROVIDER_CORRECTED),
    MismatchClass.UNKNOWN_REFERENCE: (Resolution.ACCEPTED_WITH_REASON, Resolution.RECOVERY_REQUESTED,
                                      Resolution.PROVIDER_CORRECTED),
    MismatchClass.PAID_TWICE: (Resolution.ACCEPTED_WITH_REASON, Resolution.RECOVERY_REQUESTED,
                               Resolution.PROVIDER_CORRECTED),
    MismatchClass.PAID_AFTER_FAILED: tuple(Resolution.values),
    MismatchClass.FAILED_AFTER_PAID: tuple(Resolution.values),
    MismatchClass.NOT_REPORTED: (Resolution.ACCEPTED_WITH_REASON, Resolution.REISSUED, Resolution.PROVIDER_CORRECTED),
    MismatchClass.WRONG_RECIPIENT: (Resolution.ACCEPTED_WITH_REASON, Resolution.RECOVERY_REQUESTED,
                                    Resolution.REISSUED, Resolution.PROVIDER_CORRECTED),
}


@dataclass(frozen=True)
class UpdateMismatchRequest:
    actor: User
    mismatch: Mismatch
    assignee: User | None | Any
    comment: str
    resolution: str


def check_update_mismatch(actor: User, mismatch_id: Any, *, version: int | None = None, assignee_id: Any = UNSET,
                          comment: str = "", resolution: str = "") -> UpdateMismatchRequest:
    require(actor, MISMATCH_UPDATE)
    mismatch = visible_mismatches(actor, Mismatch.objects.all()).filter(pk=mismatch_id).first()
    if mismatch is None:
        raise ServiceError(E.MISMATCH_NOT_FOUND, f"No mismatch {mismatch_id} you may see.", "id")
    if version is not None and version != mismatch.version:
        raise ServiceError(CoreErrorCode.STALE_VERSION, f"The mismatch changed (version {mismatch.version}, "
                                                        f"not {version}); read it again.", "version")
    if mismatch.status == MismatchStatus.RESOLVED:
        raise ServiceError(E.MISMATCH_RESOLVED, f"The mismatch was resolved as {mismatch.resolution}.", "id")
    assignee: Any = UNSET
    if assignee_id is not UNSET:
        assignee = None if assignee_id is None else User.objects.filter(pk=assignee_id, is_active=True).first()
        if assignee_id is not None and assignee is None:
            raise ValidationFailed([FieldError("assigneeId", E.ASSIGNEE_NOT_FOUND, "The assignee is no active user.")])
    comment = (comment or "").strip()
    if resolution:
        if resolution not in RESOLUTIONS[mismatch.klass]:
            raise ValidationFailed([FieldError("resolution", E.RESOLUTION_NOT_ALLOWED,
                                               f"A {mismatch.klass} mismatch is resolved as one of "
                                               f"{', '.join(RESOLUTIONS[mismatch.klass])}.")])
        if len(comment) < 5:
            raise ValidationFailed([FieldError("comment", E.COMMENT_REQUIRED, "Say why, in a sentence.")])
    elif assignee is UNSET and not comment:
        raise ValidationFailed([FieldError("comment", CoreErrorCode.REQUIRED,
                                           "Give an assignee, a comment or a resolution.")])
    return UpdateMismatchRequest(actor, mismatch, assignee, comment, resolution)


def do_update_mismatch(request: UpdateMismatchRequest) -> Mismatch:
    """Assign, comment or resolve, with one history event; a mismatch accepted with a reason
    lets the provider's word about the payment stand (it is applied to the payment)."""
    with transaction.atomic():
        mismatch = Mismatch.objects.select_for_update().get(pk=request.mismatch.pk)
        if mismatch.version != request.mismatch.version or mismatch.status == MismatchStatus.RESOLVED:
            raise ServiceError(CoreErrorCode.STALE_VERSION, "The mismatch changed meanwhile; read it again.", "id")
        fields = ["version", "date_updated", "user_updated"]
        action = "COMMENTED"
        if request.assignee is not UNSET:
            mismatch.assignee = request.assignee
            fields.append("assignee")
            action = "ASSIGNED"
        if request.comment:
            mismatch.comment = request.comment
            fields.append("comment")
        if request.resolution:
            mismatch.status, mismatch.resolution = MismatchStatus.RESOLVED, request.resolution
            fields += ["status", "resolution"]
            action = "RESOLVED"
        mismatch.version += 1
        mismatch.date_updated = timezone.now()
        mismatch.user_updated = request.actor
        mismatch.save(update_fields=fields)
        MismatchEvent.objects.create(mismatch=mismatch, actor=request.actor, action=action, comment=request.comment,
                                     assignee=mismatch.assignee, resolution=request.resolution)
        if request.resolution == Resolution.ACCEPTED_WITH_REASON and mismatch.payment_id and mismatch.report_id:
            _let_report_stand(mismatch, request.actor)
    return mismatch


def _let_report_stand(mismatch: Mismatch, actor: User) -> None:
    from modules.payroll.adaptors.base import FAILED, PAID, Outcome
    from modules.payroll.sending import record_outcomes

    if Mismatch.objects.filter(payment_id=mismatch.payment_id, status=MismatchStatus.OPEN).exists():
        return
    report = mismatch.report
    if report is not None and report.status in (ReportStatus.PAID, ReportStatus.FAILED):
        status = PAID if report.status == ReportStatus.PAID else FAILED
        record_outcomes([Outcome(report.reference, status, report.provider_transaction_id, report.message)], actor)


# --- pull-API tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RevokePullTokensRequest:
    actor: User
    point: PaymentPoint
    token_id: Any
    reason: str


def check_revoke_pull_tokens(actor: User, payment_point_id: Any, *, token_id: Any = None,
                             reason: str = "") -> RevokePullTokensRequest:
    """A point's credentials serve every location at once: revoking them is a national right.
    Without ``token_id``, every live token of the point (a compromised or rotated secret)."""
    require(actor, PULL_TOKEN_REVOKE)
    require_national(actor, "Revoking a payment point's pull-API tokens")
    point = PaymentPoint.objects.filter(pk=payment_point_id).first()
    if point is None:
        raise ServiceError(CoreErrorCode.NOT_FOUND, f"Payment point {payment_point_id} does not exist.",
                           "paymentPointId")
    if token_id is not None and not PullToken.objects.filter(pk=token_id, payment_point=point).exists():
        raise ServiceError(CoreErrorCode.NOT_FOUND, f"The point {point.code} issued no token {token_id}.", "tokenId")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed([FieldError("reason", CoreErrorCode.REQUIRED, "Say why the tokens are revoked.")])
    return RevokePullTokensRequest(actor, point, token_id, reason[:255])


def do_revoke_pull_tokens(request: RevokePullTokensRequest) -> int:
    """Revoke at once (the pull API looks every token up); returns how many were live. The
    change is in ``core_history`` with the actor."""
    from core.history import acting_as

    live = PullToken.objects.filter(payment_point=request.point, revoked_at__isnull=True,
                                    expires_at__gt=timezone.now())
    if request.token_id is not None:
        live = live.filter(pk=request.token_id)
    with transaction.atomic(), acting_as(request.actor, action="reconciliation.pull_token.revoke"):
        return live.update(revoked_at=timezone.now(), revoked_by=request.actor, revoked_reason=request.reason)


def pull_tokens(actor: User, payment_point_id: Any) -> QuerySet:
    """The tokens a point's provider was issued, newest first (who revoked which, and why)."""
    require(actor, PULL_TOKEN_REVOKE)
    require_national(actor, "Reading a payment point's pull-API tokens")
    return PullToken.objects.filter(payment_point_id=payment_point_id).select_related("revoked_by").order_by(
        "-issued_at")


def purge_pull_tokens(ctx: JobContext) -> dict[str, int]:
    """Delete the pull-API tokens that expired or were revoked more than
    ``pull_token_retention_days`` (default 90) ago: a provider asks for a token every hour or
    so, and a dead token is no use but as a record, which ``core_history`` keeps (the issue,
    the revocation with who and why, and this deletion by the system actor)."""
    from core.history import acting_as
    from core.loader import module_config

    days = module_config("reconciliation").get("pull_token_retention_days", 90)  # checked by the module's schema
    cutoff = timezone.now() - timedelta(days=days)
    dead = PullToken.objects.filter(Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff))
    with transaction.atomic(), acting_as(ctx.user, action="reconciliation.pull_token.purge"):
        deleted, _ = dead.delete()
    return {"deleted": deleted, "retention_days": days}


def flag_unreported(ctx: JobContext) -> dict[str, int]:
    return {"flagged": ledger.flag_unreported(ctx.user)}


# --- reports ---------------------------------------------------------------------------------

# Each payment in exactly one state; ``o`` is the payment's row of open mismatches (below).
STATE_SQL = """CASE WHEN o.payment_id IS NOT NULL THEN 'MISMATCHED'
                     WHEN b.status IN ('PAID', 'RECONCILED') THEN 'PAID'
                     WHEN b.status = 'FAILED' THEN 'FAILED' ELSE 'PENDING' END"""
GROUPS = ("payroll", "cycle", "point", "location")
REPORT_TOTALS = ("ordered_count", "ordered_sum", "paid_count", "paid_sum", "failed_count", "failed_sum", "pending_count",
                 "pending_sum", "mismatched_count", "mismatched_sum")


def check_report(actor: User, *, payroll_id: Any = None, payment_cycle_id: Any = None, payment_point_id: Any = None,
                 group_by: str = "payroll", location_level: int | None = None) -> dict[str, Any]:
    require(actor, REPORT_SEARCH)
    if group_by not in GROUPS:
        raise ValidationFailed([FieldError("groupBy", CoreErrorCode.INVALID, f"Group by one of {', '.join(GROUPS)}.")])
    if payroll_id:
        visible_payroll(actor, payroll_id)
    return {"actor": actor, "payroll_id": payroll_id, "payment_cycle_id": payment_cycle_id,
            "payment_point_id": payment_point_id, "group_by": group_by, "location_level": location_level or 0}


def report_rows(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Ordered count and sum, then paid, failed, pending and mismatched (count and sum; each
    payment in exactly one), and open mismatches by class, per group; in the caller's scope.
    One statement over the payments and their open mismatches."""
    where, params = ["NOT b.is_deleted", "b.status <> 'CANCELLED'"], []
    for key, column in (("payroll_id", "b.payroll_id"), ("payment_cycle_id", "b.payment_cycle_id"),
                        ("payment_point_id", "b.payment_point_id")):
        if request[key]:
            where.append(f"{column} = %s")
            params.append(str(request[key]))
    paths = scope_paths(request["actor"])
    if paths is not None:
        where.append("l.path LIKE ANY(%s)")
        params.append([p + "%" for p in paths] or ["-"])
    level = int(request["location_level"])
    # Payments are counted per ``unit`` first, then per group (``key``): by location the unit is
    # the payment's place, so the place's path is read once per location, not once per payment.
    unit, key, label = {"payroll": ("b.payroll_id::text", "u.unit", "p.name"),
                        "cycle": ("b.payment_cycle_id::text", "u.unit", "c.code"),
                        "point": ("b.payment_point_id::text", "u.unit", "pt.code"),
                        "location": ("b.place_id", f"split_part(pl.path, '/', {level + 1})",
                                     "g.name")}[request["group_by"]]
    # The recipients are read only for the scope (where they live now). A payment is grouped by
    # the place it was generated for (payroll's ``place``: a national report then reads the
    # locations, not a million people), or, for a row without one, where its recipient lives:
    # those rows are a branch of their own, so the planner sees one grouping column with its
    # statistics (hashed into a few thousand places) instead of an expression it cannot count.
    places, units = "", ""
    if paths is not None:
        places = ("JOIN individual_individual i ON i.id = b.individual_id "
                  "JOIN location_location l ON l.id = i.location_id")
    branches = [(unit, places, where)]
    if request["group_by"] == "location":
        units = "JOIN location_location pl ON pl.id = u.unit"
        lives = (("i.location_id", places) if paths is not None else
                 ("x.location_id", "JOIN individual_individual x ON x.id = b.individual_id"))
        branches = [(unit, places, [*where, "b.place_id IS NOT NULL"]),
                    (lives[0], lives[1], [*where, "b.place_id IS NULL"])]
        params = params * 2
    # Open mismatches counted per payment first (a few hundred rows, hashed), so the payments
    # are read once, by one aggregate: no per-row lookup and no second pass over them.
    classes = ", ".join(f"count(*) FILTER (WHERE m.klass = '{k}') AS \"{k}\"" for k in MismatchClass.values)
    class_sums = ", ".join(f"coalesce(sum(o.\"{k}\"), 0) AS \"{k}\"" for k in MismatchClass.values)
    totals = ", ".join(f"sum(u.\"{c}\")::bigint AS \"{c}\"" for c in (*REPORT_TOTALS, *MismatchClass.values))
    measures = f"""count(*) AS ordered_count, coalesce(sum(b.amount), 0) AS ordered_sum,
                   count(*) FILTER (WHERE {STATE_SQL} = 'PAID') AS paid_count,
                   coalesce(sum(b.amount) FILTER (WHERE {STATE_SQL} = 'PAID'), 0) AS paid_sum,
                   count(*) FILTER (WHERE {STATE_SQL} = 'FAILED') AS failed_count,
                   coalesce(sum(b.amount) FILTER (WHERE {STATE_SQL} = 'FAILED'), 0) AS failed_sum,
                   count(*) FILTER (WHERE {STATE_SQL} = 'PENDING') AS pending_count,
                   coalesce(sum(b.amount) FILTER (WHERE {STATE_SQL} = 'PENDING'), 0) AS pending_sum,
                   count(*) FILTER (WHERE {STATE_SQL} = 'MISMATCHED') AS mismatched_count,
                   coalesce(sum(b.amount) FILTER (WHERE {STATE_SQL} = 'MISMATCHED'), 0) AS mismatched_sum,
                   {class_sums}"""
    sql = f"""
        WITH open AS (
            SELECT m.payment_id, {classes} FROM {ledger.MISMATCH} m
            WHERE m.status = 'OPEN' AND m.payment_id IS NOT NULL GROUP BY m.payment_id),
        units AS ({" UNION ALL ".join(
            f"SELECT {unit_sql} AS unit, {measures} FROM {ledger.PAYMENT} b LEFT JOIN open o ON o.payment_id = b.id "
            f"{joins} WHERE {' AND '.join(conditions)} GROUP BY 1" for unit_sql, joins, conditions in branches)}),
        totals AS (SELECT {key} AS key, {totals} FROM units u {units} GROUP BY 1)
        SELECT t.*, n.label
        FROM totals t
        LEFT JOIN LATERAL (SELECT {label} AS label FROM (SELECT 1) one
            LEFT JOIN payroll_payroll p ON p.id::text = t.key LEFT JOIN payroll_paymentcycle c ON c.id::text = t.key
            LEFT JOIN payroll_paymentpoint pt ON pt.id::text = t.key
            LEFT JOIN location_location g ON replace(g.id::text, '-', '') = t.key) n ON true
        ORDER BY n.label, t.key"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def close_problems(payroll: Payroll) -> list[str]:
    """Payments not final yet and unresolved mismatches stand in the way of closing."""
    problems: list[str] = []
    pending = list(BenefitConsumption.objects.filter(payroll=payroll, status__in=("CREATED", "APPROVED", "SENT"))
                   .order_by("code").values_list("code", flat=True)[:11])
    if pending:
        problems.append(f"payments not final: {', '.join(pending[:10])}{' …' if len(pending) > 10 else ''}")
    open_cases = list(Mismatch.objects.filter(payroll=payroll, status=MismatchStatus.OPEN).order_by("reference")
                      .values_list("klass", "reference")[:11])
    if open_cases:
        problems.append("unresolved mismatches: " + ", ".join(f"{k} {r}" for k, r in open_cases[:10]) +
                        (" …" if len(open_cases) > 10 else ""))
    return problems


def round_problems(plan: Any, location_ids: list[str], follows: Any) -> list[FieldError]:
    """The round rule: in a commune (the configured ``round_level``), a plan's next payroll waits
    until its previous one there is reconciled (closed). A re-issue of a payroll's failed
    payments belongs to that payroll's round and is not held."""
    from core.loader import module_config
    from modules.location.models import Location

    conf = module_config("reconciliation")
    if not conf.get("round_rule", True) or not location_ids or follows is not None:
        return []
    level = conf.get("round_level", "Commune")
    rounds = list(Location.objects.filter(pk__in=location_ids, type=level).values_list("pk", "code"))
    problems = []
    for pk, code in rounds:
        open_ = (Payroll.objects.filter(payment_plan=plan, location_ids__contains=[str(pk)])
                 .exclude(status__in=("RECONCILED", "REJECTED")).order_by("date_created").first())
        if open_ is not None:
            problems.append(FieldError("locationIds", E.PREVIOUS_ROUND_OPEN,
                                       f"The previous round of this plan in {code} (payroll {open_.name}, "
                                       f"{open_.status}) is not reconciled yet; close it first."))
    return problems


__all__ = ["MISMATCH_SEARCH"]
