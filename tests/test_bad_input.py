"""The bad inputs of issue 9.11, each refused with a typed error at the edge, never a database
or Python message, and never stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modules.individual.models import Individual
from modules.social_protection import targeting
from modules.social_protection.models import BenefitPlan

pytestmark = pytest.mark.django_db

LEAKS = ("invalid input syntax", "unsupported Unicode", "numeric field overflow", "decimal.InvalidOperation",
         "NoneType", "has no len", "<class", "Traceback")

LIST = 'query($f: [String]) { individual(customFilters: $f) { totalCount } }'
PLAN = """mutation($i: CreateBenefitPlanMutationInput!) { createBenefitPlan(input: $i) {
    errors { field code message } benefitPlan { uuid } } }"""
PERSON = """mutation($i: CreateIndividualMutationInput!) { createIndividual(input: $i) {
    errors { field code message } individual { uuid } } }"""


@pytest.fixture
def client(gql: Any, make_user: Any) -> Any:
    return gql(make_user(superuser=True))


def refused(result: dict[str, Any], payload: str | None = None) -> tuple[str, str]:
    """(code, message) of the one refusal in ``result``, asserting it leaks nothing."""
    text = json.dumps(result)
    assert not [leak for leak in LEAKS if leak in text], text
    if payload is not None and not result.get("errors"):
        errors = result["data"][payload]["errors"]
        return errors[0]["code"], errors[0]["message"]
    error = result["errors"][0]
    return error["extensions"]["code"], error["message"]


@pytest.mark.parametrize("condition", [
    "vulnerability_score__lt__decimal=NaN", "vulnerability_score__lt__decimal=Infinity",
    "vulnerability_score__gt__decimal=-inf", "vulnerability_score__lt__decimal=1e400",
])
def test_non_finite_custom_filters_are_refused(client, condition):
    code, message = refused(client.execute(LIST, {"f": [condition]}))
    assert code == "INVALID_CUSTOM_FILTER" and "is not a valid decimal" in message


def test_a_null_custom_filter_is_refused(client):
    code, message = refused(client.execute(LIST, {"f": [None]}))
    assert code == "INVALID_CUSTOM_FILTER" and "cannot be null" in message


def plan_input(**fields: Any) -> dict[str, Any]:
    return {"i": {"code": "CT-1", "name": "Cash", "type": "INDIVIDUAL", "dateValidFrom": "2026-01-01",
                  "dateValidTo": "2026-12-31", **fields}}


@pytest.mark.parametrize("criteria", [
    '{"conditions": [{"field": "first_name", "value": NaN}]}',
    '{"conditions": [{"filter": "vulnerability_score__lt__decimal=NaN"}]}',
    '{"conditions": [{"field": "first_name", "value": Infinity}]}',
    '{"conditions": [{"field": "first_name", "value": "a\\u0000"}]}',
])
def test_criteria_with_nan_infinity_or_nul_are_refused_and_not_stored(client, criteria):
    code, _ = refused(client.execute(PLAN, plan_input(criteria=criteria)), "createBenefitPlan")
    assert code in ("INVALID_NUMBER", "INVALID_CRITERIA", "INVALID_CHARACTER", "INVALID_CUSTOM_FILTER")
    assert not BenefitPlan.objects.exists()


def test_the_criteria_language_itself_refuses_what_json_cannot_store():
    errors = targeting.validate("INDIVIDUAL", {"conditions": [{"field": "sex", "value": float("nan")}]})
    assert [e.code for e in errors] == ["INVALID_CRITERIA"] and "NaN" in errors[0].message
    errors = targeting.validate("INDIVIDUAL", {"conditions": [{"field": "sex", "value": {"a": 1}}]})
    assert errors[0].field == "criteria.conditions[0].value"
    errors = targeting.validate("INDIVIDUAL", {"conditions": [{"field": ["sex"]}]})
    assert errors[0].field == "criteria.conditions[0].field"


@pytest.mark.parametrize(("ceiling", "code"), [("1e40", "NUMBER_OUT_OF_RANGE"), ("NaN", "INVALID_NUMBER"),
                                               ("-Infinity", "INVALID_NUMBER"), ("sNaN", "INVALID_NUMBER")])
def test_a_ceiling_out_of_range_or_not_a_number_is_refused(client, ceiling, code):
    got, message = refused(client.execute(PLAN, plan_input(ceilingPerBeneficiary=ceiling)), "createBenefitPlan")
    assert got == code and "ceilingPerBeneficiary" in message
    assert not BenefitPlan.objects.exists()


def test_a_nul_in_a_name_or_in_json_ext_is_refused(client, admin_user):
    base = {"firstName": "Ana", "lastName": "N", "dob": "1990-01-01"}
    code, _ = refused(client.execute(PERSON, {"i": {**base, "firstName": "A\x00na"}}))
    assert code == "INVALID_CHARACTER"
    code, message = refused(client.execute(PERSON, {"i": {**base, "jsonExt": '{"phone": "1\\u0000"}'}}),
                            "createIndividual")
    assert code == "INVALID_CHARACTER" and "jsonExt.phone" in message
    assert not Individual.objects.exists()


@pytest.mark.parametrize("body", ['{"query": 123}', '{"query": null, "variables": 5}', "[]"])
def test_a_malformed_request_body_is_refused(django_client_post, body):
    response = django_client_post(body)
    assert response.status_code == 400
    refused(response.json())


@pytest.fixture
def django_client_post(client: Any) -> Any:
    from django.test import Client

    raw = Client()
    return lambda body: raw.post("/graphql", data=body, content_type="application/json")


# --- found by the hostile-input walk (tests/test_hostile_inputs.py) -----------------------------


def test_a_null_in_order_by_is_refused(client):
    code, _ = refused(client.execute('{ roles(orderBy: [null]) { totalCount } }'))
    assert code == "INVALID_ORDER_BY"


def test_a_filter_value_outside_its_choices_is_a_typed_error(client):
    code, message = refused(client.execute('{ individualHistory(operation: "X") { totalCount } }'))
    assert code == "INVALID_FILTER" and message.startswith("Invalid filter: operation: Select a valid choice.")


def test_client_fields_too_long_for_the_log_are_refused(client):
    result = client.execute('mutation($k: String) { createRole(input: {name: "R", permissions: [], '
                            'clientMutationId: $k}) { errors { field code } role { name } } }', {"k": "k" * 256})
    assert result["data"]["createRole"] == {"errors": [{"field": "clientMutationId", "code": "TOO_LONG"}],
                                            "role": None}


def test_an_unpaired_surrogate_is_refused_like_a_nul(client):
    code, _ = refused(client.execute(PERSON, {"i": {"firstName": "A\ud800", "lastName": "N", "dob": "1990-01-01"}}))
    assert code == "INVALID_CHARACTER"
    code, message = refused(client.execute(PERSON, {"i": {"firstName": "Ana", "lastName": "N", "dob": "1990-01-01",
                                                          "jsonExt": '{"phone": "\\udfff"}'}}), "createIndividual")
    assert code == "INVALID_CHARACTER" and "jsonExt.phone" in message
