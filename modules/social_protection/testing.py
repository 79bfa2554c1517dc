"""The social protection module's test plug-in (registered by the core's, see ``core/testing``):
the rights a plan officer holds, and the two GraphQL steps most tests start with, creating a
plan and enrolling into it. The ``country`` / ``households`` data stay in the module's
``tests/conftest.py`` (only its own tests use them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

PLAN_OFFICER = ["social_protection.plan.search", "social_protection.plan.create", "social_protection.plan.update",
                "social_protection.plan.close", "social_protection.beneficiary.enroll",
                "social_protection.beneficiary.search", "social_protection.beneficiary.update", "core.job.view",
                "location.scope.national", "individual.registry.search"]

CREATE = """mutation($i: CreateBenefitPlanMutationInput!) { createBenefitPlan(input: $i) {
    errors { field code message } benefitPlan { uuid code type status criteria } } }"""


@pytest.fixture
def plan_officer_rights() -> list[str]:
    """Every right of the module but deleting plans, nationally, with the job and registry reads."""
    return list(PLAN_OFFICER)


def _create_plan(client: Any, **fields: Any) -> dict[str, Any]:
    payload = {"code": "CT-1", "name": "Cash transfer", "type": "INDIVIDUAL",
               "dateValidFrom": "2026-01-01", "dateValidTo": "2027-12-31", **fields}
    if "criteria" in payload and not isinstance(payload["criteria"], str):
        payload["criteria"] = json.dumps(payload["criteria"])
    data = client.ok(CREATE, {"i": payload})["createBenefitPlan"]
    assert data["errors"] == [], data["errors"]
    return data["benefitPlan"]


@pytest.fixture
def create_plan() -> Callable[..., dict[str, Any]]:
    """``create_plan(client, **fields)``: createBenefitPlan (an INDIVIDUAL plan CT-1 unless
    told otherwise); the plan as GraphQL answers it."""
    return _create_plan


def _enroll(client: Any, capture: Any, run_jobs: Any, plan: dict[str, Any], kind: str = "Group",
            status: str = "ACTIVE", **extra: Any) -> dict[str, Any]:
    mutation = (f"mutation($i: Confirm{kind}EnrollmentMutationInput!) {{ confirm{kind}Enrollment(input: $i) {{ "
                "errors { field code message } job { uuid } } }")
    with capture(execute=True):
        data = client.ok(mutation, {"i": {"benefitPlanId": plan["uuid"], "status": status, **extra}})
    result = data[f"confirm{kind}Enrollment"]
    assert result["errors"] == [], result["errors"]
    run_jobs()
    jobs = client.ok('{ jobs(kind: "social_protection.enroll", orderBy: ["-created_at"], first: 1) '
                     '{ edges { node { state result processed total } } } }')
    return jobs["jobs"]["edges"][0]["node"]


@pytest.fixture
def enroll() -> Callable[..., dict[str, Any]]:
    """``enroll(client, capture, run_jobs, plan, kind="Group", status="ACTIVE", **extra)``:
    confirm<Kind>Enrollment, run the job, return it."""
    return _enroll
