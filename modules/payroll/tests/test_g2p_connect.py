"""Paying a payroll through a G2P Connect receiver: signed requests, acknowledgements, signed
on-disburse callbacks, status queries after a lost answer. Keys are made for each test."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.actors import system_actor
from modules.payroll.models import BenefitConsumption, Payroll
from modules.payroll.sending import send_payroll
from modules.payroll.services import configuration

pytestmark = pytest.mark.django_db


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def receiver(monkeypatch: Any, allow_outbound, g2p_simulator) -> Any:
    coremis = Ed25519PrivateKey.generate()
    monkeypatch.setenv("COREMIS_PSP_G2P_TOKEN", "bank-token")
    monkeypatch.setenv("COREMIS_PSP_G2P_SIGNING_KEY", private_pem(coremis))
    simulated = g2p_simulator.receiver(token="bank-token", coremis_key=coremis.public_key(), key=Ed25519PrivateKey.generate(),
                         callback_key="callback-key")
    with g2p_simulator.running(simulated) as url:
        allow_outbound(monkeypatch, url)
        yield simulated, url


def g2p_point(admin_user: Any, simulated: Any, url: str, **config: Any) -> Any:
    return configuration.create_point(admin_user, code="BANK-G2P", adaptor="g2p_connect", config={
        "base_url": url, "sender_id": "coremis", "receiver_id": "bank", "payer_fa": "account:treasury@bank",
        "auth_token": {"env": "COREMIS_PSP_G2P_TOKEN"}, "signing_key": {"env": "COREMIS_PSP_G2P_SIGNING_KEY"}, "key_id": "coremis-key-1",
        "provider_public_key": public_pem(simulated.key), "provider_key_id": "bank-key-1",
        "batch_size": 3, "timeout": 2, **config})


def post(client: Any, point: Any, body: bytes, **headers: str) -> int:
    return client.post(f"/api/payroll/callback/{point.code}", data=body, content_type="application/json",
                       **headers).status_code


def test_signed_disburse_then_signed_callbacks_pay_the_payroll(admin_user, group_plan, receiver, client, sending_payroll, statuses):
    simulated, url = receiver
    point = g2p_point(admin_user, simulated, url)
    payroll = sending_payroll(admin_user, group_plan, point)
    first = send_payroll(payroll.pk, system_actor())
    assert first == {"sent": 8, "unknown": 0, "pending": 0}
    assert simulated.refused == [] and set(simulated.receipts.values()) == {1} and len(simulated.receipts) == 8
    assert simulated.envelopes[0]["signature"].startswith('Signature: namespace="g2p", kidId="coremis|coremis-key-1|')

    for body in simulated.on_disburse():
        assert post(client, point, body) == 200
    payroll.refresh_from_db()
    assert payroll.status == "PAID"
    assert set(statuses(payroll).values()) == {"PAID"}


def test_callbacks_that_fail_verification_change_nothing(admin_user, group_plan, receiver, client, sending_payroll, statuses):
    simulated, url = receiver
    point = g2p_point(admin_user, simulated, url)
    payroll = sending_payroll(admin_user, group_plan, point)
    send_payroll(payroll.pk, system_actor())
    before = statuses(payroll)
    assert set(before.values()) == {"SENT"}
    (header, message), *rest = simulated.settle()
    genuine = simulated.signed(header, message)
    unsigned = json.dumps({"signature": "", "header": header, "message": message}).encode()
    assert b'"status": "succ", "timestamp"' in genuine
    forged = {
        "a payment's status altered": genuine.replace(b'"status": "succ", "timestamp"', b'"status": "rjct", "timestamp"', 1),
        "expired": simulated.signed(header, message, created=1_700_000_000, ttl=600),
        "created in the future": simulated.signed(header, message, created=int(time.time()) + 3600),
        "signed with another key": simulated.signed(header, message, key=Ed25519PrivateKey.generate()),
        "signed under another key id": simulated.signed(header, message, key_id="bank-key-2"),
        "signed as another sender": simulated.signed(header, message, sender_id="other-bank"),
        "unsigned": unsigned,
    }
    for name, body in forged.items():
        assert post(client, point, body) == 403, name
        assert statuses(payroll) == before, name
    # A shared-secret header is no substitute for the signature when signatures are configured.
    assert post(client, point, unsigned, HTTP_SIGNATURE=simulated.hmac_of(unsigned)) == 403

    for body in [genuine] + [simulated.signed(h, m) for h, m in rest]:
        assert post(client, point, body) == 200
    payroll.refresh_from_db()
    assert payroll.status == "PAID"


def test_disburse_ack_nack_and_lost_answers_with_signed_callbacks(admin_user, group_plan, receiver, client, sending_payroll, statuses):
    simulated, url = receiver
    point = g2p_point(admin_user, simulated, url)
    payroll = sending_payroll(admin_user, group_plan, point)
    # the answer to the second batch is lost after the receiver took it; the third is refused
    simulated.faults = ["ok", "5xx_after", "nack"]
    first = send_payroll(payroll.pk, system_actor())
    assert first["pending"] == 0 and first["unknown"] == 0
    rows = statuses(payroll)
    assert sorted(rows.values()).count("FAILED") == 2 and sorted(rows.values()).count("SENT") == 6
    assert set(simulated.receipts.values()) == {1} and len(simulated.receipts) == 6
    envelope = simulated.envelopes[0]
    assert envelope["message"]["disbursements"][0]["amount"].isdigit()  # BIF: whole francs
    assert envelope["message"]["disbursements"][0]["payer_fa"] == "account:treasury@bank"

    simulated.failing_payees = {next(iter(simulated.disbursements.values()))["payee_fa"]}
    callbacks = simulated.on_disburse()
    for body in callbacks + callbacks[:1]:  # a repeated callback changes nothing
        assert post(client, point, body) == 200
    payroll.refresh_from_db()
    assert payroll.status == "PARTIALLY_PAID"
    final = list(BenefitConsumption.objects.filter(payroll=payroll).values_list("status", flat=True))
    assert final.count("PAID") == 5 and final.count("FAILED") == 3
    assert Payroll.objects.get(pk=payroll.pk).control_count == 8
    # the receiver's status_reason_code is kept as the payment's message
    assert "rjct.payee_fa.invalid" in set(BenefitConsumption.objects.filter(payroll=payroll, status="FAILED")
                                          .values_list("status_message", flat=True))


def test_a_request_the_receiver_cannot_verify_stops_sending_and_is_sent_once_fixed(
        admin_user, group_plan, receiver, monkeypatch, sending_payroll, statuses):
    simulated, url = receiver
    point = g2p_point(admin_user, simulated, url)
    payroll = sending_payroll(admin_user, group_plan, point)
    right_key = os.environ["COREMIS_PSP_G2P_SIGNING_KEY"]

    monkeypatch.setenv("COREMIS_PSP_G2P_TOKEN", "stale-token")
    unauthorised = send_payroll(payroll.pk, system_actor())
    assert "refused our credentials or signature (HTTP 401)" in unauthorised["error"]
    monkeypatch.setenv("COREMIS_PSP_G2P_TOKEN", "bank-token")

    monkeypatch.delenv("COREMIS_PSP_G2P_SIGNING_KEY")
    unconfigured = send_payroll(payroll.pk, system_actor())
    assert "signing_key is not available" in unconfigured["error"]
    assert unconfigured["sent"] == 0 and simulated.receipts == {} and simulated.refused == []

    monkeypatch.setenv("COREMIS_PSP_G2P_SIGNING_KEY", private_pem(Ed25519PrivateKey.generate()))
    refused = send_payroll(payroll.pk, system_actor())
    assert "the receiver refused our message: err.signature.invalid" in refused["error"]
    assert refused["sent"] == 0 and refused["unknown"] == 8  # each run dispatched a batch, none taken
    assert simulated.receipts == {} and set(simulated.refused) == {"err.signature.invalid"}
    assert set(statuses(payroll).values()) == {"APPROVED"}  # nothing recorded as sent or failed
    payroll.refresh_from_db()
    assert payroll.status == "SENDING"

    monkeypatch.setenv("COREMIS_PSP_G2P_SIGNING_KEY", right_key)
    fixed = send_payroll(payroll.pk, system_actor())
    assert fixed == {"sent": 8, "unknown": 0, "pending": 0}
    assert set(simulated.receipts.values()) == {1} and len(simulated.receipts) == 8
    assert set(statuses(payroll).values()) == {"SENT"}


def test_hmac_callbacks_when_the_point_asks_for_them(admin_user, group_plan, receiver, client, monkeypatch, sending_payroll):
    simulated, url = receiver
    monkeypatch.setenv("COREMIS_PSP_G2P_CALLBACK_KEY", "callback-key")
    point = g2p_point(admin_user, simulated, url, callback_auth="hmac", callback_key={"env": "COREMIS_PSP_G2P_CALLBACK_KEY"})
    payroll = sending_payroll(admin_user, group_plan, point)
    send_payroll(payroll.pk, system_actor())
    callbacks = simulated.on_disburse()
    assert post(client, point, callbacks[0], HTTP_SIGNATURE="0" * 64) == 403
    assert post(client, point, callbacks[0]) == 403
    for body in callbacks:
        assert post(client, point, body, HTTP_SIGNATURE=simulated.hmac_of(body)) == 200
    payroll.refresh_from_db()
    assert payroll.status == "PAID"
