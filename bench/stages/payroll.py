"""Payments at national scale: a payroll for the 315,000 households the targeting stages
enrolled, generated, approved by a checker, and sent to a simulated mobile-money provider.

Baselines, measured in the same run:

* ``payroll.pg_insert``: PostgreSQL alone inserting one row per beneficiary with the same
  amount rule and recipient (``INSERT … SELECT`` into a plain table, no history, no checks);
* ``payroll.http_post``: the same payments posted in the same batches to the same simulated
  provider by a bare HTTP client (no database), so the send ratio is our overhead over the
  provider's own cost.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import time
import urllib.request
from typing import Any

from bench.harness import Context, Measurement, stage, stopwatch

BATCH = 1000
BASELINE_TABLE = "bench_payroll_insert"
RULE = {"fixed": 5000, "per_member": {"amount": 2000, "cap": 6000},
        "top_ups": [{"criteria": {"on": "head", "filter": "vulnerability_score__lt__integer=30"}, "amount": 3000}]}


def _provider(ctx: Context) -> dict[str, Any]:
    """One simulated mobile-money provider for the payroll stages (a real HTTP server)."""
    if "pay_provider" not in ctx.state:
        from modules.payroll.simulators import Provider, running

        provider = Provider(client_secret=secrets.token_hex(8), signing_key=secrets.token_hex(8),
                            callback_key=secrets.token_hex(8), token_lifetime=3600)
        server = running(provider)
        url = server.__enter__()  # stays up for the rest of the run (a daemon thread)
        from core.loader import module_config

        # The simulated provider is one the deployment pays through (core/secrets.py).
        module_config("payroll")["outbound_urls"] = [*module_config("payroll").get("outbound_urls", []), url]
        os.environ["COREMIS_PSP_BENCH_MM_SECRET"] = provider.client_secret
        os.environ["COREMIS_PSP_BENCH_MM_SIGNING"] = provider.signing_key
        ctx.state["pay_provider"] = {"provider": provider, "url": url, "server": server}
    return ctx.state["pay_provider"]


@stage("payroll.pg_insert", module="payroll", needs=("social_protection.enroll",), is_baseline=True)
def pg_insert(ctx: Context) -> Measurement:
    """PostgreSQL alone: one row per active beneficiary with the rule's amount and recipient."""
    plan = ctx.state["sp_regular"]
    db = ctx.psycopg()
    db.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
    db.execute(f"CREATE TABLE {BASELINE_TABLE} (id uuid PRIMARY KEY, beneficiary_id uuid, individual_id uuid, "
               "amount bigint)")
    with stopwatch() as elapsed, db.transaction():
        db.execute(
            f"INSERT INTO {BASELINE_TABLE} SELECT gen_random_uuid(), b.id, coalesce(p.individual_id, g.head_id), "
            "5000 + least(2000 * m.n, 6000) + CASE WHEN (h.json_ext->>'vulnerability_score')::int < 30 "
            "THEN 3000 ELSE 0 END "
            "FROM social_protection_groupbeneficiary b JOIN individual_group g ON g.id = b.group_id "
            "JOIN individual_individual h ON h.id = g.head_id "
            "LEFT JOIN individual_groupindividual p ON p.group_id = g.id AND p.recipient_type = 'PRIMARY' "
            "CROSS JOIN LATERAL (SELECT count(*) AS n FROM individual_groupindividual x WHERE x.group_id = g.id) m "
            "WHERE b.benefit_plan_id = %s AND b.status = 'ACTIVE'", [plan.pk])
    seconds = elapsed()
    count = db.execute(f"SELECT count(*) FROM {BASELINE_TABLE}").fetchone()[0]
    assert count == ctx.state["sp"]["households"], count
    return Measurement(count, seconds, ["committed"])


@stage("payroll.generate_approve", baseline="payroll.pg_insert", needs=("payroll.pg_insert",), module="payroll")
def generate_approve(ctx: Context) -> Measurement:
    """The generation job's body for every household, then a checker approves it (maker-checker)."""
    from core.approvals.services import create_task_group, resolve_task, set_approval_route
    from core.models import ApprovalRoute, User
    from modules.payroll.jobs import generate_payroll
    from modules.payroll.models import BenefitConsumption, Payroll
    from modules.payroll.services import configuration

    admin = ctx.superuser()
    url = _provider(ctx)["url"]
    cycle = configuration.create_cycle(admin, code="BENCH-2026-11", start_date=datetime.date(2026, 11, 1),
                                  end_date=datetime.date(2026, 11, 30))
    plan = configuration.create_plan(admin, code="BENCH-PAY", name="Bench transfer", benefit_plan_id=ctx.state["sp_regular"].pk,
                                calculation_rule=RULE, currency="BIF", minor_unit=0)
    point = configuration.create_point(admin, code="BENCH-MM", name="Bench mobile money", adaptor="mobile_money", config={
        "base_url": url, "client_id": "coremis", "client_secret": {"env": "COREMIS_PSP_BENCH_MM_SECRET"}, "batch_size": BATCH,
        "serial": False, "timeout": 60,
        "signature": {"algorithm": "hmac-sha256", "key": {"env": "COREMIS_PSP_BENCH_MM_SIGNING"},
                      "fields": ["reference", "amount", "msisdn"]}})
    checker = User.objects.create_user("bench-checker", "bench-checker@example.org", "bench-checker-password",
                                       is_superuser=True)
    create_task_group(admin, code="BENCH-PAY-CHECK", name="Bench payroll checkers", completion_policy="ANY",
                      checker_ids=[checker.pk])
    set_approval_route(admin, "payroll.approve", "BENCH-PAY-CHECK", "bench: its own checker")
    # The job runs in a worker, which no API statement timeout binds; this process's connection
    # has one from the in-process GraphQL requests of earlier stages.
    from core.middleware import set_statement_timeout

    set_statement_timeout(0)
    try:
        with stopwatch() as generation:
            params = {"name": "Bench November", "payment_plan_id": str(plan.pk), "payment_cycle_id": str(cycle.pk),
                      "payment_point_id": str(point.pk)}
            result = generate_payroll(params, admin, _job(admin, params))
        generated = generation()
        with stopwatch() as approval:
            resolve_task(checker, result["task_id"], "APPROVED")
        approved = approval()
    finally:
        ApprovalRoute.all_objects.filter(action="payroll.approve").delete()  # back to the deployment's route
    payroll = Payroll.objects.get(pk=result["payroll_id"])
    households = ctx.state["sp"]["households"]
    expected_sum = ctx.psycopg().execute(f"SELECT sum(amount) FROM {BASELINE_TABLE}").fetchone()[0]
    assert payroll.status == "APPROVED", payroll.status
    assert (payroll.control_count, payroll.control_sum) == (households, expected_sum), (
        payroll.control_count, payroll.control_sum, expected_sum)
    # approval is the payroll's own fact: its payments stay CREATED (read as APPROVED) and unwritten
    assert BenefitConsumption.objects.filter(payroll=payroll, status="CREATED", version=1).count() == households
    ctx.state["pay_payroll"] = payroll
    return Measurement(households, generated + approved, [
        f"generation {generated:.1f} s + approval {approved:.1f} s", "history rows by trigger",
        "control totals equal the baseline's", "payments untouched by approval",
        "target ≤ 15 s" + ("" if generated + approved <= 15 else " MISSED")])


def _job(user: Any, params: dict[str, Any]) -> Any:
    """The job row ``createPayroll`` would have recorded (the stage runs its body directly)."""
    from core.models import Job

    return Job.objects.create(kind="payroll.generate", module="payroll", params=params, created_by=user,
                              state=Job.RUNNING).pk


@stage("payroll.http_post", module="payroll", needs=("payroll.generate_approve",), is_baseline=True)
def http_post(ctx: Context) -> Measurement:
    """A bare HTTP client posting the same number of payments, in the same batches, to the same
    simulated provider (references the provider has not seen, so it does the same work)."""
    simulated = _provider(ctx)
    provider, url = simulated["provider"], simulated["url"]
    count = ctx.state["pay_payroll"].control_count
    token = json.loads(_post(f"{url}/oauth/token", {"client_id": "bench",
                                                   "client_secret": provider.client_secret}))["access_token"]
    with stopwatch() as elapsed:
        for start in range(0, count, BATCH):
            payments = []
            for n in range(start, min(start + BATCH, count)):
                item = {"reference": f"BASE-{n:07d}", "amount": 9000, "currency": "BIF", "msisdn": f"+2577{n:07d}"}
                item["signature"] = provider.signature(item)
                payments.append(item)
            answer = json.loads(_post(f"{url}/payments", {"payments": payments}, token))
            assert all(r["status"] == "ACCEPTED" for r in answer["results"]), answer["results"][:3]
    seconds = elapsed()
    for n in range(count):  # the send stage's payments are counted alone
        provider.payments.pop(f"BASE-{n:07d}", None)
        provider.receipts.pop(f"BASE-{n:07d}", None)
    return Measurement(count, seconds, [f"{count / seconds:,.0f} payments/s", f"batches of {BATCH}"])


def _post(url: str, payload: Any, token: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


@stage("payroll.send", baseline="payroll.http_post", needs=("payroll.http_post",), module="payroll")
def send(ctx: Context) -> Measurement:
    """The sending job's body: every instruction of the approved payroll, in batches, each
    marked dispatched before it leaves and recorded as acknowledged after."""
    from modules.payroll.models import BenefitConsumption
    from modules.payroll.sending import send_payroll
    from modules.payroll.services import lifecycle

    payroll = ctx.state["pay_payroll"]
    provider = _provider(ctx)["provider"]
    admin = ctx.superuser()
    lifecycle.start_sending(admin, payroll.pk)
    with stopwatch() as elapsed:
        result = send_payroll(payroll.pk, admin)
    seconds = elapsed()
    sent = BenefitConsumption.objects.filter(payroll=payroll, status="SENT").count()
    assert result["sent"] == sent == payroll.control_count, (result, sent)
    twice = [reference for reference, times in provider.receipts.items() if times > 1]
    assert not twice, f"{len(twice)} references received twice"
    started = time.perf_counter()
    again = send_payroll(payroll.pk, admin)
    assert again.get("sent", 0) == 0, again
    return Measurement(sent, seconds, [f"{sent / seconds:,.0f} payments/s (target ≥ 1,000)",
                                       "no reference received twice",
                                       f"re-run sends 0 in {time.perf_counter() - started:.1f} s"])
