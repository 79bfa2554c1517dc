"""WSGI entry point (gunicorn ``core.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
application = get_wsgi_application()

# This process serves requests and nothing else: its connections may keep the API's statement
# timeout from one request to the next (core/middleware.py).
from core.middleware import serve_requests_only  # noqa: E402  (settings are configured above)

serve_requests_only()
