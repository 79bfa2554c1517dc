"""The Docker image and compose file only name things this project has.

Docker is not needed: the compose file and the Dockerfile are read as text, and every command
they run is checked against the project itself (Django's management commands and their
options, the RQ queues in settings, the WSGI application, the files the image copies). An
image that builds but whose worker runs a queue nobody configured fails here, not in a
deployment.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.urls import resolve

from core.loader import REPO_ROOT, modules_config_path, openimis_path

DOCKER = REPO_ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
WSGI_TARGET = re.compile(r"\b([A-Za-z_][\w.]*\.wsgi:[A-Za-z_]\w*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    pairs = []
    for line in joined:
        instruction, _, arguments = line.partition(" ")
        pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def coremis_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the coremis image (the others are stock PostgreSQL and Redis)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "docker/Dockerfile"
    }


def commands(compose: dict[str, Any]) -> list[tuple[str, list[str]]]:
    found = [
        (name, exec_form(s["command"]) if isinstance(s["command"], str) else list(s["command"]))
        for name, s in coremis_services(compose).items()
    ]
    for instruction, arguments in dockerfile_instructions():
        if instruction == "CMD":
            found.append(("Dockerfile CMD", exec_form(arguments)))
    return found


def workdir() -> str:
    dirs = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "WORKDIR"]
    assert dirs, "the Dockerfile sets no WORKDIR"
    return dirs[-1]


def copied_files() -> dict[str, str]:
    """Image path -> repository path of every file or folder the Dockerfile copies in."""
    copied: dict[str, str] = {}
    current_dir = "/"
    for instruction, arguments in dockerfile_instructions():
        if instruction == "WORKDIR":
            current_dir = arguments
        if instruction not in {"COPY", "ADD"}:
            continue
        words = exec_form(arguments)
        if any(w.startswith("--from") for w in words):
            continue  # from another build stage, not from the repository
        *sources, destination = [w for w in words if not w.startswith("--")]
        if not destination.startswith("/"):
            destination = f"{current_dir.rstrip('/')}/{destination.removeprefix('./')}"
        for source in sources:
            # Into a folder ("dest/"), a file keeps its name; a folder's contents land in dest.
            into_folder = destination.endswith("/") and (REPO_ROOT / source).is_file()
            target = destination + Path(source).name if into_folder else destination
            copied[target.rstrip("/")] = source
    return copied


def test_the_coremis_services_build_from_this_repository(compose):
    services = coremis_services(compose)
    assert {"migrate", "web", "worker", "scheduler"} <= set(services)
    for name, service in services.items():
        context = (DOCKER / service["build"]["context"]).resolve()
        assert context == REPO_ROOT, f"{name} builds from {context}, not the repository root"
        assert (context / service["build"]["dockerfile"]).is_file()


def test_every_manage_py_command_exists_and_accepts_its_options(compose):
    available = get_commands()
    checked = 0
    for service, argv in commands(compose):
        if argv[:2] != ["python", "manage.py"]:
            continue
        name, options = argv[2], argv[3:]
        assert name in available, f"{service}: `manage.py {name}` is not a command of this project"
        # The command's own parser rejects an option it does not have (CommandError).
        load_command_class(available[name], name).create_parser("manage.py", name).parse_args(options)
        checked += 1
    assert checked >= 3


def test_rq_workers_listen_on_configured_queues(compose):
    for service, argv in commands(compose):
        if argv[:3] != ["python", "manage.py", "rqworker"]:
            continue
        parser = load_command_class("django_rq", "rqworker").create_parser("manage.py", "rqworker")
        queues = parser.parse_args(argv[3:]).args
        assert queues, f"{service}: rqworker names no queue"
        for queue in queues:
            assert queue in settings.RQ_QUEUES, (
                f"{service}: rqworker listens on queue '{queue}', which settings.RQ_QUEUES does "
                f"not configure (configured: {', '.join(sorted(settings.RQ_QUEUES))})"
            )


def test_gunicorn_serves_the_project_wsgi_application(compose):
    from gunicorn.config import Config

    served = []
    for service, argv in commands(compose):
        if argv[0] != "gunicorn":
            continue
        try:
            parsed = Config(prog="gunicorn").parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{service}: gunicorn rejects the options {argv[1:]}")
        assert len(parsed.args) == 1, f"{service}: gunicorn needs exactly one application"
        served.append(parsed.args[0])
    assert served, "neither the web service nor the image's CMD runs gunicorn"
    expected = settings.WSGI_APPLICATION.rpartition(".")
    assert set(served) == {f"{expected[0]}:{expected[2]}"}, (
        f"gunicorn serves {served}, settings.WSGI_APPLICATION is {settings.WSGI_APPLICATION}"
    )
    module, _, attribute = served[0].partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_wsgi_target_is_the_same_in_every_document():
    targets: dict[str, set[str]] = {}
    for path in (DOCKERFILE, COMPOSE, REPO_ROOT / "Makefile", REPO_ROOT / "README.md"):
        if path.is_file():
            targets[path.name] = set(WSGI_TARGET.findall(path.read_text(encoding="utf-8")))
    everywhere = set().union(*targets.values())
    assert everywhere == {"core.wsgi:application"}, targets


def test_files_the_image_copies_exist():
    copied = copied_files()
    assert copied, "the Dockerfile copies nothing"
    for source in copied.values():
        assert (REPO_ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    # pip builds the project from these, so they must be in the image before `pip install`.
    for needed in ("pyproject.toml", "README.md", "manage.py", "core", "modules"):
        assert needed in copied.values(), f"the image lacks {needed}"


def test_mounted_deployment_files_are_where_the_loader_reads_them(compose):
    image_root = workdir().rstrip("/")
    wanted = {openimis_path().name, modules_config_path().name}
    for name, service in coremis_services(compose).items():
        mounted = {}
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            if source.startswith((".", "/")):
                assert (DOCKER / source).resolve().exists(), f"{name} mounts missing {source}"
                mounted[Path(target).name] = target
        for file_name in wanted:
            assert mounted.get(file_name) == f"{image_root}/{file_name}", (
                f"{name} must mount {file_name} at {image_root}/{file_name}, where the loader "
                "reads it in the image"
            )


def test_web_healthcheck_probes_the_health_route(compose):
    test = compose["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    script = test[-1]
    assert copied_files().get(script) == "docker/healthcheck.py", f"{script} is not in the image"
    probe = load_probe()
    assert resolve(probe.HEALTH_PATH).func.__name__ == "health"


def load_probe() -> Any:
    spec = importlib.util.spec_from_file_location("coremis_healthcheck", DOCKER / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_healthcheck_asks_anonymously_for_what_the_web_process_needs(client):
    probe = load_probe()
    assert probe.WEB_CHECKS == ("database", "redis", "migrations")
    response = client.get(probe.probe_path())  # what the probe sends, without credentials
    assert (response.status_code, response.content) == (200, b"ok")
    assert probe.verdict(response.status_code, response.content) == (True, "ok")
    assert probe.verdict(503, b"degraded") == (False, "degraded (database, redis, migrations)")
    assert probe.verdict(500, b"<html>") == (False, "HTTP 500")
    assert probe.request_host(".example.org,localhost") == "example.org"
    assert probe.request_host("*") == "localhost"


def test_entry_points_the_makefile_and_docker_use_resolve():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    for script, target in scripts.items():
        if f"$(BIN)/{script}" in makefile:
            module, _, function = target.partition(":")
            assert importlib.util.find_spec(module), f"`{script}` points at missing module {module}"
            assert callable(getattr(importlib.import_module(module), function))
    for text in (makefile, DOCKERFILE.read_text(encoding="utf-8"), COMPOSE.read_text(encoding="utf-8")):
        for module in re.findall(r"python -m ([A-Za-z_][\w.]*)", text):
            assert importlib.util.find_spec(module), f"`python -m {module}` names a missing module"
