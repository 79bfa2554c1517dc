"""The pull API: a provider fetches its payments and reports on them, and only on them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modules.payroll.models import BenefitConsumption, Payroll
from modules.reconciliation.models import Mismatch, ProviderReport

pytestmark = pytest.mark.django_db
SECRET = "pull-secret-for-tests"


@pytest.fixture
def pulling(sent_payroll, monkeypatch, admin_user):
    from modules.payroll.services import configuration

    monkeypatch.setenv("COREMIS_PSP_RECON_PULL", SECRET)
    point = sent_payroll.point
    configuration.update_point(admin_user, point.pk, config={**point.config,
                                                   "pull_client_secret": {"env": "COREMIS_PSP_RECON_PULL"}})
    return sent_payroll


def get_token(client: Any, code: str = "BANK", secret: str = SECRET) -> Any:
    return client.post("/api/reconciliation/pull/token", {"grant_type": "client_credentials", "client_id": code,
                                                          "client_secret": secret})


def post(client: Any, token: str, kind: str, items: list[dict[str, Any]]) -> Any:
    return client.post(f"/api/reconciliation/pull/{kind}", data=json.dumps({kind: items}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_provider_pulls_its_work_acknowledges_and_consolidates(pulling, client, make_payroll):
    sent = pulling
    assert get_token(client, secret="wrong").status_code == 401
    assert get_token(client, code="NOBODY").status_code == 401
    assert client.get("/api/reconciliation/pull/payments").status_code == 401
    token = get_token(client).json()["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    first = client.get("/api/reconciliation/pull/payments", {"limit": 4}, **auth).json()
    assert [p["reference"] for p in first["payments"]] == sent.references[:4] and first["next"] == sent.references[3]
    rest = client.get("/api/reconciliation/pull/payments", {"after": first["next"]}, **auth).json()
    assert [p["reference"] for p in rest["payments"]] == sent.references[4:] and rest["next"] is None
    assert rest["payments"][0]["recipient"]["phone"] == sent.phones[sent.references[4]]
    in_c2 = client.get("/api/reconciliation/pull/payments", {"commune": "C2", "cycle": "2026-01"}, **auth).json()
    assert sorted(p["reference"] for p in in_c2["payments"]) == sorted(r for r in sent.references
                                                                       if sent.colline[r] == "H3")

    refs = sent.references
    acks = post(client, token, "acknowledgements", [{"reference": refs[0], "status": "ACCEPTED"},
                                                    {"reference": refs[1], "status": "REJECTED",
                                                     "error_code": "INVALID_MSISDN"},
                                                    {"reference": refs[2], "status": "MAYBE"}]).json()
    assert acks["stored"] == 2 and acks["refused"][0]["code"] == "UNKNOWN_STATUS"
    assert BenefitConsumption.objects.get(code=refs[1]).status == "FAILED"
    done = [{"reference": r, "status": "SUCCESS", "receipt": f"RC-{n}", "date": "2026-01-20"}
            for n, r in enumerate(refs) if n != 1]
    answer = post(client, token, "consolidations", done).json()
    assert answer["stored"] == 5 and answer["refused"] == []
    assert post(client, token, "consolidations", done).json()["stored"] == 0  # sent again: nothing new
    assert Payroll.objects.get(pk=sent.payroll.pk).status == "PARTIALLY_PAID"
    assert BenefitConsumption.objects.get(code=refs[0]).provider_transaction_id == "RC-0"
    assert not Mismatch.objects.exists()

    # another point's payment is not this provider's to report on
    other = make_payroll(name="Other bank", cycle_code="2026-02", point_code="OTHER")
    stranger = other.references[0]
    refused = post(client, token, "consolidations", [{"reference": stranger, "status": "SUCCESS",
                                                      "receipt": "X"}]).json()
    assert refused["stored"] == 0 and refused["refused"][0]["code"] == "OUT_OF_SCOPE"
    assert not ProviderReport.objects.filter(reference=stranger).exists()
    assert BenefitConsumption.objects.get(code=stranger).status == "SENT"
    bad = client.post("/api/reconciliation/pull/consolidations", data="{not json", content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID"
