"""``clientMutationId`` is the user's idempotency key for every mutation: a retried request
does nothing twice and answers what the first one did, even when both arrive at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from core.models import MutationLog, User
from modules.individual.models import Individual
from modules.location.services import create_location

pytestmark = pytest.mark.django_db

CREATE = """mutation($i: CreateIndividualMutationInput!) { createIndividual(input: $i) {
    clientMutationId errors { field code message } individual { uuid firstName version } } }"""
PEOPLE = ["individual.registry.create", "individual.registry.search", "individual.registry.update", "location.scope.national"]


@pytest.fixture
def place(admin_user: Any) -> Any:
    return create_location(admin_user, code="P1", name="Province", type="Province")


def person(place: Any, key: str | None, first: str = "Ana") -> dict[str, Any]:
    values: dict[str, Any] = {"firstName": first, "lastName": "Niyonzima", "dob": "1990-01-01",
                              "locationId": str(place.pk)}
    if key is not None:
        values["clientMutationId"] = key
    return {"i": values}


def test_a_retried_create_makes_one_person_and_answers_the_first_outcome(gql, make_user, place):
    client = gql(make_user(PEOPLE))
    first = client.ok(CREATE, person(place, "retry-1"))["createIndividual"]
    again = client.ok(CREATE, person(place, "retry-1"))["createIndividual"]
    assert first["errors"] == [] and again == first
    assert Individual.objects.filter(last_name="Niyonzima").count() == 1
    assert MutationLog.objects.filter(client_mutation_id="retry-1").count() == 1
    # without a key, each request is its own
    client.ok(CREATE, person(place, None))
    client.ok(CREATE, person(place, None))
    assert Individual.objects.filter(last_name="Niyonzima").count() == 3


def test_a_replay_shows_the_object_as_it_is_now(gql, make_user, place):
    client = gql(make_user(PEOPLE))
    made = client.ok(CREATE, person(place, "k-now"))["createIndividual"]["individual"]
    client.ok("""mutation($i: UpdateIndividualMutationInput!) { updateIndividual(input: $i) { errors { code } } }""",
              {"i": {"id": made["uuid"], "firstName": "Anne"}})
    replay = client.ok(CREATE, person(place, "k-now"))["createIndividual"]["individual"]
    assert replay == {"uuid": made["uuid"], "firstName": "Anne", "version": 2}


def test_a_refusal_is_replayed_as_the_same_errors_and_nothing_runs(gql, make_user, place):
    client = gql(make_user(PEOPLE))
    refused = client.ok(CREATE, {"i": {"firstName": "", "lastName": "", "clientMutationId": "bad-1"}})
    again = client.ok(CREATE, {"i": {"firstName": "", "lastName": "", "clientMutationId": "bad-1"}})
    assert refused["createIndividual"]["errors"] and again == refused
    assert not Individual.objects.exists()


def test_a_key_sent_again_with_another_input_is_refused_not_replayed(gql, make_user, place):
    client = gql(make_user(PEOPLE))
    client.ok(CREATE, {"i": {"firstName": "", "lastName": "", "clientMutationId": "bad-2"}})
    other = client.ok(CREATE, {"i": {"firstName": "Fixed", "lastName": "Name", "dob": "1990-01-01",
                                     "locationId": str(place.pk), "clientMutationId": "bad-2"}})["createIndividual"]
    assert [(e["field"], e["code"]) for e in other["errors"]] == [("clientMutationId", "CLIENT_MUTATION_ID_REUSED")]
    assert not Individual.objects.exists()


def test_keys_belong_to_a_user_and_to_one_mutation(gql, make_user, place):
    one, other = gql(make_user(PEOPLE)), gql(make_user(PEOPLE))
    one.ok(CREATE, person(place, "shared"))
    other.ok(CREATE, person(place, "shared"))
    assert Individual.objects.count() == 2
    reused = one.ok("""mutation { createGroup(input: {code: "HH-1", clientMutationId: "shared"}) {
        errors { field code } group { code } } }""")["createGroup"]
    assert reused == {"errors": [{"field": "clientMutationId", "code": "CLIENT_MUTATION_ID_REUSED"}], "group": None}


def test_the_database_refuses_a_second_entry_for_a_key(make_user):
    user = make_user()
    MutationLog.objects.create(mutation_name="X", user=user, client_mutation_id="k", idempotency_key="k")
    with pytest.raises(IntegrityError), transaction.atomic():
        MutationLog.objects.create(mutation_name="X", user=user, client_mutation_id="k", idempotency_key="k")


def _waiting_on_a_lock(count: int) -> None:
    """Until ``count`` other sessions wait for a lock (the test's requests, mid-way)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.02)
    raise AssertionError(f"{count} requests never waited on a lock")


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_key_at_the_same_moment_make_one_person(make_user, place):
    from core.auth.tokens import issue

    user: User = make_user(PEOPLE)
    token = issue(user).token
    cfg = connection.settings_dict
    holder = psycopg.connect(dbname=cfg["NAME"], user=cfg["USER"], password=cfg["PASSWORD"] or None,
                             host=cfg["HOST"] or None, port=cfg["PORT"] or None)
    # The first request's insert waits behind this lock, with its log entry claimed.
    holder.execute("LOCK TABLE individual_individual IN EXCLUSIVE MODE")
    answers: dict[str, Any] = {}

    def send(name: str) -> None:
        import json

        response = Client().post("/graphql", data=json.dumps({"query": CREATE, "variables": person(place, "same")}),
                                 content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        answers[name] = response.json()
        connection.close()

    first = threading.Thread(target=send, args=("first",))
    first.start()
    _waiting_on_a_lock(1)
    second = threading.Thread(target=send, args=("second",))
    second.start()
    _waiting_on_a_lock(2)  # the replay waits for the first one's outcome
    holder.rollback()
    holder.close()
    first.join(20)
    second.join(20)
    assert answers["first"] == answers["second"], answers
    assert answers["first"]["data"]["createIndividual"]["errors"] == []
    assert Individual.objects.count() == 1
    assert MutationLog.objects.filter(client_mutation_id="same").count() == 1


# --- what the mutation log keeps --------------------------------------------------------------


def test_the_log_keeps_a_capped_copy_of_a_huge_input(gql, make_user, place):
    import json

    client = gql(make_user(PEOPLE))
    huge = {"notes": "x" * 9_000_000}
    many = {f"key_{i}": "value" for i in range(5000)}
    client.execute(CREATE, {"i": {**person(place, "huge")["i"], "jsonExt": json.dumps(huge), "lastName": "L" * 5000}})
    client.execute(CREATE, {"i": {**person(place, "many")["i"], "jsonExt": json.dumps(many)}})
    entry = MutationLog.objects.get(client_mutation_id="huge")
    assert len(json.dumps(entry.json_content)) < 70 * 1024
    assert entry.json_content["_truncated"] is True
    assert entry.json_content["json_ext"] == {"notes": "x" * 1000 + "… [truncated: 9000000 characters]"}
    assert entry.json_content["last_name"] == "L" * 1000 + "… [truncated: 5000 characters]"
    assert entry.json_content["first_name"] == "Ana"
    entry = MutationLog.objects.get(client_mutation_id="many")
    assert entry.json_content["json_ext"] == f"[truncated: {len(json.dumps(many))} bytes]"
    assert entry.json_content["_truncated"] is True


def test_a_small_input_is_logged_whole(gql, make_user, place):
    gql(make_user(PEOPLE)).ok(CREATE, person(place, "small"))
    entry = MutationLog.objects.get(client_mutation_id="small")
    assert entry.json_content == {"first_name": "Ana", "last_name": "Niyonzima", "dob": "1990-01-01",
                                  "location_id": str(place.pk)}
