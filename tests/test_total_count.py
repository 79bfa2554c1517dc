"""``totalCount`` is exact up to the limit; above it only a whole-table list may answer an
estimate, and it says so (``totalCountIsEstimate``); filtered and scoped lists stay exact."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

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
