"""Changing and deleting payment cycles, plans and points, through GraphQL: optimistic locking,
the same validation as creation, and the refusals that protect payrolls and payments."""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.forms.models import model_to_dict

from core.history import acting_as
from core.models import HistoryEntry
from modules.payroll.models import (
    BenefitConsumption,
    PaymentCycle,
    PaymentPlan,
    PaymentPoint,
    Payroll,
)
from modules.payroll.services import configuration, generation

pytestmark = pytest.mark.django_db

CYCLE = "paymentCycle { uuid version code startDate endDate status isDeleted }"
PLAN = "paymentPlan { uuid version name calculationRule currency minorUnit jsonExt isDeleted }"
POINT = "paymentPoint { uuid version name adaptor routing configuredKeys isDeleted }"
MODELS = {"cycle": PaymentCycle, "plan": PaymentPlan, "point": PaymentPoint}


def snapshot(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every column of the cycle, plan and point (deleted or not) and their history so far."""
    rows = {k: model_to_dict(m.all_objects.get(pk=ids[k])) | {"version": m.all_objects.get(pk=ids[k]).version}
            for k, m in MODELS.items()}
    rows["history"] = {"entries": HistoryEntry.objects.filter(row_id__in=[ids[k] for k in MODELS]).count()}
    return rows


def codes(result: dict[str, Any]) -> set[str]:
    assert result["errors"], result
    return {e["code"] for e in result["errors"]}


def history(pk: str) -> list[HistoryEntry]:
    return list(HistoryEntry.objects.filter(row_id=pk).order_by("id"))


def test_updates_and_deletes_land_in_history_and_mutation_logs(gql, make_user, group_plan, country, mutate, ok, payroll_rights, setup_payments):
    user = make_user([*payroll_rights, "core.mutation_log.view"])
    client = gql(user)
    ids = setup_payments(client, group_plan, config={"format": "csv", "callback_token": {"env": "COREMIS_PSP_OLD_TOKEN"}})

    cycle = ok(mutate(client, "updatePaymentCycle", {
        "id": ids["cycle"], "version": 1, "code": " 2026-01b ", "endDate": "2026-02-05", "status": "SUSPENDED",
        "clientMutationId": "c-1"}, CYCLE))["paymentCycle"]
    assert cycle == {"uuid": ids["cycle"], "version": 2, "code": "2026-01b", "startDate": "2026-01-01",
                     "endDate": "2026-02-05", "status": "SUSPENDED", "isDeleted": False}

    plan = ok(mutate(client, "updatePaymentPlan", {
        "id": ids["plan"], "version": 1, "name": "Monthly transfer (2026)", "calculationRule": {"fixed": "12.50"},
        "currency": "usd", "minorUnit": 2, "jsonExt": {"note": "re-priced"}}, PLAN))["paymentPlan"]
    assert plan["version"] == 2 and plan["name"] == "Monthly transfer (2026)"
    assert json.loads(plan["calculationRule"]) == {"fixed": "12.50"}
    assert (plan["currency"], plan["minorUnit"], json.loads(plan["jsonExt"])) == ("USD", 2, {"note": "re-priced"})
    # omitted fields stay
    renamed = ok(mutate(client, "updatePaymentPlan", {"id": ids["plan"], "name": "Monthly"}, PLAN))["paymentPlan"]
    assert renamed["version"] == 3 and json.loads(renamed["calculationRule"]) == {"fixed": "12.50"}

    routing = {"locations": [str(country["C1"].pk)], "priority": 2}
    point = ok(mutate(client, "updatePaymentPoint", {
        "id": ids["point"], "version": 1, "name": "Bank of Bujumbura",
        "config": {"format": "xlsx", "api_key": {"env": "COREMIS_PSP_BANK_API_KEY"}}, "routing": routing}, POINT))["paymentPoint"]
    # the configuration is replaced, not merged, and only its keys are readable
    assert point["configuredKeys"] == ["api_key", "format"] and point["adaptor"] == "file"
    assert point["version"] == 2 and json.loads(point["routing"]) == routing
    assert PaymentPoint.objects.get(pk=ids["point"]).config == {"format": "xlsx", "api_key": {"env": "COREMIS_PSP_BANK_API_KEY"}}

    for key in ("cycle", "plan", "point"):
        name = {"cycle": "deletePaymentCycle", "plan": "deletePaymentPlan", "point": "deletePaymentPoint"}[key]
        version = MODELS[key].objects.get(pk=ids[key]).version
        fields = {"cycle": CYCLE, "plan": PLAN, "point": POINT}[key]
        deleted = ok(mutate(client, name, {"id": ids[key], "version": version}, fields))
        assert deleted[fields.split()[0]]["isDeleted"] is True
    listed = client.ok("{ paymentCycle { totalCount } paymentPlan { totalCount } paymentPoint { totalCount } }")
    assert {v["totalCount"] for v in listed.values()} == {0}
    # a deleted row's code is free again
    ok(mutate(client, "createPaymentCycle", {"code": "2026-01b", "startDate": "2026-01-01", "endDate": "2026-01-31"},
              "paymentCycle { uuid }"))

    # every change is a history version attributed to the user and the mutation
    cycle_history = history(ids["cycle"])
    assert [e.operation for e in cycle_history] == ["I", "U", "U"]
    assert cycle_history[1].data["code"] == "2026-01b" and cycle_history[1].data["status"] == "SUSPENDED"
    assert cycle_history[2].data["is_deleted"] is True
    assert {str(e.user_id) for e in cycle_history} == {str(user.pk)}
    assert all(e.context and e.context.get("mutation") for e in cycle_history)
    assert [e.operation for e in history(ids["plan"])] == ["I", "U", "U", "U"]
    assert [e.data["config"].get("format") for e in history(ids["point"])] == ["csv", "xlsx", "xlsx"]

    logs = client.ok("""{ mutationLogs(orderBy: ["request_date_time"]) { edges { node {
        mutationName status clientMutationId jsonContent affectedIds } } } }""")["mutationLogs"]["edges"]
    by_name = {e["node"]["mutationName"]: e["node"] for e in logs}
    assert {"UpdatePaymentCycleMutation", "UpdatePaymentPlanMutation", "UpdatePaymentPointMutation",
            "DeletePaymentCycleMutation", "DeletePaymentPlanMutation", "DeletePaymentPointMutation"} <= set(by_name)
    assert by_name["UpdatePaymentCycleMutation"]["status"] == 2
    assert by_name["UpdatePaymentCycleMutation"]["clientMutationId"] == "c-1"
    assert ids["cycle"] in json.dumps(by_name["DeletePaymentCycleMutation"]["affectedIds"])
    # no query returns configuration values, the mutation log included
    for node in (by_name["CreatePaymentPointMutation"], by_name["UpdatePaymentPointMutation"]):
        assert "COREMIS_PSP_OLD_TOKEN" not in json.dumps(node) and "COREMIS_PSP_BANK_API_KEY" not in json.dumps(node)
        assert "xlsx" not in json.dumps(node) and "csv" not in json.dumps(node)
        assert "***" in json.dumps(node["jsonContent"])


def test_a_stale_version_changes_nothing(gql, make_user, group_plan, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    ok(mutate(client, "updatePaymentCycle", {"id": ids["cycle"], "version": 1, "code": "2026-01x"}, CYCLE))
    ok(mutate(client, "updatePaymentPlan", {"id": ids["plan"], "version": 1, "name": "Renamed"}, PLAN))
    ok(mutate(client, "updatePaymentPoint", {"id": ids["point"], "version": 1, "name": "Renamed"}, POINT))
    before = snapshot(ids)

    attempts = [
        ("updatePaymentCycle", {"id": ids["cycle"], "version": 1, "code": "2026-01y"}, CYCLE),
        ("updatePaymentPlan", {"id": ids["plan"], "version": 1, "calculationRule": {"fixed": 1}}, PLAN),
        ("updatePaymentPoint", {"id": ids["point"], "version": 1, "config": {"format": "xlsx"}}, POINT),
        ("deletePaymentCycle", {"id": ids["cycle"], "version": 1}, CYCLE),
        ("deletePaymentPlan", {"id": ids["plan"], "version": 1}, PLAN),
        ("deletePaymentPoint", {"id": ids["point"], "version": 1}, POINT),
        # a stale edit is told to reload even when it is also invalid
        ("updatePaymentCycle", {"id": ids["cycle"], "version": 1, "endDate": "2025-01-01"}, CYCLE),
    ]
    for name, payload, fields in attempts:
        refused = mutate(client, name, payload, fields)
        assert [e["code"] for e in refused["errors"]] == ["STALE_VERSION"], (name, refused)
        assert refused["errors"][0]["field"] == "version" and "version 2" in refused["errors"][0]["message"]
        assert next(v for k, v in refused.items() if k != "errors") is None
    assert snapshot(ids) == before


def test_updates_are_validated_like_creation(gql, make_user, group_plan, country, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    ok(mutate(client, "createPaymentCycle", {"code": "2026-02", "startDate": "2026-02-01", "endDate": "2026-02-28"},
              "paymentCycle { uuid }"))
    # the cycle may keep its own code
    ok(mutate(client, "updatePaymentCycle", {"id": ids["cycle"], "code": "2026-01"}, CYCLE))
    before = snapshot(ids)

    refusals = [
        ("updatePaymentCycle", {"code": "2026-02"}, {"CODE_TAKEN"}),
        ("updatePaymentCycle", {"code": "  "}, {"REQUIRED"}),
        ("updatePaymentCycle", {"endDate": "2025-12-31"}, {"BEFORE_START"}),
        ("updatePaymentCycle", {"startDate": "2026-03-01", "status": "OPEN"}, {"BEFORE_START", "INVALID"}),
        ("updatePaymentCycle", {"startDate": None}, {"REQUIRED"}),
        ("updatePaymentPlan", {"name": ""}, {"REQUIRED"}),
        ("updatePaymentPlan", {"currency": "EURO"}, {"INVALID"}),
        ("updatePaymentPlan", {"minorUnit": 7}, {"INVALID"}),
        ("updatePaymentPlan", {"calculationRule": {"fixed": "10.005"}}, {"INVALID_AMOUNT"}),
        ("updatePaymentPlan", {"calculationRule": {"bonus": 1}}, {"INVALID_RULE"}),
        ("updatePaymentPlan", {"calculationRule": {"top_ups": [{"criteria": {"on": "nobody"}, "amount": 1}]}},
         {"INVALID_CRITERIA"}),
        # the rule's amounts must stay whole in a new minor unit
        ("updatePaymentPlan", {"calculationRule": {"fixed": "12.50"}, "minorUnit": 0}, {"INVALID_AMOUNT"}),
        ("updatePaymentPoint", {"config": {"api_key": "s3cr3t"}}, {"LITERAL_SECRET"}),
        ("updatePaymentPoint", {"config": {"auth": {"password": "hunter2"}}}, {"LITERAL_SECRET"}),
        ("updatePaymentPoint", {"config": ["format", "csv"]}, {"INVALID"}),
        ("updatePaymentPoint", {"routing": {"locations": [str(country["C1"].pk)], "weight": 1}}, {"INVALID"}),
        ("updatePaymentPoint", {"routing": {"locations": ["00000000-0000-0000-0000-000000000000"]}},
         {"UNKNOWN_LOCATION"}),
        ("updatePaymentPoint", {"name": " "}, {"REQUIRED"}),
    ]
    for name, change, expected in refusals:
        key = {"updatePaymentCycle": "cycle", "updatePaymentPlan": "plan", "updatePaymentPoint": "point"}[name]
        fields = {"cycle": CYCLE, "plan": PLAN, "point": POINT}[key]
        assert codes(mutate(client, name, {"id": ids[key], **change}, fields)) == expected, (name, change)
    assert snapshot(ids) == before

    # the adaptor is not part of the update
    result = client.execute('mutation { updatePaymentPoint(input: {id: "%s", adaptor: "mobile_money"}) '
                            "{ errors { code } } }" % ids["point"])
    assert result.get("errors") and "adaptor" in result["errors"][0]["message"]
    missing = mutate(client, "updatePaymentPlan", {"id": "00000000-0000-0000-0000-000000000000", "name": "x"}, PLAN)
    assert codes(missing) == {"NOT_FOUND"}
    assert snapshot(ids) == before


def test_cycle_rules(gql, make_user, group_plan, create_payroll, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    payroll = ok(create_payroll(client, ids))["payroll"]
    before = snapshot(ids)

    # payments were made for this period: the dates stay, and the cycle cannot go
    moved = mutate(client, "updatePaymentCycle", {"id": ids["cycle"], "startDate": "2025-12-01",
                                                  "endDate": "2026-02-28"}, CYCLE)
    assert [(e["field"], e["code"]) for e in moved["errors"]] == [("startDate", "CYCLE_IN_USE"),
                                                                    ("endDate", "CYCLE_IN_USE")]
    deleted = mutate(client, "deletePaymentCycle", {"id": ids["cycle"]}, CYCLE)
    assert codes(deleted) == {"CYCLE_IN_USE"} and "1 payroll" in deleted["errors"][0]["message"]
    assert snapshot(ids) == before

    # the code and status still change, and giving the same dates again is no change
    ok(mutate(client, "updatePaymentCycle", {"id": ids["cycle"], "code": "JAN-2026", "startDate": "2026-01-01",
                                             "status": "CLOSED"}, CYCLE))
    closed = snapshot(ids)
    refused = create_payroll(client, ids, name="late")
    assert codes(refused) == {"CYCLE_NOT_ACTIVE"}
    # a closed cycle is final: it cannot be reopened (and so receive payrolls again)
    for change in ({"status": "ACTIVE"}, {"code": "JAN"}):
        assert codes(mutate(client, "updatePaymentCycle", {"id": ids["cycle"], **change}, CYCLE)) == {"CYCLE_CLOSED"}
    assert snapshot(ids) == closed and Payroll.objects.count() == 1

    # once its payrolls are gone (rejected, then deleted), the cycle can be deleted
    ok(mutate(client, "rejectPayroll", {"id": payroll["uuid"]}, "payroll { status }"))
    assert codes(mutate(client, "deletePaymentCycle", {"id": ids["cycle"]}, CYCLE)) == {"CYCLE_IN_USE"}
    ok(mutate(client, "deletePayroll", {"id": payroll["uuid"]}, "payroll { isDeleted }"))
    assert ok(mutate(client, "deletePaymentCycle", {"id": ids["cycle"]}, CYCLE))["paymentCycle"]["isDeleted"]


def test_plan_rules(gql, make_user, group_plan, create_payroll, expected_amounts, generation_rule, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    payroll = ok(create_payroll(client, ids))["payroll"]
    assert payroll["status"] == "APPROVED"
    before = snapshot(ids)

    # the payroll's amounts were computed with the current rule and are still to be sent
    for change, field in (({"calculationRule": {"fixed": 20000}}, "calculationRule"), ({"currency": "USD"}, "currency"),
                          ({"minorUnit": 2}, "minorUnit")):
        refused = mutate(client, "updatePaymentPlan", {"id": ids["plan"], **change}, PLAN)
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [(field, "PLAN_IN_USE")], change
    assert codes(mutate(client, "deletePaymentPlan", {"id": ids["plan"]}, PLAN)) == {"PLAN_IN_USE"}
    for status in ("PENDING_APPROVAL", "SENDING"):
        Payroll.objects.filter(pk=payroll["uuid"]).update(status=status)
        refused = mutate(client, "updatePaymentPlan", {"id": ids["plan"], "calculationRule": {"fixed": 1}}, PLAN)
        assert codes(refused) == {"PLAN_IN_USE"}, status
    Payroll.objects.filter(pk=payroll["uuid"]).update(status="APPROVED")
    assert snapshot(ids) == before

    # the same values again, the name and jsonExt are no change to the amounts
    ok(mutate(client, "updatePaymentPlan", {"id": ids["plan"], "calculationRule": generation_rule, "currency": "bif",
                                            "minorUnit": 0, "name": "Renamed", "jsonExt": {"a": 1}}, PLAN))

    # once the payroll is final the rule may change; its amounts are kept as they were
    ok(mutate(client, "rejectPayroll", {"id": payroll["uuid"]}, "payroll { status }"))
    changed = ok(mutate(client, "updatePaymentPlan", {"id": ids["plan"], "calculationRule": {"fixed": 20000}}, PLAN))
    assert json.loads(changed["paymentPlan"]["calculationRule"]) == {"fixed": 20000}
    assert sum(BenefitConsumption.objects.filter(payroll_id=payroll["uuid"]).values_list("amount", flat=True)) == sum(
        expected_amounts.values())
    # but its amounts are integers in BIF: no other currency or minor unit while it exists
    kept = snapshot(ids)
    assert codes(mutate(client, "updatePaymentPlan", {"id": ids["plan"], "minorUnit": 2}, PLAN)) == {"PLAN_IN_USE"}
    assert codes(mutate(client, "deletePaymentPlan", {"id": ids["plan"]}, PLAN)) == {"PLAN_IN_USE"}
    assert snapshot(ids) == kept

    ok(mutate(client, "deletePayroll", {"id": payroll["uuid"]}, "payroll { isDeleted }"))
    ok(mutate(client, "updatePaymentPlan", {"id": ids["plan"], "currency": "USD", "minorUnit": 2}, PLAN))
    assert ok(mutate(client, "deletePaymentPlan", {"id": ids["plan"]}, PLAN))["paymentPlan"]["isDeleted"]


def test_point_rules(gql, make_user, group_plan, create_payroll, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    spare = ok(mutate(client, "createPaymentPoint", {"code": "SPARE", "adaptor": "file"}, "paymentPoint { uuid }"))
    payroll = ok(create_payroll(client, ids))["payroll"]
    instructions = BenefitConsumption.objects.filter(payroll_id=payroll["uuid"])

    # payments unsent (created or approved: the row says CREATED) or sent through the point are
    # not final: it stays
    for status in ("CREATED", "SENT"):
        instructions.update(status=status)
        before = snapshot(ids)
        refused = mutate(client, "deletePaymentPoint", {"id": ids["point"]}, POINT)
        assert codes(refused) == {"POINT_IN_USE"} and "January" in refused["errors"][0]["message"], status
        assert snapshot(ids) == before
    # its settings may still change (a rotated credential, a new format); the adaptor never does
    ok(mutate(client, "updatePaymentPoint", {"id": ids["point"], "config": {"format": "xlsx"}}, POINT))
    # a point with no open payment goes at once
    ok(mutate(client, "deletePaymentPoint", {"id": spare["paymentPoint"]["uuid"]}, POINT))

    # one payment still open is enough
    instructions.update(status="PAID")
    instructions.filter(pk=instructions.first().pk).update(status="SENT")
    assert codes(mutate(client, "deletePaymentPoint", {"id": ids["point"]}, POINT)) == {"POINT_IN_USE"}
    instructions.update(status="PAID")
    deleted = ok(mutate(client, "deletePaymentPoint", {"id": ids["point"]}, POINT))["paymentPoint"]
    assert deleted["isDeleted"] is True and PaymentPoint.objects.filter(pk=ids["point"]).count() == 0


def test_users_without_payroll_configure_change_nothing(gql, make_user, group_plan, payroll_rights, setup_payments):
    """Cycles and plans need payroll.configuration.manage; payment points (provider URLs and credential
    references) need the separately granted payroll.provider.manage."""
    ids = setup_payments(gql(make_user(payroll_rights)), group_plan)
    attempts = [
        ("updatePaymentCycle", {"id": ids["cycle"], "code": "X"}, CYCLE, "payroll.configuration.manage"),
        ("updatePaymentPlan", {"id": ids["plan"], "name": "X"}, PLAN, "payroll.configuration.manage"),
        ("updatePaymentPoint", {"id": ids["point"], "name": "X"}, POINT, "payroll.provider.manage"),
        ("deletePaymentCycle", {"id": ids["cycle"]}, CYCLE, "payroll.configuration.manage"),
        ("deletePaymentPlan", {"id": ids["plan"]}, PLAN, "payroll.configuration.manage"),
        ("deletePaymentPoint", {"id": ids["point"]}, POINT, "payroll.provider.manage"),
        ("createPaymentPoint", {"code": "NEW", "adaptor": "file"}, POINT, "payroll.provider.manage"),
    ]
    before = snapshot(ids)
    for lacking in ("payroll.configuration.manage", "payroll.provider.manage"):
        client = gql(make_user([p for p in payroll_rights if p != lacking]))
        for name, payload, fields, needed in attempts:
            if needed != lacking:
                continue
            input_type = name[0].upper() + name[1:] + "MutationInput"
            result = client.execute(f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ errors {{ code }} {fields} }} }}",
                                    {"i": payload})
            assert result["data"][name] is None, result
            error = result["errors"][0]["extensions"]
            assert (error["code"], error["permission"]) == ("PERMISSION_DENIED", needed), name
    assert snapshot(ids) == before and PaymentPoint.all_objects.count() == 1
    # and the service functions refuse them too
    with pytest.raises(Exception, match="payroll.configuration.manage'"):
        configuration.update_cycle(make_user([p for p in payroll_rights if p != "payroll.configuration.manage"]), ids["cycle"], code="X")
    with pytest.raises(Exception, match="payroll.provider.manage"):
        configuration.update_point(make_user([p for p in payroll_rights if p != "payroll.provider.manage"]),
                              ids["point"], name="X")
    assert snapshot(ids) == before


@pytest.mark.django_db(transaction=True)
def test_a_rule_change_and_a_generation_never_interleave(make_user, group_plan, blocked_by, generate, generation_rule, payroll_rights):
    """A generation waits for a rule change holding the plan, then computes with the new rule;
    a change that comes while a generation holds the plan waits, then sees its payroll."""
    user = make_user(payroll_rights)
    with acting_as(user):
        cycle = configuration.create_cycle(user, code="2026-01", start_date=datetime.date(2026, 1, 1),
                                      end_date=datetime.date(2026, 1, 31))
        plan = configuration.create_plan(user, code="PP-1", name="Monthly", benefit_plan_id=group_plan.pk,
                                    calculation_rule=generation_rule, currency="BIF", minor_unit=0)
        point = configuration.create_point(user, code="BANK", adaptor="file")
    outcome: dict[str, Any] = {}

    def generate() -> None:
        try:
            with acting_as(user):
                outcome["payroll"], outcome["totals"] = generation.create_payroll(
                    user, name="January", payment_plan_id=plan.pk, payment_cycle_id=cycle.pk,
                    payment_point_id=point.pk)
        except Exception as exc:  # pragma: no cover - reported by the assertions below
            outcome["error"] = exc
        finally:
            connection.close()

    # 1. another request is changing the rule (row locked, new rule written, not committed)
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {PaymentPlan._meta.db_table} WHERE id = %s FOR UPDATE", [plan.pk])
            cursor.execute(f"UPDATE {PaymentPlan._meta.db_table} SET calculation_rule = %s WHERE id = %s",
                           [json.dumps({"fixed": 7}), plan.pk])
        worker = threading.Thread(target=generate)
        worker.start()
        assert blocked_by(other), outcome  # the generation waits for the change
        assert worker.is_alive(), outcome
        other.commit()
        worker.join(30)
    finally:
        other.close()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["totals"]["count"] == 8 and outcome["totals"]["sum"] == 8 * 7  # the new rule, not generation_rule

    # 2. another request is generating a payroll of a plan (plan held, payroll not committed)
    with acting_as(user):
        other_plan = configuration.create_plan(user, code="PP-2", name="Other", benefit_plan_id=group_plan.pk,
                                          calculation_rule=generation_rule, currency="BIF", minor_unit=0)
    changed: dict[str, Any] = {}

    def change() -> None:
        try:
            with acting_as(user):
                configuration.update_plan(user, other_plan.pk, calculation_rule={"fixed": 9})
        except Exception as exc:
            changed["error"] = exc
        finally:
            connection.close()

    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {PaymentPlan._meta.db_table} WHERE id = %s FOR SHARE", [other_plan.pk])
            cursor.execute(
                f"INSERT INTO {Payroll._meta.db_table} (id, date_created, date_updated, version, is_deleted, name, "
                "payment_plan_id, payment_cycle_id, location_ids, status, control_count, control_sum, "
                "generation_report) VALUES (gen_random_uuid(), now(), now(), 1, false, 'Other January', %s, %s, "
                "'[]', 'PENDING_APPROVAL', 0, 0, '{}')", [other_plan.pk, cycle.pk])
        worker = threading.Thread(target=change)
        worker.start()
        assert blocked_by(other), changed  # the change waits for the generation
        assert worker.is_alive(), changed
        other.commit()
        worker.join(30)
    finally:
        other.close()
    assert getattr(changed.get("error"), "code", None) == "PLAN_IN_USE", changed
    assert PaymentPlan.objects.get(pk=other_plan.pk).calculation_rule == generation_rule
