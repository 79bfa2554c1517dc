"""Location stages: loading the national hierarchy, and the list every screen starts from."""

from __future__ import annotations

import json
from typing import Any

from bench.generate import iter_locations
from bench.harness import Context, Measurement, latencies, median, percentile, stage, stopwatch

STAGING_TABLE = "bench_location_staging"
COPY_RUNS = 5
PAGE_SIZE = 100
NAME_FILTER = "a"
LIST_QUERY = """{ locations(first: %d, name_Icontains: "%s", orderBy: ["name"]) {
  totalCount edges { node { id uuid code name type parent { code } } } } }"""
# What PostgreSQL alone needs to answer the same page: the count and the page with parents.
PAGE_SQL = (
    "SELECT count(*) FROM location_location WHERE NOT is_deleted AND name ILIKE %(pattern)s",
    "SELECT l.id, l.code, l.name, l.type, p.code FROM location_location l "
    "LEFT JOIN location_location p ON p.id = l.parent_id "
    "WHERE NOT l.is_deleted AND l.name ILIKE %(pattern)s ORDER BY l.name, l.id LIMIT %(limit)s",
)


def import_rows_of(ctx: Context) -> list[dict[str, str]]:
    """The generated hierarchy as the CSV import reads it, built before any clock starts."""
    if "location_rows" not in ctx.state:
        ctx.state["location_rows"] = [
            {"code": code, "name": name, "type": type_, "parent_code": parent or ""}
            for code, name, type_, parent in iter_locations(ctx.scale)
        ]
    return ctx.state["location_rows"]


@stage("location.pg_copy", module="location", is_baseline=True)
def pg_copy(ctx: Context) -> Measurement:
    """PostgreSQL alone: COPY the same rows into a plain staging table (median of 5)."""
    rows = [tuple(row.values()) for row in import_rows_of(ctx)]
    connection = ctx.psycopg()
    connection.execute(f"DROP TABLE IF EXISTS {STAGING_TABLE}")
    connection.execute(f"CREATE TABLE {STAGING_TABLE} (code text, name text, type text, parent_code text)")
    timings = []
    for _ in range(COPY_RUNS):
        connection.execute(f"TRUNCATE {STAGING_TABLE}")
        with stopwatch() as elapsed:
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy(f"COPY {STAGING_TABLE} (code, name, type, parent_code) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        timings.append(elapsed())
    copied = connection.execute(f"SELECT count(*) FROM {STAGING_TABLE}").fetchone()[0]
    assert copied == len(rows), f"COPY stored {copied} of {len(rows)} rows"
    return Measurement(len(rows), median(timings), [f"median of {COPY_RUNS}, committed"])


@stage("location.bulk_load", baseline="location.pg_copy", module="location")
def bulk_load(ctx: Context) -> Measurement:
    """The CSV import job's set-based path (``importer.import_rows``), history included."""
    from core.models import HistoryEntry
    from modules.location.importer import import_rows
    from modules.location.models import Location

    rows = import_rows_of(ctx)
    user = ctx.superuser()
    with stopwatch() as elapsed:
        result = import_rows(rows, user, mode="all_or_nothing")
    seconds = elapsed()
    assert not result.errors, f"the generated hierarchy was refused: {result.errors[:3]}"
    stored = Location.objects.count()
    history = HistoryEntry.objects.filter(table_name=Location._meta.db_table, operation="I").count()
    assert result.created == stored == len(rows), f"created {result.created}, stored {stored} of {len(rows)}"
    assert history == len(rows), f"{history} history rows for {len(rows)} inserted locations"
    return Measurement(len(rows), seconds, [f"{history:,} history rows written"])


@stage("location.pg_page", needs=("location.bulk_load",), module="location", is_baseline=True)
def pg_page(ctx: Context) -> Measurement:
    """PostgreSQL alone: the count and the 100-row page the list below asks for."""
    connection = ctx.psycopg()
    params = {"pattern": f"%{NAME_FILTER}%", "limit": PAGE_SIZE}

    def page() -> list[Any]:
        connection.execute(PAGE_SQL[0], params).fetchone()
        return connection.execute(PAGE_SQL[1], params).fetchall()

    timings = latencies(page, ctx.repeat)
    total = connection.execute(PAGE_SQL[0], params).fetchone()[0]
    ctx.state["page_total"] = total
    ctx.state["page_names"] = sorted(row[2] for row in page())
    return Measurement(len(ctx.state["page_names"]), median(timings),
                       [f"median of {len(timings)}; {total:,} match"])


@stage("location.list", baseline="location.pg_page", needs=("location.bulk_load",), module="location")
def location_list(ctx: Context) -> Measurement:
    """GraphQL ``locations`` (100 rows, name filter, ordered, with parents) over HTTP with a token."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from core.auth.tokens import issue

    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h.lstrip(".") not in ("", "*")), "localhost")
    client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {issue(ctx.superuser()).token}")

    def request(first: int) -> dict[str, Any]:
        response = client.post("/graphql", data=json.dumps({"query": LIST_QUERY % (first, NAME_FILTER)}),
                               content_type="application/json")
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]["locations"]

    first_page = request(PAGE_SIZE)
    names = sorted(edge["node"]["name"] for edge in first_page["edges"])
    assert first_page["totalCount"] == ctx.state["page_total"], "totalCount differs from PostgreSQL's count"
    assert names == ctx.state["page_names"], "the page differs from PostgreSQL's answer"

    counts = {}
    for first in (10, PAGE_SIZE):
        with CaptureQueriesContext(connection) as captured:
            request(first)
        counts[first] = len(captured.captured_queries)
    timings = latencies(lambda: request(PAGE_SIZE), ctx.repeat)
    notes = [
        f"median of {len(timings)}, p95 {percentile(timings, 0.95) * 1000:.1f} ms, "
        f"{1 / median(timings):,.0f} requests/s",
        f"SQL queries: {counts[10]} for first:10, {counts[PAGE_SIZE]} for first:{PAGE_SIZE}",
    ]
    if counts[PAGE_SIZE] != counts[10]:
        notes.append("QUERY COUNT GROWS WITH PAGE SIZE")
    return Measurement(len(names), median(timings), notes)
