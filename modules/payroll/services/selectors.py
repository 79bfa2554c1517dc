"""Reading payrolls and payments as a user may: which payrolls they see, the control totals of
their scope, benefit summaries. A payment is where its recipient lives (``PAYMENT_LOCATION``):
lists, totals and payroll-wide actions all scope payments by it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from core.errors import NotFound
from core.models import User
from modules.location.services import scope_paths, scope_queryset, within_paths
from modules.payroll.models import BenefitConsumption, InstructionStatus, Payroll

PAYMENT_LOCATION = "individual__location"


def get_payroll(user: User, pk: Any, *, for_update: bool = False) -> Payroll:
    """A payroll ``user`` may see (``NotFound`` otherwise), locked FOR UPDATE if asked."""
    rows = visible_payrolls(user, Payroll.objects.all())
    if for_update:
        rows = Payroll.objects.select_for_update().filter(pk__in=rows.values("pk"))
    return get_from(rows, pk, "Payroll")


def get_from(rows: QuerySet, pk: Any, what: str) -> Any:
    """The row ``pk`` of ``rows``; an id that is not one is not found either."""
    try:
        row = rows.filter(pk=pk).first()
    except (ValueError, TypeError, DjangoValidationError):
        row = None
    if row is None:
        raise NotFound(what, pk)
    return row


def benefits_summary(queryset: QuerySet) -> dict[str, int]:
    """Amounts by outcome over instructions (openIMIS ``benefitsSummary``), in minor units."""
    totals = queryset.aggregate(
        total=Coalesce(Sum("amount"), 0),
        paid=Coalesce(Sum("amount", filter=_q(InstructionStatus.PAID, InstructionStatus.RECONCILED)), 0),
        failed=Coalesce(Sum("amount", filter=_q(InstructionStatus.FAILED)), 0),
        count=Count("id"),
    )
    totals["unpaid"] = totals["total"] - totals["paid"]
    return {k: int(v) for k, v in totals.items()}


def _q(*statuses: str) -> Q:
    return Q(status__in=statuses)


def visible_payrolls(user: User, queryset: QuerySet) -> QuerySet:
    """Payrolls limited to locations outside the user's scope are hidden; national users see all."""
    paths = scope_paths(user)  # the system actor is national
    if paths is None:
        return queryset
    return queryset.filter(Exists(BenefitConsumption.objects.filter(payroll=OuterRef("pk")).filter(
        within_paths(paths, PAYMENT_LOCATION))))


def is_visible_payroll(user: User, pk: Any) -> bool:
    """Whether the live payroll ``pk`` is one ``user`` sees (:func:`visible_payrolls`): the
    check every list of one payroll's payments starts with. For a national user it is written
    out (the payroll's key and soft-delete flag), as building and compiling the ORM's version
    and making the payroll from its row cost more CPU than the page's own statements."""
    if scope_paths(user) is not None:
        return visible_payrolls(user, Payroll.objects.filter(pk=pk)).exists()
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM "{Payroll._meta.db_table}" WHERE id = %s AND NOT is_deleted', [pk])
        return cursor.fetchone() is not None


def scoped_totals(user: User, payroll: Payroll) -> tuple[int, int]:
    """The control totals ``user`` may see: the payroll's own for national users; for a scoped
    user, the count and sum of its payments in their locations (every status, as generation
    counted them), so a province officer never sees money paid elsewhere."""
    if scope_paths(user) is None:
        return payroll.control_count, payroll.control_sum
    annotated = getattr(payroll, "scoped_count", None)
    if annotated is not None:
        return int(annotated), int(payroll.scoped_sum)
    rows = scope_queryset(BenefitConsumption.all_objects.filter(payroll=payroll), user, PAYMENT_LOCATION)
    totals = rows.aggregate(n=Count("id"), s=Coalesce(Sum("amount"), 0))
    return int(totals["n"]), int(totals["s"])


def with_scoped_totals(user: User, queryset: QuerySet) -> QuerySet:
    """``queryset`` with ``scoped_count`` / ``scoped_sum`` (see :func:`scoped_totals`) computed
    in the list's own query, for scoped users."""
    paths = scope_paths(user)
    if paths is None:
        return queryset
    rows = (BenefitConsumption.all_objects.filter(payroll=OuterRef("pk")).filter(within_paths(paths, PAYMENT_LOCATION))
            .order_by().values("payroll"))
    return queryset.annotate(
        scoped_count=Coalesce(Subquery(rows.annotate(n=Count("id")).values("n")), 0),
        scoped_sum=Coalesce(Subquery(rows.annotate(s=Sum("amount")).values("s")), 0),
    )


def actual_totals(payroll: Payroll) -> tuple[int, int]:
    """What the payroll's payments (all but cancelled ones) add up to now."""
    totals = BenefitConsumption.objects.filter(payroll=payroll).exclude(status=InstructionStatus.CANCELLED).aggregate(
        n=Count("id"), s=Coalesce(Sum("amount"), 0))
    return int(totals["n"]), int(totals["s"])
