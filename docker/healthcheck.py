"""Container health probe for the web service: asks ``/health`` about what this process needs.

Only the database, Redis and migrations are asked for (``?checks=``): whether a worker or the
scheduler is up, or a job is stuck, says nothing about this web process, and counting them
would mark every web container unhealthy whenever the workers restart. The probe needs no
credentials: anonymous callers get the verdict (200 ``ok`` / 503 ``degraded``), which is all
it reads. Standard library only, because it runs in the slim image.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

HEALTH_PATH = "/health"
WEB_CHECKS = ("database", "redis", "migrations")


def request_host(allowed_hosts: str) -> str:
    """A Host header Django accepts: the probe connects to 127.0.0.1, which a deployment's
    ``COREMIS_ALLOWED_HOSTS`` may not list."""
    for entry in allowed_hosts.split(","):
        host = entry.strip().lstrip(".")  # ".example.org" also allows "example.org"
        if host and host != "*":
            return host
    return "localhost"


def probe_path() -> str:
    return f"{HEALTH_PATH}?checks={','.join(WEB_CHECKS)}"


def verdict(status: int, body: bytes) -> tuple[bool, str]:
    text = body.decode(errors="replace").strip()[:200]
    if status == 200:
        return True, text or "ok"
    if status == 503:
        return False, f"degraded ({', '.join(WEB_CHECKS)})"
    return False, f"HTTP {status}"


def probe(port: int = 8000, timeout: float = 5.0) -> tuple[bool, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{probe_path()}",
        headers={"Host": request_host(os.environ.get("COREMIS_ALLOWED_HOSTS", "localhost"))},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return verdict(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return verdict(exc.code, exc.read())
    except OSError as exc:
        return False, f"no answer: {exc}"


def main() -> int:
    ok, detail = probe(int(os.environ.get("COREMIS_HEALTH_PORT", "8000")))
    print(detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
