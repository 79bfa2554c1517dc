"""Who may open the job dashboard (``/django-rq/``).

The dashboard deletes, requeues and empties queues, and shows every job's arguments, so being
staff is not enough: it takes a superuser or the declared ``core.job.operate`` permission.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from core.permissions import JOB_OPERATE, has_permission

JOB_OPERATOR_PERMISSION = JOB_OPERATE


def may_operate_jobs(user: Any) -> bool:
    return bool(getattr(user, "is_staff", False)) and (
        bool(user.is_superuser) or has_permission(user, JOB_OPERATOR_PERMISSION)
    )


def job_operator_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a dashboard view: the admin's login redirect for strangers, 403 for staff without
    the permission."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not may_operate_jobs(request.user):
            raise PermissionDenied(f"The job dashboard requires the permission '{JOB_OPERATOR_PERMISSION}'.")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(guarded)


def job_dashboard_urls() -> list[URLPattern]:
    """django-rq's routes, every one guarded (its JSON statistics too, which it would
    otherwise show to any staff member)."""
    api = [URLPattern(p.pattern, job_operator_view(p.callback), p.default_args, p.name)
           for p in get_api_urlpatterns()]
    return [*api, *get_admin_urlpatterns(view_wrapper=job_operator_view)]
