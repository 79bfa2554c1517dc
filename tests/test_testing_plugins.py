"""Each enabled module's ``testing.py`` is a pytest plug-in; a disabled module's is not loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _pytest.config import PytestPluginManager

from core.loader import load
from core.module import ModuleSpec
from core.testing import plugin


def package(root: Path, name: str, testing: bool) -> ModuleSpec:
    folder = root / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    if testing:
        (folder / "testing.py").write_text(
            "import pytest\n\n\n@pytest.fixture\ndef simulated_provider():\n    return 'a real server'\n")
    return ModuleSpec(name=name, version="0.1.0", app=name)


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(tmp_path))
    specs = {"alpha": package(tmp_path, "cc_alpha", True), "beta": package(tmp_path, "cc_beta", True),
             "gamma": package(tmp_path, "cc_gamma", False)}
    available = {spec.name: spec for spec in specs.values()}
    openimis = {"modules": [{"name": "cc_alpha"}, {"name": "cc_beta", "enabled": False}, {"name": "cc_gamma"}]}
    return load(openimis, {}, available)


def test_only_enabled_modules_with_a_testing_file_are_plugins(deployment: Any) -> None:
    assert plugin.testing_plugins(deployment) == ["cc_alpha.testing"]


def test_pytest_registers_them_so_their_fixtures_exist(deployment: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.loader

    monkeypatch.setattr(core.loader, "get_registry", lambda: deployment)
    manager = PytestPluginManager()

    class Config:
        pluginmanager = manager

    plugin.pytest_configure(Config())  # type: ignore[arg-type]
    assert manager.has_plugin("cc_alpha.testing") and not manager.has_plugin("cc_beta.testing")
    assert hasattr(manager.get_plugin("cc_alpha.testing"), "simulated_provider")


def test_the_shipped_modules_testing_files_are_loaded(request: pytest.FixtureRequest) -> None:
    from core.loader import get_registry

    for name in plugin.testing_plugins(get_registry()):
        assert request.config.pluginmanager.has_plugin(name)
