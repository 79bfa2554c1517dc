"""The attack of issue 9: a payment point that sends a server environment variable to a server
of the attacker's choosing. Refused when the point is saved, and never sent even when such a
row is already in the database."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.loader import module_config
from modules.location.services import set_user_locations
from modules.payroll.models import BenefitConsumption, PaymentPoint
from modules.payroll.sending import send_payroll
from modules.payroll.services import configuration

pytestmark = pytest.mark.django_db

POINT = "paymentPoint { uuid }"


@contextmanager
def attacker() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A server that records everything it is sent, and redirects ``/go`` to ``/stolen``."""
    received: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((self.command, self.path, body + self.headers.get("Authorization", "").encode()))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"access_token": "t", "expires_in": 60, "results": []}')

        do_GET = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def stolen_config(url: str, variable: str) -> dict[str, Any]:
    return {"base_url": url, "client_id": "x", "client_secret": {"env": variable}, "batch_size": 10}


@pytest.mark.parametrize("variable", ["HOME", "COREMIS_SECRET_KEY", "DATABASE_URL"])
def test_a_point_naming_a_server_variable_and_an_unlisted_url_is_refused_at_save(gql, make_user, variable,
                                                                                 monkeypatch, allow_outbound, mutate, payroll_rights):
    allow_outbound(monkeypatch, "https://api.provider.example")
    client = gql(make_user(payroll_rights))
    with attacker() as (url, received):
        result = mutate(client, "createPaymentPoint", {"code": "EVIL", "adaptor": "mobile_money",
                                                       "config": stolen_config(url, variable)}, POINT)
        codes = {e["code"]: e["message"] for e in result["errors"]}
        assert set(codes) == {"SECRET_NOT_ALLOWED", "URL_NOT_ALLOWED"}, result
        assert variable in codes["SECRET_NOT_ALLOWED"] and "outbound_urls" in codes["URL_NOT_ALLOWED"]
        # an allowed URL does not make the variable acceptable, nor the other way round
        allowed = mutate(client, "createPaymentPoint", {
            "code": "EVIL", "adaptor": "mobile_money",
            "config": stolen_config("https://api.provider.example", variable)}, POINT)
        assert {e["code"] for e in allowed["errors"]} == {"SECRET_NOT_ALLOWED"}
        assert not PaymentPoint.all_objects.exists() and received == []


def test_a_province_officer_cannot_configure_providers(gql, make_user, admin_user, country, mutate, payroll_rights):
    # the officer held payroll.configuration.manage: that no longer reaches payment points
    officer = make_user([p for p in payroll_rights if p not in ("location.scope.national", "payroll.provider.manage")])
    set_user_locations(admin_user, officer, [country["P1"].pk])
    refused = gql(officer).execute(
        'mutation { createPaymentPoint(input: {code: "EVIL", adaptor: "file"}) { errors { code } } }')
    assert refused["errors"][0]["extensions"] == {"code": "PERMISSION_DENIED", "permission": "payroll.provider.manage"}

    # and the right itself is national
    provincial = make_user([p for p in payroll_rights if p != "location.scope.national"])
    set_user_locations(admin_user, provincial, [country["P1"].pk])
    result = mutate(gql(provincial), "createPaymentPoint", {"code": "EVIL", "adaptor": "file"}, POINT)
    assert [e["code"] for e in result["errors"]] == ["OUT_OF_SCOPE"]
    assert "national scope" in result["errors"][0]["message"]
    assert not PaymentPoint.all_objects.exists()


def test_a_stored_point_that_breaks_the_rules_is_never_sent_to(admin_user, group_plan, monkeypatch, allow_outbound, sending_payroll):
    """A row written before the rules (or by hand) is checked again when it is used."""
    monkeypatch.setenv("COREMIS_PSP_MM_SECRET", "client-secret")
    with attacker() as (url, received):
        point = configuration.create_point(admin_user, code="FILE", adaptor="file")
        payroll = sending_payroll(admin_user, group_plan, point)

        def send_with(config: dict[str, Any]) -> str:
            PaymentPoint.objects.filter(pk=point.pk).update(adaptor="mobile_money", config=config)
            BenefitConsumption.objects.filter(payroll=payroll).update(dispatched_at=None)  # a fresh attempt
            return send_payroll(payroll.pk, admin_user)["error"]

        assert "HOME" in send_with(stolen_config(url, "HOME"))
        assert "is not in the allowed outbound URLs" in send_with(stolen_config(url, "COREMIS_PSP_MM_SECRET"))
        allow_outbound(monkeypatch, url)
        for variable in ("HOME", "COREMIS_SECRET_KEY", "DATABASE_URL"):
            assert "platform's own" in send_with(stolen_config(url, variable))
        # a listed base URL whose path setting moves the request to another host
        allow_outbound(monkeypatch, "http://127.0.0.1:9")
        error = send_with({**stolen_config("http://127.0.0.1:9", "COREMIS_PSP_MM_SECRET"),
                           "token_path": f"@{url.removeprefix('http://')}/x"})
        assert "user name or password" in error
        assert received == []
    assert set(BenefitConsumption.objects.filter(payroll=payroll).values_list("status", flat=True)) == {"CREATED"}


def test_a_provider_redirect_is_not_followed(admin_user, group_plan, monkeypatch, mobile_money_simulator, allow_outbound, sending_payroll):
    """An allowed provider that redirects would have our bearer token carried to the new host."""
    monkeypatch.setenv("COREMIS_PSP_MM_SECRET", "client-secret")
    with attacker() as (evil, received):
        simulated = mobile_money_simulator.provider(client_secret="client-secret", signing_key="k", callback_key="k",
                                                    redirect_to=f"{evil}/stolen", faults=["redirect"])
        with mobile_money_simulator.running(simulated) as url:
            allow_outbound(monkeypatch, url)
            point = configuration.create_point(admin_user, code="MM", adaptor="mobile_money",
                                          config=stolen_config(url, "COREMIS_PSP_MM_SECRET"))
            payroll = sending_payroll(admin_user, group_plan, point)
            send_payroll(payroll.pk, admin_user)
    assert received == []
    assert simulated.receipts == {}


def test_a_careless_prefix_still_keeps_the_platforms_variables(gql, make_user, monkeypatch, mutate, payroll_rights):
    monkeypatch.setitem(module_config("payroll"), "secret_env_prefix", "COREMIS_")
    client = gql(make_user(payroll_rights))
    refused = mutate(client, "createPaymentPoint", {"code": "F", "adaptor": "file",
                                                    "config": {"callback_token": {"env": "COREMIS_SECRET_KEY"}}}, POINT)
    assert [e["code"] for e in refused["errors"]] == ["SECRET_NOT_ALLOWED"]
    made = mutate(client, "createPaymentPoint", {"code": "F", "adaptor": "file",
                                                 "config": {"callback_token": {"env": "COREMIS_BANK_TOKEN"}}}, POINT)
    assert made["errors"] == [] and json.loads(json.dumps(made))["paymentPoint"]["uuid"]


def test_a_callback_token_naming_a_server_variable_authenticates_nobody(admin_user, group_plan, client, monkeypatch, sending_payroll):
    """A caller who can guess a platform variable (HOME is often /root) must not pass for the
    provider by sending it."""
    monkeypatch.setenv("HOME", "/root")
    point = configuration.create_point(admin_user, code="BANK", adaptor="file")
    payroll = sending_payroll(admin_user, group_plan, point)
    PaymentPoint.objects.filter(pk=point.pk).update(config={"callback_token": {"env": "HOME"}})
    reference = BenefitConsumption.objects.filter(payroll=payroll).values_list("code", flat=True).first()
    answer = client.post("/api/payroll/callback/BANK", data=f"reference,status,transaction_id,message\n{reference},PAID,T,\n",
                         content_type="text/csv", HTTP_AUTHORIZATION="Bearer /root")
    assert answer.status_code == 403 and answer.json()["error"] == "SECRET_NOT_ALLOWED"
    assert BenefitConsumption.objects.get(code=reference).status == "CREATED"  # unsent
