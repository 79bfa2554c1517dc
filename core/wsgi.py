"""WSGI entry point (gunicorn ``core.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
application = get_wsgi_application()

# This process serves requests and nothing else: its connections may keep the API's statement
# timeout from one request to the next (core/middleware.py).
from core.middleware import serve_requests_only  # noqa: E402  (settings are configured above)

serve_requests_only()

# Load the URL map, and with it every module's GraphQL schema, as the worker starts: Django
# does it on a worker's first request, which then took about 1.3 s (a second or two of one
# core for each worker gunicorn starts or restarts, charged to whoever asked first).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018  (the attribute imports the URLconf)
