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
