"""Each module's README says what the module really has: its configuration table matches its
JSON Schema (every key, no other, the same defaults), and it names every GraphQL field and
approval action the module contributes. A README that drifts fails here."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from graphene.utils.str_converters import to_camel_case

from core.hooks import results_by_module
from core.loader import REPO_ROOT, get_registry

NO_DEFAULT = {"", "none", "—", "-", "(none)"}
ROW = re.compile(r"^\|\s*`(?P<key>[^`]+)`\s*\|\s*(?P<default>[^|]*?)\s*\|(?P<meaning>.*)\|\s*$")


def readme(module: str) -> str:
    return (REPO_ROOT / "modules" / module / "README.md").read_text(encoding="utf-8")


def configuration_table(text: str) -> dict[str, str]:
    """``{key: default cell}`` of the table under the README's ``## Configuration`` heading."""
    match = re.search(r"^## Configuration\b.*?$(?P<body>.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "the README has no '## Configuration' section"
    rows: dict[str, str] = {}
    for line in match.group("body").splitlines():
        row = ROW.match(line)
        if row and row.group("key") != "key":
            rows[row.group("key")] = row.group("default")
    return rows


def documented_default(cell: str) -> Any:
    text = cell.strip()
    if text.startswith("`") and text.endswith("`"):
        text = text[1:-1]
    if text.lower() in NO_DEFAULT:
        return NO_DEFAULT
    try:
        return json.loads(text)
    except ValueError:
        return text


MODULES = sorted(m.name for m in get_registry().modules)


@pytest.mark.parametrize("module", MODULES)
def test_the_configuration_table_matches_the_json_schema(module: str) -> None:
    spec = next(m.spec for m in get_registry().modules if m.name == module)
    properties = spec.config_schema.get("properties", {})
    table = configuration_table(readme(module))
    assert sorted(table) == sorted(properties), "keys of the README's configuration table vs the schema"
    wrong = {}
    for key, cell in table.items():
        expected = properties[key].get("default", NO_DEFAULT)
        if documented_default(cell) != expected:
            wrong[key] = (cell, expected)
    assert not wrong, f"defaults that differ (README cell, schema default): {wrong}"


@pytest.mark.parametrize("module", MODULES)
def test_the_readme_names_every_graphql_field_and_approval_action(module: str) -> None:
    text = readme(module)
    names = []
    for hook in ("coremis_graphql_query", "coremis_graphql_mutation"):
        for owner, root in results_by_module(hook):
            if owner == module:
                names += [to_camel_case(name) for name in root._meta.fields]
    for owner, actions in results_by_module("coremis_approval_actions"):
        if owner == module:
            names += list(actions)
    missing = sorted(n for n in names if not re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", text))
    assert not missing, f"modules/{module}/README.md does not mention: {', '.join(missing)}"


def test_the_table_reader_sees_keys_and_defaults() -> None:
    text = "## Configuration (x)\n| key | default | meaning |\n|---|---|---|\n| `a` | `10` | m |\n" \
           "| `b` | none | m |\n| `c` | `\"GRV\"` | a \\| b |\n\n## Next\n| `d` | `1` | no |\n"
    table = configuration_table(text)
    assert sorted(table) == ["a", "b", "c"]
    assert [documented_default(table[k]) for k in "ac"] == [10, "GRV"]
    assert documented_default(table["b"]) is NO_DEFAULT
