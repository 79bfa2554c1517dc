"""Refresh tokens work once, are stored only as hashes, and logging out ends a log-in.

A replayed (spent) refresh token is the sign that a copy is in someone else's hands: the whole
log-in it belongs to ends, for the thief and the owner alike, while the owner's other log-ins
(another device) keep working.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.models import LoginSession, User

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
TOKEN_AUTH = "mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) { token refreshToken refreshExpiresIn } }"
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { token refreshToken refreshExpiresIn } }"
REVOKE = "mutation($t: String!) { revokeToken(refreshToken: $t) { revoked } }"
PROTECTED = "{ mutationLogs { totalCount } }"


def post(client: Any, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", data=json.dumps({"query": query, "variables": variables or {}}),
                           content_type="application/json", **headers)
    assert response.status_code == 200, response.content[:300]
    return response.json()


def log_in(client: Any) -> dict[str, Any]:
    result = post(client, TOKEN_AUTH, {"u": "reader", "p": PASSWORD})
    assert not result.get("errors"), result
    return result["data"]["tokenAuth"]


def refresh(client: Any, refresh_token: str) -> dict[str, Any]:
    return post(client, REFRESH, {"t": refresh_token})


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors") or []]


def works(client: Any, access_token: str) -> bool:
    result = post(client, PROTECTED, token=access_token)
    if result.get("errors"):
        assert codes(result) == ["TOKEN_INVALID"], result
        return False
    return True


@pytest.fixture(autouse=True)
def reader(make_user: Any) -> User:
    return make_user(["core.mutation_log.view"], username="reader")


def test_each_refresh_token_works_once_and_its_replay_ends_the_log_in(client: Any) -> None:
    first = log_in(client)
    other_device = log_in(client)
    second = refresh(client, first["refreshToken"])["data"]["refreshToken"]
    assert second["refreshToken"] != first["refreshToken"]
    assert works(client, second["token"])

    replay = refresh(client, first["refreshToken"])
    assert replay["data"]["refreshToken"] is None
    assert codes(replay) == ["TOKEN_INVALID"]
    assert "already used" in replay["errors"][0]["message"]

    # the whole log-in is over: the newest refresh token and the access tokens it gave
    assert codes(refresh(client, second["refreshToken"])) == ["TOKEN_INVALID"]
    assert not works(client, second["token"])
    assert not works(client, first["token"])
    # the same person's log-in on another device is untouched
    assert works(client, other_device["token"])
    assert not refresh(client, other_device["refreshToken"]).get("errors")
    assert LoginSession.objects.get(revoked_reason=LoginSession.REVOKED_REUSE).revoked_at is not None


def test_refreshing_moves_the_expiry_forward(client: Any) -> None:
    first = log_in(client)
    renewed = refresh(client, first["refreshToken"])["data"]["refreshToken"]
    assert renewed["refreshExpiresIn"] >= first["refreshExpiresIn"]


def test_logging_out_ends_the_refresh_token_and_the_access_token_at_once(client: Any) -> None:
    issued = log_in(client)
    kept = log_in(client)
    result = post(client, REVOKE, {"t": issued["refreshToken"]})
    assert not result.get("errors"), result
    assert result["data"]["revokeToken"]["revoked"] > 0

    assert not works(client, issued["token"])
    refused = refresh(client, issued["refreshToken"])
    assert codes(refused) == ["TOKEN_INVALID"]
    assert "log in again" in refused["errors"][0]["message"]
    # logging out twice is not an error; other log-ins go on
    again = post(client, REVOKE, {"t": issued["refreshToken"]})
    assert again["data"]["revokeToken"]["revoked"] == result["data"]["revokeToken"]["revoked"]
    assert works(client, kept["token"])


def test_a_made_up_refresh_token_is_invalid_not_a_request_to_log_in(client: Any) -> None:
    log_in(client)
    for bogus in ("", "nonsense", "a.b", "a.b.c", "x" * 500 + "." + "y" * 10):
        assert codes(refresh(client, bogus)) == ["TOKEN_INVALID"], bogus
        assert codes(post(client, REVOKE, {"t": bogus})) == ["TOKEN_INVALID"], bogus


def test_refresh_tokens_are_stored_only_as_hashes(client: Any) -> None:
    issued = log_in(client)
    family_key, secret = issued["refreshToken"].split(".")
    row = LoginSession.objects.values().get()
    stored = " ".join(str(v) for v in row.values())
    assert family_key not in stored and secret not in stored
    assert len(row["token_hash"]) == len(row["family_hash"]) == 64


def test_a_password_change_ends_every_log_in(client: Any, reader: User) -> None:
    issued = log_in(client)
    reader.set_password("a-brand-new-passphrase")
    reader.save()
    assert codes(refresh(client, issued["refreshToken"])) == ["TOKEN_INVALID"]
    assert LoginSession.objects.get().revoked_reason == LoginSession.REVOKED_PASSWORD


def test_a_deactivated_account_cannot_refresh(client: Any, reader: User) -> None:
    issued = log_in(client)
    User.objects.filter(pk=reader.pk).update(is_active=False)
    assert codes(refresh(client, issued["refreshToken"])) == ["TOKEN_INVALID"]
