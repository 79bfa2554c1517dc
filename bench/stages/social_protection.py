"""Targeting and enrollment at national scale: 1,000,000 people in 315,000 households.

The registry for these stages is written straight in SQL (the import has its own stages), so
the numbers measure targeting and enrollment alone. Two plans: the regular programme, whose
criteria select every household, and an emergency top-up for the households of a third of
the collines whose head has a vulnerability score under 30 (about 30,000 at national scale).
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.harness import Context, Measurement, median, stage, stopwatch

HOUSEHOLDS = {"national": 315_000, "small": 15_750}
PEOPLE = {"national": 1_000_000, "small": 50_000}
PREVIEW_RUNS = 3
BASELINE_TABLE = "bench_sp_insert"
# Other stages (the import) may have filled the registry too; these plans target only the
# households written here, so the counts are the ones the issue names.
OWN_HOUSEHOLDS = {"field": "code", "lookup": "istartswith", "value": "SPB-"}
SUMMARY = """query($p: UUID!) { groupEnrollmentSummary(benefitPlanId: $p) {
  totalNumberOfIndividuals numberToEnroll sampleGroups { code } } }"""


def _scale_name(ctx: Context) -> str:
    return ctx.scale.name if ctx.scale.name in HOUSEHOLDS else "national"


def _build_registry(ctx: Context) -> dict[str, Any]:
    """Households and people written set-based, with history triggers off (setup, not timed)."""
    from core.row_counts import recount_sql

    if "sp" in ctx.state:
        return ctx.state["sp"]
    households, people = HOUSEHOLDS[_scale_name(ctx)], PEOPLE[_scale_name(ctx)]
    four = people - 3 * households  # this many households have 4 members, the rest 3
    db = ctx.psycopg()
    collines = [r[0] for r in db.execute(
        "SELECT id FROM location_location WHERE level = 2 AND NOT is_deleted ORDER BY code").fetchall()]
    assert collines, "the location stages must load the hierarchy first"
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")  # no history for setup rows
        db.execute(
            "INSERT INTO individual_group (id, code, location_id, json_ext, version, is_deleted, "
            "date_created, date_updated) SELECT gen_random_uuid(), 'SPB-' || lpad(g::text, 7, '0'), "
            "(%(collines)s::uuid[])[1 + g %% cardinality(%(collines)s::uuid[])], '{}', 1, false, now(), now() "
            "FROM generate_series(1, %(households)s) g",
            {"collines": collines, "households": households})
        db.execute(
            "CREATE TEMP TABLE bench_sp_members ON COMMIT DROP AS "
            "SELECT gen_random_uuid() AS id, g.id AS group_id, g.location_id, n.n AS g, m "
            "FROM (SELECT id, location_id, substr(code, 5)::int AS n FROM individual_group WHERE code LIKE 'SPB-%%') n "
            "JOIN individual_group g ON g.id = n.id "
            "CROSS JOIN LATERAL generate_series(0, CASE WHEN n.n <= %(four)s THEN 3 ELSE 2 END) m",
            {"four": four})
        db.execute(
            "INSERT INTO individual_individual (id, first_name, last_name, dob, sex, location_id, json_ext, "
            "version, is_deleted, date_created, date_updated) "
            "SELECT id, 'P' || m, 'Family' || g, date '1950-01-01' + ((g * 7 + m * 3650) % 25000), "
            "CASE WHEN m = 1 THEN 'F' ELSE 'M' END, location_id, "
            "jsonb_build_object('vulnerability_score', (g * 37 + m * 11) % 100, 'national_id', 'SPB-' || g || '-' || m, "
            "'phone', '+2577' || lpad((g * 10 + m)::text, 7, '0')), "
            "1, false, now(), now() FROM bench_sp_members")
        db.execute(
            "INSERT INTO individual_groupindividual (id, group_id, individual_id, role, recipient_type, "
            "version, is_deleted, date_created, date_updated) "
            "SELECT gen_random_uuid(), group_id, id, CASE WHEN m = 0 THEN 'HEAD' WHEN m = 1 THEN 'SPOUSE' ELSE 'SON' END, "
            "CASE WHEN m = 0 THEN 'PRIMARY' END, 1, false, now(), now() FROM bench_sp_members")
        db.execute("UPDATE individual_group g SET head_id = b.id FROM bench_sp_members b "
                   "WHERE b.group_id = g.id AND b.m = 0")
        # the replica role skipped the row-count triggers too: count these rows as a restore
        # would, in the same transaction, so the counters never miss them
        db.execute("SET LOCAL session_replication_role = origin")
        for table in ("individual_individual", "individual_group"):
            db.execute(recount_sql(table, "location_id"))
    db.execute("ANALYZE individual_group; ANALYZE individual_individual; ANALYZE individual_groupindividual")
    flooded = collines[: len(collines) // 3]
    ctx.state["sp"] = {"households": households, "people": people, "flooded": [str(c) for c in flooded]}
    return ctx.state["sp"]


def _plan(ctx: Context, code: str, criteria: dict[str, Any]) -> Any:
    import datetime

    from modules.social_protection import services

    return services.create_plan(
        ctx.superuser(), code=code, name=code, type="GROUP", criteria=criteria,
        date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2027, 12, 31))


def _graphql(ctx: Context, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    from django.test import Client

    from core.auth.tokens import issue

    response = Client(HTTP_HOST="localhost").post("/graphql", data=json.dumps({"query": query, "variables": variables}),
                             content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {issue(ctx.superuser()).token}")
    body = response.json()
    assert not body.get("errors"), body.get("errors")
    from core.middleware import set_statement_timeout

    set_statement_timeout(0)  # the enrollment that follows is a job's body, bound by none
    return body["data"]


@stage("social_protection.pg_insert", module="social_protection", needs=("location.bulk_load",), is_baseline=True)
def pg_insert(ctx: Context) -> Measurement:
    """PostgreSQL alone: INSERT … SELECT one row per household into a plain table."""
    data = _build_registry(ctx)
    db = ctx.psycopg()
    db.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
    db.execute(f"CREATE TABLE {BASELINE_TABLE} (id uuid PRIMARY KEY, plan text, group_id uuid, status text)")
    with stopwatch() as elapsed, db.transaction():
        db.execute(f"INSERT INTO {BASELINE_TABLE} SELECT gen_random_uuid(), 'x', id, 'ACTIVE' "
                   "FROM individual_group WHERE code LIKE 'SPB-%'")
    seconds = elapsed()
    count = db.execute(f"SELECT count(*) FROM {BASELINE_TABLE}").fetchone()[0]
    assert count == data["households"]
    return Measurement(count, seconds, ["committed"])


@stage("social_protection.preview", baseline="social_protection.pg_insert",
       needs=("social_protection.pg_insert",), module="social_protection")
def preview(ctx: Context) -> Measurement:
    """groupEnrollmentSummary over GraphQL for the regular plan (every household)."""
    data = _build_registry(ctx)
    provinces = [str(r[0]) for r in ctx.psycopg().execute("SELECT id FROM location_location WHERE level = 0")]
    plan = _plan(ctx, "BENCH-REGULAR", {"combine": "AND", "conditions": [
        {"location": provinces}, OWN_HOUSEHOLDS]})
    ctx.state["sp_regular"] = plan
    timings = []
    for _ in range(PREVIEW_RUNS):
        with stopwatch() as elapsed:
            summary = _graphql(ctx, SUMMARY, {"p": str(plan.pk)})["groupEnrollmentSummary"]
        timings.append(elapsed())
    assert summary["numberToEnroll"] == data["households"], summary
    return Measurement(data["households"], median(timings),
                       [f"median of {PREVIEW_RUNS}; {summary['numberToEnroll']:,} to enroll", "target < 30 s"])


@stage("social_protection.enroll", baseline="social_protection.pg_insert",
       needs=("social_protection.preview",), module="social_protection")
def enroll(ctx: Context) -> Measurement:
    """The enrollment job's body for the regular plan: every household as ACTIVE."""
    from modules.social_protection.jobs import enroll_all
    from modules.social_protection.models import GroupBeneficiary

    plan = ctx.state["sp_regular"]
    with stopwatch() as elapsed:
        result = enroll_all({"plan_id": str(plan.pk), "status": "ACTIVE"}, ctx.superuser(), lambda *a: None)
    seconds = elapsed()
    stored = GroupBeneficiary.objects.filter(benefit_plan=plan).count()
    assert result["enrolled"] == stored == ctx.state["sp"]["households"], (result, stored)
    started = time.perf_counter()
    again = enroll_all({"plan_id": str(plan.pk), "status": "ACTIVE"}, ctx.superuser(), lambda *a: None)
    assert again["enrolled"] == 0
    return Measurement(stored, seconds, ["history rows by trigger", "target < 30 s",
                                         f"re-run enrolls 0 in {time.perf_counter() - started:.1f} s"])


@stage("social_protection.emergency", baseline="social_protection.pg_insert",
       needs=("social_protection.enroll",), module="social_protection")
def emergency(ctx: Context) -> Measurement:
    """Flood top-up: preview and enroll households of a third of the collines with a head's
    vulnerability score under 30; checked against an independent SQL count."""
    from modules.social_protection.jobs import enroll_all

    flooded = ctx.state["sp"]["flooded"]
    plan = _plan(ctx, "BENCH-FLOOD", {"combine": "AND", "conditions": [
        {"location": flooded}, {"on": "head", "filter": "vulnerability_score__lt__integer=30"}, OWN_HOUSEHOLDS]})
    expected = ctx.psycopg().execute(
        "SELECT count(*) FROM individual_group g JOIN individual_individual h ON h.id = g.head_id "
        "WHERE NOT g.is_deleted AND g.location_id = ANY(%s::uuid[]) AND g.code LIKE 'SPB-%%' "
        "AND (h.json_ext->>'vulnerability_score')::int < 30", [flooded]).fetchone()[0]
    with stopwatch() as elapsed:
        summary = _graphql(ctx, SUMMARY, {"p": str(plan.pk)})["groupEnrollmentSummary"]
        result = enroll_all({"plan_id": str(plan.pk), "status": "ACTIVE"}, ctx.superuser(), lambda *a: None)
    assert summary["numberToEnroll"] == result["enrolled"] == expected, (summary, result, expected)
    return Measurement(expected, elapsed(), ["preview + enroll", "matches independent SQL count"])
