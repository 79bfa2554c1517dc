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


REVOKE = ('mutation($i: RevokeReconciliationPullTokensMutationInput!) { revokeReconciliationPullTokens(input: $i) '
          '{ errors { field code } revoked } }')
TOKENS = ('query($p: UUID!) { reconciliationPullToken(paymentPointId: $p) { id revokedAt revokedBy revokedReason } }')


def token_id(token: str) -> str:
    from django.core import signing

    from modules.reconciliation.pull import SALT

    return signing.loads(token, salt=SALT)["token"]


def test_a_revoked_token_is_refused_at_once_and_the_revocation_is_on_record(pulling, client, gql, make_user):
    from core.models import HistoryEntry

    point = pulling.point
    first, second = (get_token(client).json()["access_token"] for _ in range(2))

    def listing(token: str) -> int:
        return client.get("/api/reconciliation/pull/payments", HTTP_AUTHORIZATION=f"Bearer {token}").status_code

    assert listing(first) == listing(second) == 200
    officer = make_user(["reconciliation.pull_token.revoke", "location.scope.national"])
    api = gql(officer)
    one = {"paymentPointId": str(point.pk), "tokenId": token_id(first), "reason": "the provider's laptop was stolen"}
    assert api.ok(REVOKE, {"i": one})["revokeReconciliationPullTokens"] == {"errors": [], "revoked": 1}
    assert listing(first) == 401 and listing(second) == 200  # at once, and only that one
    assert api.ok(REVOKE, {"i": one})["revokeReconciliationPullTokens"]["revoked"] == 0  # already revoked

    every = {"paymentPointId": str(point.pk), "reason": "secret rotated"}
    assert api.ok(REVOKE, {"i": every})["revokeReconciliationPullTokens"]["revoked"] == 1
    assert listing(second) == 401
    assert listing(get_token(client).json()["access_token"]) == 200  # the provider asks again

    tokens = api.ok(TOKENS, {"p": str(point.pk)})["reconciliationPullToken"]
    assert [(t["revokedBy"], t["revokedReason"]) for t in tokens] == [
        (None, ""), (officer.username, "secret rotated"), (officer.username, "the provider's laptop was stolen")]
    audit = HistoryEntry.objects.filter(table_name="reconciliation_pulltoken", operation="U", row_id=token_id(first))
    assert [(str(h.user_id), h.data["revoked_reason"]) for h in audit] == [
        (str(officer.pk), "the provider's laptop was stolen")]

    # a reason is required; the right is national and granted separately
    no_reason = api.ok(REVOKE, {"i": {"paymentPointId": str(point.pk), "reason": " "}})
    assert no_reason["revokeReconciliationPullTokens"]["errors"] == [{"field": "reason", "code": "REQUIRED"}]
    scoped = gql(make_user(["reconciliation.pull_token.revoke"])).ok(REVOKE, {"i": every})
    assert scoped["revokeReconciliationPullTokens"]["errors"][0]["code"] == "OUT_OF_SCOPE"
    refused = gql(make_user(["location.scope.national", "payroll.configuration.manage"])).execute(REVOKE, {"i": every})
    assert refused["errors"] and refused["data"]["revokeReconciliationPullTokens"] is None
    assert gql(make_user(["location.scope.national"])).execute(TOKENS, {"p": str(point.pk)})["errors"]


def test_rotating_the_secret_ends_the_tokens_of_the_old_one(pulling, client, monkeypatch):
    old = get_token(client).json()["access_token"]
    monkeypatch.setenv("COREMIS_PSP_RECON_PULL", "the-new-secret")
    assert client.get("/api/reconciliation/pull/payments", HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 401
    assert get_token(client).status_code == 401  # the old secret no longer gets one
    new = get_token(client, secret="the-new-secret").json()["access_token"]
    assert client.get("/api/reconciliation/pull/payments", HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200
    forged = new[:-2] + ("AA" if not new.endswith("AA") else "BB")
    assert client.get("/api/reconciliation/pull/payments", HTTP_AUTHORIZATION=f"Bearer {forged}").status_code == 401


def test_a_partially_paid_payroll_offers_the_payments_still_waiting_and_a_closed_one_nothing(pulling, client):
    """PARTIALLY_PAID is settled again as words arrive, and closing waits for every payment:
    a payment of it still waiting must reach its provider. Statuses are payroll's effective
    ones (an unsent payment of an approved payroll reads APPROVED)."""
    sent = pulling
    refs = sent.references
    BenefitConsumption.objects.filter(code=refs[0]).update(status="FAILED")
    BenefitConsumption.objects.filter(code=refs[1]).update(status="CREATED")  # unsent: reads APPROVED
    BenefitConsumption.objects.filter(code__in=refs[2:4]).update(status="PAID")
    Payroll.objects.filter(pk=sent.payroll.pk).update(status="PARTIALLY_PAID")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {get_token(client).json()['access_token']}"}
    offered = client.get("/api/reconciliation/pull/payments", **auth).json()["payments"]
    assert [(p["reference"], p["status"]) for p in offered] == [(refs[1], "APPROVED"), (refs[4], "SENT"),
                                                                 (refs[5], "SENT")]
    for closed in ("RECONCILED", "REJECTED"):
        Payroll.objects.filter(pk=sent.payroll.pk).update(status=closed)
        assert client.get("/api/reconciliation/pull/payments", **auth).json()["payments"] == []


def test_dead_tokens_are_purged_after_the_retention_and_their_record_stays(pulling, client):
    import datetime
    import uuid

    from django.utils import timezone

    from core.actors import system_actor
    from core.jobs import run_job, start_job
    from core.models import HistoryEntry, Job
    from modules.reconciliation.models import PullToken

    ids = [token_id(get_token(client).json()["access_token"]) for _ in range(4)]
    now = timezone.now()
    long_expired, long_revoked, recently_expired, live = ids
    PullToken.objects.filter(pk=long_expired).update(expires_at=now - datetime.timedelta(days=91))
    PullToken.objects.filter(pk=long_revoked).update(revoked_at=now - datetime.timedelta(days=91),
                                                     revoked_reason="secret rotated")
    PullToken.objects.filter(pk=recently_expired).update(expires_at=now - datetime.timedelta(days=89))

    def purge() -> Any:
        job = start_job("reconciliation.pull_token_purge", {}, system_actor())
        run_job(str(job.pk))  # what the worker runs (the queue hears of it only after a commit)
        job.refresh_from_db()
        return job

    job = purge()
    assert job.state == Job.SUCCEEDED and job.result["deleted"] == 2 and job.result["retention_days"] == 90
    assert set(PullToken.objects.values_list("pk", flat=True).iterator()) == {
        uuid.UUID(recently_expired), uuid.UUID(live)}
    gone = HistoryEntry.objects.filter(table_name="reconciliation_pulltoken", operation="D")
    assert sorted(str(h.row_id) for h in gone) == sorted([long_expired, long_revoked])
    assert {str(h.user_id) for h in gone} == {str(system_actor().pk)}
    assert purge().result["deleted"] == 0  # nothing left to purge

    from core.cron import schedules

    assert any(s.kind == "reconciliation.pull_token_purge" for s in schedules())
