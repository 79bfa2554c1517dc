"""Hostile values in every argument of the API: a property-based walk of the introspected schema.

For every mutation and every root field that takes arguments (the filters of every list
included), hypothesis builds requests whose variables mix hostile values (NUL characters,
lone surrogates, NaN-looking numbers, overflowing decimals, malformed dates, ids and JSON,
deep nesting, nulls in lists) with valid ones (ids of rows that exist), and sends them as a
user holding every permission. Each answer must be:

- HTTP 200 or 400 with a JSON body;
- free of SQL and of Python: no message reads like a database error or names a Python type
  (see ``leaks``), and no error is an unexpected one (``INTERNAL``, or anything carrying a
  log reference: those mean an exception nobody turned into a typed error);
- harmless when refused: if the answer is an error, no row of any installed app's table
  changed (a checksum of every table, before and after; the mutation log, which records
  refused requests by design, is left out).

Examples are derandomized so ``make test`` is repeatable; ``COREMIS_HOSTILE_RANDOM=1`` and
``COREMIS_HOSTILE_EXAMPLES=200`` explore further.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import uuid
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    build_client_schema,
    get_named_type,
    is_leaf_type,
)
from graphql_relay import to_global_id
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from core.graphql.schema import schema

pytestmark = [pytest.mark.django_db]

# The schema as a client sees it: introspected, then rebuilt from the introspection.
CLIENT_SCHEMA = build_client_schema(schema.introspect())
MUTATIONS = sorted(CLIENT_SCHEMA.mutation_type.fields) if CLIENT_SCHEMA.mutation_type else []
QUERIES = sorted(name for name, field in CLIENT_SCHEMA.query_type.fields.items() if field.args)

EXAMPLES = int(os.environ.get("COREMIS_HOSTILE_EXAMPLES", "20"))
RANDOM = os.environ.get("COREMIS_HOSTILE_RANDOM") == "1"

# --- what must never come back ----------------------------------------------------------------

SQL = re.compile("|".join([
    r"invalid input syntax", r"\bviolates\b", r"\brelation\b", r"operator does not exist",
    r"syntax error at or near", r"\bcolumn\b.*\bdoes not exist", r"duplicate key value",
    r"current transaction is aborted", r"psycopg", r"django\.db", r"\bLINE \d+:", r"\bDETAIL:",
    r"\bHINT:", r"unsupported Unicode escape", r"invalid byte sequence", r"numeric field overflow",
    r"out of range for type", r"canceling statement", r"\bSELECT\b.*\bFROM\b", r"\bINSERT INTO\b",
    r"cannot contain NUL", r"value too long for type", r"\bjsonb?\b.*\btoken\b",
]), re.IGNORECASE)
PYTHON = re.compile("|".join([
    r"Traceback", r"<class", r"object has no attribute", r"NoneType", r"unhashable type",
    r"not subscriptable", r"positional argument", r"unexpected keyword argument", r"has no len",
    r"not supported between instances", r"'(str|int|dict|list|float|bool|tuple|bytes)' object",
    r"codec can't", r"\b(TypeError|ValueError|KeyError|AttributeError|IndexError|RuntimeError|"
    r"AssertionError|ZeroDivisionError|RecursionError|UnicodeEncodeError|UnicodeDecodeError|"
    r"InvalidOperation|IntegrityError|DataError|OperationalError|ProgrammingError|InternalError|"
    r"ValidationError|OverflowError|JSONDecodeError)\b", r"\bmust be (str|int|real number)",
    r"surrogates not allowed", r"maximum recursion depth",
]))


def leaks(message: str) -> list[str]:
    return [m.group(0) for pattern in (SQL, PYTHON) for m in [pattern.search(message)] if m]


def test_the_detector_finds_what_the_issue_saw() -> None:
    seen = ['invalid input syntax for type json', 'unsupported Unicode escape sequence',
            'invalid byte sequence for encoding "UTF8": 0x00', 'numeric field overflow',
            "[<class 'decimal.InvalidOperation'>]", "'NoneType' object has no attribute 'strip'",
            "object of type 'int' has no len()", "operator does not exist: uuid #>> unknown",
            'duplicate key value violates unique constraint "x"', 'relation "x" does not exist']
    assert all(leaks(message) for message in seen)
    fine = ["Custom filter 'a': 'NaN' is not a valid decimal", "The first name is empty.",
            "Variable '$a0' got invalid value 'x' at 'a0'; badly formed hexadecimal UUID string",
            "Int cannot represent non 32-bit signed integer value: 99999999999"]
    assert not [m for m in fine if leaks(m)]


# --- values ------------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "NaN", "Infinity", "-Infinity", "-1", "0", "1e40",
    "9" * 400, "' OR 1=1 --", "%", "_%_", "\\", "\\x00", "{}", "[]", "null", "<b>x</b>", "x" * 5000,
    "é漢字🙂", "\n\t\r", "a__exact__string=\x00", "vulnerability_score__lt__decimal=NaN",
    "vulnerability_score__lt__integer=1e40", "x__nope__string=1", "national_id__isnull__maybe=1",
    "json_ext.national_id", "json_ext.", "json_ext.a b", "-lastName", "password", "__class__",
    "first_name", "code", "location", "ACTIVE", "POTENTIAL", "INDIVIDUAL", "GROUP", "Province", "mobile_money",
    "2024-01-01", "00000000-0000-0000-0000-000000000000", "VGFza0dyb3VwOm5vdC1hLXV1aWQ=",
]
HOSTILE_JSON = [
    "{}", "[]", "null", "5", '"text"', "not json", '{"a": NaN}', '{"a": Infinity}', '{"a": "\\u0000"}',
    '{"\\u0000": 1}', "[" * 200 + "]" * 200, '{"a": ' * 40 + "1" + "}" * 40, '{"national_id": "ID-0001"}',
    '{"national_id": 5}', '{"vulnerability_score": 1e400}', '{"phone": []}', '[null]',
    '{"combine": "XOR"}', '{"combine": "AND", "conditions": [null]}',
    '{"conditions": [{"field": "first_name", "value": [1]}]}', '{"conditions": [{"field": ["sex"]}]}',
    '{"conditions": [{"location": [5]}]}', '{"conditions": [{"location": ["not-a-uuid"]}]}',
    '{"conditions": [{"filter": 5}]}', '{"conditions": [{"on": "head", "filter": "x__lt__decimal=NaN"}]}',
    '{"type": "object", "properties": {"a": {"type": "nope"}}}', '{"type": 5}', '{"$ref": "http://x"}',
    '{"fixed": 1e30}', '{"fixed": -1}', '{"per_member": "x"}', '{"base_url": "http://\\u0000"}',
    '{"client_secret": {"env": "HOME"}}', '{"' + "k" * 300 + '": 1}',
]
HOSTILE_DECIMAL = ["1", "0", "-1", "0.001", "1e40", "-1e40", "NaN", "sNaN", "-Infinity", "Infinity",
                   "1e-400", "abc", "", "99999999999999999.99", "1e15", "12345678901234.5678"]
HOSTILE_DATE = ["2024-01-01", "0001-01-01", "9999-12-31", "2024-02-30", "", "yesterday", "2024-1-1", "1899-12-31"]
HOSTILE_DATETIME = ["2024-01-01T00:00:00+00:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59+14:00",
                    "2024-13-01T00:00:00", "now", ""]
INTS = st.one_of(st.sampled_from([0, -1, 1, 2, 100, 101, 2**31 - 1, -(2**31), 2**40]),
                 st.integers(-(2**31), 2**31 - 1))
FLOATS = st.one_of(st.sampled_from([0.0, -1.0, 1e308, -1e308, 5e-324, 0.1]), st.floats(allow_nan=False,
                                                                                        allow_infinity=False))


class Values:
    """Strategies for the values of a GraphQL input type, knowing the rows that exist."""

    def __init__(self, pool: list[str]) -> None:
        self.pool = pool
        ids = st.sampled_from(pool) if pool else st.just(str(uuid.uuid4()))
        self.uuids = st.one_of(ids, ids, st.uuids().map(str),
                               st.sampled_from(["not-a-uuid", "", "00000000-0000-0000-0000-000000000000",
                                                "\x00", "{" + str(uuid.uuid4()) + "}"]))
        types = ["IndividualGQLType", "GroupGQLType", "BenefitPlanGQLType", "LocationGQLType", "TaskGroupGQLType",
                 "PaymentPlanGQLType", "Nope"]
        self.global_ids = st.one_of(
            st.builds(lambda t, pk: to_global_id(t, pk), st.sampled_from(types), ids),
            st.sampled_from(["garbage", "", "VGFzazpub3QtYS11dWlk", to_global_id("X", "1")]),
            ids)
        self.texts = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12), ids)

    def scalar(self, name: str) -> st.SearchStrategy[Any]:
        return {
            "String": self.texts,
            "ID": self.global_ids,
            "UUID": self.uuids,
            "Int": INTS,
            "BigInt": st.one_of(INTS, st.sampled_from([2**62, -(2**63), 10**30])),
            "Float": FLOATS,
            "Boolean": st.booleans(),
            "Decimal": st.one_of(st.sampled_from(HOSTILE_DECIMAL), INTS),
            "Date": st.sampled_from(HOSTILE_DATE),
            "DateTime": st.sampled_from(HOSTILE_DATETIME),
            "Time": st.sampled_from(["12:00:00", "25:61:00", "", "noon"]),
            "JSONString": st.sampled_from(HOSTILE_JSON),
            "GenericScalar": st.one_of(self.texts, INTS, st.sampled_from(HOSTILE_JSON)),
        }.get(name, st.one_of(self.texts, INTS))

    def of(self, type_: Any, depth: int = 0) -> st.SearchStrategy[Any]:
        if isinstance(type_, GraphQLNonNull):
            # a null for a required value is hostile too, but rarely worth a whole example
            inner = self.of(type_.of_type, depth)
            return st.one_of(inner, inner, inner, inner, inner, inner, inner, inner, inner, st.none())
        nullable = self._nullable(type_, depth)
        return st.one_of(nullable, nullable, nullable, st.none())

    def _nullable(self, type_: Any, depth: int) -> st.SearchStrategy[Any]:
        if isinstance(type_, GraphQLList):
            inner = self.of(type_.of_type, depth + 1)
            return st.one_of(st.lists(inner, max_size=3), st.just([None]), st.lists(inner, min_size=1, max_size=1))
        if isinstance(type_, GraphQLEnumType):
            return st.one_of(st.sampled_from(sorted(type_.values)), st.sampled_from(["NOPE", "", "\x00"]))
        if isinstance(type_, GraphQLInputObjectType):
            if depth > 3:
                return st.just({})
            fields = {}
            for name, field in type_.fields.items():
                value = self.of(field.type, depth + 1)
                required = isinstance(field.type, GraphQLNonNull)
                # optional fields are left out half of the time, required ones rarely
                absent = st.just(_ABSENT)
                fields[name] = st.one_of(value, value, value, value, value, value, value, value, value, absent) \
                    if required else st.one_of(value, absent)
            return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not _ABSENT})
        if isinstance(type_, GraphQLScalarType):
            return self.scalar(type_.name)
        raise AssertionError(f"no strategy for {type_}")


_ABSENT = object()


# --- requests ----------------------------------------------------------------------------------


def type_literal(type_: Any) -> str:
    return str(type_)


def selection(type_: Any) -> str:
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    if isinstance(named, GraphQLInterfaceType):  # node(id:): what every implementation has
        return " { id __typename }"
    assert isinstance(named, GraphQLObjectType)
    fields = named.fields
    if "edges" in fields and "totalCount" in fields:
        return " { totalCount edges { node { id } } }"
    leaves = [n for n, f in fields.items() if is_leaf_type(get_named_type(f.type))
              and not any(isinstance(a.type, GraphQLNonNull) for a in f.args.values())]
    parts = list(leaves)
    for field_name, field in fields.items():
        named_child = get_named_type(field.type)
        if field_name != "errors" and isinstance(named_child, GraphQLObjectType) and "id" in named_child.fields:
            parts.append(f"{field_name} {{ id }}")  # the objects a mutation returns resolve too
    if "errors" in fields:
        parts = [p for p in parts if p != "errors"] + ["errors { field code message }"]
    if not parts:
        name = next(iter(fields))
        parts = [name + selection(fields[name].type)]
    return " { " + " ".join(parts) + " }"


def document(kind: str, name: str) -> tuple[str, dict[str, str]]:
    root = CLIENT_SCHEMA.mutation_type if kind == "mutation" else CLIENT_SCHEMA.query_type
    field = root.fields[name]
    variables = {arg: f"a{i}" for i, arg in enumerate(field.args)}
    declared = ", ".join(f"${variables[arg]}: {type_literal(a.type)}" for arg, a in field.args.items())
    passed = ", ".join(f"{arg}: ${variables[arg]}" for arg in field.args)
    return f"{kind}({declared}) {{ {name}({passed}){selection(field.type)} }}", variables


def checksum() -> dict[str, tuple[int, str]]:
    """(rows, hash of the rows) of every table of every installed app but the mutation log."""
    tables = sorted({m._meta.db_table for m in apps.get_models(include_auto_created=True)
                     if m._meta.managed and not m._meta.proxy} - {"core_mutationlog"})
    sql = " UNION ALL ".join(
        f"SELECT '{t}', count(*), coalesce(sum(hashtextextended(x::text, 0)), 0)::text FROM {t} x" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def refused(body: dict[str, Any], name: str) -> bool:
    if body.get("errors"):
        return True
    payload = (body.get("data") or {}).get(name)
    return isinstance(payload, dict) and bool(payload.get("errors"))


def messages(body: Any) -> list[str]:
    """Every error message and code in an answer, wherever it sits."""
    found: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("message", "code") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(messages(value))
    elif isinstance(body, list):
        for item in body:
            found.extend(messages(item))
    return found


REFERENCE = re.compile(r"reference [0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)


def unexpected(body: dict[str, Any]) -> list[Any]:
    """Errors nobody turned into a typed refusal: INTERNAL, or any error carrying a log
    reference (a value only the database refused is one too: the edge should have)."""
    found: list[Any] = [e for e in body.get("errors") or []
                        if (e.get("extensions") or {}).get("code") == "INTERNAL"
                        or "reference" in (e.get("extensions") or {})]
    return found + [m for m in messages(body) if REFERENCE.search(m)]


# --- the world the requests act on -------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    """A small registry with a plan of each kind, and every id in it as the valid ids."""
    from core.approvals.services import create_task_group
    from core.models import Role, User
    from modules.individual import services as registry
    from modules.location.services import create_location
    from modules.social_protection import services as plans

    # users without passwords: hashing one costs more than a dozen examples
    actor = User.objects.create(username="hostile-actor", is_superuser=True, is_staff=True)
    admin_user = User.objects.create(username="hostile-admin", is_superuser=True, is_staff=True)
    checker = User.objects.create(username="hostile-checker")
    checker.roles.add(Role.objects.create(name="checkers", permissions=["core.task.view", "core.task.resolve"]))

    province = create_location(admin_user, code="P1", name="Province", type="Province")
    commune = create_location(admin_user, code="C1", name="Commune", type="Commune", parent_id=province.pk)
    colline = create_location(admin_user, code="H1", name="Colline", type="Colline", parent_id=commune.pk)
    group = registry.create_group(admin_user, code="HH-1", location_id=colline.pk)
    for i, role in enumerate(("HEAD", "SPOUSE")):
        person = registry.create_individual(admin_user, first_name=f"P{i}", last_name="Family",
                                            dob=datetime.date(1980 + i, 1, 1), sex="F", location_id=colline.pk,
                                            json_ext={"national_id": f"ID-000{i}", "vulnerability_score": 10 * i})
        registry.add_member(admin_user, group_id=group.pk, individual_id=person.pk, role=role)
    for code, kind in (("PLAN-I", "INDIVIDUAL"), ("PLAN-G", "GROUP")):
        plans.create_plan(admin_user, code=code, name=code, type=kind, date_valid_from=datetime.date(2026, 1, 1),
                          date_valid_to=datetime.date(2026, 12, 31))
    create_task_group(admin_user, code="TG-1", completion_policy="ANY", name="Checkers", checker_ids=[checker.pk])
    pool: list[str] = []
    for model in apps.get_models():
        if model._meta.managed and model._meta.pk.get_internal_type() == "UUIDField":
            pool.extend(str(pk) for pk in model._base_manager.values_list("pk", flat=True)[:20])
    # the acting user is left out: a request that deactivates or re-roles it would make every
    # later example a refusal of who is asking
    pool = [pk for pk in pool if pk != str(actor.pk)]
    return {"actor": actor, "values": Values(sorted(set(pool)))}


def _settings() -> Any:
    # Shrinking a failing example costs minutes of requests; the unshrunk one is reported
    # with its variables, which is enough to reproduce it.
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if RANDOM else [])
    return settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM, phases=phases,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


def check(kind: str, name: str, world: dict[str, Any], data: Any) -> None:
    from core.auth.tokens import issue

    query, names = document(kind, name)
    root = CLIENT_SCHEMA.mutation_type if kind == "mutation" else CLIENT_SCHEMA.query_type
    values = world["values"]
    variables = {}
    for arg, definition in root.fields[name].args.items():
        value = data.draw(st.one_of(values.of(definition.type), st.just(_ABSENT)) if not isinstance(
            definition.type, GraphQLNonNull) else values.of(definition.type), label=arg)
        if value is not _ABSENT:
            variables[names[arg]] = value
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue(world['actor']).token}")
    before = checksum()
    with transaction.atomic():  # a database error must not poison the test's own transaction
        response = client.post("/graphql", data=json.dumps({"query": query, "variables": variables}),
                               content_type="application/json")
    context = f"{name} {json.dumps(variables)[:600]}"
    assert response.status_code in (200, 400), f"{context}: HTTP {response.status_code} {response.content[:500]!r}"
    assert response["Content-Type"].startswith("application/json"), context
    body = response.json()
    found = [(m, leaks(m)) for m in messages(body) if leaks(m)]
    assert not found, f"{context}: {found}"
    assert not unexpected(body), f"{context}: {unexpected(body)}"
    if refused(body, name):
        assert checksum() == before, f"{context}: refused ({messages(body)[:3]}) yet rows changed"


@pytest.mark.parametrize("name", MUTATIONS)
def test_every_mutation_argument_takes_hostile_values(world: dict[str, Any], name: str) -> None:
    @_settings()
    @given(data=st.data())
    def run(data: Any) -> None:
        check("mutation", name, world, data)

    run()


@pytest.mark.parametrize("name", QUERIES)
def test_every_filter_of_every_root_field_takes_hostile_values(world: dict[str, Any], name: str) -> None:
    @_settings()
    @given(data=st.data())
    def run(data: Any) -> None:
        check("query", name, world, data)

    run()


def test_the_walk_covers_every_mutation_and_every_list() -> None:
    lists = {n for n, f in CLIENT_SCHEMA.query_type.fields.items()
             if "edges" in getattr(get_named_type(f.type), "fields", {})}
    assert lists <= set(QUERIES) and {"individual", "benefitPlan", "payroll", "jobs"} <= lists
    assert len(MUTATIONS) >= 50 and {"createIndividual", "createBenefitPlan", "tokenAuth"} <= set(MUTATIONS)
