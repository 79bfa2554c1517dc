"""``totalCount`` is exact up to the limit; above it only a whole-table list may answer an
estimate, and it says so (``totalCountIsEstimate``); filtered and scoped lists stay exact."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

LIST = "query($f: String) { locations(first: 2, name_Icontains: $f) { totalCount totalCountIsEstimate edges { node { code } } } }"


@pytest.fixture
def small_limit(settings: Any) -> None:
    settings.COREMIS = {**settings.COREMIS, "EXACT_COUNT_LIMIT": 3}


def _made(admin_user: Any, count: int) -> list[Any]:
    from modules.location.services import create_location

    return [create_location(admin_user, code=f"TC{i:02d}", name=("Gitega" if i % 2 else "Ngozi") + str(i),
                            type="Province") for i in range(count)]


def test_up_to_the_limit_the_count_is_exact(gql: Any, admin_user: Any, small_limit: None) -> None:
    _made(admin_user, 3)
    page = gql(admin_user).ok(LIST)["locations"]
    assert (page["totalCount"], page["totalCountIsEstimate"], len(page["edges"])) == (3, False, 2)


def test_above_it_a_whole_table_is_estimated_and_says_so(gql: Any, admin_user: Any, small_limit: None) -> None:
    made = _made(admin_user, 12)
    from modules.location.services import delete_location

    delete_location(admin_user, made[0].pk)  # soft-deleted rows are not counted in either answer
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE location_location")
    client = gql(admin_user)
    whole = client.ok(LIST)["locations"]
    assert whole["totalCountIsEstimate"] is True
    assert 4 <= whole["totalCount"] <= 24 and len(whole["edges"]) == 2  # the planner's figure, above the limit
    # a filter counts exactly, however many match
    filtered = client.ok(LIST, {"f": "ngozi"})["locations"]
    assert (filtered["totalCount"], filtered["totalCountIsEstimate"]) == (5, False)


def test_a_scoped_user_counts_exactly(gql: Any, admin_user: Any, make_user: Any, small_limit: None) -> None:
    from modules.location.services import create_location, set_user_locations

    province = create_location(admin_user, code="TP", name="Tp", type="Province")
    for i in range(6):
        create_location(admin_user, code=f"TPC{i}", name=f"Commune{i}", type="Commune", parent_id=province.pk)
    _made(admin_user, 6)
    scoped = make_user(["location.location.search"])
    set_user_locations(admin_user, scoped, [province.pk])
    page = gql(scoped).ok(LIST)["locations"]
    assert page["totalCountIsEstimate"] is False
    assert page["totalCount"] == 7  # the province and its six communes, counted


PAGED = ("query($n: Int, $after: String) { locations(first: $n, after: $after, name_Icontains: \"ngozi\", "
         "orderBy: [\"-name\"]) { totalCount edges { cursor node { id name } } } }")


def test_a_page_sorted_from_its_matches_reads_only_its_own_keys(gql: Any, admin_user: Any) -> None:
    """A filtered list (sorted from its matches) reads the page's keys, then their rows: no
    statement names a row of another page, and the statements do not grow with the page."""
    made = _made(admin_user, 24)
    ngozi = sorted((m for m in made if m.name.startswith("Ngozi")), key=lambda m: (m.name, m.pk), reverse=True)
    client = gql(admin_user)
    seen, statements, after = [], {}, None
    for size in (2, 5, 5):
        with CaptureQueriesContext(connection) as captured:
            page = client.ok(PAGED, {"n": size, "after": after})["locations"]
        assert page["totalCount"] == 12
        ids = [edge["node"]["id"] for edge in page["edges"]]
        assert len(ids) == size
        statements.setdefault(size, len(captured.captured_queries))
        # keys are sent as hex (psycopg's form of a uuid)
        others = {m.pk.hex for m in made} - {m.pk.hex for m in ngozi[len(seen):len(seen) + size]}
        leaked = [q["sql"][:120] for q in captured.captured_queries if any(key in q["sql"] for key in others)]
        assert not leaked, leaked
        seen += [edge["node"]["name"] for edge in page["edges"]]
        after = page["edges"][-1]["cursor"]
    assert seen == [m.name for m in ngozi[:12]]
    assert statements[2] == statements[5]


def _counted(captured: Any) -> list[str]:
    """The statements that counted a whole table or asked the planner for its estimate."""
    return [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper() or q["sql"].startswith("EXPLAIN")]


def _analyzed(admin_user: Any, count: int) -> None:
    _made(admin_user, count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE location_location")


def test_a_large_table_is_remembered_for_a_few_seconds(gql: Any, admin_user: Any, small_limit: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Far above the limit (12 rows, limit 3), the next pages answer the same flagged estimate
    without counting again; once the seconds are over the table is counted again."""
    from core.graphql import counting

    _analyzed(admin_user, 12)
    client = gql(admin_user)
    with CaptureQueriesContext(connection) as first:
        whole = client.ok(LIST)["locations"]
    assert whole["totalCountIsEstimate"] is True and len(_counted(first)) == 2  # bounded count, EXPLAIN
    with CaptureQueriesContext(connection) as again:
        remembered = client.ok(LIST)["locations"]
    assert _counted(again) == []
    assert (remembered["totalCount"], remembered["totalCountIsEstimate"]) == (whole["totalCount"], True)
    assert len(remembered["edges"]) == 2
    # a filtered list is still counted exactly beside it
    assert client.ok(LIST, {"f": "ngozi"})["locations"]["totalCount"] == 6
    now = counting.time.monotonic()
    monkeypatch.setattr(counting.time, "monotonic", lambda: now + counting.LARGE_TABLE_SECONDS + 1)
    with CaptureQueriesContext(connection) as later:
        client.ok(LIST)
    assert len(_counted(later)) == 2


def test_after_the_seconds_a_table_that_shrank_is_counted_exactly(gql: Any, admin_user: Any, small_limit: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from core.graphql import counting
    from modules.location.models import Location

    _analyzed(admin_user, 12)
    client = gql(admin_user)
    assert client.ok(LIST)["locations"]["totalCountIsEstimate"] is True
    Location.objects.exclude(code__in=["TC00", "TC01"]).update(is_deleted=True)
    now = counting.time.monotonic()
    monkeypatch.setattr(counting.time, "monotonic", lambda: now + counting.LARGE_TABLE_SECONDS + 1)
    page = client.ok(LIST)["locations"]
    assert (page["totalCount"], page["totalCountIsEstimate"]) == (2, False)
    with CaptureQueriesContext(connection) as next_page:
        client.ok(LIST)
    assert len(_counted(next_page)) == 1  # a table under the limit is never remembered


def test_under_the_limit_or_near_it_every_page_counts(gql: Any, admin_user: Any, settings: Any) -> None:
    """Below the limit each page counts exactly; just above it (below twice the limit) the
    estimate is asked for on every page too, as a few deletions would bring it under."""
    settings.COREMIS = {**settings.COREMIS, "EXACT_COUNT_LIMIT": 5}
    _analyzed(admin_user, 4)
    client = gql(admin_user)
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            page = client.ok(LIST)["locations"]
        assert (page["totalCount"], page["totalCountIsEstimate"]) == (4, False)
        assert len(_counted(captured)) == 1
    from modules.location.services import create_location

    for i in range(4):
        create_location(admin_user, code=f"TD{i}", name=f"Muyinga{i}", type="Province")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE location_location")
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            page = client.ok(LIST)["locations"]
        assert page["totalCountIsEstimate"] is True and len(_counted(captured)) == 2
