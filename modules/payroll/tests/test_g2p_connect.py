"""Paying a payroll through a G2P Connect receiver: acknowledgements, on-disburse callbacks,
status queries after a lost answer."""

from __future__ import annotations

from typing import Any

import pytest

from modules.payroll import services
from modules.payroll.models import BenefitConsumption, Payroll
from modules.payroll.sending import send_payroll
from modules.payroll.tests.g2p_provider import Receiver, running
from modules.payroll.tests.test_mobile_money import sending_payroll

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(monkeypatch: Any) -> Any:
    monkeypatch.setenv("G2P_TOKEN", "bank-token")
    monkeypatch.setenv("G2P_CALLBACK_KEY", "callback-key")
    simulated = Receiver(token="bank-token", callback_key="callback-key")
    with running(simulated) as url:
        yield simulated, url


def g2p_point(admin_user: Any, url: str) -> Any:
    return services.create_point(admin_user, code="BANK-G2P", adaptor="g2p_connect", config={
        "base_url": url, "sender_id": "coremis", "receiver_id": "bank", "payer_fa": "account:treasury@bank",
        "auth_token": {"env": "G2P_TOKEN"}, "callback_key": {"env": "G2P_CALLBACK_KEY"}, "batch_size": 3,
        "timeout": 2})


def test_disburse_ack_then_on_disburse_callbacks(admin_user, group_plan, receiver, client):
    simulated, url = receiver
    point = g2p_point(admin_user, url)
    payroll = sending_payroll(admin_user, group_plan, point)
    # the answer to the second batch is lost after the receiver took it; the third is refused
    simulated.faults = ["ok", "5xx_after", "nack"]
    first = send_payroll(payroll.pk)
    assert first["pending"] == 0 and first["unknown"] == 0
    rows = dict(BenefitConsumption.objects.filter(payroll=payroll).values_list("code", "status"))
    assert sorted(rows.values()).count("FAILED") == 2 and sorted(rows.values()).count("SENT") == 6
    assert set(simulated.receipts.values()) == {1} and len(simulated.receipts) == 6
    envelope = simulated.envelopes[0]
    assert envelope["message"]["disbursements"][0]["amount"].isdigit()  # BIF: whole francs
    assert envelope["message"]["disbursements"][0]["payer_fa"] == "account:treasury@bank"

    simulated.failing_payees = {next(iter(simulated.disbursements.values()))["payee_fa"]}
    callbacks = simulated.on_disburse()
    bad = client.post(f"/api/payroll/callback/{point.code}", data=callbacks[0][0], content_type="application/json",
                      HTTP_SIGNATURE="0" * 64)
    assert bad.status_code == 403
    for body, signature in callbacks + callbacks[:1]:
        answer = client.post(f"/api/payroll/callback/{point.code}", data=body, content_type="application/json",
                             HTTP_SIGNATURE=signature)
        assert answer.status_code == 200
    payroll.refresh_from_db()
    assert payroll.status == "PARTIALLY_PAID"
    final = list(BenefitConsumption.objects.filter(payroll=payroll).values_list("status", flat=True))
    assert final.count("PAID") == 5 and final.count("FAILED") == 3
    assert Payroll.objects.get(pk=payroll.pk).control_count == 8
