"""Introspection is a deployment choice: off for anonymous callers in production, open in the
demo; ``__typename`` always works."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from core.loader import REPO_ROOT

pytestmark = pytest.mark.django_db

SCHEMA = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "Query") { name } }'


def policy(settings: Any, value: str) -> None:
    settings.COREMIS = {**settings.COREMIS, "GRAPHQL_INTROSPECTION": value}


def refused(result: dict[str, Any]) -> bool:
    if result.get("data"):
        return False
    assert [e["extensions"]["code"] for e in result["errors"]] == ["INTROSPECTION_DISABLED"], result
    assert "schema.graphql" in result["errors"][0]["message"]
    return True


def test_authenticated_policy_refuses_anonymous_callers_only(gql: Any, make_user: Any, settings: Any) -> None:
    policy(settings, "authenticated")
    assert refused(gql(None).execute(SCHEMA))
    assert refused(gql(None).execute(TYPE))
    assert gql(None).execute("{ __typename }") == {"data": {"__typename": "Query"}}
    user = gql(make_user())
    assert user.ok(SCHEMA)["__schema"]["queryType"]["name"] == "Query"
    assert user.ok(TYPE)["__type"]["name"] == "Query"


def test_off_refuses_everyone_and_public_allows_everyone(gql: Any, make_user: Any, settings: Any) -> None:
    policy(settings, "off")
    assert refused(gql(make_user(superuser=True)).execute(SCHEMA))
    policy(settings, "public")
    assert gql(None).ok(SCHEMA)["__schema"]["queryType"]["name"] == "Query"


def settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"COREMIS_EMBEDDED", "COREMIS_DEBUG", "PYTEST_VERSION", "COREMIS_GRAPHQL_INTROSPECTION"}}
    return subprocess.run(
        [sys.executable, "-c", "from core import settings; print(settings.COREMIS['GRAPHQL_INTROSPECTION'])"],
        env={**clean, "COREMIS_SECRET_KEY": "x" * 50, **env}, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_production_defaults_to_authenticated_and_the_demo_to_public() -> None:
    assert settings_in_a_fresh_process().stdout.strip() == "authenticated"
    assert settings_in_a_fresh_process(COREMIS_EMBEDDED="1").stdout.strip() == "public"
    assert settings_in_a_fresh_process(COREMIS_GRAPHQL_INTROSPECTION="off").stdout.strip() == "off"
    wrong = settings_in_a_fresh_process(COREMIS_GRAPHQL_INTROSPECTION="sometimes")
    assert wrong.returncode != 0
    assert "COREMIS_GRAPHQL_INTROSPECTION is 'sometimes'; use public, authenticated or off." in wrong.stderr
