"""Every list root field costs the same number of SQL statements whatever its page size.

The lists are read from the schema itself, so a module's new list is held to it the day it is
added: the query asks for every field of the node that takes no required argument, and one
level of the objects it points to. A list the dataset below gives fewer than two rows fails the
test (a page of one row cannot show a query per row), unless another test that does the same
comparison is named for it in ``COUNTED_ELSEWHERE``.
"""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, get_named_type

from core.graphql.schema import schema

pytestmark = pytest.mark.django_db

# Lists whose rows take more than services to make (an upload, a workflow, a delivery); each is
# compared page against page by the test named here.
COUNTED_ELSEWHERE = {
    "ticketAttachments": "modules/grievance/tests (attachments need an upload)",
    "ticketTasks": "modules/grievance/tests/test_workflows.py",
    "ticketAccessLog": "modules/grievance/tests",
    "grievanceNotifications": "modules/grievance/tests",
    "reconciliationMismatch": "modules/reconciliation/tests/test_list_costs.py",
    "csvReconciliationUpload": "modules/reconciliation/tests/test_list_costs.py",
}

# Node fields that still cost one statement per row, each with why; this may only shrink.
PER_ROW_FIELDS: dict[str, str] = {}


def _unwrap(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _scalars(object_type: GraphQLObjectType) -> list[str]:
    names = []
    for name, field in object_type.fields.items():
        if any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values()):
            continue
        if not isinstance(_unwrap(field.type), GraphQLObjectType):
            names.append(name)
    return names


def _selection(node: GraphQLObjectType) -> str:
    """Every field of ``node`` without required arguments; objects one level deep (their scalar
    fields); connections inside a node with their count and ids."""
    return " ".join(_selection_parts(node))


def _selection_parts(node: GraphQLObjectType) -> list[str]:
    parts = []
    for name, field in node.fields.items():
        if any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values()) or name in PER_ROW_FIELDS:
            continue
        target = _unwrap(field.type)
        if not isinstance(target, GraphQLObjectType):
            parts.append(name)
        elif "edges" in target.fields:
            parts.append(f"{name} {{ totalCount edges {{ node {{ id }} }} }}")
        else:
            inner = _scalars(target)
            if inner:
                parts.append(f"{name} {{ {' '.join(inner)} }}")
    return parts


def root_lists() -> dict[str, tuple[Any, GraphQLObjectType]]:
    lists = {}
    for name, field in schema.graphql_schema.query_type.fields.items():
        connection_type = get_named_type(field.type)
        if isinstance(connection_type, GraphQLObjectType) and "edges" in connection_type.fields:
            node = get_named_type(_unwrap(connection_type.fields["edges"].type).fields["node"].type)
            lists[name] = (field, node)
    return lists


def _query(name: str, field: Any, node: GraphQLObjectType, arguments: dict[str, Any],
           selection: str | None = None) -> tuple[str, dict[str, Any]]:
    declared = ["$n: Int"] + [f"${arg}: {field.args[arg].type}" for arg in arguments]
    passed = ["first: $n"] + [f"{arg}: ${arg}" for arg in arguments]
    count = "totalCount" if "totalCount" in get_named_type(field.type).fields else ""
    text = (f"query({', '.join(declared)}) {{ {name}({', '.join(passed)}) {{ {count} "
            f"edges {{ node {{ {selection or _selection(node)} }} }} }} }}")
    return text, arguments


@pytest.fixture
def dataset(admin_user: Any, make_user: Any) -> dict[str, Any]:
    """Two or more rows in every list the services can fill, as the superuser made them."""
    from core.approvals.services import create_task_group, request_approval, set_approval_route
    from core.jobs import start_job
    from modules.individual import services as registry
    from modules.location.services import create_location
    from modules.payroll.services import configuration, generation
    from modules.social_protection import services as sp

    province = create_location(admin_user, code="QP1", name="QP1", type="Province")
    communes = [create_location(admin_user, code=f"QC{i}", name=f"QC{i}", type="Commune", parent_id=province.pk)
                for i in range(2)]
    collines = [create_location(admin_user, code=f"QH{i}", name=f"QH{i}", type="Colline",
                                parent_id=communes[i % 2].pk) for i in range(4)]
    for i in range(4):
        group = registry.create_group(admin_user, code=f"QHH-{i}", location_id=collines[i].pk)
        for j in range(2):
            person = registry.create_individual(
                admin_user, first_name=f"Q{i}{j}", last_name=f"Family{i}", dob=datetime.date(1980, 1, 1 + j),
                location_id=collines[i].pk, json_ext={"phone": f"+2577900{i}{j}"})
            registry.add_member(admin_user, group_id=group.pk, individual_id=person.pk,
                                role="HEAD" if j == 0 else "SON", recipient_type="PRIMARY" if j == 0 else None)
    valid = {"date_valid_from": datetime.date(2026, 1, 1), "date_valid_to": datetime.date(2027, 12, 31)}
    group_plan = sp.create_plan(admin_user, code="Q-G", name="Household transfer", type="GROUP", **valid)
    sp.enroll_chunk(group_plan, admin_user, "ACTIVE", None, 1000)
    individual_plan = sp.create_plan(admin_user, code="Q-I", name="Personal transfer", type="INDIVIDUAL", **valid)
    sp.enroll_chunk(individual_plan, admin_user, "ACTIVE", None, 1000)

    plan = configuration.create_plan(admin_user, code="Q-PP", name="Monthly", benefit_plan_id=group_plan.pk,
                               calculation_rule={"fixed": 1000}, currency="BIF", minor_unit=0)
    points = [configuration.create_point(admin_user, code=f"Q-PT{i}", name=f"Point {i}", adaptor="file") for i in range(2)]
    payrolls = []
    for month in (1, 2):
        cycle = configuration.create_cycle(admin_user, code=f"Q-2026-{month:02d}", start_date=datetime.date(2026, month, 1),
                                     end_date=datetime.date(2026, month, 28))
        made, _ = generation.create_payroll(admin_user, name=f"Q{month}", payment_plan_id=plan.pk,
                                         payment_cycle_id=cycle.pk, payment_point_id=points[0].pk)
        payrolls.append(made)

    for i in range(2):
        create_task_group(admin_user, code=f"Q-TG{i}", name=f"Checkers {i}", completion_policy="ANY",
                          checker_ids=[make_user(["payroll.payroll.approve"]).pk])
        request_approval(admin_user, "payroll.approve", "Payroll", str(payrolls[i].pk), {"id": str(payrolls[i].pk)},
                         task_group=f"Q-TG{i}")
        start_job("payroll.poll", {}, admin_user)
    for code in ("Q-TG0", "Q-TG1"):  # two versions of a route, for its history
        set_approval_route(admin_user, "payroll.approve", code, "tests: the route's history")
    configuration.create_plan(admin_user, code="Q-PP2", name="Top-up", benefit_plan_id=individual_plan.pk,
                        calculation_rule={"fixed": 500}, currency="BIF", minor_unit=0)
    return {"payroll": payrolls[0]}


def _arguments(name: str, data: dict[str, Any]) -> dict[str, Any]:
    by_payroll = ("benefitConsumptionByPayroll", "benefitAttachmentByPayroll")
    return {"payrollUuid": str(data["payroll"].pk)} if name in by_payroll else {}


def test_every_list_costs_the_same_queries_for_one_row_and_for_a_page(gql: Any, admin_user: Any, dataset: Any,
                                                                      make_ticket: Any, places: Any) -> None:
    for n in range(3):
        ticket = make_ticket(places, title=f"q{n}", category="sim_compte", location="H111",
                             name_of_complainant="Anonyme")
        from modules.grievance.services.comments import check_create_comment, do_create_comment

        do_create_comment(check_create_comment(admin_user, ticket.pk, f"comment {n}"))
    client = gql(admin_user)
    # mutations so far were services; two logged ones for mutationLogs
    for n in range(2):
        client.ok('mutation($c: String!) { createPaymentCycle(input: {clientMutationId: $c, code: $c, '
                  'startDate: "2026-05-01", endDate: "2026-05-28"}) { clientMutationId } }', {"c": f"Q-LOG-{n}"})
    problems, thin = _compare(client, dataset)
    assert not problems, "lists whose statements grow with the page:\n" + "\n".join(problems)
    assert not thin, "lists the dataset leaves with fewer than 2 rows (add rows or a COUNTED_ELSEWHERE entry): " + \
        ", ".join(thin)


def test_a_location_scoped_user_costs_the_same_too(gql: Any, admin_user: Any, make_user: Any, dataset: Any) -> None:
    """Scope adds conditions (and sometimes a query of its own), never one per row."""
    from core.permissions import registry
    from modules.location.models import Location
    from modules.location.services import set_user_locations

    scoped = make_user(sorted(code for code in registry() if code != "location.scope.national"))
    set_user_locations(admin_user, scoped, [Location.objects.get(code="QC0").pk])
    problems, _ = _compare(gql(scoped), dataset, refusals=True)
    assert not problems, "lists whose statements grow with the page, for a scoped user:\n" + "\n".join(problems)


def test_each_field_alone_costs_the_same_for_one_row_and_for_a_page(gql: Any, admin_user: Any, dataset: Any) -> None:
    """A page reads only what its selection reads (``core.graphql.fields.select_selection``:
    joins and wide columns follow the fields asked for), so a resolver that reads a relation or
    a deferred column its type does not declare (``selection_reads``) costs a statement per row
    when its field is asked for alone."""
    client = gql(admin_user)
    problems = []
    for name, (field, node) in sorted(root_lists().items()):
        arguments = _arguments(name, dataset)
        for part in _selection_parts(node):
            query, _ = _query(name, field, node, arguments, selection=f"id {part}")
            counts, rows = {}, {}
            for first in (1, 50):
                with CaptureQueriesContext(connection) as captured:
                    result = client.execute(query, {"n": first, **arguments})
                assert not result.get("errors"), (name, part, result["errors"])
                rows[first] = len(result["data"][name]["edges"])
                counts[first] = len(captured.captured_queries)
            if rows[50] >= 2 and counts[1] != counts[50]:
                problems.append(f"{name} {{ {part} }}: {counts[1]} statements for 1 row, {counts[50]} for {rows[50]}")
    assert not problems, "fields that cost a statement per row when asked for alone:\n" + "\n".join(problems)


def _compare(client: Any, dataset: dict[str, Any], refusals: bool = False) -> tuple[list[str], list[str]]:
    """Each list at one row and at up to 50: (lists whose statements differ, lists with fewer
    than two rows). With ``refusals``, a list that refuses the caller (national only) is left
    out."""
    problems, thin = [], []
    for name, (field, node) in sorted(root_lists().items()):
        query, arguments = _query(name, field, node, _arguments(name, dataset))
        counts, rows, statements = {}, {}, {}
        for first in (1, 50):
            with CaptureQueriesContext(connection) as captured:
                result = client.execute(query, {"n": first, **arguments})
            if refusals and result.get("errors"):
                break
            assert not result.get("errors"), (name, result["errors"], query)
            rows[first] = len(result["data"][name]["edges"])
            counts[first] = len(captured.captured_queries)
            statements[first] = Counter(q["sql"].split(" WHERE ")[0][:160] for q in captured.captured_queries)
        if len(rows) < 2:
            continue  # refused
        if rows[50] < 2:
            if name not in COUNTED_ELSEWHERE:
                thin.append(f"{name} ({rows[50]} rows)")
            continue
        if counts[1] != counts[50]:
            grown = sorted((statements[50] - statements[1]).items(), key=lambda item: -item[1])[:2]
            problems.append(f"{name}: {counts[1]} statements for 1 row, {counts[50]} for {rows[50]}; "
                            f"repeated: {grown}")
    return problems, thin
