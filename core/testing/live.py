"""Real server processes for tests: gunicorn serving the project against the test database and
Redis (or against a :class:`core.testing.proxy.SocketProxy` in front of them)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent.parent


def database_url(settings_dict: dict[str, Any], socket_dir: str | None = None) -> str:
    """The database of ``settings_dict`` as a URL, through ``socket_dir`` when given."""
    user = quote(settings_dict["USER"] or "postgres")
    password = f":{quote(settings_dict['PASSWORD'])}" if settings_dict["PASSWORD"] else ""
    host = socket_dir or settings_dict["HOST"] or ""
    port = str(settings_dict["PORT"] or "")
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{settings_dict['NAME']}?host={quote(host)}" + (
            f"&port={port}" if port else "")
    return f"postgresql://{user}{password}@{host}{':' + port if port else ''}/{settings_dict['NAME']}"


def postgres_socket(settings_dict: dict[str, Any]) -> str:
    """The unix socket file of the server ``settings_dict`` names (it must use one)."""
    host = settings_dict["HOST"] or ""
    if not host.startswith("/"):
        raise RuntimeError("the test database is not reached through a unix socket")
    return f"{host}/.s.PGSQL.{settings_dict['PORT'] or 5432}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(env: dict[str, str], workers: int = 2, timeout: int = 60) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn on a free port, once it answers; returns the process and its base URL.

    Its log goes to a file, not a pipe: a pipe nobody reads fills up with the errors a fault
    test provokes, and a worker writing to it blocks.
    """
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "core.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--timeout", str(timeout),
         "--no-control-socket"],  # it would sit in ~/.gunicorn, and nothing here uses it
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", "COREMIS_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL, stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"gunicorn exited: {log.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            return process, base
        except urllib.error.HTTPError:
            return process, base  # a degraded /health still means it is serving
        except OSError:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a request, whatever its status."""
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def graphql(base: str, query: str, token: str | None = None, variables: dict[str, Any] | None = None,
            timeout: float = 30) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, response_headers, content = request(base + "/graphql", json.dumps(
        {"query": query, "variables": variables or {}}).encode(), headers, timeout)
    assert response_headers.get("Content-Type", "").startswith("application/json"), content[:300]
    return status, json.loads(content)


def multipart(url: str, token: str, filename: str, content: bytes) -> tuple[int, dict[str, str], bytes]:
    boundary = "coremis-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                               "Authorization": f"Bearer {token}"}, 60)
