"""The core's rules for secret references and outbound URLs (core/secrets.py), which every
module storing credentials uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import ServiceError
from core.secrets import (
    PLATFORM_VARIABLES,
    check_outbound_url,
    reference_problem,
    resolve_secret,
    url_problem,
)

ROOT = Path(__file__).resolve().parent.parent
ALLOW = ["https://bank.example/g2p", "https://mm.example", "http://127.0.0.1:8443/"]


@pytest.mark.parametrize("url", [
    "https://bank.example/g2p", "https://bank.example/g2p/disburse", "https://BANK.example:443/g2p/x",
    "https://mm.example/oauth/token", "https://mm.example", "http://127.0.0.1:8443/payments",
])
def test_urls_on_the_allow_list(url):
    assert url_problem(url, ALLOW) is None


@pytest.mark.parametrize("url, why", [
    ("https://bank.example/g2p-admin", "not in the allowed"),            # a sibling path, not below
    ("https://bank.example/", "not in the allowed"),
    ("http://bank.example/g2p", "not in the allowed"),                  # another scheme
    ("https://bank.example:8443/g2p", "not in the allowed"),            # another port
    ("https://mm.example.evil.example/", "not in the allowed"),         # a longer host
    ("https://evil.example/mm.example", "not in the allowed"),
    ("http://127.0.0.1/payments", "not in the allowed"),                # the default port, not 8443
    ("https://mm.example@evil.example/", "user name or password"),
    ("https://user:pw@mm.example/", "user name or password"),
    ("https://bank.example/g2p/../admin", "dot segments"),
    ("https://bank.example/g2p/%2e%2e/admin", "dot segments"),
    ("https://bank.example/g2p\\..\\admin", "not a plain URL"),
    ("https://mm.example/ x", "not a plain URL"),
    ("https://mm.example/\r\nHost: evil", "not a plain URL"),
    ("ftp://mm.example/", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("https:///nohost", "no host"),
    ("https://mm.example:99999/", "Port out of range"),
    (None, "not a plain URL"),
])
def test_urls_refused(url, why):
    problem = url_problem(url, ALLOW)
    assert problem is not None and why in problem, problem


def test_a_refused_url_is_a_typed_error():
    with pytest.raises(ServiceError) as caught:
        check_outbound_url("https://evil.example/", ALLOW, "Payment point X")
    assert caught.value.code == "URL_NOT_ALLOWED" and caught.value.message.startswith("Payment point X:")


def test_secret_references_under_the_prefix(monkeypatch):
    monkeypatch.setenv("COREMIS_PSP_BANK_TOKEN", "s3cret")
    assert resolve_secret({"env": "COREMIS_PSP_BANK_TOKEN"}, "COREMIS_PSP_", "token") == "s3cret"
    with pytest.raises(ServiceError) as missing:
        resolve_secret({"env": "COREMIS_PSP_UNSET"}, "COREMIS_PSP_", "Payment point X: token")
    assert missing.value.code == "SECRET_UNAVAILABLE" and "COREMIS_PSP_UNSET is not set" in missing.value.message


@pytest.mark.parametrize("reference, prefix, why", [
    ({"env": "HOME"}, "COREMIS_PSP_", "platform's own"),
    ({"env": "COREMIS_SECRET_KEY"}, "COREMIS_PSP_", "platform's own"),
    ({"env": "DATABASE_URL"}, "COREMIS_PSP_", "platform's own"),
    ({"env": "PGPASSWORD"}, "COREMIS_PSP_", "platform's own"),
    ({"env": "OTHER_TOKEN"}, "COREMIS_PSP_", "starting with COREMIS_PSP_"),
    ({"env": "COREMIS_PSP_"}, "COREMIS_PSP_", "starting with COREMIS_PSP_"),    # the prefix alone
    ({"env": "coremis_psp_x"}, "COREMIS_PSP_", "not an environment variable name"),
    ({"env": "COREMIS_PSP_X=1"}, "COREMIS_PSP_", "not an environment variable name"),
    # whatever prefix a deployer sets, the platform's own variables stay out of reach
    ({"env": "COREMIS_SECRET_KEY"}, "COREMIS_", "platform's own"),
    ({"env": "COREMIS_ADMIN_PASSWORD"}, "COREMIS_", "platform's own"),
    ({"env": "DATABASE_URL"}, "DATABASE_", "platform's own"),
    ({"env": "HOME"}, "H", "platform's own"),
    ("COREMIS_PSP_X", "COREMIS_PSP_", "is not a reference"),
    ({"env": "COREMIS_PSP_X", "default": "y"}, "COREMIS_PSP_", "is not a reference"),
])
def test_secret_references_refused(reference, prefix, why, monkeypatch):
    monkeypatch.setenv("HOME", "/root")
    problem = reference_problem(reference, prefix)
    assert problem is not None and why in problem, problem
    with pytest.raises(ServiceError) as caught:
        resolve_secret(reference, prefix, "setting")
    assert caught.value.code == "SECRET_NOT_ALLOWED"


def test_every_variable_the_platform_reads_is_reserved():
    """Adding a setting read from the environment without reserving it would let a stored
    reference name it; this fails until it is added to PLATFORM_VARIABLES. Settings are read
    through helpers too (``env_number("COREMIS_JOB_LEASE_SECONDS", 30)``), so every quoted
    ``COREMIS_…`` name outside the tests counts, except the deployers' own credentials."""
    pattern = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]\s*|env_bool\(\s*|getenv\(\s*)["']([A-Z][A-Z0-9_]+)["']""")
    named = re.compile(r"""["'](COREMIS_[A-Z0-9_]*[A-Z0-9])["']""")
    read: set[str] = set()
    for folder in ("core", "docker", "modules"):
        for path in (ROOT / folder).rglob("*"):
            if "tests" in path.parts or path.name == "testing.py":
                continue
            if path.suffix in (".py", ".yaml", ".yml", ".example", "") and path.is_file():
                text = path.read_text(errors="ignore")
                read.update(pattern.findall(text))
                read.update(name for name in named.findall(text) if not name.startswith("COREMIS_PSP_"))
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    read.update(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", compose))
    assert read, "the scan found nothing: the pattern is out of date"
    missing = sorted(name for name in read if name not in PLATFORM_VARIABLES)
    assert missing == [], f"add these to core.secrets.PLATFORM_VARIABLES: {missing}"
