"""Container health probe for the web service: asks ``/health`` and judges its report.

The report's ``worker`` check is left out of the verdict: whether an RQ worker is up says
nothing about this web process, and counting it would mark every web container unhealthy
whenever the workers restart. Standard library only, because it runs in the slim image.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

HEALTH_PATH = "/health"
NOT_THIS_PROCESS = frozenset({"worker"})


def request_host(allowed_hosts: str) -> str:
    """A Host header Django accepts: the probe connects to 127.0.0.1, which a deployment's
    ``COREMIS_ALLOWED_HOSTS`` may not list."""
    for entry in allowed_hosts.split(","):
        host = entry.strip().lstrip(".")  # ".example.org" also allows "example.org"
        if host and host != "*":
            return host
    return "localhost"


def verdict(report: dict[str, Any]) -> tuple[bool, str]:
    checks = report.get("checks")
    if not isinstance(checks, dict) or not checks:
        return False, "the /health answer has no checks"
    failed = [
        f"{name}: {check.get('detail', '')}"
        for name, check in checks.items()
        if name not in NOT_THIS_PROCESS and not check.get("ok")
    ]
    return (not failed, "; ".join(failed) or "ok")


def probe(port: int = 8000, timeout: float = 5.0) -> tuple[bool, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{HEALTH_PATH}",
        headers={"Host": request_host(os.environ.get("COREMIS_ALLOWED_HOSTS", "localhost"))},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        # /health answers 503 with the same report when any check fails, the worker included.
        if exc.code != 503:
            return False, f"HTTP {exc.code}"
        body = exc.read()
    except OSError as exc:
        return False, f"no answer: {exc}"
    try:
        return verdict(json.loads(body))
    except ValueError:
        return False, "the /health answer is not JSON"


def main() -> int:
    ok, detail = probe(int(os.environ.get("COREMIS_HEALTH_PORT", "8000")))
    print(detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
