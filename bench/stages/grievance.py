"""Grievances at national scale: 200,000 tickets with a comment each over the collines, the
frontend's ticket list over them, the escalation job over 50,000 overdue open tickets, and
10,000 tickets recorded through the service.

Baselines, measured in the same run:

* ``grievance.pg_page``: the SQL statements the list sends, captured once and replayed on a
  plain connection;
* ``grievance.pg_update``: PostgreSQL alone updating as many rows of a plain copy of the
  tickets (the columns escalation sets, from an ``unnest`` of arrays), committed;
* ``grievance.pg_copy``: ``COPY`` of as many rows as the service creates into a plain table.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

from bench.harness import Context, Measurement, latencies, median, percentile, stage, stopwatch

SIZES = {"national": (200_000, 50_000, 10_000), "small": (20_000, 5_000, 1_000)}
OFFICER, LEAD = "Grievance officer", "Grievance national lead"
LIST_FIELDS = ("id title code description status priority dueDate reporter reporterId reporterType reporterTypeName "
               "category flags channel resolution title dateOfIncident dateCreated version isHistory "
               "reporterFirstName reporterLastName reporterDob")
LIST = ('{ tickets(first: %d, status_Icontains: OPEN, orderBy: ["-dateCreated"]) { totalCount pageInfo { hasNextPage '
        "hasPreviousPage startCursor endCursor } edges { node { %s } } } }")
TICKET_COLUMNS = """id, date_created, date_updated, version, is_deleted, json_ext, code, title, description, category,
    flags, channel, priority, status, date_of_incident, date_submitted, resolution, due_date, is_overdue,
    escalation_level, next_escalation_at, reporter_kind, reporter_id, reporter_individual_id, reporter_user_id,
    household_id, beneficiary_id, payment_id, attending_staff_id, location_id, assigned_location_id, resolved_at,
    user_created_id, user_updated_id"""


def _sizes(ctx: Context) -> tuple[int, int, int]:
    return SIZES.get(ctx.scale.name, SIZES["small"])


def _handlers(ctx: Context) -> dict[str, Any]:
    """A grievance officer per commune and a national lead (users with roles and places)."""
    if "griev_handlers" in ctx.state:
        return ctx.state["griev_handlers"]
    from core.models import Role, User
    from modules.location.models import Location, UserLocation

    officer = Role.objects.get_or_create(name=OFFICER, defaults={"permissions": []})[0]
    lead = Role.objects.get_or_create(name=LEAD, defaults={"permissions": []})[0]
    communes = list(Location.objects.filter(type="Commune").order_by("code"))
    users = []
    for commune in communes:
        user = User.objects.create_user(f"bench-officer-{commune.code}", f"{commune.code}@example.org", "x")
        user.roles.add(officer)
        UserLocation.objects.create(user=user, location=commune)
        users.append(user)
    chief = User.objects.create_user("bench-lead", "lead@example.org", "x")
    chief.roles.add(lead)
    ctx.state["griev_handlers"] = {"officers": users, "lead": chief}
    return ctx.state["griev_handlers"]


@stage("grievance.load", module="grievance", needs=("location.bulk_load",))
def load(ctx: Context) -> Measurement:
    """The tickets (and a comment each) the other stages read, written in SQL (history by trigger)."""
    tickets, overdue, _ = _sizes(ctx)
    _handlers(ctx)
    db = ctx.psycopg()
    with stopwatch() as elapsed, db.transaction():
        db.execute(f"""
            INSERT INTO grievance_ticket ({TICKET_COLUMNS})
            SELECT coremis_uuid7(), now() - make_interval(mins => n), now(), 1, false, '{{}}'::jsonb,
                   'BENCH-' || lpad(n::text, 7, '0'), 'Paiement non reçu ' || n, 'Plainte ' || n,
                   (ARRAY['paiement|non_recu','paiement|montant_incorrect','inclusion|exclusion_erronee','autre'])[1 + n %% 4],
                   CASE WHEN n %% 10 = 0 THEN ARRAY['URGENT'] ELSE ARRAY[]::varchar[] END,
                   'toll_free', 'High', CASE WHEN n %% 5 = 0 THEN 'RESOLVED' ELSE 'OPEN' END, NULL, NULL, '2,0',
                   CASE WHEN n <= %(overdue)s THEN now() - interval '1 day' ELSE now() + interval '2 days' END, false, 0,
                   CASE WHEN n <= %(overdue)s THEN now() - interval '1 day' ELSE now() + interval '2 days' END,
                   '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, l.id, l.id, NULL, NULL, NULL
            FROM generate_series(1, %(n)s) n
            JOIN (SELECT id, row_number() OVER (ORDER BY code) - 1 AS r, count(*) OVER () AS total
                  FROM location_location WHERE type = 'Colline') l ON l.r = n %% l.total""",
                   {"n": tickets, "overdue": overdue * 5 // 4})
        # open tickets among the first rows are the overdue ones (every fifth is RESOLVED)
        db.execute("""
            INSERT INTO grievance_comment (id, date_created, date_updated, version, is_deleted, json_ext, ticket_id,
                commenter_kind, commenter_id, commenter_individual_id, commenter_user_id, comment, is_resolution,
                user_created_id, user_updated_id)
            SELECT coremis_uuid7(), t.date_created, t.date_created, 1, false, NULL, t.id, '', NULL, NULL, NULL,
                   'Appel reçu, vérification en cours', false, NULL, NULL
            FROM grievance_ticket t WHERE t.code LIKE 'BENCH-%%'""")
    seconds = elapsed()
    # what autovacuum does for a table that grew this much (the list's count reads the index only then)
    db.execute("VACUUM (ANALYZE) grievance_ticket")
    db.execute("VACUUM (ANALYZE) grievance_comment")
    counts = db.execute("SELECT (SELECT count(*) FROM grievance_ticket), (SELECT count(*) FROM grievance_comment), "
                        "(SELECT count(*) FROM grievance_ticket WHERE status = 'OPEN' AND next_escalation_at < now()), "
                        "(SELECT count(*) FROM core_history WHERE table_name = 'grievance_ticket')").fetchone()
    assert counts[0] >= tickets and counts[1] >= tickets and counts[3] >= tickets, counts
    ctx.state["griev_overdue"] = counts[2]
    return Measurement(counts[0] + counts[1], seconds, [f"{counts[0]:,} tickets, {counts[1]:,} comments, "
                                                        f"{counts[2]:,} open and overdue", "history rows by trigger"])


def _client(ctx: Context) -> Any:
    from django.conf import settings
    from django.test import Client

    from core.auth.tokens import issue

    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h.lstrip(".") not in ("", "*")), "localhost")
    return Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {issue(ctx.superuser()).token}")


def _list(client: Any, first: int) -> dict[str, Any]:
    response = client.post("/graphql", data=json.dumps({"query": LIST % (first, LIST_FIELDS)}),
                           content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]["tickets"]


@stage("grievance.pg_page", module="grievance", needs=("grievance.load",), is_baseline=True)
def pg_page(ctx: Context) -> Measurement:
    """The statements the list sends on grievance_ticket (its count and page), replayed alone."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client(ctx)
    with CaptureQueriesContext(connection) as captured:
        _list(client, 10)
    statements = [q["sql"] for q in captured.captured_queries if "grievance_ticket" in q["sql"]
                  and "INSERT" not in q["sql"]]
    db = ctx.psycopg()

    def replay() -> None:
        for sql in statements:
            db.execute(sql.replace("%", "%%")).fetchall()

    timings = latencies(replay, ctx.repeat)
    ctx.state["griev_total"] = db.execute("SELECT count(*) FROM grievance_ticket WHERE status = 'OPEN' "
                                          "AND NOT is_deleted").fetchone()[0]
    return Measurement(10, median(timings), [f"{len(statements)} statements, median of {len(timings)}"])


@stage("grievance.list", baseline="grievance.pg_page", needs=("grievance.pg_page",), module="grievance")
def ticket_list(ctx: Context) -> Measurement:
    """The frontend's ticket list (10 a page, open ones, newest first, its field list) over HTTP."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client(ctx)
    page = _list(client, 10)
    assert page["totalCount"] == ctx.state["griev_total"], (page["totalCount"], ctx.state["griev_total"])
    counts = {}
    for first in (10, 100):
        with CaptureQueriesContext(connection) as captured:
            _list(client, first)
        counts[first] = len(captured.captured_queries)
    timings = latencies(lambda: _list(client, 10), max(ctx.repeat, 30))
    p50 = median(timings)
    notes = [f"p50 {p50 * 1000:.1f} ms (target ≤ 50 ms), p95 {percentile(timings, 0.95) * 1000:.1f} ms",
             f"SQL queries: {counts[10]} for first:10, {counts[100]} for first:100",
             f"{page['totalCount']:,} open of the loaded tickets"]
    if counts[100] != counts[10]:
        notes.append("QUERY COUNT GROWS WITH PAGE SIZE")
    return Measurement(10, p50, notes)


@stage("grievance.pg_update", module="grievance", needs=("grievance.list",), is_baseline=True)
def pg_update(ctx: Context) -> Measurement:
    """PostgreSQL alone: the escalation's UPDATE of as many rows on a plain copy, committed."""
    db = ctx.psycopg()
    db.execute("DROP TABLE IF EXISTS bench_grievance_copy")
    db.execute("CREATE TABLE bench_grievance_copy AS SELECT id, attending_staff_id, assigned_location_id, "
               "escalation_level, next_escalation_at, is_overdue, version FROM grievance_ticket "
               "WHERE status = 'OPEN' AND next_escalation_at < now()")
    db.execute("ALTER TABLE bench_grievance_copy ADD PRIMARY KEY (id)")
    ids = [row[0] for row in db.execute("SELECT id FROM bench_grievance_copy")]
    staff = [uuid.uuid4() for _ in ids]
    with stopwatch() as elapsed, db.transaction():
        db.execute("UPDATE bench_grievance_copy t SET attending_staff_id = v.s, escalation_level = escalation_level + 1, "
                   "is_overdue = true, version = version + 1, next_escalation_at = now() + interval '1 day' "
                   "FROM unnest(%s::uuid[], %s::uuid[]) AS v(id, s) WHERE t.id = v.id", [ids, staff])
    return Measurement(len(ids), elapsed(), ["committed"])


@stage("grievance.escalate", baseline="grievance.pg_update", needs=("grievance.pg_update",), module="grievance")
def escalate(ctx: Context) -> Measurement:
    """The escalation job's body over every open overdue ticket (target ≤ 5 s for 50,000)."""
    from modules.grievance.models import Notification, Ticket
    from modules.grievance.services.escalation import escalate_overdue

    due = ctx.state["griev_overdue"]
    with stopwatch() as elapsed:
        result = escalate_overdue()
    seconds = elapsed()
    assert result["escalated"] == due, (result, due)
    assert not Ticket.objects.filter(status="OPEN", next_escalation_at__lt=_now()).exists()
    again = escalate_overdue()
    assert again["escalated"] == 0, again
    notes = [f"{due:,} escalated in {seconds:.2f} s (target ≤ 5 s at 50,000)",
             f"{Notification.objects.filter(event='escalated').count()} notifications (one per handler)",
             "history rows by trigger; a re-run escalates 0"]
    return Measurement(due, seconds, notes)


def _now() -> Any:
    from modules.grievance import clock

    return clock.now()


@stage("grievance.pg_copy", module="grievance", needs=("grievance.escalate",), is_baseline=True)
def pg_copy(ctx: Context) -> Measurement:
    """PostgreSQL alone: COPY as many ticket rows as the service creates into a plain table."""
    _, _, count = _sizes(ctx)
    db = ctx.psycopg()
    db.execute("DROP TABLE IF EXISTS bench_grievance_insert")
    db.execute("CREATE TABLE bench_grievance_insert (id uuid PRIMARY KEY, code text, title text, category text, "
               "priority text, status text, due_date timestamptz, location_id uuid, attending_staff_id uuid)")
    buffer = io.StringIO()
    for n in range(count):
        buffer.write(f"{uuid.uuid4()}\tC-{n}\tt {n}\tpaiement\tHigh\tRECEIVED\t2030-01-01\t\\N\t\\N\n")
    data = buffer.getvalue()
    with stopwatch() as elapsed, db.transaction():
        with db.cursor().copy("COPY bench_grievance_insert FROM STDIN") as copy:
            copy.write(data)
    return Measurement(count, elapsed(), ["committed"])


@stage("grievance.create", baseline="grievance.pg_copy", needs=("grievance.pg_copy",), module="grievance")
def create(ctx: Context) -> Measurement:
    """10,000 tickets through the service (check + write: codes, routing, due dates, contacts,
    workflows, notifications), in one transaction (target ≤ 10 s)."""
    from django.db import connection, transaction

    from modules.grievance.models import Ticket
    from modules.grievance.services.tickets import check_create_tickets, do_create_tickets
    from modules.location.models import Location

    _, _, count = _sizes(ctx)
    collines = list(Location.objects.filter(type="Colline").values_list("pk", flat=True)[:500])
    items = [{"title": f"Plainte {n}", "category": ("paiement", "inclusion|exclusion_erronee", "autre")[n % 3],
              "channel": "kobo", "location_id": collines[n % len(collines)], "description": "reçue par Kobo",
              "name_of_complainant": "Anonyme" if n % 7 == 0 else ""} for n in range(count)]
    before = Ticket.objects.count()
    with stopwatch() as elapsed, transaction.atomic():
        made = do_create_tickets(check_create_tickets(ctx.superuser(), items, "bench"))
    seconds = elapsed()
    assert len(made) == count and Ticket.objects.count() == before + count
    assert len({t.code for t in made}) == count
    routed = sum(1 for t in made if t.attending_staff_id)
    connection.close()
    return Measurement(count, seconds, [f"{count / seconds:,.0f} tickets/s (target ≥ 1,000/s)",
                                        f"{routed:,} routed to a handler", "history rows by trigger"])
