"""Module loader: decides which modules a deployment runs, before Django starts.

It reads ``openimis.json`` (which modules, which version ranges, enabled or not) and
``modules_config.json`` (their settings), checks every requirement and every configuration,
and registers each module's plug-in with one pluggy ``PluginManager``. Anything wrong stops the
process with one :class:`ModuleConfigurationError` naming the module, the problem and the fix;
nothing is skipped silently.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import jsonschema
import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

import core
from core.errors import ModuleConfigurationError
from core.module import ModuleSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINT_GROUP = "coremis.modules"
PROJECT_NAME = "coremis"
# The contract (every hook) and the core's own contributions to it (permissions, job kinds,
# GraphQL), loaded by name like a module's hookspecs and plug-in: they name the core's types
# and services, which depend on the loader, not the other way round.
CORE_HOOKSPECS = "core.hookspecs"
CORE_PLUGIN = "core.plugin"

OPENIMIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["modules"],
    "additionalProperties": False,
    "properties": {
        "modules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "version": {"type": "string"},
                    "enabled": {"type": "boolean"},
                },
            },
        }
    },
}


@dataclass(frozen=True)
class LoadedModule:
    spec: ModuleSpec
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Registry:
    """The modules a process runs, in dependency order, and the plug-in manager they feed."""

    modules: list[LoadedModule]
    plugin_manager: pluggy.PluginManager
    disabled: list[str] = field(default_factory=list)
    # {"core" or module: {"fe-<package>": {...}}}, enabled modules only (FRONTEND_SECTION)
    frontend: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def apps(self) -> list[str]:
        return [m.spec.app for m in self.modules]

    @property
    def hook(self) -> Any:
        return self.plugin_manager.hook

    def is_enabled(self, name: str) -> bool:
        return any(m.name == name for m in self.modules)

    def config(self, name: str) -> dict[str, Any]:
        for module in self.modules:
            if module.name == name:
                return module.config
        raise KeyError(f"module '{name}' is not enabled in this deployment")

    def module_of_plugin(self, plugin: object) -> str:
        return self.plugin_manager.get_name(plugin) or "?"


# --- discovery -------------------------------------------------------------------------------


def discover_modules() -> dict[str, ModuleSpec]:
    """Every module this installation could run: ``modules/*`` plus the entry point group."""
    found: dict[str, ModuleSpec] = {}
    import modules as bundled

    for info in sorted(pkgutil.iter_modules(bundled.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        package = importlib.import_module(f"modules.{info.name}")
        spec = getattr(package, "MODULE", None)
        if not isinstance(spec, ModuleSpec):
            raise ModuleConfigurationError(
                info.name,
                f"package modules/{info.name} does not declare a MODULE = ModuleSpec(...) manifest",
                f"add a ModuleSpec to modules/{info.name}/__init__.py or remove the folder",
            )
        _add_discovered(found, spec, f"modules/{info.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
        except Exception as exc:  # a broken distribution must name itself, not vanish
            raise ModuleConfigurationError(
                ep.name,
                f"entry point '{ep.value}' failed to import: {exc!r}",
                "repair or uninstall the distribution that declares it",
            ) from exc
        if not isinstance(spec, ModuleSpec):
            raise ModuleConfigurationError(
                ep.name,
                f"entry point '{ep.value}' is not a ModuleSpec",
                "point the coremis.modules entry point at the module's MODULE manifest",
            )
        _add_discovered(found, spec, f"entry point {ep.value}")
    return found


def _add_discovered(found: dict[str, ModuleSpec], spec: ModuleSpec, origin: str) -> None:
    if spec.name == "core":
        raise ModuleConfigurationError(
            spec.name, f"a module from {origin} takes the name of the core's own plug-in",
            "give the module another name",
        )
    if spec.name in found:
        raise ModuleConfigurationError(
            spec.name,
            f"two installed modules have this name (second one from {origin})",
            "uninstall one of them",
        )
    found[spec.name] = spec


# --- checks ----------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModuleConfigurationError(
            what, f"{path} does not exist", f"create {path.name} (see README.md)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ModuleConfigurationError(
            what,
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            f"correct the syntax of {path.name}",
        ) from exc


def _json_path(parts: Iterable[Any]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _specifier(module: str, text: str, where: str) -> SpecifierSet:
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise ModuleConfigurationError(
            module,
            f"version range '{text}' in {where} is not a valid range",
            "write it like '>=0.1,<1.0'",
        ) from exc


def _version(module: str, text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise ModuleConfigurationError(
            module, f"declares an invalid version '{text}'", "fix the module's ModuleSpec"
        ) from exc


def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Fill ``default`` values of object properties, recursively, without touching the input."""
    if not isinstance(value, dict) or schema.get("type") not in (None, "object"):
        return value
    result = copy.deepcopy(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in result and "default" in sub:
            result[key] = copy.deepcopy(sub["default"])
        if key in result:
            result[key] = apply_defaults(sub, result[key])
    return result


def validate_config(module: str, schema: Mapping[str, Any], value: Any) -> dict[str, Any]:
    filled = apply_defaults(schema, value)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = _json_path([module, *first.absolute_path])
        raise ModuleConfigurationError(
            module,
            f"modules_config.json is invalid at {path}: {first.message}",
            f"correct {path} in modules_config.json to match the module's configuration schema",
        )
    return filled


# modules_config.json may hold, beside the modules' sections, the configuration each module's
# openIMIS frontend package reads at start-up (``moduleConfigurations``, core/openimis.py):
# {"frontend": {"<module or core>": {"fe-<package>": {...}}}}. A disabled module's is not sent.
FRONTEND_SECTION = "frontend"


def check_frontend_section(section: Any, entries: Mapping[str, Any]) -> None:
    if section is None:
        return
    hint = 'write it as {"frontend": {"individual": {"fe-individual": {...}}}}'
    if not isinstance(section, dict):
        raise ModuleConfigurationError("modules_config.json", "the 'frontend' section must be an object", hint)
    for name, packages in section.items():
        if name != "core" and name not in entries:
            raise ModuleConfigurationError(
                name, "has frontend settings in modules_config.json but is not listed in openimis.json",
                f"remove frontend.{name} from modules_config.json, or list the module")
        if not isinstance(packages, dict) or not all(isinstance(v, dict) for v in packages.values()):
            raise ModuleConfigurationError(
                "modules_config.json", f"frontend.{name} must map frontend package names to objects", hint)


def resolve(
    openimis: Any, config: Any, available: Mapping[str, ModuleSpec]
) -> tuple[list[LoadedModule], list[str]]:
    """Check a deployment against the installed modules; return enabled modules in order."""
    try:
        jsonschema.validate(openimis, OPENIMIS_SCHEMA)
    except jsonschema.ValidationError as exc:
        path = _json_path(exc.absolute_path)
        raise ModuleConfigurationError(
            "openimis.json",
            f"invalid at {path}: {exc.message}",
            'list modules as {"modules": [{"name": "location", "version": ">=0.1,<1.0"}]}',
        ) from exc
    if not isinstance(config, dict):
        raise ModuleConfigurationError(
            "modules_config.json",
            "the file must hold one JSON object keyed by module name",
            'write it as {"location": {...}}',
        )

    entries: dict[str, dict[str, Any]] = {}
    for entry in openimis["modules"]:
        name = entry["name"]
        if name in entries:
            raise ModuleConfigurationError(
                name, "is listed twice in openimis.json", "keep one entry for it"
            )
        entries[name] = entry
        if name not in available:
            known = ", ".join(sorted(available)) or "none"
            raise ModuleConfigurationError(
                name,
                f"is listed in openimis.json but no such module is installed (installed: {known})",
                "install the distribution that provides it, or remove it from openimis.json",
            )
        spec = available[name]
        wanted = _specifier(name, entry.get("version", ""), "openimis.json")
        if _version(name, spec.version) not in wanted:
            raise ModuleConfigurationError(
                name,
                f"installed version {spec.version} is outside the range '{wanted}' "
                "that openimis.json asks for",
                f"install a version of '{name}' within '{wanted}', or widen the range",
            )

    enabled = {n for n, e in entries.items() if e.get("enabled", True)}
    disabled = sorted(set(entries) - enabled)
    core_version = Version(core.__version__)
    for name in sorted(enabled):
        spec = available[name]
        for required, range_text in spec.requires.items():
            wanted = _specifier(name, range_text, f"the requirements of '{name}'")
            if required == "core":
                if core_version not in wanted:
                    raise ModuleConfigurationError(
                        name,
                        f"requires core {wanted} but this core is {core.__version__}",
                        f"install a version of '{name}' made for core {core.__version__}",
                    )
                continue
            if required not in entries:
                raise ModuleConfigurationError(
                    name,
                    f"requires module '{required}' ({wanted}), which openimis.json does not list",
                    f"add '{required}' to openimis.json, or disable '{name}'",
                )
            if required not in enabled:
                raise ModuleConfigurationError(
                    name,
                    f"requires module '{required}' ({wanted}), which is disabled in openimis.json",
                    f"enable '{required}' in openimis.json, or disable '{name}'",
                )
            have = available[required].version
            if _version(required, have) not in wanted:
                raise ModuleConfigurationError(
                    name,
                    f"requires module '{required}' {wanted} but version {have} is installed",
                    f"install a version of '{required}' within '{wanted}'",
                )

    check_frontend_section(config.get(FRONTEND_SECTION), entries)
    for name in config:
        if name not in entries and name != FRONTEND_SECTION:
            raise ModuleConfigurationError(
                name,
                "has settings in modules_config.json but is not listed in openimis.json",
                f"remove the '{name}' section from modules_config.json, or list the module",
            )

    ordered = _dependency_order({n: available[n] for n in enabled})
    loaded = [
        LoadedModule(spec, validate_config(spec.name, spec.config_schema, config.get(spec.name, {})))
        for spec in ordered
    ]
    return loaded, disabled


def _dependency_order(specs: Mapping[str, ModuleSpec]) -> list[ModuleSpec]:
    ordered: list[ModuleSpec] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join([*chain, name])
            raise ModuleConfigurationError(
                name, f"modules require each other in a cycle: {cycle}", "break the cycle"
            )
        state[name] = "visiting"
        for required in specs[name].requires:
            if required != "core":
                visit(required, [*chain, name])
        state[name] = "done"
        ordered.append(specs[name])

    for name in sorted(specs):
        visit(name, [])
    return ordered


def build_plugin_manager(loaded: list[LoadedModule]) -> pluggy.PluginManager:
    """The plug-in manager: the core's own plug-in first, then every enabled module's in
    dependency order. Each is loaded by its dotted name, the core's like a module's: the
    plug-in depends on the core's services, the loader on none of them."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(importlib.import_module(CORE_HOOKSPECS))
    pm.register(importlib.import_module(CORE_PLUGIN), name="core")
    for module in loaded:
        if module.spec.hookspecs:
            pm.add_hookspecs(importlib.import_module(module.spec.hookspecs))
    for module in loaded:
        if not module.spec.plugin:
            continue
        try:
            plugin = importlib.import_module(module.spec.plugin)
            pm.register(plugin, name=module.name)
        except pluggy.PluginValidationError as exc:
            raise ModuleConfigurationError(
                module.name, f"its plug-in does not match the hook contract: {exc}",
                "fix the hook implementation's name or arguments (see core/hookspecs.py)",
            ) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        raise ModuleConfigurationError(
            name, f"implements a hook that no enabled module declares: {exc}",
            "enable the module that declares the hook, or mark the implementation optionalhook",
        ) from exc
    return pm


def load(
    openimis: Any,
    config: Any,
    available: Mapping[str, ModuleSpec] | None = None,
) -> Registry:
    modules, disabled = resolve(
        openimis, config, available if available is not None else discover_modules()
    )
    enabled = {"core", *(m.spec.name for m in modules)}
    frontend = {name: packages for name, packages in ((config or {}).get(FRONTEND_SECTION) or {}).items()
                if name in enabled}
    return Registry(modules, build_plugin_manager(modules), disabled, frontend)


def openimis_path() -> Path:
    return Path(os.environ.get("COREMIS_MODULES_FILE", REPO_ROOT / "openimis.json"))


def modules_config_path() -> Path:
    return Path(os.environ.get("COREMIS_MODULES_CONFIG", REPO_ROOT / "modules_config.json"))


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from the deployment's two JSON files on first use."""
    global _registry
    if _registry is None:
        _registry = load(
            _read_json(openimis_path(), "openimis.json"),
            _read_json(modules_config_path(), "modules_config.json"),
        )
    return _registry


def module_config(name: str) -> dict[str, Any]:
    return get_registry().config(name)
