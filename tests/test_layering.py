"""The layering of ``core/README.md``, enforced over the import graph of the whole tree.

- no import cycle inside ``core/``;
- the core imports no module;
- a module imports only the core, itself and the modules its ``ModuleSpec.requires`` names;
- nothing outside the tests imports test code (``tests`` packages, ``testing.py`` plug-ins,
  ``core.testing``, conftest files).

The graph is read with the standard ``ast``: every ``import`` counts wherever it is written,
inside a function too (an import inside a function is still a dependency; it only hides a
circle until it runs). Imports under ``if TYPE_CHECKING:`` do not count: they never run, they
name types for annotations. ``from a.b import c`` is a dependency on ``a.b`` (and on ``a.b.c``
when that is a file), and importing ``a.b.c`` runs the packages ``a`` and ``a.b`` first, so it
depends on them too.
"""

from __future__ import annotations

import ast
import importlib
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from core.loader import REPO_ROOT, discover_modules

SKIPPED_PARTS = {"migrations", ".venv", "var", "node_modules", "__pycache__"}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of every import in ``tree`` that runs (relative ones resolved
    against ``package``), each ``from x import y`` as both ``x`` and ``x.y``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


class Tree:
    """The Python files of the repository and the imports between them."""

    def __init__(self, root: Path, sources: dict[str, str] | None = None) -> None:
        self.root = root
        if sources is None:
            sources = {}
            for path in sorted(root.rglob("*.py")):
                rel = path.relative_to(root)
                if SKIPPED_PARTS.intersection(rel.parts):
                    continue
                sources[str(rel)] = path.read_text(encoding="utf-8")
        self.sources = sources
        self.files = {self.dotted(rel): rel for rel in sources}
        self.edges: dict[str, dict[str, int]] = {name: self._imports(name) for name in self.files}

    @staticmethod
    def dotted(rel: str) -> str:
        return ".".join(Path(rel).with_suffix("").parts).removesuffix(".__init__")

    def _file_of(self, name: str) -> str | None:
        while name and name not in self.files:
            name = name.rpartition(".")[0]
        return name or None

    def _imports(self, name: str) -> dict[str, int]:
        rel = self.files[name]
        package = name if rel.endswith("__init__.py") else name.rpartition(".")[0]
        found: dict[str, int] = {}
        for line, target in imported_names(ast.parse(self.sources[rel]), package):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c runs a, then a.b
                file = self._file_of(".".join(parts[:i]))
                if file and file != name and not name.startswith(f"{file}."):
                    found.setdefault(file, line)
        return found

    def cycles(self, prefix: str) -> list[list[str]]:
        """The strongly connected parts (more than one file) of the graph under ``prefix``."""
        nodes = [n for n in self.files if n == prefix or n.startswith(f"{prefix}.")]
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []
        counter = 0

        def visit(node: str) -> None:  # Tarjan
            nonlocal counter
            index[node] = low[node] = counter
            counter += 1
            stack.append(node)
            on_stack.add(node)
            for target in self.edges[node]:
                if target not in nodes:
                    continue
                if target not in index:
                    visit(target)
                    low[node] = min(low[node], low[target])
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
            if low[node] == index[node]:
                part = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.append(top)
                    if top == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))

        for node in nodes:
            if node not in index:
                visit(node)
        return found

    def describe(self, part: Iterable[str]) -> str:
        members = set(part)
        return "\n".join(f"  {a} -> {b} (line {line})" for a in sorted(members)
                         for b, line in sorted(self.edges[a].items()) if b in members)


def is_test_code(name: str) -> bool:
    parts = name.split(".")
    return ("tests" in parts or "conftest" in parts or parts[-1] in {"testing", "tests"}
            or name == "core.testing" or name.startswith("core.testing."))


@pytest.fixture(scope="module")
def tree() -> Tree:
    return Tree(REPO_ROOT)


def test_the_core_has_no_import_cycle(tree: Tree) -> None:
    cycles = tree.cycles("core")
    assert not cycles, "import cycles inside core/ (function-level imports count):\n" + "\n\n".join(
        tree.describe(part) for part in cycles)


def test_the_core_imports_no_module(tree: Tree) -> None:
    # ``modules`` itself is the folder the loader discovers modules in, by name.
    problems = [f"{name} line {line} imports {target}"
                for name, targets in tree.edges.items() if name.split(".")[0] == "core"
                for target, line in targets.items() if target.startswith("modules.")]
    assert not problems, "the core imports no module; add a hook instead:\n" + "\n".join(problems)


def top_level_imports(tree: Tree, name: str) -> set[str]:
    """What ``name`` imports when it is imported (not inside its functions)."""
    rel = tree.files[name]
    module = ast.parse(tree.sources[rel])
    top = ast.Module(body=[s for s in module.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef
                                                                       | ast.ClassDef)], type_ignores=[])
    package = name if rel.endswith("__init__.py") else name.rpartition(".")[0]
    return {target for _, target in imported_names(top, package)}


def test_a_module_imports_only_the_core_and_what_it_requires(tree: Tree) -> None:
    """A module's code imports only what it requires. Its tests may also exercise the modules
    that implement its hooks (grievance's tests with payroll's payments), but only inside a
    test or fixture: collecting them never fails where those modules are disabled."""
    specs = discover_modules()
    problems = []
    for name, targets in tree.edges.items():
        parts = name.split(".")
        if parts[0] != "modules" or len(parts) < 2 or parts[1] not in specs:
            continue
        allowed = {parts[1], *specs[parts[1]].requires}
        at_import = top_level_imports(tree, name) if is_test_code(name) else None
        for target, line in targets.items():
            target_parts = target.split(".")
            if target_parts[0] != "modules" or len(target_parts) < 2 or target_parts[1] in allowed:
                continue
            if at_import is not None and not any(t == target or t.startswith(f"{target}.") for t in at_import):
                continue
            problems.append(f"{name} line {line} imports {target}, but module '{parts[1]}' does not "
                            f"require '{target_parts[1]}' (ModuleSpec.requires)")
    assert not problems, "\n".join(problems)


def test_nothing_outside_the_tests_imports_test_code(tree: Tree) -> None:
    problems = [f"{name} line {line} imports {target}"
                for name, targets in tree.edges.items()
                if name.split(".")[0] in {"core", "modules", "devserver"} and not is_test_code(name)
                for target, line in targets.items() if is_test_code(target)]
    assert not problems, "production code imports test code:\n" + "\n".join(problems)


# --- the checks can fail ------------------------------------------------------------------------


def fake_tree(files: dict[str, str]) -> Tree:
    return Tree(REPO_ROOT, {rel: textwrap.dedent(text) for rel, text in files.items()})


def test_a_cycle_hidden_in_a_function_is_found() -> None:
    tree = fake_tree({
        "core/__init__.py": "",
        "core/jobs.py": "def kinds():\n    from core.approvals import run\n    return run\n",
        "core/approvals/__init__.py": "from core.approvals.services import run\n",
        "core/approvals/services.py": "from core.jobs import kinds\ndef run(): ...\n",
    })
    assert tree.cycles("core") == [["core.approvals", "core.approvals.services", "core.jobs"]]
    assert "core.jobs -> core.approvals (line 2)" in tree.describe(tree.cycles("core")[0])


def test_type_checking_imports_and_relative_imports_are_read_as_python_runs_them() -> None:
    tree = fake_tree({
        "core/__init__.py": "",
        "core/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core.b import B\n",
        "core/b.py": "from . import a\nfrom .c import thing\n",
        "core/c.py": "import importlib\nimportlib.import_module('modules.payroll.tests.provider')\n",
    })
    assert tree.edges["core.a"] == {}
    assert set(tree.edges["core.b"]) == {"core.a", "core.c"}
    assert tree.cycles("core") == []
    assert is_test_code("modules.payroll.tests.provider") and is_test_code("core.testing.live")
    assert not is_test_code("modules.payroll.testing_rules")


def test_the_real_plugins_are_loaded_by_name() -> None:
    # The loader registers plug-ins by dotted name (the core's too): the graph does not see
    # those imports, which is why the core's plug-in may import every core service.
    assert importlib.import_module("core.plugin").coremis_jobs
