"""Choice fields are GraphQL enums in answers and text in filters (core/README.md, "Vocabularies").

Walks the composed schema: every exposed model field with ``choices`` is an enum whose values are
exactly the stored codes (so answers carry what the column holds), and no filter argument of a
choice field is an enum (openIMIS's frontends send ``status: "ACTIVE"`` quoted). A new module's
type or filter that regresses fails here, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import graphene
import pytest
from django.db import models
from graphene.utils.str_converters import to_camel_case
from graphene_django import DjangoObjectType
from graphene_django.converter import EnumValueField
from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull

from core.graphql.choices import choice_enum

# Exposed choice fields that are not enums, each with its reason.
NOT_ENUMS = {
    # openIMIS's mutationLogs contract: status is the integer 0 received, 1 error, 2 success
    ("MutationLogType", "status"),
}
# Filter arguments that were enums before this convention (the frontends send them unquoted, some
# clients as enum-typed variables): kept so as not to break those; no new one may join them.
ENUM_FILTERS_BEFORE = {
    ("individual", "sex"),
    ("groupIndividual", "role"),
    ("groupIndividual", "recipientType"),
    ("tickets", "status"),
    ("tickets", "status_Icontains"),
    ("grievanceNotifications", "status"),
    ("grievanceSummary", "status"),
    ("csvReconciliationUpload", "status"),
    ("reconciliationMismatch", "klass"),
    ("reconciliationMismatch", "status"),
    ("task", "status"),
    ("taskGroup", "completionPolicy"),
}


def unwrap(graphql_type: Any) -> Any:
    while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
        graphql_type = graphql_type.of_type
    return graphql_type


@pytest.fixture(scope="module")
def graphql_schema() -> Any:
    from core.graphql.schema import schema

    return schema.graphql_schema


def choice_fields(graphql_schema: Any) -> Iterator[tuple[str, str, Any, Any]]:
    """(type name, model field name, model field, GraphQL field) of every exposed choice field."""
    for name, graphql_type in sorted(graphql_schema.type_map.items()):
        graphene_type = getattr(graphql_type, "graphene_type", None)
        if not (isinstance(graphene_type, type) and issubclass(graphene_type, DjangoObjectType)):
            continue
        for model_field in graphene_type._meta.model._meta.get_fields():
            if getattr(model_field, "choices", None):
                field = graphql_type.fields.get(to_camel_case(model_field.name))
                if field is not None:
                    yield name, model_field.name, model_field, field


def choices_classes() -> Iterator[type[models.Choices]]:
    pending = list(models.Choices.__subclasses__())
    while pending:
        klass = pending.pop()
        pending.extend(klass.__subclasses__())
        if klass.__members__:
            yield klass


def field_of(type_name: str, field_name: str, graphql_schema: Any) -> Any:
    return graphql_schema.type_map[type_name].graphene_type._meta.fields.get(field_name)


def answers(output: GraphQLEnumType, member: Any) -> bool:
    try:
        return output.serialize(member) == member.value
    except Exception:
        return False


def openimis_words() -> dict[tuple[str, str], set[str]]:
    """Members an enum has besides the stored codes: openIMIS's words for them, which the field
    answers at openIMIS's address (core.graphql.openimis), and only those."""
    from modules.payroll.schema import OPENIMIS_PAYMENT_WORDS, OPENIMIS_PAYROLL_WORDS

    return {("PayrollGQLType", "status"): set(OPENIMIS_PAYROLL_WORDS.values()),
            ("BenefitConsumptionGQLType", "status"): set(OPENIMIS_PAYMENT_WORDS.values())}


def test_every_choice_field_is_an_enum_of_its_stored_codes(graphql_schema: Any) -> None:
    words = openimis_words()
    found = list(choice_fields(graphql_schema))
    assert len(found) > 20, "the walk found too few choice fields to be looking at the schema"
    wrong = []
    for type_name, field_name, model_field, field in found:
        if (type_name, field_name) in NOT_ENUMS:
            continue
        output = unwrap(field.type)
        if not isinstance(output, GraphQLEnumType):
            wrong.append(f"{type_name}.{field_name} is {output}; use core.graphql.choices.choice_enum")
            continue
        codes = {str(code) for code, _ in model_field.flatchoices}
        names = set(output.values) - (words.get((type_name, field_name), set()) - codes)
        # a saved instance holds the code; a new one may hold the member of the code's Choices class
        # (graphene-django's own enum fields turn members into codes in their resolver)
        # (a field with openIMIS's words has its own resolver, which answers codes as text)
        converts = (isinstance(field_of(type_name, model_field.name, graphql_schema), EnumValueField)
                    or (type_name, field_name) in words)
        members = [] if converts else [m for c in choices_classes() if {str(v) for v in c.values} == codes for m in c]
        if names != codes or any(output.serialize(code) != code for code in codes) or not all(
                answers(output, member) for member in members):
            wrong.append(f"{type_name}.{field_name}: enum {output.name} has {sorted(names)}, the column holds "
                         f"{sorted(codes)} (members must be the stored codes)")
    assert not wrong, "\n".join(wrong)


def test_no_filter_of_a_choice_field_is_an_enum(graphql_schema: Any) -> None:
    choice_names = {to_camel_case(name) for _, name, _, _ in choice_fields(graphql_schema)}
    wrong = []
    for root in (graphql_schema.query_type,):
        for field_name, field in root.fields.items():
            for argument_name, argument in field.args.items():
                base = argument_name.split("_")[0]
                if base in choice_names and isinstance(unwrap(argument.type), GraphQLEnumType):
                    if (field_name, argument_name) not in ENUM_FILTERS_BEFORE:
                        wrong.append(f"{field_name}({argument_name}:) is {unwrap(argument.type)}; declare it with "
                                     "ChoiceTextFilter/ChoiceCodeFilter/ChoiceCodesFilter so quoted codes pass")
    assert not wrong, "\n".join(wrong)


def test_an_answer_carries_the_stored_code(graphql_schema: Any) -> None:
    status = graphql_schema.type_map["PayrollStatus"]
    assert status.serialize("PENDING_APPROVAL") == "PENDING_APPROVAL"
    kind = graphql_schema.type_map["JobEventKind"]
    assert kind.serialize("lease_lapsed") == "lease_lapsed"


def test_choice_enum_is_one_type_per_name_and_refuses_what_cannot_be_an_enum() -> None:
    first = choice_enum("ConventionProbe", [("A", "a"), ("B", "b")])
    assert choice_enum("ConventionProbe", [("A", "a"), ("B", "b")]) is first
    assert issubclass(first, graphene.Enum)
    with pytest.raises(ValueError, match="other codes"):
        choice_enum("ConventionProbe", [("A", "a")])
    with pytest.raises(ValueError, match="cannot be GraphQL enum values"):
        choice_enum("ConventionProbeBad", [("1", "one"), ("two words", "x")])


@pytest.mark.django_db
def test_filters_take_codes_quoted_in_literals_and_string_variables_and_refuse_others(gql: Any, make_user: Any) -> None:
    client = gql(make_user(superuser=True))
    for query in ('{ payroll(status: "APPROVED", status_In: ["APPROVED", "PAID"]) { totalCount } }',
                  '{ paymentCycle(status: "ACTIVE") { totalCount } }',
                  '{ benefitPlan(status: "ACTIVE", type: "INDIVIDUAL") { totalCount } }',
                  '{ beneficiary(status: "ACTIVE", status_In: ["ACTIVE"]) { totalCount } }',
                  '{ jobs(state: "QUEUED") { totalCount } }'):
        assert "errors" not in client.execute(query), query
    # payroll's status takes openIMIS's unquoted enum values too, hence the ChoiceText variable
    assert "errors" not in client.execute('query($s: ChoiceText, $i: [String]) { payroll(status: $s, status_In: $i) '
                                          '{ totalCount } }', {"s": "PAID", "i": ["PAID"]})
    for query in ('{ payroll(status: PENDING_APPROVAL) { totalCount } }',
                  '{ payroll(status: APPROVE_FOR_PAYMENT) { totalCount } }'):
        assert "errors" not in client.execute(query), query
    for query, field in (('{ payroll(status_In: ["APPROVED", "NOPE"]) { totalCount } }', "status_In"),
                         ('{ jobs(state: "done") { totalCount } }', "state"),
                         ('{ benefitPlan(type: "HOUSEHOLD") { totalCount } }', "type")):
        error = client.execute(query)["errors"][0]
        assert error["extensions"]["code"] == "INVALID_FILTER", query
        assert error["message"].startswith(f"Invalid filter: {field}: Select a valid choice"), error["message"]


@pytest.mark.django_db
def test_a_choice_list_filter_left_out_filters_nothing_outside_graphql_too() -> None:
    from modules.social_protection.filters import BeneficiaryFilter
    from modules.social_protection.models import Beneficiary

    everyone = Beneficiary.objects.all()
    assert str(BeneficiaryFilter({}, queryset=everyone).qs.query) == str(everyone.query)
    assert not BeneficiaryFilter({"status__in": []}, queryset=everyone).qs.exists()
    assert not BeneficiaryFilter({"status__in": ["NOPE"]}, queryset=everyone).is_valid()
