"""Shared fixtures of the payroll module's own tests (pytest hands them to every test here;
no test imports another test file): the data (``country``, ``households``, ``group_plan``), the
rights of a payroll officer (``payroll_rights``), the GraphQL steps most tests take
(``mutate``, ``ok``, ``generate``, ``setup_payments``, ``create_payroll``), approvals
(``route_approvals``), the outbound allow-list (``allow_outbound``) and a payroll sending
through the simulated mobile-money provider of ``modules/payroll/testing.py`` (``provider``,
``point_for``, ``sending_payroll``, ``statuses``)."""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modules.individual import services as registry
from modules.location.models import Location
from modules.location.services import create_location
from modules.payroll.models import BenefitConsumption, PaymentPoint, Payroll, effective_status
from modules.payroll.services import configuration, generation, lifecycle
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
    from core.actors import system_actor
    from core.approvals.services import set_approval_route

    set_approval_route(system_actor(), "payroll.approve", None, "tests: approved at generation")
    set_approval_route(system_actor(), "payroll.reconcile", None, "tests: closed at once")


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


def _route_approvals(code: str | None) -> None:
    """Send payroll.approve to the task group ``code`` (None: no approval), as setApprovalRoute does."""
    from core.actors import system_actor
    from core.approvals.services import set_approval_route

    set_approval_route(system_actor(), "payroll.approve", code, "tests")


def _allow_outbound(monkeypatch: Any, *urls: str) -> None:
    """Put a simulated provider's URL on the deployment's allow-list for one test."""
    from core.loader import module_config

    config = module_config("payroll")
    monkeypatch.setitem(config, "outbound_urls", [*config.get("outbound_urls", []), *urls])


def _mutate(client: Any, name: str, payload: dict[str, Any], fields: str) -> dict[str, Any]:
    """Run ``name`` with ``payload`` and return its result (``errors`` included)."""
    input_type = name[0].upper() + name[1:] + "MutationInput"
    query = f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ errors {{ field code message }} {fields} }} }}"
    variables = {k: json.dumps(v) if k in ("calculationRule", "config", "routing", "jsonExt") else v
                 for k, v in payload.items()}
    return client.ok(query, {"i": variables})[name]


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["errors"] == [], result["errors"]
    return result


PAYROLL_FIELDS = "uuid status controlCount controlSum paymentMethod"


def _generate(client: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """``createPayroll`` and then its generation job, run here as a worker would run it.

    Returns ``{"errors", "job", "payroll", "task"}``: the payroll as GraphQL shows it to the
    same client and the approval task (``None`` without a checker), or the mutation's errors.
    """
    from core.jobs import run_job
    from core.models import ApprovalTask, Job

    result = _mutate(client, "createPayroll", payload, "job { uuid state kind }")
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


RULE = {"fixed": 10000, "per_member": {"amount": 2000, "cap": 6000},
        "top_ups": [{"criteria": {"on": "head", "filter": "disability__exact__boolean=true"}, "amount": 5000}]}
# households 0..7 have 1,2,3,4,1,2,3,4 members; odd ones have a disabled head
EXPECTED = {f"HH-{i:03d}": 10000 + min(2000 * (i % 4 + 1), 6000) + (5000 if i % 2 else 0) for i in range(8)}


def _setup_payments(client: Any, group_plan: Any, **point: Any) -> dict[str, str]:
    cycle = _ok(_mutate(client, "createPaymentCycle", {"code": "2026-01", "startDate": "2026-01-01",
                                                        "endDate": "2026-01-31"}, "paymentCycle { uuid }"))
    plan = _ok(_mutate(client, "createPaymentPlan", {
        "code": "PP-1", "name": "Monthly transfer", "benefitPlanId": str(group_plan.pk),
        "calculationRule": RULE, "currency": "BIF", "minorUnit": 0}, "paymentPlan { uuid }"))
    made = _ok(_mutate(client, "createPaymentPoint", {"code": "BANK", "name": "Bank", "adaptor": "file",
                                                       **point}, "paymentPoint { uuid }"))
    return {"cycle": cycle["paymentCycle"]["uuid"], "plan": plan["paymentPlan"]["uuid"],
            "point": made["paymentPoint"]["uuid"]}


def _create_payroll(client: Any, ids: dict[str, str], **extra: Any) -> dict[str, Any]:
    payload = {"name": "January", "paymentPlanId": ids["plan"], "paymentCycleId": ids["cycle"],
               "paymentPointId": ids["point"], **extra}
    return _generate(client, payload)


CYCLES = itertools.count()


def _point_for(admin_user: Any, url: str, **overrides: Any) -> PaymentPoint:
    config = {"base_url": url, "client_id": "coremis", "client_secret": {"env": "COREMIS_PSP_MM_SECRET"},
              "batch_size": 3, "serial": True, "timeout": 0.4,
              "signature": {"algorithm": "hmac-sha256", "key": {"env": "COREMIS_PSP_MM_SIGN"},
                            "fields": ["reference", "amount", "msisdn"]},
              "callback_key": {"env": "COREMIS_PSP_MM_CALLBACK"}, **overrides}
    return configuration.create_point(admin_user, code=f"MM-{next(CYCLES)}", adaptor="mobile_money", config=config)


def _sending_payroll(admin_user: Any, group_plan: Any, point: PaymentPoint, currency: str = "BIF",
                     minor_unit: int = 0) -> Payroll:
    """A new cycle, an approved payroll of the 8 households, and SENDING."""
    n = next(CYCLES)
    cycle = configuration.create_cycle(admin_user, code=f"C-{n}", start_date=datetime.date(2026, 1, 1),
                                       end_date=datetime.date(2026, 1, 31))
    plan = configuration.create_plan(admin_user, code=f"P-{n}", name="Transfer", benefit_plan_id=group_plan.pk,
                                     calculation_rule={"fixed": 120, "per_member": {"amount": 30, "cap": 60}},
                                     currency=currency, minor_unit=minor_unit)
    payroll, _ = generation.create_payroll(admin_user, name=f"Payroll {n}", payment_plan_id=plan.pk,
                                           payment_cycle_id=cycle.pk, payment_point_id=point.pk)
    lifecycle.approve_payroll(admin_user, payroll.pk)
    return lifecycle.start_sending(admin_user, payroll.pk)


def _statuses(payroll: Payroll) -> dict[str, str]:
    """Each payment's status as clients see it (unsent ones of an approved payroll: APPROVED)."""
    rows = BenefitConsumption.objects.filter(payroll=payroll).values_list("code", "status", "payroll__status")
    return {code: effective_status(status, payroll_status) for code, status, payroll_status in rows}


# --- the fixtures ----------------------------------------------------------------------------


@pytest.fixture
def payroll_rights() -> list[str]:
    """Every right of the module, nationally, with the job and registry reads."""
    return list(PAYROLL_ALL)


@pytest.fixture
def generation_rule() -> dict[str, Any]:
    """The calculation rule of ``setup_payments``' plan."""
    return json.loads(json.dumps(RULE))


@pytest.fixture
def expected_amounts() -> dict[str, int]:
    """What ``generation_rule`` pays each of the 8 households, by household code."""
    return dict(EXPECTED)


@pytest.fixture
def mutate() -> Callable[..., dict[str, Any]]:
    """``mutate(client, name, payload, fields)``: run a mutation, its result (errors included)."""
    return _mutate


@pytest.fixture
def ok() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``ok(result)``: a mutation's result, asserting it has no errors."""
    return _ok


@pytest.fixture
def generate() -> Callable[..., dict[str, Any]]:
    """``generate(client, payload)``: createPayroll and its job (see ``_generate``)."""
    return _generate


@pytest.fixture
def route_approvals() -> Callable[[str | None], None]:
    return _route_approvals


@pytest.fixture
def allow_outbound() -> Callable[..., None]:
    """``allow_outbound(monkeypatch, *urls)``: put a simulated provider on the allow-list."""
    return _allow_outbound


@pytest.fixture
def setup_payments() -> Callable[..., dict[str, str]]:
    """``setup_payments(client, group_plan, **point)``: cycle 2026-01, plan PP-1 (``generation_rule``,
    BIF) and file point BANK through GraphQL; their ids as ``{"cycle", "plan", "point"}``."""
    return _setup_payments


@pytest.fixture
def create_payroll() -> Callable[..., dict[str, Any]]:
    """``create_payroll(client, ids, **extra)``: "January" over ``setup_payments``' ids, generated."""
    return _create_payroll


@pytest.fixture
def provider(monkeypatch: Any, mobile_money_simulator: Any) -> Iterator[tuple[Any, str]]:
    """A simulated mobile-money provider, running, allowed, with its credentials in the environment."""
    monkeypatch.setenv("COREMIS_PSP_MM_SECRET", "client-secret")
    monkeypatch.setenv("COREMIS_PSP_MM_SIGN", "signing-key")
    monkeypatch.setenv("COREMIS_PSP_MM_CALLBACK", "callback-key")
    simulated = mobile_money_simulator.provider(client_secret="client-secret", signing_key="signing-key",
                                                callback_key="callback-key", stall=0.8)
    with mobile_money_simulator.running(simulated) as url:
        _allow_outbound(monkeypatch, url)
        yield simulated, url


@pytest.fixture
def point_for() -> Callable[..., PaymentPoint]:
    """``point_for(admin_user, url, **config)``: a mobile-money point paying through ``url``."""
    return _point_for


@pytest.fixture
def sending_payroll() -> Callable[..., Payroll]:
    """``sending_payroll(admin_user, group_plan, point, currency="BIF", minor_unit=0)``."""
    return _sending_payroll


@pytest.fixture
def statuses() -> Callable[[Payroll], dict[str, str]]:
    return _statuses
