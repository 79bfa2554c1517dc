"""The webhook providers call with final statuses (or upload result files to)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.actors import system_actor
from core.errors import ServiceError
from core.history import acting_as
from modules.payroll import adaptors
from modules.payroll.models import PaymentPoint
from modules.payroll.sending import record_outcomes

log = logging.getLogger("coremis.payroll")


@csrf_exempt
@require_POST
def callback_view(request: HttpRequest, point_code: str) -> JsonResponse:
    """Authenticity is the adaptor's business (signature, token); a rejected callback changes
    nothing and is answered 403 so the provider's retry does not hide the problem."""
    point = PaymentPoint.objects.filter(code=point_code).first()
    if point is None:
        return JsonResponse({"error": "unknown payment point"}, status=404)
    try:
        outcomes = adaptors.parse_callback(point, request.body, request.headers)
        actor = system_actor()  # the provider calls; the platform records what it says
        with acting_as(actor, callback=point.code):
            changed = record_outcomes(outcomes, actor)
        adaptors.outcomes_received(point, "CALLBACK", outcomes)
    except ServiceError as exc:
        log.warning("callback rejected", extra={"point": point.code, "error": exc.message})
        return JsonResponse({"error": exc.code, "message": exc.message}, status=403)
    return JsonResponse({"received": len(outcomes), "changed": changed})
