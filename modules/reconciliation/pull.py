"""The pull API for providers that prefer to fetch their work: each payment point may let its
provider in with OAuth2 client credentials (``pull_client_secret`` in the point's ``config``, an
``{"env": …}`` reference like every credential there). A token names one point and lasts an hour;
everything it reads or says is limited to that point's payments. Each token is a
:class:`~modules.reconciliation.models.PullToken` row looked up on every request: revoking it
(``revokeReconciliationPullTokens``) or rotating the point's secret refuses it at once.

- ``POST /api/reconciliation/pull/token`` — ``grant_type=client_credentials``, ``client_id`` (the
  point's code), ``client_secret`` → ``{access_token, token_type, expires_in}``;
- ``GET /api/reconciliation/pull/payments?cycle=<code>&commune=<code>&after=<reference>&limit=<n>``
  — the point's payments waiting for a word (APPROVED or SENT, payroll's effective status) in an
  approved payroll that is not closed (PARTIALLY_PAID included), in reference order, a page at a time;
- ``POST /api/reconciliation/pull/acknowledgements`` — ``{"acknowledgements": [{"reference",
  "status": "ACCEPTED" | "REJECTED", "error_code"}]}``;
- ``POST /api/reconciliation/pull/consolidations`` — ``{"consolidations": [{"reference",
  "status": "SUCCESS" | "FAILURE", "receipt", "date", "amount", "error_code"}]}``.

Both posts land in the ledger (source ``PULL_API``) like any statement: stored once, matched,
mismatches opened; a reference of another point's payment is refused (``OUT_OF_SCOPE``)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from core.errors import CoreErrorCode, RequestErrorCode, ServiceError
from core.http import error_response
from modules.reconciliation.errors import ReconciliationErrorCode as E
from modules.reconciliation.models import PullToken, ReportStatus, Source
from modules.reconciliation.reading import Row

SALT = "reconciliation.pull"
LIFETIME = 3600
MAX_ITEMS = 5000
MAX_PAGE = 1000


def _offered_payroll_statuses() -> tuple[str, ...]:
    """The payrolls whose waiting payments a provider is offered: every approved one that is not
    closed. PARTIALLY_PAID included: payroll settles it again as outcomes arrive, closing refuses
    it while any payment is not final, so a payment of it still waiting for a word (approved or
    sent) must reach its provider, or the payroll could never close."""
    from modules.payroll.models import APPROVED_PAYROLL_STATUSES, PayrollStatus

    return tuple(str(s) for s in APPROVED_PAYROLL_STATUSES if s != PayrollStatus.RECONCILED)


def _point(code: str) -> Any:
    from modules.payroll.models import PaymentPoint

    return PaymentPoint.objects.filter(code=code).first()


@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return error_response(405, RequestErrorCode.METHOD_NOT_ALLOWED, "POST the client credentials.")
    data = _body(request) if request.content_type == "application/json" else request.POST
    if not isinstance(data, dict) and not hasattr(data, "get"):
        return error_response(400, CoreErrorCode.INVALID, "Send the credentials as a form or a JSON object.")
    if data.get("grant_type") != "client_credentials":
        return JsonResponse({"error": "unsupported_grant_type"}, status=400)
    point = _point(str(data.get("client_id") or ""))
    expected = _current_secret(point) if point is not None else None
    given = str(data.get("client_secret") or "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return JsonResponse({"error": "invalid_client"}, status=401)
    issued = PullToken.objects.create(payment_point=point, expires_at=timezone.now() + datetime.timedelta(
        seconds=LIFETIME), secret_digest=secret_digest(expected))
    access = signing.dumps({"point": point.code, "id": str(point.pk), "token": str(issued.pk)}, salt=SALT)
    return JsonResponse({"access_token": access, "token_type": "Bearer", "expires_in": LIFETIME})


def secret_digest(secret: str) -> str:
    """Which credential a token was issued under, keyed by the deployment's secret key: the
    stored digest says nothing about the secret to someone who reads the table."""
    return hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _current_secret(point: Any) -> str | None:
    reference = (point.config or {}).get("pull_client_secret")
    if reference is None:
        return None
    from modules.payroll.adaptors.base import secret_from

    try:
        return secret_from(point, reference, "pull_client_secret")
    except ServiceError:
        return None


def _caller(request: HttpRequest) -> Any:
    """The point whose live token the request carries: signed by us, its row neither revoked nor
    expired, and issued under the point's current secret (a rotated secret ends its tokens)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    try:
        claims = signing.loads(header[7:], salt=SALT, max_age=LIFETIME)
    except signing.BadSignature:
        return None
    issued = (PullToken.objects.select_related("payment_point")
              .filter(pk=claims.get("token"), revoked_at__isnull=True, expires_at__gt=timezone.now(),
                      payment_point__is_deleted=False).first() if _is_uuid(claims.get("token")) else None)
    if issued is None or str(issued.payment_point_id) != claims.get("id"):
        return None
    point = issued.payment_point
    secret = _current_secret(point)
    if secret is None or not hmac.compare_digest(issued.secret_digest, secret_digest(secret)):
        return None
    return point


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


def _unauthorised() -> HttpResponse:
    response = error_response(401, RequestErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>' from "
                                                                     "/api/reconciliation/pull/token.")
    response["WWW-Authenticate"] = 'Bearer realm="coremis-pull"'
    return response


def payments(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return error_response(405, RequestErrorCode.METHOD_NOT_ALLOWED, "GET the payments.")
    point = _caller(request)
    if point is None:
        return _unauthorised()
    from modules.location.models import Location
    from modules.payroll.models import (
        BenefitConsumption,
        InstructionStatus,
        effective_status,
        effective_status_q,
    )

    try:
        limit = min(max(int(request.GET.get("limit", "500")), 1), MAX_PAGE)
    except ValueError:
        return error_response(400, CoreErrorCode.INVALID, "limit is a number of payments (1 to 1000).", "limit")
    rows = BenefitConsumption.objects.filter(
        effective_status_q([InstructionStatus.APPROVED, InstructionStatus.SENT]), payment_point=point,
        payroll__status__in=_offered_payroll_statuses())
    if request.GET.get("cycle"):
        rows = rows.filter(payment_cycle__code=request.GET["cycle"])
    if request.GET.get("commune"):
        commune = Location.objects.filter(code=request.GET["commune"]).first()
        if commune is None:
            return error_response(404, CoreErrorCode.NOT_FOUND, "No such commune.", "commune")
        rows = rows.filter(individual__location__path__startswith=commune.path)
    if request.GET.get("after"):
        rows = rows.filter(code__gt=request.GET["after"])
    page = list(rows.order_by("code").values(
        "code", "amount", "currency", "status", "payroll__status", "payment_cycle__code", "payroll__payment_plan__minor_unit",
        "individual__first_name", "individual__last_name", "individual__json_ext", "individual__location__code")
        [:limit])
    items = []
    for p in page:
        minor = p["payroll__payment_plan__minor_unit"]
        whole, part = divmod(p["amount"], 10 ** minor)
        ext = p["individual__json_ext"] or {}
        items.append({"reference": p["code"], "amount": f"{whole}.{part:0{minor}d}" if minor else str(whole),
                      "currency": p["currency"], "cycle": p["payment_cycle__code"],
                      "status": effective_status(p["status"], p["payroll__status"]),
                      "location": p["individual__location__code"],
                      "recipient": {"first_name": p["individual__first_name"], "last_name": p["individual__last_name"],
                                    "phone": ext.get("phone", ""), "account": ext.get("account", "")}})
    return JsonResponse({"payments": items, "next": page[-1]["code"] if len(page) == limit else None})


def _parse(items: list[Any], kind: str) -> tuple[list[Row], list[dict[str, str]]]:
    rows, refused = [], []
    statuses = ({"ACCEPTED": ReportStatus.ACCEPTED, "REJECTED": ReportStatus.FAILED} if kind == "acknowledgements"
                else {"SUCCESS": ReportStatus.PAID, "FAILURE": ReportStatus.FAILED})
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not str(item.get("reference") or "").strip():
            refused.append({"item": str(n), "code": E.REFERENCE_REQUIRED, "message": "Each item names a reference."})
            continue
        reference = str(item["reference"]).strip()[:100]
        status = statuses.get(str(item.get("status", "")).upper())
        if status is None:
            refused.append({"reference": reference, "code": E.UNKNOWN_STATUS,
                            "message": f"status is one of {', '.join(statuses)}."})
            continue
        try:
            day = datetime.date.fromisoformat(str(item["date"])[:10]) if item.get("date") else None
            amount = Decimal(str(item["amount"])) if item.get("amount") not in (None, "") else None
            if amount is not None and (not amount.is_finite() or amount < 0):
                raise InvalidOperation
        except ValueError:
            refused.append({"reference": reference, "code": E.INVALID_DATE, "message": "date is YYYY-MM-DD."})
            continue
        except InvalidOperation:
            refused.append({"reference": reference, "code": E.INVALID_AMOUNT, "message": "amount is a number."})
            continue
        rows.append(Row(line=n, reference=reference, status=status,
                        provider_transaction_id=str(item.get("receipt") or item.get("transaction_id") or "")[:100],
                        amount=amount, value_date=day, message=str(item.get("error_code") or "")[:255],
                        raw=json.dumps(item, sort_keys=True, default=str)[:2000]))
    return rows, refused


def _own(point: Any, rows: list[Row]) -> tuple[list[Row], list[dict[str, str]]]:
    """Only the point's own payments (and references nobody ordered, which become mismatches)."""
    from modules.payroll.models import BenefitConsumption

    others = set(BenefitConsumption.objects.filter(code__in=[r.reference for r in rows]).exclude(
        payment_point=point).values_list("code", flat=True))
    refused = [{"reference": r.reference, "code": str(CoreErrorCode.OUT_OF_SCOPE),
                "message": "This payment is not one of this payment point's."} for r in rows if r.reference in others]
    return [r for r in rows if r.reference not in others], refused


def _statements(kind: str) -> Any:
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return error_response(405, RequestErrorCode.METHOD_NOT_ALLOWED, f"POST the {kind}.")
        point = _caller(request)
        if point is None:
            return _unauthorised()
        body = _body(request)
        items = body.get(kind) if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return error_response(400, CoreErrorCode.INVALID, f'Send {{"{kind}": [ … ]}} as JSON.', kind)
        if len(items) > MAX_ITEMS:
            return error_response(400, CoreErrorCode.INVALID, f"At most {MAX_ITEMS} {kind} per request.", kind)
        from core.actors import system_actor
        from modules.reconciliation import ledger

        rows, refused = _parse(items, kind)
        rows, outside = _own(point, rows)
        refused += outside
        result = ledger.store(rows, source=Source.PULL_API, point_id=point.pk, file_id=None,
                              user=system_actor()) if rows else {"stored": 0, "mismatches": 0, "issues": []}
        by_line = {r.line: r.reference for r in rows}
        refused += [{"reference": by_line.get(line, ""), "code": str(code), "message": message}
                    for line, code, message in result["issues"] if code != "UNKNOWN_REFERENCE"]
        return JsonResponse({"received": len(items), "stored": result["stored"], "mismatches": result["mismatches"],
                             "refused": refused})

    return view


urlpatterns = [
    path("pull/token", token, name="pull_token"),
    path("pull/payments", payments, name="pull_payments"),
    path("pull/acknowledgements", _statements("acknowledgements"), name="pull_acknowledgements"),
    path("pull/consolidations", _statements("consolidations"), name="pull_consolidations"),
]
