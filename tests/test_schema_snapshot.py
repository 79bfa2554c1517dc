"""The committed ``schema.graphql`` is the API contract: any change to it is deliberate.

Frontends and integrators read it; a change that slips in with an unrelated commit would
break them silently. When the change is intended, ``make schema`` rewrites the file and the
diff goes into review with the code.
"""

from __future__ import annotations

import difflib

import pytest

from core.loader import REPO_ROOT
from core.management.commands.print_schema import schema_sdl

SNAPSHOT = REPO_ROOT / "schema.graphql"
MAX_DIFF_LINES = 60


def short_diff(committed: str, current: str) -> str:
    lines = list(difflib.unified_diff(
        committed.splitlines(), current.splitlines(),
        fromfile="schema.graphql (committed)", tofile="schema (this code)", lineterm="", n=2,
    ))
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more diff lines)"]
    return "\n".join(lines)


def test_the_schema_matches_the_committed_snapshot() -> None:
    if not SNAPSHOT.exists():
        pytest.fail(
            f"{SNAPSHOT.name} is missing at the repository root. Run `make schema` to write it "
            "and commit it with the code.",
            pytrace=False,
        )
    committed = SNAPSHOT.read_text(encoding="utf-8")
    current = schema_sdl()
    if committed != current:
        pytest.fail(
            "The GraphQL schema differs from the committed schema.graphql. If the change is "
            "intended, run `make schema` and commit the file; otherwise undo the API change.\n"
            + short_diff(committed, current),
            pytrace=False,
        )


def test_the_diff_shown_on_mismatch_is_short_and_points_at_the_change() -> None:
    current = schema_sdl()
    changed = current.replace("totalCount: Int!", "totalCount: Int", 1)
    diff = short_diff(current, changed)
    assert "-  totalCount: Int!" in diff and "+  totalCount: Int" in diff
    many = "\n".join(f"line {i}" for i in range(500))
    assert len(short_diff(many, many.replace("line", "row")).splitlines()) == MAX_DIFF_LINES + 1
