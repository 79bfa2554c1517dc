"""A filtered list reads its count and its page's keys in one statement
(``core.graphql.counting._counted_keys``): the same page and the same exact count as the plain
path (a count, then the page), for ties in the order, soft-deleted rows, a scoped user, paging
and ordering through a relation, below and above the number of matches it stops at."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.graphql import counting
from modules.individual import services
from modules.individual.models import Individual
from modules.location.models import UserLocation

pytestmark = pytest.mark.django_db

SEARCH = ["individual.registry.search", "location.scope.national"]
LIST = ("query($n: Int, $after: String, $last: Int, $order: [String], $name: String, $deleted: Boolean) { "
        "individual(first: $n, after: $after, last: $last, lastName_Icontains: $name, orderBy: $order, "
        "isDeleted: $deleted) { totalCount pageInfo { hasNextPage endCursor } "
        "edges { cursor node { uuid lastName location { code } } } } }")


@pytest.fixture
def registry(person: Any, admin_user: Any) -> list[Any]:
    """Twenty 'nga' people and six others over two collines; several created at the same
    instant (ties of the newest-first order), two 'nga' ones soft-deleted."""
    made = []
    for i in range(26):
        last = f"Nganji{i % 7}" if i < 20 else f"Bizimana{i}"
        made.append(person(f"P{i}", last, place="H1" if i % 3 else "H2"))
    same = datetime.datetime(2024, 5, 1, 8, 0, tzinfo=datetime.UTC)
    Individual.objects.filter(pk__in=[m.pk for m in made[4:12]]).update(date_created=same)
    for gone in (made[2], made[9]):
        services.delete_individual(admin_user, gone.pk)
    return made


def _walk(client: Any, size: int, **variables: Any) -> tuple[list[int], list[str]]:
    """Every page of the list, ``size`` at a time: the counts seen and the people in order."""
    counts, seen, after = [], [], None
    while True:
        page = client.ok(LIST, {"n": size, "after": after, **variables})["individual"]
        counts.append(page["totalCount"])
        seen += [(edge["node"]["uuid"], edge["node"]["lastName"]) for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return counts, seen
        after = page["pageInfo"]["endCursor"]


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "_counted_keys", lambda queryset, start, size: None)


@pytest.mark.parametrize("order", [["-dateCreated"], ["lastName"], ["-lastName", "dateCreated"],
                                   ["location__name"], None])
def test_the_one_statement_page_is_the_plain_paths_page(gql: Any, make_user: Any, registry: list[Any],
                                                        order: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = gql(make_user(SEARCH))
    counts, seen = _walk(client, 3, name="nga", order=order)
    _plain(monkeypatch)
    assert (counts, seen) == _walk(client, 3, name="nga", order=order)
    assert set(counts) == {18}  # 20 'nga' people, 2 soft-deleted: exact, on every page
    assert len(seen) == len(set(seen)) == 18


def test_ties_in_the_order_page_by_the_key(gql: Any, make_user: Any, registry: list[Any]) -> None:
    live = [m for m in registry[:20] if m not in (registry[2], registry[9])]
    created = {m.pk: m.date_created for m in Individual.objects.filter(pk__in=[m.pk for m in live])}
    expected = sorted(live, key=lambda m: (created[m.pk], m.pk), reverse=True)
    _, seen = _walk(gql(make_user(SEARCH)), 4, name="nga", order=["-dateCreated"])
    assert [uuid for uuid, _ in seen] == [str(m.pk) for m in expected]


def test_the_count_and_the_page_keys_are_one_statement(gql: Any, make_user: Any, registry: list[Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    client = gql(make_user(SEARCH))
    client.ok(LIST, {"n": 5, "name": "nga", "order": ["-dateCreated"]})  # the session, warmed
    with CaptureQueriesContext(connection) as one:
        page = client.ok(LIST, {"n": 5, "name": "nga", "order": ["-dateCreated"]})["individual"]
    _plain(monkeypatch)
    with CaptureQueriesContext(connection) as plain:
        assert client.ok(LIST, {"n": 5, "name": "nga", "order": ["-dateCreated"]})["individual"] == page
    on_people = [q["sql"] for q in one.captured_queries if "individual_individual" in q["sql"]]
    assert len(on_people) == 2 and "MATERIALIZED" in on_people[0]
    assert len(plain.captured_queries) == len(one.captured_queries) + 1


def test_a_scoped_user_gets_only_their_places(gql: Any, make_user: Any, registry: list[Any], places: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    scoped = make_user(["individual.registry.search"])
    UserLocation.objects.create(user=scoped, location=places["C2"])
    client = gql(scoped)
    counts, seen = _walk(client, 2, name="nga", order=["-dateCreated"])
    in_h2 = {str(m.pk) for m in registry[:20] if registry.index(m) % 3 == 0} - {str(registry[9].pk)}
    assert set(counts) == {len(in_h2)} and {uuid for uuid, _ in seen} == in_h2
    _plain(monkeypatch)
    assert (counts, seen) == _walk(client, 2, name="nga", order=["-dateCreated"])


def test_deleted_rows_are_a_list_of_their_own(gql: Any, make_user: Any, registry: list[Any]) -> None:
    counts, seen = _walk(gql(make_user(SEARCH)), 1, name="nga", deleted=True)
    assert set(counts) == {2} and {uuid for uuid, _ in seen} == {str(registry[2].pk), str(registry[9].pk)}


def test_above_the_limit_the_plain_path_answers_the_same(gql: Any, make_user: Any, registry: list[Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client = gql(make_user(SEARCH))
    below = _walk(client, 4, name="nga", order=["-dateCreated"])
    monkeypatch.setattr(counting, "SORT_FROM_MATCHES_LIMIT", 17)  # one fewer than the matches
    with CaptureQueriesContext(connection) as captured:
        page = client.ok(LIST, {"n": 4, "name": "nga", "order": ["-dateCreated"]})["individual"]
    assert page["totalCount"] == 18
    # the capped statement stopped at 18 and gave no keys; the count and the ordered page follow
    assert any("MATERIALIZED" in q["sql"] and "LIMIT 18" in q["sql"] for q in captured.captured_queries)
    assert below == _walk(client, 4, name="nga", order=["-dateCreated"])
    monkeypatch.setattr(counting, "SORT_FROM_MATCHES_LIMIT", 18)  # exactly at it: one statement
    assert below == _walk(client, 4, name="nga", order=["-dateCreated"])


def test_other_page_shapes_and_pages_past_the_end(gql: Any, make_user: Any, registry: list[Any]) -> None:
    client = gql(make_user(SEARCH))
    _, seen = _walk(client, 100, name="nga", order=["-dateCreated"])
    last = client.ok(LIST, {"n": None, "last": 3, "name": "nga", "order": ["-dateCreated"]})["individual"]
    assert last["totalCount"] == 18
    assert [(e["node"]["uuid"], e["node"]["lastName"]) for e in last["edges"]] == seen[-3:]
    end = client.ok(LIST, {"n": 5, "name": "nga", "order": ["-dateCreated"]})["individual"]
    for _ in range(4):
        end = client.ok(LIST, {"n": 5, "after": end["pageInfo"]["endCursor"] or end["edges"][-1]["cursor"],
                               "name": "nga", "order": ["-dateCreated"]})["individual"]
        assert end["totalCount"] == 18
        if not end["edges"]:
            break
    assert end["edges"] == [] and end["pageInfo"]["hasNextPage"] is False


GROUPS = ("query($n: Int, $after: String) { group(first: $n, after: $after, code_Icontains: \"hh-a\", "
          "orderBy: [\"-dateCreated\"]) { totalCount pageInfo { hasNextPage endCursor } edges { node { uuid code } } } }")


def test_a_household_search_pages_the_same_way(gql: Any, make_user: Any, admin_user: Any, places: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(9):
        services.create_group(admin_user, code=f"HH-{'A' if i % 3 else 'B'}{i}", location_id=places["H1"].pk)
    client = gql(make_user(SEARCH))

    def walk() -> tuple[list[int], list[str]]:
        counts, seen, after = [], [], None
        while True:
            page = client.ok(GROUPS, {"n": 2, "after": after})["group"]
            counts.append(page["totalCount"])
            seen += [edge["node"]["code"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return counts, seen
            after = page["pageInfo"]["endCursor"]

    counts, seen = walk()
    assert set(counts) == {6} and sorted(seen) == sorted(f"HH-A{i}" for i in range(9) if i % 3)
    _plain(monkeypatch)
    assert (counts, seen) == walk()
