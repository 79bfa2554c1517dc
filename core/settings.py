"""Django settings, driven by the environment (12-factor).

``DATABASE_URL`` and ``REDIS_URL`` point at the servers (``coremis run`` / ``coremis services``
set them to the embedded ones). ``COREMIS_SECRET_KEY`` is required outside debug/embedded use.
The set of apps comes from the module loader, which has checked ``openimis.json`` and
``modules_config.json`` before Django sees anything.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from core.loader import get_registry

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def database_from_url(url: str) -> dict[str, Any]:
    """``postgresql://user:pass@host:port/name?host=/socket/dir&sslmode=...`` to Django's form."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise RuntimeError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parsed.scheme!r}")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    host = query.pop("host", None) or unquote(parsed.hostname or "")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "coremis",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        # A server that does not answer fails the request in seconds (503) instead of holding
        # a web worker until the client gives up.
        "OPTIONS": {"connect_timeout": os.environ.get("COREMIS_DB_CONNECT_TIMEOUT", "5"), **query},
        "CONN_MAX_AGE": int(os.environ.get("COREMIS_DB_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": True,
    }


EMBEDDED = env_bool("COREMIS_EMBEDDED")
DEBUG = env_bool("COREMIS_DEBUG", default=False)
SECRET_KEY = os.environ.get("COREMIS_SECRET_KEY") or ""
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED or os.environ.get("PYTEST_VERSION")):
        raise RuntimeError(
            "COREMIS_SECRET_KEY is not set. Set it to a long random string in production "
            "(the embedded demo started by `make run` sets one for you)."
        )
    SECRET_KEY = "coremis-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = [h for h in os.environ.get("COREMIS_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
# Origins whose pages may call the API with the JWT cookie (core/auth/cookies.py), besides
# coremis's own host. The embedded demo trusts a frontend gateway on port 3000 of this machine.
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get(
    "COREMIS_CSRF_TRUSTED_ORIGINS",
    "http://127.0.0.1:3000,http://localhost:3000" if EMBEDDED else "").split(",") if o]

REGISTRY = get_registry()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_filters",
    "graphene_django",
    "django_rq",
    "core",
    *REGISTRY.apps,
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.logging.RequestLogMiddleware",
    "core.middleware.JsonErrorMiddleware",
    "core.middleware.StatementTimeoutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.auth.middleware.JWTAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
AUTH_USER_MODEL = "core.User"
# The only backend: it carries the lockout, and a second one would be a way around it.
AUTHENTICATION_BACKENDS = ["core.auth.backends.LockoutBackend"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_database = database_from_url(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/coremis"))
DATABASES = {
    "default": _database,
    # Progress of background jobs is written on its own connection so a client can watch it
    # while the job's work is still inside an uncommitted transaction.
    "progress": {**_database, "TEST": {"MIRROR": "default"}},
}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}
RQ_SHOW_ADMIN_LINK = True
# Every rqworker runs coremis's worker: its work horse dies with it (core/worker.py).
RQ = {"WORKER_CLASS": "core.worker.Worker"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("COREMIS_STATIC_ROOT", BASE_DIR / "var" / "static"))
# The embedded demo serves the admin's and GraphiQL's files straight from the installed apps;
# production images run collectstatic into STATIC_ROOT and WhiteNoise serves that.
WHITENOISE_USE_FINDERS = DEBUG or EMBEDDED
MEDIA_ROOT = Path(os.environ.get("COREMIS_MEDIA_ROOT", BASE_DIR / "var" / "media"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to disk
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

GRAPHENE = {
    "SCHEMA": "core.graphql.schema.schema",
    "RELAY_CONNECTION_MAX_LIMIT": int(os.environ.get("COREMIS_MAX_PAGE_SIZE", "100")),
    "RELAY_CONNECTION_ENFORCE_FIRST_OR_LAST": False,
    # graphene-django adds its debug middleware when DEBUG is on; the schema has no ``_debug``
    # field to read it, and the cursor wrappers it installs on every connection are never
    # removed, so they would record every later query of the process.
    "MIDDLEWARE": [],
}

# Schema introspection: "public", "authenticated" or "off" (see core/graphql/introspection.py).
_introspection = os.environ.get(
    "COREMIS_GRAPHQL_INTROSPECTION", "public" if DEBUG or EMBEDDED else "authenticated"
).strip().lower()
if _introspection not in {"public", "authenticated", "off"}:
    raise RuntimeError(
        f"COREMIS_GRAPHQL_INTROSPECTION is {_introspection!r}; use public, authenticated or off."
    )

COREMIS = {
    "JWT_ACCESS_TTL": timedelta(minutes=int(os.environ.get("COREMIS_JWT_ACCESS_MINUTES", "15"))),
    "JWT_REFRESH_TTL": timedelta(days=int(os.environ.get("COREMIS_JWT_REFRESH_DAYS", "7"))),
    "LOGIN_MAX_FAILURES": int(os.environ.get("COREMIS_LOGIN_MAX_FAILURES", "5")),
    "LOGIN_LOCKOUT": timedelta(minutes=int(os.environ.get("COREMIS_LOGIN_LOCKOUT_MINUTES", "15"))),
    "GRAPHQL_MAX_DEPTH": int(os.environ.get("COREMIS_GRAPHQL_MAX_DEPTH", "10")),
    "GRAPHQL_INTROSPECTION": _introspection,
    # What one GraphQL request may ask for (core/graphql/cost.py says how it is counted).
    "GRAPHQL_MAX_COST": int(os.environ.get("COREMIS_GRAPHQL_MAX_COST", "50000")),
    "GRAPHQL_MAX_TOKENS": int(os.environ.get("COREMIS_GRAPHQL_MAX_TOKENS", "10000")),
    "GRAPHQL_CONNECTION_COST": int(os.environ.get("COREMIS_GRAPHQL_CONNECTION_COST", "500")),
    "GRAPHQL_MAX_RESPONSE_BYTES": int(os.environ.get("COREMIS_GRAPHQL_MAX_RESPONSE_MB", "20")) * 1024 * 1024,
    # Per statement of an API request (background jobs are not bound by it).
    "STATEMENT_TIMEOUT_MS": int(os.environ.get("COREMIS_STATEMENT_TIMEOUT_MS", "30000")),
    "MAX_PAGE_SIZE": int(os.environ.get("COREMIS_MAX_PAGE_SIZE", "100")),
    # openIMIS's payroll page reads a payroll's payments inline (payroll { benefitConsumption }):
    # at most this many in one request (modules/payroll/schema.py).
    "INLINE_PAYMENTS_LIMIT": int(os.environ.get("COREMIS_INLINE_PAYMENTS_LIMIT", "10000")),
    # totalCount is exact up to this many rows; above it a list of a whole table (no filter, no
    # location scope) answers the planner's estimate with totalCountIsEstimate: true
    # (core/graphql/counting.py).
    "EXACT_COUNT_LIMIT": int(os.environ.get("COREMIS_EXACT_COUNT_LIMIT", "10000")),
    "PROGRESS_DB": "progress",
    # openIMIS frontend (core/openimis.py): the languages offered, the default first, and
    # whether the JWT cookies are Secure even when the request did not arrive over HTTPS.
    "LANGUAGES": [c.strip() for c in os.environ.get("COREMIS_LANGUAGES", "en,fr").split(",") if c.strip()],
    "COOKIE_SECURE": env_bool("COREMIS_COOKIE_SECURE"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("COREMIS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # RQ says six lines per job; coremis.jobs says when each starts and how it ended.
        "rq.worker": {"level": os.environ.get("COREMIS_RQ_LOG_LEVEL", "WARNING")},
    },
}
