"""What the distribution ships: the platform, the modules and the ``coremis`` command, never
test code or the bench (``[tool.setuptools.packages.find]`` in ``pyproject.toml``)."""

from __future__ import annotations

import tomllib

from setuptools import find_namespace_packages, find_packages

from core.loader import REPO_ROOT


def shipped_packages() -> list[str]:
    """The packages setuptools puts in the wheel, found the way it finds them."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    find = find_namespace_packages if config.get("namespaces", True) else find_packages
    return sorted(find(where=str(REPO_ROOT / config.get("where", ["."])[0]),
                       include=config.get("include", ["*"]), exclude=config.get("exclude", [])))


def is_test_package(name: str) -> bool:
    parts = name.split(".")
    return "tests" in parts or "testing" in parts or parts[0] == "bench"


def test_the_wheel_ships_no_test_code_and_no_bench() -> None:
    packages = shipped_packages()
    assert [p for p in packages if is_test_package(p)] == []
    # ...and what runs in production is there.
    for needed in ("core", "core.jobs", "core.approvals", "core.graphql", "core.migrations", "devserver",
                   "modules", "modules.payroll", "modules.payroll.migrations", "modules.grievance.services"):
        assert needed in packages


def test_without_the_excludes_test_code_would_ship() -> None:
    # The check above can fail: the same search without the excludes finds the test packages.
    everything = find_namespace_packages(where=str(REPO_ROOT), include=["core*", "modules*"])
    assert "core.testing" in everything and "modules.payroll.tests" in everything


def modules_built_by(command: type) -> set[str]:
    from setuptools import Distribution

    dist = Distribution({"packages": shipped_packages(), "package_dir": {"": str(REPO_ROOT)},
                         "script_name": str(REPO_ROOT / "pyproject.toml")})
    build = command(dist)
    build.finalize_options()
    return {f"{package}.{name}" for package, name, _ in build.find_all_modules()}


def test_the_build_leaves_out_the_modules_test_doubles() -> None:
    from setuptools.command.build_py import build_py

    from devserver.packaging import BuildPy

    modules = modules_built_by(BuildPy)
    assert {"core.loader", "modules.payroll.services.generation", "devserver.cli"} <= modules
    assert sorted(m for m in modules if m.rsplit(".", 1)[-1] in {"testing", "conftest"}) == []
    # The plain build step would ship them (grievance keeps its test doubles in testing.py).
    assert "modules.grievance.testing" in modules_built_by(build_py)
