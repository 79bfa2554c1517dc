"""The conventions of ``core/README.md``, checked over the whole code base.

Every check applies to the core and every module alike (the transition that let modules
convert one by one is over).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ErrorCode
from core.loader import REPO_ROOT, get_registry

PRODUCTION_ROOTS = [REPO_ROOT / "core", *sorted((REPO_ROOT / "modules").glob("*/"))]


def owner_of(path: Path) -> str:
    """``core``, or the module a file of ``modules/<m>/`` belongs to."""
    parts = path.relative_to(REPO_ROOT).parts
    return parts[1] if parts[0] == "modules" and len(parts) > 2 else parts[0]


def relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def production_files() -> Iterator[Path]:
    for root in PRODUCTION_ROOTS:
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).parts
            # (simulators.py: simulated providers, speaking the providers' own codes and formats)
            if "migrations" in parts or "tests" in parts or path.name in ("testing.py", "simulators.py"):
                continue
            yield path


def dotted(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")


# --- error codes -------------------------------------------------------------------------------

# Calls whose argument at this position (or keyword ``code``) is an error code.
CODE_ARGUMENT = {"ServiceError": 0, "InputRefused": 0, "PagingError": 0, "FieldError": 1, "EdgeError": 1,
                 "RequestRefused": 1, "error_response": 1, "graphql_error_response": 1}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def code_expressions(tree: ast.AST) -> Iterator[ast.expr]:
    """Every expression used as an error code: a call's code argument, or a ``"code"`` key."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            position = CODE_ARGUMENT.get(_name(node.func))
            if position is not None and len(node.args) > position:
                yield node.args[position]
            if position is not None or _name(node.func).endswith("MutationError"):
                yield from (k.value for k in node.keywords if k.arg == "code")
        elif isinstance(node, ast.Dict):
            yield from (v for k, v in zip(node.keys, node.values, strict=True)
                        if isinstance(k, ast.Constant) and k.value == "code")


def undeclared(expression: ast.expr, namespace: dict[str, Any]) -> Iterator[str]:
    """What is wrong with one code expression: a string literal, or a name that is no member."""
    if isinstance(expression, ast.IfExp):
        yield from undeclared(expression.body, namespace)
        yield from undeclared(expression.orelse, namespace)
    elif isinstance(expression, ast.BoolOp):
        for value in expression.values:
            yield from undeclared(value, namespace)
    elif isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        yield f"the string {expression.value!r}"
    elif isinstance(expression, ast.Attribute):
        try:
            value = eval(compile(ast.Expression(expression), "<code>", "eval"), namespace)
        except (NameError, AttributeError):
            return  # an attribute of a local value (``exc.code``): checked where it was raised
        base = eval(compile(ast.Expression(expression.value), "<code>", "eval"), namespace)
        if isinstance(base, type) and issubclass(base, ErrorCode) and not isinstance(value, ErrorCode):
            yield f"{ast.unparse(expression)}, which is not a member"


def test_every_error_code_raised_is_a_declared_member() -> None:
    problems = []
    for path in production_files():
        tree = ast.parse(path.read_text())
        expressions = list(code_expressions(tree))
        if not expressions:
            continue
        namespace = vars(importlib.import_module(dotted(path)))
        for expression in expressions:
            problems += [f"{relative(path)}:{expression.lineno}: {p}" for p in undeclared(expression, namespace)]
    assert not problems, "error codes must be members of an ErrorCode enum:\n" + "\n".join(problems)


def test_the_check_finds_literals_and_non_members() -> None:
    tree = ast.parse('ServiceError("NOPE", "m")\nFieldError("f", CoreErrorCode.NOT_A_CODE, "m")\n'
                     'FieldError("f", CoreErrorCode.REQUIRED, "m")\nx = {"code": exc.code}')
    from core.errors import CoreErrorCode

    found = [p for e in code_expressions(tree) for p in undeclared(e, {"CoreErrorCode": CoreErrorCode})]
    assert found == ["the string 'NOPE'"]  # NOT_A_CODE does not even evaluate: an AttributeError


def test_every_mutation_declares_its_error_enum(mutations: list[type]) -> None:
    missing = [f"{relative(source_of(m))}: {m.__name__}" for m in mutations
               if m.error_codes is None]
    assert not missing, f"set error_codes on: {', '.join(missing)}"


# --- mutations are calls into services -----------------------------------------------------------

MECHANISMS = {"core.jobs": {"start_job", "dispatch_on_commit", "enqueue"},
              "core.approvals": {"request_approval", "needs_approval", "check_can_request"}}
# What a schema may import from them: the approvals' GraphQL types and error codes.
NOT_MECHANISMS = ("core.approvals.schema", "core.approvals.errors")
# The mechanisms' own mutations (retryJob, resolveTask…) call the use cases of their own package.
OWN_SURFACES = {"core/graphql/jobs.py": "core.jobs", "core/approvals/schema.py": "core.approvals"}
MAX_PERFORM_STATEMENTS = 3


@pytest.fixture(scope="module")
def mutations() -> list[type]:
    """Every CoreMutation class of the schema."""
    from core.graphql.mutations import CoreMutation
    from core.graphql.schema import schema

    found = []
    for field in schema.graphql_schema.mutation_type.fields.values():
        graphene_type = getattr(field.type, "graphene_type", None)
        if isinstance(graphene_type, type) and issubclass(graphene_type, CoreMutation):
            found.append(graphene_type)
    assert len(found) > 20
    return found


def module_of(cls: type) -> str:
    parts = cls.perform.__func__.__module__.split(".")  # type: ignore[attr-defined]  # made by type() too
    return parts[1] if parts[0] == "modules" else "core"


def source_of(cls: type) -> Path:
    return Path(inspect.getsourcefile(cls.perform.__func__) or "")  # type: ignore[attr-defined]


def _reaches(name: str, package: str) -> bool:
    inside = name == package or name.startswith(f"{package}.")
    return inside and not any(name == n or name.startswith(f"{n}.") for n in NOT_MECHANISMS)


def mechanism_uses(tree: ast.AST, own: str | None) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported = [f"{node.module}.{a.name}" for a in node.names]
            for package in MECHANISMS:
                if package != own and any(_reaches(n, package) for n in imported):
                    yield f"line {node.lineno} imports {package}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                for package in MECHANISMS:
                    if package != own and _reaches(alias.name, package):
                        yield f"line {node.lineno} imports {package}"
        elif isinstance(node, ast.Call) and _name(node.func) in set().union(*MECHANISMS.values()):
            yield f"line {node.lineno} calls {_name(node.func)}"


def test_mutations_reach_jobs_and_approvals_only_through_use_cases(mutations: list[type]) -> None:
    problems = []
    for path in sorted({source_of(m) for m in mutations}):
        name = relative(path)
        problems += [f"{name}: {p}" for p in mechanism_uses(ast.parse(path.read_text()), OWN_SURFACES.get(name))]
    assert not problems, ("a mutation's perform calls a check_*/do_* use case, which starts the job or asks "
                          "for approval:\n" + "\n".join(problems))


def test_every_perform_is_a_call_into_services(mutations: list[type]) -> None:
    long = []
    for mutation in mutations:
        perform = inspect.getsource(mutation.perform.__func__)
        (function,) = ast.parse(textwrap.dedent(perform)).body
        assert isinstance(function, ast.FunctionDef)
        body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if len(body) > MAX_PERFORM_STATEMENTS:
            long.append(f"{mutation.__name__} ({len(body)} statements)")
    assert not long, "perform is one to three lines calling services: " + ", ".join(long)


def test_the_mechanism_check_sees_imports_and_calls() -> None:
    tree = ast.parse("from core.jobs import start_job\nimport core.approvals.services\nfrom core import jobs\n"
                     "start_job('x', {}, user)\nfrom core.roles import check_create_role\n"
                     "from core.approvals.schema import TaskGQLType\n")
    assert list(mechanism_uses(tree, None)) == [
        "line 1 imports core.jobs", "line 2 imports core.approvals", "line 3 imports core.jobs",
        "line 4 calls start_job"]
    assert list(mechanism_uses(ast.parse("from core import jobs\njobs.check_retry_job(a, b)"), "core.jobs")) == []


# --- permission codes ---------------------------------------------------------------------------


def declared_codes() -> dict[str, str]:
    """Every permission code, with the module that declares it."""
    from core.permissions import registry

    return {code: code.split(".", 1)[0] for code in registry()}


def test_permission_codes_are_module_noun_verb_constants() -> None:
    from core.permissions import CODE_STYLE, Permission

    problems = []
    for code, module in declared_codes().items():
        if not CODE_STYLE.match(code):
            problems.append(f"{code} is not <module>.<noun>.<verb>")
        package = "core" if module == "core" else next(m.spec.app for m in get_registry().modules if m.name == module)
        constants = vars(importlib.import_module(f"{package}.permissions"))
        if not any(isinstance(v, Permission) and v == code for v in constants.values()):
            problems.append(f"{code} is no constant of {package}/permissions.py")
    assert not problems, "\n".join(problems)


PERMISSION_KEYWORDS = {"permission"}
PERMISSION_CALLS = {"require": 1, "has_permission": 1, "check_permission": 1}


def permission_literals(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            position = PERMISSION_CALLS.get(_name(node.func))
            values = [k.value for k in node.keywords if k.arg in PERMISSION_KEYWORDS]
            if position is not None and len(node.args) > position:
                values.append(node.args[position])
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield f"line {node.lineno}: {value.value!r}"
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            if any(isinstance(t, ast.Name) and t.id == "permission" for t in node.targets):
                yield f"line {node.lineno}: {node.value.value!r}"


def test_permission_checks_and_declarations_name_constants() -> None:
    problems = []
    for path in production_files():
        problems += [f"{relative(path)} {p}" for p in permission_literals(ast.parse(path.read_text()))]
    assert not problems, "name the permission constant of permissions.py:\n" + "\n".join(problems)


def test_no_permission_shares_a_string_with_a_job_kind_an_action_or_a_purpose() -> None:
    from core.approvals.actions import approval_actions
    from core.jobs import job_kinds
    from core.uploads import upload_purposes

    codes = set(declared_codes())
    others = {**{k: "job kind" for k in job_kinds()}, **{a: "approval action" for a in approval_actions()},
              **{p: "upload purpose" for p in upload_purposes()}}
    shared = sorted(f"{name} is a permission and a {what}" for name, what in others.items()
                    if name in codes)
    assert not shared, "\n".join(shared)


# --- test code ----------------------------------------------------------------------------------


def imported_test_code(tree: ast.AST) -> Iterator[str]:
    """Imports of test files, of ``testing.py`` plug-ins (pytest loads them) or of conftest."""
    for node in ast.walk(tree):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "tests" or "tests" in parts or "conftest" in parts or parts[-1] == "testing" \
                    or name.startswith("core.testing"):
                yield f"line {node.lineno} imports {name}"


# The test of the plug-in mechanism itself imports the plug-in it tests.
MECHANISM_TESTS = {"tests/test_testing_plugins.py"}


def test_tests_and_the_bench_import_no_test_file() -> None:
    roots = [REPO_ROOT / "tests", REPO_ROOT / "bench", *sorted((REPO_ROOT / "modules").glob("*/tests"))]
    problems = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if relative(path) in MECHANISM_TESTS:
                continue
            problems += [f"{relative(path)}: {p}" for p in imported_test_code(ast.parse(path.read_text()))]
    assert not problems, "use the fixtures of a testing.py plug-in instead:\n" + "\n".join(problems)
