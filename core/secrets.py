"""Credentials and outbound calls: the one place every module resolves a secret reference and
checks a URL it is about to call.

Configuration stored in the database (a payment point's ``config``, later a KoboToolbox
server's token) is written by users through the API, so it must not be able to point the
server at its own secrets or at a server of the writer's choosing. Two rules, checked when the
configuration is saved *and again* when it is used (a row written before a rule tightened, or
by hand, is refused at use rather than trusted):

**Secret references.** A credential is never stored; the configuration holds
``{"env": "NAME"}`` and the value is read from the process environment when needed. ``NAME``
must start with the module's ``secret_env_prefix`` (deployer-chosen; ``COREMIS_PSP_`` for
payment providers) and be longer than it, in upper case, and must never be one of the
platform's own variables (:data:`PLATFORM_VARIABLES`: ``COREMIS_SECRET_KEY`` signs every
token, ``DATABASE_URL`` holds the database password...) nor start with a prefix the platform
or the operating system owns (:data:`PLATFORM_PREFIXES`), whatever prefix a deployer sets.

**Outbound URLs.** A URL the server calls must match an entry of the module's
``outbound_urls`` allow-list (``modules_config.json``): same scheme, same host, same port (the
scheme's default when the entry names none) and, when the entry has a path, a path equal to
it or below it (``https://bank.example/g2p`` allows ``/g2p/disburse``, not ``/g2p-admin``).
URLs with a user name or password, dot segments (``/g2p/../admin``), backslashes, spaces or
control characters are refused outright. :func:`urlopen` is the only way to call one: it checks
the URL and never follows a redirect (a redirect would carry our ``Authorization`` header to
whatever host it names).

A module opts in by putting :data:`SECRET_PREFIX_SCHEMA` and :data:`OUTBOUND_URLS_SCHEMA` in its
configuration schema and calling :func:`policy` with its name. This module imports no Django
model, so manifests can import the schema fragments before Django starts.
"""

from __future__ import annotations

import os
import re
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from core.errors import CoreErrorCode, ServiceError

# The environment variables the platform itself reads (core/settings.py, the CLI, the embedded
# services, the container images). A reference may never name one, even under a prefix a
# deployer chose carelessly (``COREMIS_`` would otherwise admit ``COREMIS_SECRET_KEY``). A test
# keeps this list in step with the code that reads the environment.
PLATFORM_VARIABLES = frozenset({
    "COREMIS_SECRET_KEY", "COREMIS_ADMIN_PASSWORD", "COREMIS_CHECKER_PASSWORD", "DATABASE_URL", "REDIS_URL",
    "COREMIS_ALLOWED_HOSTS", "COREMIS_CSRF_TRUSTED_ORIGINS", "COREMIS_DB_CONN_MAX_AGE", "COREMIS_DEBUG",
    "COREMIS_EMBEDDED", "COREMIS_GRAPHQL_INTROSPECTION", "COREMIS_GRAPHQL_MAX_DEPTH", "COREMIS_HEALTH_PORT", "COREMIS_HTTP_PORT", "COREMIS_IMAGE", "COREMIS_JWT_ACCESS_MINUTES",
    "COREMIS_JWT_REFRESH_DAYS", "COREMIS_LOGIN_LOCKOUT_MINUTES", "COREMIS_LOGIN_MAX_FAILURES",
    "COREMIS_LOG_LEVEL", "COREMIS_COOKIE_SECURE", "COREMIS_LANGUAGES", "COREMIS_RQ_LOG_LEVEL", "COREMIS_MAX_PAGE_SIZE", "COREMIS_EXACT_COUNT_LIMIT", "COREMIS_MAX_UPLOAD_MB", "COREMIS_MEDIA_ROOT",
    "COREMIS_MODULES_CONFIG", "COREMIS_MODULES_FILE", "COREMIS_STATIC_ROOT", "DJANGO_SETTINGS_MODULE",
    "COREMIS_DB_CONNECT_TIMEOUT", "COREMIS_GRAPHQL_CONNECTION_COST", "COREMIS_GRAPHQL_MAX_COST",
    "COREMIS_GRAPHQL_MAX_RESPONSE_MB", "COREMIS_GRAPHQL_MAX_TOKENS", "COREMIS_STATEMENT_TIMEOUT_MS",
    "COREMIS_JOB_DISPATCH_GRACE_SECONDS", "COREMIS_JOB_HEARTBEAT_SECONDS", "COREMIS_JOB_LEASE_SECONDS",
    "COREMIS_JOB_MAX_FAILURES", "COREMIS_JOB_RETRY_MAX_SECONDS", "COREMIS_JOB_RETRY_SECONDS",
    "COREMIS_SCHEDULER_SWEEP_SECONDS", "COREMIS_XLSX_MAX_RATIO", "COREMIS_INLINE_PAYMENTS_LIMIT",
    "COREMIS_XLSX_MAX_UNCOMPRESSED_MB",
    "POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB",
    # the operating system's and the interpreter's
    "HOME", "PATH", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "HOSTNAME", "TERM", "LANG", "TMPDIR",
    "MAIL", "VIRTUAL_ENV", "PYTEST_VERSION",
})
# Families of variables that hold other systems' credentials or settings: PostgreSQL's libpq
# (PGPASSWORD), Python, Django, cloud SDKs, SSH agents, locales.
PLATFORM_PREFIXES = ("PG", "PYTHON", "DJANGO_", "LC_", "XDG_", "SSH_", "AWS_", "AZURE_", "GOOGLE_", "GCP_",
                     "KUBERNETES_", "DOCKER_", "GUNICORN_", "RQ_", "REDIS_", "DATABASE_", "POSTGRES_", "SUDO_")

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")

# Fragments of a module's configuration schema (see ``core/approvals`` for the same pattern).
SECRET_PREFIX_SCHEMA: dict[str, Any] = {
    "description": "Secret references ({\"env\": NAME}) in this module's stored configuration may only "
                   "name environment variables starting with this prefix.",
    "type": "string", "pattern": "^[A-Z][A-Z0-9]*_([A-Z0-9]+_)*$", "minLength": 4, "maxLength": 40,
}
OUTBOUND_URLS_SCHEMA: dict[str, Any] = {
    "description": "Base URLs this module may call: scheme, host, optional port and optional path "
                   "prefix (\"https://api.provider.example/v1\"). Anything else is refused.",
    "type": "array", "default": [],
    "items": {"type": "string", "pattern": r"^https?://[^/@?#\s\\]+(/[^?#\s\\]*)?$", "maxLength": 500},
}


def reference_name(value: Any) -> str | None:
    """The variable a ``{"env": NAME}`` reference names, or ``None`` if ``value`` is not one."""
    if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str):
        return value["env"]
    return None


def reference_problem(value: Any, prefix: str) -> str | None:
    """Why ``value`` may not be used as a secret reference under ``prefix`` (``None``: it may)."""
    name = reference_name(value)
    if name is None:
        return 'is not a reference like {"env": "NAME"}'
    if not _NAME.match(name):
        return f"names '{name[:60]}', which is not an environment variable name (A-Z, 0-9, _)"
    if name in PLATFORM_VARIABLES or name.startswith(PLATFORM_PREFIXES):
        return f"names {name}, one of the platform's own variables; credentials must have their own"
    if not name.startswith(prefix) or len(name) == len(prefix):
        return f"names {name}; references may only name variables starting with {prefix}"
    return None


def check_reference(value: Any, prefix: str, what: str) -> None:
    problem = reference_problem(value, prefix)
    if problem is not None:
        raise ServiceError(CoreErrorCode.SECRET_NOT_ALLOWED, f"{what} {problem}.")


def resolve_secret(value: Any, prefix: str, what: str) -> str:
    """The value of the variable a reference names, once the reference passes the rules.

    ``what`` names the setting for the error ("Payment point BANK: client_secret").
    """
    check_reference(value, prefix, what)
    secret = os.environ.get(value["env"])
    if secret is None:
        raise ServiceError(CoreErrorCode.SECRET_UNAVAILABLE,
                           f"{what} is not available: environment variable {value['env']} is not set.")
    return secret


# --- outbound URLs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE = re.compile(r"[\s\\\x00-\x1f\x7f]")


def _target(url: str) -> _Target:
    """The parts of ``url`` that decide where a request goes; ``ValueError`` for a URL that is
    ambiguous or could be read differently by another parser."""
    if not isinstance(url, str) or not url or len(url) > 2000 or _UNSAFE.search(url):
        raise ValueError("is not a plain URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("must be an http or https URL")
    if "@" in parts.netloc:
        raise ValueError("must not carry a user name or password")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("has no host")
    port = parts.port or _DEFAULT_PORTS[scheme]  # .port raises ValueError for a bad port
    path = unquote(parts.path)
    if any(segment in (".", "..") for segment in path.split("/")) or "\\" in path:
        raise ValueError("must not contain dot segments")
    return _Target(scheme, host, port, path)


def url_problem(url: Any, allow_list: list[str]) -> str | None:
    """Why ``url`` may not be called (``None``: it matches an entry of ``allow_list``)."""
    try:
        target = _target(url)
    except ValueError as exc:
        return f"{str(url)[:200]!r} {exc}"
    for entry in allow_list:
        try:
            allowed = _target(entry)
        except ValueError:
            continue  # the loader's schema keeps these out; never let one match
        prefix = allowed.path.rstrip("/")
        if (target.scheme, target.host, target.port) == (allowed.scheme, allowed.host, allowed.port) and (
                not prefix or target.path == prefix or target.path.startswith(prefix + "/")):
            return None
    return (f"{url[:200]!r} is not in the allowed outbound URLs; a deployer adds the provider's base URL "
            "to outbound_urls in modules_config.json")


def check_outbound_url(url: Any, allow_list: list[str], what: str) -> None:
    problem = url_problem(url, allow_list)
    if problem is not None:
        raise ServiceError(CoreErrorCode.URL_NOT_ALLOWED, f"{what}: {problem}.")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # the 3xx then surfaces as an HTTPError, like any other refusal


_opener = urllib.request.build_opener(_NoRedirects)


def urlopen(request: urllib.request.Request, allow_list: list[str], what: str, timeout: float) -> Any:
    """``urllib.request.urlopen`` for a request whose URL passes :func:`check_outbound_url`,
    without following redirects."""
    check_outbound_url(request.full_url, allow_list, what)
    return _opener.open(request, timeout=timeout)


# --- per module ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A module's ``secret_env_prefix`` and ``outbound_urls``, read when the policy is made."""

    prefix: str
    allow_list: tuple[str, ...]

    def reference_problem(self, value: Any) -> str | None:
        return reference_problem(value, self.prefix)

    def resolve(self, value: Any, what: str) -> str:
        return resolve_secret(value, self.prefix, what)

    def url_problem(self, url: Any) -> str | None:
        return url_problem(url, list(self.allow_list))

    def check_url(self, url: Any, what: str) -> None:
        check_outbound_url(url, list(self.allow_list), what)

    def urlopen(self, request: urllib.request.Request, what: str, timeout: float) -> Any:
        return urlopen(request, list(self.allow_list), what, timeout)


def policy(module: str) -> Policy:
    """The rules of ``module``, from its section of ``modules_config.json``."""
    from core.loader import module_config

    config = module_config(module)
    prefix = config.get("secret_env_prefix")
    if not prefix:
        # A module that stores credentials must say under which prefix they live.
        raise ServiceError(CoreErrorCode.SECRET_NOT_ALLOWED, f"Module {module} has no secret_env_prefix configured.")
    return Policy(prefix=str(prefix), allow_list=tuple(config.get("outbound_urls") or ()))


__all__ = ["OUTBOUND_URLS_SCHEMA", "PLATFORM_PREFIXES", "PLATFORM_VARIABLES", "SECRET_PREFIX_SCHEMA", "Policy",
           "check_outbound_url", "check_reference", "policy", "reference_name", "reference_problem",
           "resolve_secret", "url_problem", "urlopen"]
