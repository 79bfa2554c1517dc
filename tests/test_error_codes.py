"""Error codes are declared members, and the schema lists every refusal a client can see."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull

from core.approvals.errors import ApprovalErrorCode
from core.auth.errors import AuthErrorCode
from core.errors import CoreErrorCode, ErrorCode, FieldError, ServiceError, module_error_enums

pytestmark = pytest.mark.django_db

CREATE_ROLE = """mutation($input: CreateRoleMutationInput!) { createRole(input: $input) {
    errors { field code message } role { name } } }"""


def code_type_of(mutation: str) -> GraphQLEnumType:
    from core.graphql.schema import schema

    payload = schema.graphql_schema.mutation_type.fields[mutation].type
    errors = payload.fields["errors"].type
    assert isinstance(errors, GraphQLNonNull) and isinstance(errors.of_type, GraphQLList)
    error_type = errors.of_type.of_type.of_type
    code = error_type.fields["code"].type
    assert isinstance(code, GraphQLNonNull) and isinstance(code.of_type, GraphQLEnumType)
    return code.of_type


def test_a_members_value_is_its_name_and_it_carries_its_description() -> None:
    assert CoreErrorCode.NOT_FOUND == "NOT_FOUND" and str(CoreErrorCode.NOT_FOUND) == "NOT_FOUND"
    assert "not visible" in CoreErrorCode.NOT_FOUND.description
    assert ServiceError(CoreErrorCode.REQUIRED, "m").code is CoreErrorCode.REQUIRED


def test_a_code_that_is_not_text_is_refused() -> None:
    with pytest.raises(TypeError):
        ServiceError(404, "m")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FieldError("f", None, "m")  # type: ignore[arg-type]


def test_each_mutation_has_the_enum_of_its_module_with_the_generic_codes() -> None:
    roles = code_type_of("createRole")
    assert roles.name == "AuthErrorCode"
    assert {"ROLE_NAME_TAKEN", "UNKNOWN_PERMISSION", "REQUIRED", "NOT_FOUND", "STALE_VERSION"} <= set(roles.values)
    assert "SELF_APPROVAL" not in roles.values  # another area's code is not documented here
    resolve = code_type_of("resolveTask")
    assert resolve.name == "ApprovalErrorCode" and {"SELF_APPROVAL", "OUT_OF_SCOPE"} <= set(resolve.values)
    assert code_type_of("retryJob").name == "JobErrorCode"
    # the schema says what each refusal means
    assert roles.values["ROLE_NAME_TAKEN"].description == AuthErrorCode.ROLE_NAME_TAKEN.description
    assert resolve.values["TASK_CLOSED"].description == ApprovalErrorCode.TASK_CLOSED.description


def test_the_printed_schema_documents_the_refusals() -> None:
    from core.management.commands.print_schema import schema_sdl

    sdl = schema_sdl()
    assert "errors: [ApprovalMutationError!]!" in sdl and "enum ApprovalErrorCode {" in sdl
    assert '"""The maker cannot decide on their own task."""\n  SELF_APPROVAL' in sdl


def test_a_refusal_comes_out_as_its_enum_value(gql: Any, make_user: Any) -> None:
    manager = gql(make_user(["core.role.manage"]))
    manager.ok(CREATE_ROLE, {"input": {"name": "Clerk", "permissions": []}})
    again = manager.ok(CREATE_ROLE, {"input": {"name": "Clerk", "permissions": []}})
    assert again["createRole"]["errors"] == [{"field": "name", "code": "ROLE_NAME_TAKEN",
                                              "message": "A role named 'Clerk' exists already."}]


def test_a_code_the_mutation_does_not_declare_is_refused_logged_and_kept_in_the_log(
        gql: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from core import roles
    from core.graphql import errors
    from core.models import MutationLog, Role

    class StrayErrorCode(ErrorCode):
        STRAY = "STRAY"

    def refusing(*args: Any, **kwargs: Any) -> Any:
        raise ServiceError(StrayErrorCode.STRAY, "A refusal nobody declared.", "name")

    monkeypatch.setattr(roles, "check_create_role", refusing)
    # the production behaviour (the test plug-in otherwise fails the test on purpose)
    monkeypatch.setattr(errors, "on_undeclared_code", errors._log_undeclared)
    with caplog.at_level(logging.ERROR, logger="coremis.mutations"):
        result = gql(make_user(["core.role.manage"])).ok(CREATE_ROLE, {"input": {"name": "R", "permissions": []}})
    assert result["createRole"]["errors"] == [{"field": "name", "code": "REFUSED", "message": "A refusal nobody declared."}]
    assert [getattr(r, "code", None) for r in caplog.records if r.name == "coremis.mutations"] == ["STRAY"]
    assert MutationLog.objects.get(mutation_name="CreateRoleMutation").error[0]["code"] == "STRAY"
    assert not Role.objects.filter(name="R").exists()


def test_the_core_and_its_areas_declare_their_enums() -> None:
    from core.errors import core_error_enums
    from core.jobs import JobErrorCode

    assert {e.__name__ for e in core_error_enums()} == {
        "CoreErrorCode", "RequestErrorCode", "JobErrorCode", "ApprovalErrorCode", "AuthErrorCode"}
    assert JobErrorCode.JOB_FINISHED.description
    assert module_error_enums("modules.no_such_module") == []


def test_a_request_level_refusal_uses_a_member(client: Any) -> None:
    response = client.post("/graphql", data="[1]", content_type="application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_BODY"
