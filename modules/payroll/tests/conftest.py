from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from modules.individual import services as registry
from modules.location.models import Location
from modules.location.services import create_location
from modules.social_protection import services as sp
from modules.social_protection.models import BenefitPlan

PAYROLL_ALL = ["payroll.payroll.search", "payroll.configuration.manage", "payroll.provider.manage", "payroll.payroll.create", "payroll.payroll.approve", "payroll.payroll.pay",
               "payroll.payroll.close", "payroll.payroll.delete", "core.job.view", "location.scope.national",
               "social_protection.plan.search", "individual.registry.search"]


@pytest.fixture(autouse=True)
def payrolls_need_no_checker(db: Any) -> None:
    """The shipped configuration routes payroll.approve to a checker group; most tests are about
    something else, so here a payroll is approved as soon as it is generated, as in a
    deployment that unrouted it. Tests about approval route it again (``route_approvals``)."""
    from core.approvals.services import set_approval_route

    set_approval_route(None, "payroll.approve", None, "tests: approved at generation")
    set_approval_route(None, "payroll.reconcile", None, "tests: closed at once")


def route_approvals(code: str | None) -> None:
    """Send payroll.approve to the task group ``code`` (None: no approval), as setApprovalRoute does."""
    from core.approvals.services import set_approval_route

    set_approval_route(None, "payroll.approve", code, "tests")


@pytest.fixture
def country(admin_user: Any) -> dict[str, Location]:
    """One province, two communes, four collines (H1, H2 under C1; H3, H4 under C2)."""
    made: dict[str, Location] = {}
    spec = [("P1", "Province", None), ("C1", "Commune", "P1"), ("C2", "Commune", "P1"),
            ("H1", "Colline", "C1"), ("H2", "Colline", "C1"), ("H3", "Colline", "C2"), ("H4", "Colline", "C2")]
    for code, type_, parent in spec:
        made[code] = create_location(admin_user, code=code, name=code, type=type_,
                                     parent_id=made[parent].pk if parent else None)
    return made


@pytest.fixture
def households(admin_user: Any, country: dict[str, Location]) -> list[Any]:
    """8 households over H1..H4. Household i has i % 4 + 1 members; the head is the first
    member, the primary recipient is the second one when there is one (else the head), and
    the head is disabled when i is odd."""
    made = []
    for i in range(8):
        colline = country[f"H{i % 4 + 1}"]
        group = registry.create_group(admin_user, code=f"HH-{i:03d}", location_id=colline.pk)
        size = i % 4 + 1
        for j in range(size):
            person = registry.create_individual(
                admin_user, first_name=f"P{i}-{j}", last_name=f"Family{i:03d}", dob=datetime.date(1980, 1, 1),
                location_id=colline.pk,
                json_ext={"phone": f"+25779{i:03d}{j:03d}", "disability": bool(i % 2) if j == 0 else False},
            )
            primary = j == 1 or (size == 1 and j == 0)
            registry.add_member(admin_user, group_id=group.pk, individual_id=person.pk,
                                role="HEAD" if j == 0 else "SON", recipient_type="PRIMARY" if primary else None)
        made.append(group)
    return made


@pytest.fixture
def group_plan(admin_user: Any, households: list[Any]) -> BenefitPlan:
    """A GROUP benefit plan with every household enrolled ACTIVE."""
    plan = sp.create_plan(admin_user, code="CT-G", name="Household cash transfer", type="GROUP",
                          date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2027, 12, 31))
    sp.enroll_chunk(plan, admin_user, "ACTIVE", None, 1000)
    return plan


def allow_outbound(monkeypatch: Any, *urls: str) -> None:
    """Put a simulated provider's URL on the deployment's allow-list for one test."""
    from core.loader import module_config

    config = module_config("payroll")
    monkeypatch.setitem(config, "outbound_urls", [*config.get("outbound_urls", []), *urls])


def mutate(client: Any, name: str, payload: dict[str, Any], fields: str) -> dict[str, Any]:
    """Run ``name`` with ``payload`` and return its result (``errors`` included)."""
    input_type = name[0].upper() + name[1:] + "MutationInput"
    query = f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ errors {{ field code message }} {fields} }} }}"
    variables = {k: json.dumps(v) if k in ("calculationRule", "config", "routing", "jsonExt") else v
                 for k, v in payload.items()}
    return client.ok(query, {"i": variables})[name]


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["errors"] == [], result["errors"]
    return result


PAYROLL_FIELDS = "uuid status controlCount controlSum paymentMethod"


def generate(client: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """``createPayroll`` and then its generation job, run here as a worker would run it.

    Returns ``{"errors", "job", "payroll", "task"}``: the payroll as GraphQL shows it to the
    same client and the approval task (``None`` without a checker), or the mutation's errors.
    """
    from core.jobs import run_job
    from core.models import ApprovalTask, Job

    result = mutate(client, "createPayroll", payload, "job { uuid state kind }")
    if result["errors"]:
        return result
    assert result["job"]["state"] == "QUEUED" and result["job"]["kind"] == "payroll.generate", result["job"]
    run_job(result["job"]["uuid"])
    job = Job.objects.get(pk=result["job"]["uuid"])
    assert job.state == "SUCCEEDED", (job.state, job.message)
    listed = client.ok(f"{{ payroll(first: 100) {{ edges {{ node {{ {PAYROLL_FIELDS} }} }} }} }}")["payroll"]
    payroll = next(e["node"] for e in listed["edges"] if e["node"]["uuid"] == job.result["payroll_id"])
    task = ApprovalTask.objects.filter(pk=job.result["task_id"]).first() if job.result["task_id"] else None
    return {"errors": [], "job": job.result, "payroll": payroll,
            "task": {"uuid": str(task.pk), "status": task.status} if task else None}
