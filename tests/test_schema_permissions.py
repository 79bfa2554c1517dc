"""Nothing in the GraphQL API is open by default.

The test walks the whole composed schema (core plus every enabled module), builds a minimal
valid request for each root query and mutation field, and sends it over HTTP as an anonymous
caller and as a logged-in user without roles. Both are refused and nothing is written.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.apps import apps
from graphene.utils.str_converters import to_camel_case
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)
from graphql_relay import to_global_id

from core.graphql.permissions import (
    AUTHENTICATED,
    AUTHENTICATED_FIELDS,
    PUBLIC_FIELDS,
    declared_permission,
)
from core.graphql.schema import schema
from core.models import MutationLog
from core.permissions import registry

GRAPHQL_SCHEMA = schema.graphql_schema
QUERY_FIELDS = sorted(GRAPHQL_SCHEMA.query_type.fields)
PROTECTED_QUERIES = [name for name in QUERY_FIELDS if name not in PUBLIC_FIELDS]
MUTATION_FIELDS = sorted(GRAPHQL_SCHEMA.mutation_type.fields) if GRAPHQL_SCHEMA.mutation_type else []
PROTECTED_MUTATIONS = [name for name in MUTATION_FIELDS if name not in PUBLIC_FIELDS]
ROOT_FIELDS = [("query", n) for n in PROTECTED_QUERIES] + [("mutation", n) for n in PROTECTED_MUTATIONS]
# Fields any logged-in user may call (each acts on the caller alone or checks per object).
ANY_USER_FIELDS = [(kind, name) for kind, name in ROOT_FIELDS if name in AUTHENTICATED_FIELDS]
PERMISSION_FIELDS = [f for f in ROOT_FIELDS if f not in ANY_USER_FIELDS]

SCALAR_SAMPLES: dict[str, Any] = {
    "String": lambda: '"x"',
    "ID": lambda: f'"{to_global_id("Node", str(uuid.uuid4()))}"',
    "UUID": lambda: f'"{uuid.uuid4()}"',
    "Int": lambda: "1",
    "Float": lambda: "1.5",
    "Boolean": lambda: "false",
    "Decimal": lambda: '"1"',
    "Date": lambda: '"2024-01-31"',
    "DateTime": lambda: '"2024-01-31T12:00:00+00:00"',
    "Time": lambda: '"12:00:00"',
    "JSONString": lambda: '"{}"',
    "GenericScalar": lambda: '"x"',
}


def sample_value(type_: Any) -> str:
    """A GraphQL literal the type accepts (only required parts of input objects are filled)."""
    if isinstance(type_, GraphQLNonNull):
        return sample_value(type_.of_type)
    if isinstance(type_, GraphQLList):
        return f"[{sample_value(type_.of_type)}]"
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        parts = [
            f"{name}: {sample_value(field.type)}"
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        ]
        return "{" + ", ".join(parts) + "}"
    if isinstance(type_, GraphQLScalarType):
        if type_.name not in SCALAR_SAMPLES:
            raise AssertionError(f"add a sample value for the scalar {type_.name} to SCALAR_SAMPLES")
        return str(SCALAR_SAMPLES[type_.name]())
    raise AssertionError(f"cannot build a value of {type_}")


def selection(type_: Any, depth: int = 0) -> str:
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    if isinstance(named, GraphQLInterfaceType):
        return " { __typename }"
    assert isinstance(named, GraphQLObjectType) and depth < 5, f"cannot select from {named}"
    for preferred in ("totalCount", "clientMutationId"):
        if preferred in named.fields:
            return f" {{ {preferred} }}"
    no_args = {n: f for n, f in named.fields.items() if not any(
        isinstance(a.type, GraphQLNonNull) for a in f.args.values())}
    for name, field in no_args.items():
        if is_leaf_type(get_named_type(field.type)):
            return f" {{ {name} }}"
    name, field = next(iter(no_args.items()))
    return f" {{ {name}{selection(field.type, depth + 1)} }}"


def request_for(kind: str, name: str) -> str:
    root = GRAPHQL_SCHEMA.query_type if kind == "query" else GRAPHQL_SCHEMA.mutation_type
    field = root.fields[name]
    args = [
        f"{arg_name}: {sample_value(arg.type)}"
        for arg_name, arg in field.args.items()
        if isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
    ]
    arguments = f"({', '.join(args)})" if args else ""
    return f"{kind} {{ {name}{arguments}{selection(field.type)} }}"


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._base_manager.count()
        for model in apps.get_models()
        if not model._meta.proxy and model._meta.managed
    }


def graphene_root_fields() -> dict[str, Any]:
    """The graphene Field objects of the composed roots, by their GraphQL name."""
    fields: dict[str, Any] = {}
    for root in (schema.query, schema.mutation):
        for attr, field in root._meta.fields.items():
            fields[getattr(field, "name", None) or to_camel_case(attr)] = field
    return fields


def test_the_walk_covers_core_and_modules() -> None:
    assert {"mutationLogs", "jobs", "roles"} <= set(QUERY_FIELDS)
    assert GRAPHQL_SCHEMA.subscription_type is None, "extend this walk to subscriptions"


def test_the_public_fields_are_exactly_the_log_in_mutations() -> None:
    public = {name for name, field in graphene_root_fields().items() if declared_permission(field) == "public"}
    log_in = {"tokenAuth", "refreshToken", "verifyToken", "revokeToken",
              "getCsrfToken", "deleteTokenCookie", "deleteRefreshTokenCookie"}
    # and the settings openIMIS's frontend reads before its log-in form: no data of anyone
    settings = {"moduleConfigurations", "grievanceConfig"}
    assert public == log_in | settings == set(PUBLIC_FIELDS)
    assert public & set(QUERY_FIELDS) == settings


def test_every_root_field_declares_a_known_permission() -> None:
    fields = graphene_root_fields()
    assert set(fields) == set(QUERY_FIELDS) | set(MUTATION_FIELDS)
    known = registry()
    for name, field in fields.items():
        code = declared_permission(field)
        assert code is not None, f"{name} declares no permission"
        if name in AUTHENTICATED_FIELDS:
            assert code == AUTHENTICATED, f"{name} is listed as open to any logged-in user"
        elif name not in PUBLIC_FIELDS:
            assert code in known, f"{name} requires '{code}', which no module declares"


def test_the_fields_open_to_any_logged_in_user_are_the_listed_ones() -> None:
    marked = {name for name, field in graphene_root_fields().items() if declared_permission(field) == AUTHENTICATED}
    assert marked == set(AUTHENTICATED_FIELDS)


@pytest.mark.parametrize(("kind", "name"), ROOT_FIELDS)
def test_the_walk_builds_valid_requests(kind: str, name: str) -> None:
    errors = validate(GRAPHQL_SCHEMA, parse(request_for(kind, name)))
    assert errors == [], f"{request_for(kind, name)}: {errors}"


def assert_refused(result: dict[str, Any], name: str, code: str) -> list[dict[str, Any]]:
    assert "data" in result, f"the request was not executed: {result}"
    assert (result["data"] or {}).get(name) is None, result
    errors = result.get("errors") or []
    assert errors, f"{name} answered without an error: {result}"
    assert [e.get("extensions", {}).get("code") for e in errors] == [code], errors
    assert errors[0].get("path") == [name], errors
    return errors


@pytest.mark.parametrize(("kind", "name"), ROOT_FIELDS)
def test_anonymous_callers_are_refused(gql: Any, kind: str, name: str) -> None:
    before = row_counts()
    result = gql(None).execute(request_for(kind, name))
    assert_refused(result, name, "UNAUTHENTICATED")
    assert row_counts() == before


@pytest.mark.parametrize(("kind", "name"), PERMISSION_FIELDS)
def test_users_without_roles_are_forbidden(gql: Any, make_user: Any, kind: str, name: str) -> None:
    user = make_user()
    client = gql(user)  # logs in (a session row) before the counting starts
    before = row_counts()
    result = client.execute(request_for(kind, name))
    errors = assert_refused(result, name, "PERMISSION_DENIED")
    field = graphene_root_fields()[name]
    assert errors[0]["extensions"]["permission"] == declared_permission(field)
    assert row_counts() == before


@pytest.mark.parametrize(("kind", "name"), ANY_USER_FIELDS)
def test_fields_open_to_any_user_change_nothing_with_sample_input(
        gql: Any, make_user: Any, kind: str, name: str) -> None:
    """A role-less user is let in, and the walk's placeholder input is refused without a
    change (the mutation log records the attempt, as for every mutation)."""
    client = gql(make_user())
    before = {k: v for k, v in row_counts().items() if k != "core.MutationLog"}
    result = client.execute(request_for(kind, name))
    codes = [e.get("extensions", {}).get("code") for e in result.get("errors") or []]
    assert "PERMISSION_DENIED" not in codes and "UNAUTHENTICATED" not in codes, result
    if kind == "mutation":
        assert MutationLog.objects.get().status == MutationLog.ERROR
    assert {k: v for k, v in row_counts().items() if k != "core.MutationLog"} == before


@pytest.mark.parametrize("name", QUERY_FIELDS)
def test_a_superuser_is_let_through(gql: Any, make_user: Any, name: str) -> None:
    root = make_user(superuser=True)
    result = gql(root).execute(request_for("query", name))
    assert "data" in result and result["data"] is not None, result
    codes = [e.get("extensions", {}).get("code") for e in result.get("errors") or []]
    assert "PERMISSION_DENIED" not in codes and "UNAUTHENTICATED" not in codes, result
    if not GRAPHQL_SCHEMA.query_type.fields[name].args or not any(
        isinstance(a.type, GraphQLNonNull) for a in GRAPHQL_SCHEMA.query_type.fields[name].args.values()
    ):
        assert not result.get("errors"), result
        assert result["data"][name] is not None
