"""How the distribution is built: without the modules' test doubles (``testing.py``).

``[tool.setuptools.packages.find]`` leaves out test packages, but a ``testing.py`` is one file
of a module's package, which package excludes cannot name; this build step drops it. Used by
``pyproject.toml`` (``[tool.setuptools.cmdclass]``); proven by ``tests/test_packaging.py``.
"""

from __future__ import annotations

from setuptools.command.build_py import build_py

TEST_MODULES = {"testing", "conftest"}


class BuildPy(build_py):
    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        return [found for found in super().find_package_modules(package, package_dir)
                if found[1] not in TEST_MODULES]
