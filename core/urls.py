"""URL map: GraphQL, admin, job dashboard, health, and each enabled module's routes."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from core.auth.operators import job_dashboard_urls
from core.graphql.schema import CoreGraphQLView
from core.health import health
from core.hooks import results_by_module
from core.openimis import current_user_view
from core.uploads import upload_view

urlpatterns = [
    path("graphql", csrf_exempt(CoreGraphQLView.as_view(graphiql=True))),
    path("graphql/", csrf_exempt(CoreGraphQLView.as_view(graphiql=True))),
    # openIMIS's frontend calls GraphQL and the REST routes under /api (core/openimis.py)
    path("api/graphql", csrf_exempt(CoreGraphQLView.as_view(graphiql=True))),
    path("api/graphql/", csrf_exempt(CoreGraphQLView.as_view(graphiql=True))),
    path("api/core/users/current_user/", current_user_view),
    path("health", health),
    path("api/upload", upload_view),
    path("admin/", admin.site.urls),
    path("django-rq/", include((job_dashboard_urls(), "django_rq"))),
]

for _module, _routes in results_by_module("coremis_urls"):
    urlpatterns.append(path(f"api/{_module}/", include((_routes, _module))))
