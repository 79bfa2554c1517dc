"""Logging in over GraphQL: tokens, refresh, verification, lockout, and what a bad token gets."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

from core.models import User

PASSWORD = "correct-horse-battery"

TOKEN_AUTH = """
mutation($u: String!, $p: String!) {
  tokenAuth(username: $u, password: $p) { token refreshToken payload refreshExpiresIn }
}"""
REFRESH = """
mutation($t: String!) {
  refreshToken(refreshToken: $t) { token refreshToken payload refreshExpiresIn }
}"""
VERIFY = "mutation($t: String!) { verifyToken(token: $t) { payload } }"
PROTECTED = "{ mutationLogs { totalCount } }"
LOCKED_MESSAGE = "This account is locked after too many failed log-ins"


def post(client: Any, query: str, variables: dict[str, Any] | None = None,
         token: str | None = None) -> dict[str, Any]:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = client.post(
        "/graphql", data=json.dumps({"query": query, "variables": variables or {}}),
        content_type="application/json", **headers,
    )
    assert response.status_code in (200, 400), response.content[:500]
    return response.json()


def log_in(client: Any, username: str, password: str) -> dict[str, Any]:
    return post(client, TOKEN_AUTH, {"u": username, "p": password})


def tokens_of(client: Any, username: str, password: str = PASSWORD) -> dict[str, Any]:
    result = log_in(client, username, password)
    assert not result.get("errors"), result["errors"]
    return result["data"]["tokenAuth"]


def error_codes(result: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result.get("errors") or []]


def only_error(result: dict[str, Any]) -> dict[str, Any]:
    errors = result.get("errors") or []
    assert len(errors) == 1, result
    return errors[0]


def assert_refused(client: Any, token: str, code: str = "TOKEN_INVALID") -> None:
    """The protected query with this token gets nothing, and the error says what is wrong
    with the token (so a client knows whether to refresh or to log in again)."""
    result = post(client, PROTECTED, token=token)
    assert result["data"]["mutationLogs"] is None
    assert error_codes(result) == [code]


@pytest.fixture
def reader(make_user: Any) -> User:
    return make_user(["core.mutation_log.view"], username="reader")


def test_token_auth_returns_the_token_pair_and_payload(client: Any, reader: User) -> None:
    before = timezone.now()
    issued = tokens_of(client, "reader")
    payload = json.loads(issued["payload"]) if isinstance(issued["payload"], str) else issued["payload"]
    assert payload["username"] == "reader"
    assert payload["sub"] == str(reader.pk)
    assert payload["type"] == "access"
    assert issued["token"] and issued["refreshToken"] and issued["token"] != issued["refreshToken"]
    refresh_days = settings.COREMIS["JWT_REFRESH_TTL"]
    expected = (before + refresh_days).timestamp()
    assert abs(issued["refreshExpiresIn"] - expected) < 60
    reader.refresh_from_db()
    assert reader.last_login is not None and reader.last_login >= before - timedelta(seconds=1)


def test_the_access_token_authenticates_a_protected_query(client: Any, reader: User) -> None:
    issued = tokens_of(client, "reader")
    result = post(client, PROTECTED, token=issued["token"])
    assert not result.get("errors"), result
    assert result["data"]["mutationLogs"]["totalCount"] == 0
    # without the token the same query is refused
    anonymous = post(client, PROTECTED)
    assert anonymous["data"]["mutationLogs"] is None
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]


def test_a_user_without_the_permission_is_forbidden(client: Any, make_user: Any) -> None:
    make_user(["core.job.view"], username="jobs-only")
    result = post(client, PROTECTED, token=tokens_of(client, "jobs-only")["token"])
    assert result["data"]["mutationLogs"] is None
    error = only_error(result)
    assert error["extensions"] == {"code": "PERMISSION_DENIED", "permission": "core.mutation_log.view"}


def test_the_token_check_reads_the_codes_of_live_roles_only_in_one_statement(client: Any, make_user: Any) -> None:
    """The request's one token statement carries the user's role codes: a role soft-deleted
    after log-in stops granting at once, another role of the same user keeps granting."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.models import Role

    user = make_user(["core.mutation_log.view"], username="two-roles")
    jobs_role = Role.objects.create(name="jobs viewer", permissions=["core.job.view"])
    user.roles.add(jobs_role)
    token = tokens_of(client, "two-roles")["token"]
    with CaptureQueriesContext(connection) as captured:
        assert not post(client, PROTECTED, token=token).get("errors")
    assert sum("core_loginsession" in q["sql"] for q in captured.captured_queries) == 1
    assert not any("core_user_roles" in q["sql"] and "core_loginsession" not in q["sql"]
                   for q in captured.captured_queries), "the role codes took a statement of their own"
    Role.objects.filter(name="role-two-roles").update(is_deleted=True)
    refused = post(client, PROTECTED, token=token)
    assert refused["data"]["mutationLogs"] is None
    assert only_error(refused)["extensions"]["code"] == "PERMISSION_DENIED"
    assert not post(client, "{ jobs { totalCount } }", token=token).get("errors")


def test_a_token_stops_working_when_its_user_is_deactivated_or_its_session_revoked(
        client: Any, make_user: Any) -> None:
    """The token check (read on a plain cursor, the user made from its row) still refuses a user
    deactivated after log-in and a revoked session, and the user it makes is the saved row."""
    from core.auth.tokens import decode
    from core.models import LoginSession

    user = make_user(["core.mutation_log.view"], username="leaving")
    token = tokens_of(client, "leaving")["token"]
    assert not post(client, PROTECTED, token=token).get("errors")
    decoded, _ = decode(token)
    assert decoded.pk == user.pk and not decoded._state.adding and decoded.username == "leaving"
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert only_error(post(client, PROTECTED, token=token))["extensions"]["code"] == "TOKEN_INVALID"
    User.objects.filter(pk=user.pk).update(is_active=True)
    assert not post(client, PROTECTED, token=token).get("errors")
    LoginSession.objects.filter(user=user).update(revoked_at=timezone.now())
    assert only_error(post(client, PROTECTED, token=token))["extensions"]["code"] == "TOKEN_INVALID"


def test_refresh_gives_a_new_working_access_token(client: Any, reader: User) -> None:
    issued = tokens_of(client, "reader")
    result = post(client, REFRESH, {"t": issued["refreshToken"]})
    assert not result.get("errors"), result
    renewed = result["data"]["refreshToken"]
    assert renewed["token"] != issued["token"]
    assert renewed["refreshToken"] != issued["refreshToken"]
    used = post(client, PROTECTED, token=renewed["token"])
    assert not used.get("errors"), used
    assert used["data"]["mutationLogs"]["totalCount"] == 0


def test_refresh_refuses_an_access_token(client: Any, reader: User) -> None:
    issued = tokens_of(client, "reader")
    result = post(client, REFRESH, {"t": issued["token"]})
    assert result["data"] is None or result["data"]["refreshToken"] is None
    error = only_error(result)
    assert error["extensions"]["code"] == "TOKEN_INVALID"
    assert error["message"] == "This is not a refresh token."


def test_a_refresh_token_does_not_authenticate_requests(client: Any, reader: User) -> None:
    assert_refused(client, tokens_of(client, "reader")["refreshToken"])


def test_verify_token(client: Any, reader: User) -> None:
    issued = tokens_of(client, "reader")
    result = post(client, VERIFY, {"t": issued["token"]})
    assert not result.get("errors"), result
    payload = result["data"]["verifyToken"]["payload"]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert payload["username"] == "reader" and payload["type"] == "access"

    refused = post(client, VERIFY, {"t": issued["refreshToken"]})
    assert error_codes(refused) == ["TOKEN_INVALID"]
    garbage = post(client, VERIFY, {"t": "not.a.token"})
    assert error_codes(garbage) == ["TOKEN_INVALID"]
    assert only_error(garbage)["message"] == "The token is not valid."


def test_a_wrong_password_is_refused(client: Any, reader: User) -> None:
    result = log_in(client, "reader", "wrong-password")
    assert result["data"] is None or result["data"]["tokenAuth"] is None
    error = only_error(result)
    assert error["message"] == "Invalid username or password."
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    reader.refresh_from_db()
    assert reader.failed_login_attempts == 1


def test_an_unknown_username_gets_the_same_answer_as_a_wrong_password(client: Any, reader: User) -> None:
    unknown = only_error(log_in(client, "nobody-here", PASSWORD))
    wrong = only_error(log_in(client, "reader", "wrong-password"))
    assert unknown["message"] == wrong["message"] == "Invalid username or password."
    assert unknown["extensions"] == wrong["extensions"]


def test_a_nul_character_in_the_credentials_is_refused_without_a_database_error(client: Any, reader: User) -> None:
    # The GraphQL edge refuses a NUL anywhere in a request before any resolver runs; the
    # authentication backend itself (the admin's door too) treats one as a failed log-in.
    from django.contrib.auth import authenticate

    for username, password in (("read\x00er", PASSWORD), ("reader", "pass\x00word")):
        error = only_error(log_in(client, username, password))
        assert error["extensions"]["code"] == "INVALID_CHARACTER"
        assert "database" not in error["message"].lower()
        assert authenticate(None, username=username, password=password) is None


def test_an_inactive_account_cannot_log_in(client: Any, reader: User) -> None:
    User.objects.filter(pk=reader.pk).update(is_active=False)
    assert only_error(log_in(client, "reader", PASSWORD))["message"] == "Invalid username or password."


def test_repeated_failures_lock_the_account_until_the_lockout_passes(client: Any, reader: User) -> None:
    limit = settings.COREMIS["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        assert error_codes(log_in(client, "reader", "wrong-password")) == ["INVALID_CREDENTIALS"]
    locking = only_error(log_in(client, "reader", "wrong-password"))
    assert locking["extensions"]["code"] == "ACCOUNT_LOCKED"
    minutes = int(settings.COREMIS["LOGIN_LOCKOUT"].total_seconds() // 60)
    assert f"locked for {minutes} minutes after {limit} failed log-ins" in locking["message"]

    reader.refresh_from_db()
    assert reader.locked_until is not None and reader.locked_until > timezone.now()

    # even the right password is refused while locked, with a message saying until when
    refused = only_error(log_in(client, "reader", PASSWORD))
    assert refused["extensions"]["code"] == "ACCOUNT_LOCKED"
    assert LOCKED_MESSAGE in refused["message"]
    assert f"{reader.locked_until:%Y-%m-%d %H:%M} UTC" in refused["message"]

    # time passes
    User.objects.filter(pk=reader.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    issued = tokens_of(client, "reader")
    assert post(client, PROTECTED, token=issued["token"])["data"]["mutationLogs"]["totalCount"] == 0
    reader.refresh_from_db()
    assert reader.failed_login_attempts == 0 and reader.locked_until is None


def test_a_successful_log_in_resets_the_failure_count(client: Any, reader: User) -> None:
    limit = settings.COREMIS["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        log_in(client, "reader", "wrong-password")
    tokens_of(client, "reader")
    # the count started again: limit - 1 more failures do not lock
    for _ in range(limit - 1):
        assert error_codes(log_in(client, "reader", "wrong-password")) == ["INVALID_CREDENTIALS"]
    tokens_of(client, "reader")


def test_an_expired_access_token_is_refused_as_expired(client: Any, reader: User, settings: Any) -> None:
    settings.COREMIS = {**settings.COREMIS, "JWT_ACCESS_TTL": timedelta(seconds=-5)}
    issued = tokens_of(client, "reader")
    assert_refused(client, issued["token"], "TOKEN_EXPIRED")
    expired = only_error(post(client, VERIFY, {"t": issued["token"]}))
    assert expired["extensions"]["code"] == "TOKEN_EXPIRED"


def test_an_expired_refresh_token_is_refused(client: Any, reader: User, settings: Any) -> None:
    settings.COREMIS = {**settings.COREMIS, "JWT_REFRESH_TTL": timedelta(seconds=-5)}
    issued = tokens_of(client, "reader")
    assert error_codes(post(client, REFRESH, {"t": issued["refreshToken"]})) == ["TOKEN_EXPIRED"]


def test_a_tampered_token_is_refused(client: Any, reader: User, make_user: Any) -> None:
    make_user(superuser=True, username="boss")
    issued = tokens_of(client, "reader")
    header, body, signature = issued["token"].split(".")
    # swap in the payload of a token claiming to be the superuser, keeping the reader's signature
    boss_body = tokens_of(client, "boss")["token"].split(".")[1]
    assert_refused(client, f"{header}.{boss_body}.{signature}")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    assert_refused(client, f"{header}.{body}.{flipped}")


def test_a_token_signed_with_another_key_is_refused(client: Any, reader: User) -> None:
    claims = jwt.decode(tokens_of(client, "reader")["token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "some-other-secret-key-of-sufficient-length", algorithm="HS256")
    assert_refused(client, forged)
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert_refused(client, unsigned)


def test_changing_the_password_invalidates_old_tokens(client: Any, reader: User) -> None:
    issued = tokens_of(client, "reader")
    assert not post(client, PROTECTED, token=issued["token"]).get("errors")
    reader.set_password("a-brand-new-passphrase")
    reader.save()
    assert_refused(client, issued["token"])
    assert error_codes(post(client, REFRESH, {"t": issued["refreshToken"]})) == ["TOKEN_INVALID"]
    assert error_codes(log_in(client, "reader", PASSWORD)) == ["INVALID_CREDENTIALS"]
    fresh = tokens_of(client, "reader", "a-brand-new-passphrase")
    assert not post(client, PROTECTED, token=fresh["token"]).get("errors")


def test_a_deactivated_account_loses_its_tokens(client: Any, reader: User) -> None:
    issued = tokens_of(client, "reader")
    User.objects.filter(pk=reader.pk).update(is_active=False)
    assert_refused(client, issued["token"])


def test_a_session_cookie_does_not_authenticate_graphql(client: Any, reader: User) -> None:
    client.force_login(reader)
    result = post(client, PROTECTED)
    assert error_codes(result) == ["UNAUTHENTICATED"]


@pytest.mark.django_db
def test_a_query_deeper_than_the_limit_is_refused_before_it_runs(gql, make_user, settings):
    client = gql(make_user(["location.location.search", "location.scope.national"]))
    nested = "parent { " * 11 + "code" + " }" * 11
    result = client.execute("{ locations { edges { node { %s } } } }" % nested)
    assert "data" not in result or result["data"] is None
    assert "exceeds maximum operation depth" in result["errors"][0]["message"]
    shallow = client.execute("{ locations { edges { node { parent { code } } } } }")
    assert "errors" not in shallow
