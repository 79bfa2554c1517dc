"""Every way in shares one backend: the Django admin and ``tokenAuth`` count the same failures
and honour the same lockout."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings

from core.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
TOKEN_AUTH = "mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) { token } }"


def token_auth(client: Any, username: str, password: str) -> dict[str, Any]:
    response = client.post("/graphql", data=json.dumps({"query": TOKEN_AUTH, "variables": {"u": username, "p": password}}),
                           content_type="application/json")
    return response.json()


def admin_login(client: Any, username: str, password: str) -> Any:
    return client.post("/admin/login/?next=/admin/",
                       {"username": username, "password": password, "next": "/admin/"})


def is_logged_in_to_admin(client: Any) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture
def operator(make_user: Any) -> User:
    user = make_user([], username="operator")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    return user


def test_the_admin_accepts_the_right_password_of_an_unlocked_account(client: Any, operator: User) -> None:
    response = admin_login(client, "operator", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert is_logged_in_to_admin(client)


def test_failures_through_token_auth_lock_the_admin_login_too(client: Any, operator: User) -> None:
    for _ in range(settings.COREMIS["LOGIN_MAX_FAILURES"]):
        token_auth(client, "operator", "wrong-password")
    response = admin_login(client, "operator", PASSWORD)
    assert response.status_code == 200
    page = response.content.decode()
    assert "This account is locked after too many failed log-ins" in page
    assert not is_logged_in_to_admin(client)


def test_failures_through_the_admin_lock_token_auth_too(client: Any, operator: User) -> None:
    for _ in range(settings.COREMIS["LOGIN_MAX_FAILURES"]):
        refused = admin_login(client, "operator", "wrong-password")
        assert refused.status_code == 200 and not is_logged_in_to_admin(client)
    operator.refresh_from_db()
    assert operator.locked_until is not None
    result = token_auth(client, "operator", PASSWORD)
    assert result["data"]["tokenAuth"] is None
    assert result["errors"][0]["extensions"]["code"] == "ACCOUNT_LOCKED"


def test_a_wrong_admin_password_counts_as_a_failed_log_in(client: Any, operator: User) -> None:
    response = admin_login(client, "operator", "wrong-password")
    assert "Please enter the correct username and password" in response.content.decode()
    operator.refresh_from_db()
    assert operator.failed_login_attempts == 1
