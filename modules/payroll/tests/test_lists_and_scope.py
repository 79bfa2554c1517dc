"""Lists cost the same number of queries whatever their size; users see only their locations."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from modules.location.services import set_user_locations

pytestmark = pytest.mark.django_db

PAYMENTS = """query($p: UUID!, $n: Int) { benefitConsumptionByPayroll(payrollUuid: $p, first: $n) { totalCount
    edges { node { code amount status individual { firstName } group { code } paymentPoint { code }
    payroll { name } paymentCycle { code } } } } }"""
PAYROLLS = """query($n: Int) { payroll(first: $n) { totalCount edges { node { name status paymentMethod
    paymentPlan { code benefitPlanDetail { code } } paymentCycle { code } paymentPoint { code } } } } }"""


def count_queries(client: Any, query: str, variables: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        client.ok(query, variables)
    return len(queries)


def test_list_queries_do_not_grow_with_the_page(gql, make_user, group_plan, create_payroll, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    payroll = ok(create_payroll(client, ids))["payroll"]
    assert count_queries(client, PAYMENTS, {"p": payroll["uuid"], "n": 1}) == \
        count_queries(client, PAYMENTS, {"p": payroll["uuid"], "n": 8})
    assert count_queries(client, PAYROLLS, {"n": 1}) == count_queries(client, PAYROLLS, {"n": 10})


def test_a_user_limited_to_a_commune_sees_only_payrolls_paying_there(gql, make_user, admin_user, group_plan, country, create_payroll, mutate, ok, payroll_rights, setup_payments):
    national = gql(make_user(payroll_rights))
    ids = setup_payments(national, group_plan)
    in_c1 = ok(create_payroll(national, ids, locationIds=[str(country["C1"].pk)]))["payroll"]
    ok(create_payroll(national, ids, name="C2", locationIds=[str(country["C2"].pk)]))
    local_user = make_user([p for p in payroll_rights if p != "location.scope.national"])
    set_user_locations(admin_user, local_user, [country["C1"].pk])
    local = gql(local_user)
    listed = local.ok("{ payroll { edges { node { uuid } } } }")["payroll"]["edges"]
    assert [e["node"]["uuid"] for e in listed] == [in_c1["uuid"]]
    summary = local.ok("{ benefitsSummary { count } }")["benefitsSummary"]
    assert summary["count"] == 4

    # a payroll over the whole country shows a local user only the payments in their commune
    february = ok(mutate(national, "createPaymentCycle", {"code": "2026-02", "startDate": "2026-02-01",
                                                          "endDate": "2026-02-28"}, "paymentCycle { uuid }"))
    everywhere = ok(create_payroll(national, {**ids, "cycle": february["paymentCycle"]["uuid"]},
                                   name="February"))["payroll"]
    page = local.ok("query($p: UUID!) { benefitConsumptionByPayroll(payrollUuid: $p) { totalCount } }",
                    {"p": everywhere["uuid"]})["benefitConsumptionByPayroll"]
    assert page["totalCount"] == 4


def test_a_payrolls_payments_are_listed_only_while_the_payroll_is_live_and_visible(
        gql, make_user, admin_user, group_plan, country, create_payroll, ok, payroll_rights, setup_payments):
    # the check that starts both lists of one payroll's payments (written out for national users)
    from modules.payroll.models import Payroll

    national = gql(make_user(payroll_rights))
    ids = setup_payments(national, group_plan)
    in_c2 = ok(create_payroll(national, ids, name="C2", locationIds=[str(country["C2"].pk)]))["payroll"]
    local_user = make_user([p for p in payroll_rights if p != "location.scope.national"])
    set_user_locations(admin_user, local_user, [country["C1"].pk])
    local = gql(local_user)
    lists = ("benefitConsumptionByPayroll", "benefitAttachmentByPayroll")

    def listed(client: Any, field: str) -> tuple[int, int]:
        page = client.ok(f"query($p: UUID!) {{ {field}(payrollUuid: $p) {{ totalCount edges {{ node {{ id }} }} }} }}",
                         {"p": in_c2["uuid"]})[field]
        return page["totalCount"], len(page["edges"])

    for field in lists:
        total, shown = listed(national, field)
        assert total == shown > 0
        assert listed(local, field) == (0, 0)  # a payroll paying only outside their commune
    Payroll.all_objects.filter(pk=in_c2["uuid"]).update(is_deleted=True)
    for field in lists:
        assert listed(national, field) == (0, 0)
