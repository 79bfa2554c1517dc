"""A deployment that cannot run refuses to start with one message: the module, the problem, the fix.

Most cases drive ``core.loader.load`` with fake module manifests; two run ``manage.py`` in a
real subprocess, as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import graphene
import pytest

import core
from core.errors import ModuleConfigurationError
from core.graphql.fields import ProtectedField
from core.graphql.schema import merge_roots
from core.loader import REPO_ROOT, _read_json, load
from core.module import ModuleSpec

CORE_RANGE = {"core": f"=={core.__version__}"}


def spec(name: str, version: str = "1.0.0", requires: dict[str, str] | None = None,
         config_schema: dict[str, Any] | None = None) -> ModuleSpec:
    return ModuleSpec(
        name=name, version=version, app=f"fake.{name}", plugin=None,
        requires={**CORE_RANGE, **(requires or {})},
        config_schema=config_schema or {"type": "object"},
    )


def deployment(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"modules": list(entries)}


def refusal(openimis: Any, config: Any, *specs: ModuleSpec) -> ModuleConfigurationError:
    with pytest.raises(ModuleConfigurationError) as caught:
        load(openimis, config, available={s.name: s for s in specs})
    return caught.value


def assert_one_clear_message(error: ModuleConfigurationError, module: str, *problem: str) -> str:
    text = str(error)
    assert text.startswith("coremis cannot start:"), text
    assert f"module '{module}'" in text, text
    for part in problem:
        assert part in text, f"{part!r} not in {text!r}"
    assert "\n  Fix: " in text and error.fix, text
    return text


LEVELS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "levels": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": ["A"]},
    },
}


def test_a_valid_deployment_loads_modules_in_dependency_order_with_defaults_filled() -> None:
    registry = load(
        deployment({"name": "payroll", "version": ">=1,<2"}, {"name": "location"}),
        {},
        available={
            "payroll": spec("payroll", requires={"location": ">=1"}),
            "location": spec("location", config_schema=LEVELS_SCHEMA),
        },
    )
    assert [m.name for m in registry.modules] == ["location", "payroll"]
    assert registry.apps == ["fake.location", "fake.payroll"]
    assert registry.config("location") == {"levels": ["A"]}


def test_unknown_module() -> None:
    error = refusal(deployment({"name": "nosuch"}), {}, spec("location"))
    text = assert_one_clear_message(error, "nosuch", "no such module is installed", "installed: location")
    assert "remove it from openimis.json" in text


def test_installed_version_outside_the_requested_range() -> None:
    error = refusal(deployment({"name": "location", "version": ">=2.0,<3.0"}), {}, spec("location", "1.4.0"))
    text = assert_one_clear_message(error, "location", "installed version 1.4.0", "<3.0,>=2.0")
    assert "widen the range" in text


def test_invalid_version_range_in_openimis_json() -> None:
    error = refusal(deployment({"name": "location", "version": "about 1"}), {}, spec("location"))
    assert_one_clear_message(error, "location", "'about 1'", "not a valid range")


def test_required_module_missing_from_openimis_json() -> None:
    error = refusal(
        deployment({"name": "payroll"}), {},
        spec("payroll", requires={"location": ">=1"}), spec("location"),
    )
    text = assert_one_clear_message(error, "payroll", "requires module 'location'", "does not list")
    assert "add 'location' to openimis.json" in text


def test_required_module_disabled() -> None:
    error = refusal(
        deployment({"name": "payroll"}, {"name": "location", "enabled": False}), {},
        spec("payroll", requires={"location": ">=1"}), spec("location"),
    )
    text = assert_one_clear_message(error, "payroll", "requires module 'location'", "is disabled")
    assert "enable 'location'" in text


def test_a_disabled_module_is_not_loaded_and_its_config_is_ignored() -> None:
    registry = load(
        deployment({"name": "location", "enabled": False}, {"name": "grievance"}),
        {"location": {"levels": "not even a list"}},
        available={"location": spec("location", config_schema=LEVELS_SCHEMA), "grievance": spec("grievance")},
    )
    assert [m.name for m in registry.modules] == ["grievance"]
    assert registry.disabled == ["location"]
    assert not registry.is_enabled("location")


def test_config_invalid_against_the_module_schema_names_the_json_path() -> None:
    error = refusal(deployment({"name": "location"}), {"location": {"levels": [""]}},
                    spec("location", config_schema=LEVELS_SCHEMA))
    text = assert_one_clear_message(error, "location", "modules_config.json is invalid at $.location.levels[0]")
    assert "correct $.location.levels[0]" in text


def test_config_with_an_unknown_setting_is_refused() -> None:
    error = refusal(deployment({"name": "location"}), {"location": {"levles": ["A"]}},
                    spec("location", config_schema=LEVELS_SCHEMA))
    assert_one_clear_message(error, "location", "$.location", "levles")


def test_the_real_location_schema_refuses_a_bad_level_list() -> None:
    from modules.location import MODULE

    error = refusal(deployment({"name": "location"}), {"location": {"levels": ["Province", 3]}}, MODULE)
    assert_one_clear_message(error, "location", "$.location.levels[1]")


def test_config_for_a_module_not_listed() -> None:
    error = refusal(deployment({"name": "location"}), {"grievance": {}}, spec("location"), spec("grievance"))
    text = assert_one_clear_message(error, "grievance", "not listed in openimis.json")
    assert "remove the 'grievance' section" in text


def test_modules_config_must_be_an_object() -> None:
    error = refusal(deployment({"name": "location"}), ["location"], spec("location"))
    assert_one_clear_message(error, "modules_config.json", "one JSON object keyed by module name")


def test_openimis_json_of_the_wrong_shape() -> None:
    error = refusal({"modules": [{"name": "location", "enabeld": True}]}, {}, spec("location"))
    assert_one_clear_message(error, "openimis.json", "$.modules[0]", "enabeld")


def test_module_listed_twice() -> None:
    error = refusal(deployment({"name": "location"}, {"name": "location"}), {}, spec("location"))
    assert_one_clear_message(error, "location", "listed twice")


def test_invalid_json_file_gives_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "openimis.json"
    broken.write_text('{"modules": [\n  {"name": "location",}\n]}\n', encoding="utf-8")
    with pytest.raises(ModuleConfigurationError) as caught:
        _read_json(broken, "openimis.json")
    text = assert_one_clear_message(caught.value, "openimis.json", str(broken), "not valid JSON")
    assert "line 2, column 23" in text


def test_missing_json_file(tmp_path: Path) -> None:
    with pytest.raises(ModuleConfigurationError) as caught:
        _read_json(tmp_path / "modules_config.json", "modules_config.json")
    assert_one_clear_message(caught.value, "modules_config.json", "does not exist")


def test_requirement_version_mismatch() -> None:
    error = refusal(
        deployment({"name": "payroll"}, {"name": "location"}), {},
        spec("payroll", requires={"location": ">=2.0"}), spec("location", "1.3.0"),
    )
    text = assert_one_clear_message(error, "payroll", "requires module 'location' >=2.0", "1.3.0 is installed")
    assert "install a version of 'location' within '>=2.0'" in text


def test_dependency_cycle() -> None:
    error = refusal(
        deployment({"name": "a"}, {"name": "b"}, {"name": "c"}), {},
        spec("a", requires={"b": ">=1"}), spec("b", requires={"c": ">=1"}), spec("c", requires={"a": ">=1"}),
    )
    text = str(error)
    assert "in a cycle: a -> b -> c -> a" in text
    assert "break the cycle" in text


def test_core_version_mismatch() -> None:
    old = ModuleSpec(name="legacy", version="1.0.0", app="fake.legacy", requires={"core": ">=9.0"})
    error = refusal(deployment({"name": "legacy"}), {}, old)
    text = assert_one_clear_message(error, "legacy", "requires core >=9.0", f"this core is {core.__version__}")
    assert f"made for core {core.__version__}" in text


class FirstQuery(graphene.ObjectType):
    households = ProtectedField(graphene.String, permission="core.user.view")


class SecondQuery(graphene.ObjectType):
    households = ProtectedField(graphene.Int, permission="core.user.view")


class OpenQuery(graphene.ObjectType):
    everything = graphene.String()


class FakePublicQuery(graphene.ObjectType):
    secrets = graphene.Field(graphene.String)


def test_two_modules_defining_the_same_graphql_field() -> None:
    with pytest.raises(ModuleConfigurationError) as caught:
        merge_roots("Query", [("individual", FirstQuery), ("grievance", SecondQuery)])
    assert_one_clear_message(
        caught.value, "grievance", "field 'households'", "module 'individual' already defines"
    )


def test_a_field_without_a_declared_permission() -> None:
    with pytest.raises(ModuleConfigurationError) as caught:
        merge_roots("Query", [("individual", FirstQuery), ("kobo", OpenQuery)])
    assert_one_clear_message(caught.value, "kobo", "'everything' declares no permission")


def test_only_the_log_in_fields_may_be_public() -> None:
    from core.graphql.permissions import mark

    mark(FakePublicQuery._meta.fields["secrets"], "public")
    with pytest.raises(ModuleConfigurationError) as caught:
        merge_roots("Query", [("kobo", FakePublicQuery)])
    assert_one_clear_message(caught.value, "kobo", "'secrets' declares no permission")


def test_distinct_protected_fields_merge_into_one_root() -> None:
    class Other(graphene.ObjectType):
        complaints = ProtectedField(graphene.Int, permission="core.user.view")

        def resolve_complaints(self, info: Any) -> int:
            return 3

    merged = merge_roots("Query", [("individual", FirstQuery), ("grievance", Other)])
    assert set(merged._meta.fields) == {"households", "complaints"}
    assert merged.resolve_complaints(None, None) == 3


# --- real processes --------------------------------------------------------------------------


def run_manage(*args: str, env_extra: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_a_process_with_an_unknown_module_refuses_to_start(tmp_path: Path) -> None:
    openimis = write_json(tmp_path / "openimis.json", deployment({"name": "location"}, {"name": "nosuch"}))
    done = run_manage("check", env_extra={"COREMIS_MODULES_FILE": openimis})
    assert done.returncode == 2, done.stderr
    assert "coremis cannot start: module 'nosuch'" in done.stderr
    assert "Fix: install the distribution that provides it" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_a_process_with_broken_json_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "modules_config.json"
    config.write_text('{"location": {"levels": ["A" "B"]}}', encoding="utf-8")
    done = run_manage("check", env_extra={"COREMIS_MODULES_CONFIG": str(config)})
    assert done.returncode == 2, done.stderr
    assert "module 'modules_config.json'" in done.stderr
    assert re.search(r"line 1, column \d+", done.stderr), done.stderr
    assert "Traceback" not in done.stderr


PROBE = """
import json, os
from django.conf import settings
from django.urls import Resolver404, get_resolver, resolve
from core.graphql.schema import schema
resolving = []
for path in json.loads(os.environ["PROBE_PATHS"]):
    try:
        resolve(path)
        resolving.append(path)
    except Resolver404:
        pass
print(json.dumps({
    "apps": list(settings.INSTALLED_APPS),
    "mounted": [str(p.pattern) for p in get_resolver().url_patterns],
    "resolving": resolving,
    "query_fields": sorted(schema.graphql_schema.query_type.fields),
}))
"""

SAMPLE_BY_CONVERTER = {"int": "1", "uuid": "2f1c3a52-7c1e-4a57-9a3b-0d6f3f8f0c11"}


def location_route_paths() -> list[str]:
    """Concrete paths for every route the location module mounts in this (default) process."""
    from django.urls import URLResolver, get_resolver

    paths: list[str] = []
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and str(entry.pattern) == "api/location/":
            for route in entry.url_patterns:
                sample = re.sub(
                    r"<(?:(\w+):)?\w+>",
                    lambda m: SAMPLE_BY_CONVERTER.get(m.group(1) or "str", "x"),
                    str(route.pattern),
                )
                paths.append("/api/location/" + sample.lstrip("^").rstrip("$"))
    return paths


def probe(env_extra: dict[str, str], paths: list[str]) -> dict[str, Any]:
    done = run_manage("shell", "-c", PROBE, env_extra={**env_extra, "PROBE_PATHS": json.dumps(paths)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def location_types(sdl: str) -> list[str]:
    return re.findall(r"\b(?:type|input|enum|interface) (\w*Location\w*)", sdl)


def has_locations_field(sdl: str) -> bool:
    """The module's root query; the core's user inputs have a ``locations`` argument whatever
    modules run (refused when none scopes users)."""
    query = re.search(r"^type Query \{$(.*?)^\}$", sdl, re.MULTILINE | re.DOTALL)
    assert query is not None
    return re.search(r"^\s+locations[(:]", query.group(1), re.MULTILINE) is not None


def test_the_default_deployment_serves_location() -> None:
    from django.conf import settings
    from django.urls import resolve

    from core.management.commands.print_schema import schema_sdl

    sdl = schema_sdl()
    assert "modules.location" in settings.INSTALLED_APPS
    assert has_locations_field(sdl), "the default schema has no 'locations' query field"
    assert location_types(sdl), "the default schema has no Location types"
    paths = location_route_paths()
    assert paths, "the location module mounts no routes under /api/location/"
    for path in paths:
        assert resolve(path).namespace == "location", path


@pytest.mark.slow
def test_disabling_location_removes_its_schema_routes_and_app(tmp_path: Path) -> None:
    off = {
        "COREMIS_MODULES_FILE": write_json(
            tmp_path / "openimis.json",
            deployment({"name": "location", "version": ">=0.1,<1.0", "enabled": False}),
        ),
        "COREMIS_MODULES_CONFIG": write_json(tmp_path / "modules_config.json", {}),
    }
    printed = run_manage("print_schema", env_extra=off)
    assert printed.returncode == 0, printed.stderr
    sdl = printed.stdout
    assert "type Query" in sdl and "mutationLogs" in sdl and "tokenAuth" in sdl
    assert not has_locations_field(sdl)
    assert location_types(sdl) == []

    paths = location_route_paths()
    disabled = probe(off, paths)
    assert "modules.location" not in disabled["apps"]
    assert "api/location/" not in disabled["mounted"]
    assert disabled["resolving"] == []
    assert "mutationLogs" in disabled["query_fields"]
    assert "locations" not in disabled["query_fields"]
