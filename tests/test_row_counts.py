"""The counters of ``core_row_count`` stay equal to ``count(*)`` of live rows whatever writes the
table (one row or a bulk statement, insert, soft delete, restore, move, hard delete, truncate),
and the lists answer their exact ``totalCount`` from them."""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.row_counts import counted_columns, recount

pytestmark = pytest.mark.django_db


def _counters(table: str, column: str) -> dict[Any, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, live FROM core_row_count WHERE table_name = %s AND column_name = %s AND live <> 0",
                       [table, column])
        return dict(cursor.fetchall())


def _counted(table: str, column: str) -> dict[Any, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column}, count(*) FROM {table} WHERE NOT is_deleted AND {column} IS NOT NULL "
                       f"GROUP BY 1")
        return dict(cursor.fetchall())


def test_every_declared_counted_column_has_its_triggers_and_no_other_does() -> None:
    declared = {(model._meta.db_table, model._meta.get_field(name).column)
                for model in apps.get_models() for name in getattr(model, "counted_by", ())}
    assert declared == counted_columns()
    assert ("individual_individual", "location_id") in declared


@pytest.mark.parametrize("seed", range(4))
def test_random_writes_keep_the_counters_exact(seed: int, hierarchy: dict[str, Any]) -> None:
    from modules.individual.models import Individual

    rng = random.Random(seed)
    places = [hierarchy[code] for code in ("H111", "H112", "H211", "P2")] + [None]
    people = Individual._base_manager
    for step in range(60):
        op = rng.choice(("create", "bulk", "soft_delete", "restore", "move", "bulk_move", "delete", "save"))
        ids = list(people.values_list("pk", flat=True))
        picked = rng.sample(ids, min(len(ids), rng.randint(1, 5))) if ids else []
        if op == "create":
            Individual.objects.create(first_name="A", last_name=f"N{step}", dob=datetime.date(1990, 1, 1),
                                      location=rng.choice(places))
        elif op == "bulk":
            people.bulk_create([Individual(first_name="B", last_name=f"M{step}{i}", dob=datetime.date(1980, 1, 1),
                                           location=rng.choice(places), is_deleted=rng.random() < 0.2)
                                for i in range(rng.randint(1, 30))])
        elif op == "soft_delete":
            people.filter(pk__in=picked).update(is_deleted=True)
        elif op == "restore":
            people.filter(pk__in=picked).update(is_deleted=False)
        elif op in ("move", "bulk_move"):
            people.filter(pk__in=picked if op == "move" else ids).update(location=rng.choice(places))
        elif op == "delete":
            people.filter(pk__in=picked).delete()
        elif picked:  # a save of every column, the location unchanged or not
            person = people.get(pk=picked[0])
            person.location = rng.choice(places)
            person.save()
        assert _counters("individual_individual", "location_id") == _counted("individual_individual", "location_id"), op
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE individual_individual CASCADE")
    assert _counters("individual_individual", "location_id") == {}


def test_recount_rebuilds_counters_lost_outside_the_triggers(hierarchy: dict[str, Any]) -> None:
    from modules.individual.models import Individual

    Individual.objects.bulk_create([Individual(first_name="C", last_name=str(i), dob=datetime.date(2000, 1, 1),
                                               location=hierarchy["H111"]) for i in range(7)])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_row_count SET live = 0 WHERE table_name = 'individual_individual'")
    recount("individual_individual", "location_id")
    assert _counters("individual_individual", "location_id") == {hierarchy["H111"].pk: 7}
    with pytest.raises(ValueError, match="not a counted column"):
        recount("individual_individual", "dob")


PEOPLE = "query($n: String) { individual(first: 2, lastName_Icontains: $n, orderBy: [\"-dateCreated\"]) " \
         "{ totalCount edges { node { lastName } } } }"


def test_a_scoped_list_counts_from_the_counters_and_exactly(gql: Any, admin_user: Any, make_user: Any,
                                                            hierarchy: dict[str, Any]) -> None:
    from modules.individual.models import Individual
    from modules.location.services import set_user_locations

    for i, code in enumerate(("H111", "H111", "H112", "H211", "H111")):
        Individual.objects.create(first_name="D", last_name=f"Kaze{i}", dob=datetime.date(1970, 1, 1),
                                  location=hierarchy[code])
    Individual.objects.filter(last_name="Kaze4").update(is_deleted=True)
    officer = make_user(["individual.registry.search"])
    set_user_locations(admin_user, officer, [hierarchy["P1"].pk])
    with CaptureQueriesContext(connection) as queries:
        page = gql(officer).ok(PEOPLE)["individual"]
    assert page["totalCount"] == 3  # H111 twice and H112; the soft-deleted one and P2's do not count
    assert any("core_row_count" in q["sql"] for q in queries.captured_queries)
    assert not any("COUNT(*)" in q["sql"].upper() and "individual_individual" in q["sql"]
                   for q in queries.captured_queries)
    # a name filter besides the scope is counted by the rows themselves, exactly too
    filtered = gql(officer).ok(PEOPLE, {"n": "kaze"})["individual"]
    assert filtered["totalCount"] == 3
    assert [e["node"]["lastName"] for e in filtered["edges"]] == ["Kaze2", "Kaze1"]


BENEFICIARIES = "query($p: UUID, $s: ChoiceText) { groupBeneficiary(first: 2, benefitPlan_Id: $p, status: $s) " \
                "{ totalCount edges { node { uuid } } } }"


def test_a_plans_beneficiaries_are_counted_from_the_counters(gql: Any, admin_user: Any,
                                                              hierarchy: dict[str, Any]) -> None:
    from modules.individual.models import Group
    from modules.social_protection.models import BenefitPlan, GroupBeneficiary

    plans = [BenefitPlan.objects.create(code=f"RC{i}", name="Plan", type="GROUP", date_valid_from=datetime.date(2026, 1, 1),
                                        date_valid_to=datetime.date(2027, 1, 1)) for i in range(2)]
    groups = Group.objects.bulk_create([Group(code=f"RCG{i}", location=hierarchy["H111"]) for i in range(6)])
    GroupBeneficiary.objects.bulk_create([GroupBeneficiary(benefit_plan=plans[i % 2], group=g, status="ACTIVE" if i < 4
                                                           else "POTENTIAL") for i, g in enumerate(groups)])
    GroupBeneficiary.objects.filter(group=groups[0]).update(is_deleted=True)
    with CaptureQueriesContext(connection) as queries:
        page = gql(admin_user).ok(BENEFICIARIES, {"p": str(plans[0].pk)})["groupBeneficiary"]
    assert page["totalCount"] == 2  # groups 2 and 4; group 0's row is soft-deleted
    counted = [q["sql"] for q in queries.captured_queries if "core_row_count" in q["sql"]]
    # the plan's own key: summed without a look-up in the plans' table
    assert len(counted) == 1 and "social_protection_benefitplan" not in counted[0], counted
    empty = BenefitPlan.objects.create(code="RC-EMPTY", name="Plan", type="GROUP", date_valid_from=datetime.date(2026, 1, 1),
                                       date_valid_to=datetime.date(2027, 1, 1))
    assert gql(admin_user).ok(BENEFICIARIES, {"p": str(empty.pk)})["groupBeneficiary"]["totalCount"] == 0
    # a status besides the plan is counted from the rows, exactly
    active = gql(admin_user).ok(BENEFICIARIES, {"p": str(plans[0].pk), "s": "ACTIVE"})["groupBeneficiary"]
    assert active["totalCount"] == 1
    assert _counters("social_protection_groupbeneficiary", "benefit_plan_id") == {plans[0].pk: 2, plans[1].pk: 3}


# --- paths that write counted tables without the counting triggers --------------------------


def _all_counters_exact() -> None:
    for table, column in sorted(counted_columns()):
        assert _counters(table, column) == _counted(table, column), f"{table}.{column}"


@pytest.mark.usefixtures("import_media_in_tmp")
def test_an_import_counts_its_people_and_households_itself_and_exactly(
        run_import: Any, importer: Any, admin_user: Any, hierarchy: dict[str, Any], registry_files: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from core.loader import get_registry
    from core.models import HistoryEntry
    from modules.individual import services
    from modules.individual.import_models import ImportBatch

    monkeypatch.setitem(get_registry().config("individual"), "import_chunk_size", 100)
    services.create_group(admin_user, code="HH-OLD", location_id=hierarchy["H112"].pk)
    rows = [registry_files.row("Joins", "Old", household="HH-OLD", role="SON", location="")]
    for n in range(80):  # households of three in the three collines, and people on their own
        place = ("H111", "H112", "H211")[n % 3]
        rows += [registry_files.row("Head", f"F{n}", household=f"HH-{n}", role="HEAD", recipient="PRIMARY",
                                    location=place, national_id=f"BI-{n:04d}"),
                 registry_files.row("Child", f"F{n}", household=f"HH-{n}", role="SON", location=place),
                 registry_files.row("Alone", f"F{n}", location=place, national_id=f"BI-A{n:04d}")]
    job = run_import(importer, registry_files.csv_text(rows))
    assert job.state == "SUCCEEDED", job.errors
    assert ImportBatch.objects.filter(job=job).count() > 1
    _all_counters_exact()
    assert _counters("individual_individual", "location_id")[hierarchy["H112"].pk] == 1 + 27 * 3
    assert _counters("individual_group", "location_id") == {hierarchy["H111"].pk: 27, hierarchy["H112"].pk: 1 + 27,
                                                           hierarchy["H211"].pk: 26}
    assert HistoryEntry.objects.filter(table_name="individual_individual", operation="I",
                                       context__job=str(job.pk)).count() == len(rows)


def test_a_block_counted_by_its_caller_is_skipped_by_the_triggers_and_counted_at_its_end(
        hierarchy: dict[str, Any]) -> None:
    from django.db import transaction

    from core.row_counts import counted_by_caller
    from modules.individual.models import Group, Individual

    def person(place: str) -> Individual:
        return Individual(first_name="E", last_name=place, dob=datetime.date(1990, 1, 1), location=hierarchy[place])

    Individual.objects.bulk_create([person("H111")])
    with counted_by_caller("individual_individual") as tally:
        Individual.objects.bulk_create([person("H111"), person("H211"), person("H211")])
        Group.objects.create(code="CBC", location=hierarchy["H211"])  # not the block's table: counted at once
        assert _counters("individual_individual", "location_id") == {hierarchy["H111"].pk: 1}
        assert _counters("individual_group", "location_id") == {hierarchy["H211"].pk: 1}
        tally.add("individual_individual", "location_id",
                  [(hierarchy["H111"].pk, 1), (hierarchy["H211"].pk, 2), (None, 5)])
    _all_counters_exact()
    Individual.objects.bulk_create([person("H112")])  # after the block the triggers count again
    _all_counters_exact()
    with pytest.raises(ValueError, match="individual_group is not counted by this block"), transaction.atomic():
        with counted_by_caller("individual_individual") as tally:
            tally.add("individual_group", "location_id", [])


def test_a_block_that_forgets_a_counted_column_or_fails_changes_nothing(hierarchy: dict[str, Any]) -> None:
    from django.db import transaction

    from core.row_counts import counted_by_caller
    from modules.individual.models import Individual

    before = Individual.objects.count()
    with pytest.raises(ValueError, match="did not count individual_individual.location_id"), transaction.atomic():
        with counted_by_caller("individual_individual"):
            Individual.objects.create(first_name="F", last_name="Forgot", dob=datetime.date(1990, 1, 1),
                                      location=hierarchy["H111"])
    with pytest.raises(RuntimeError), transaction.atomic():
        with counted_by_caller("individual_individual") as tally:
            Individual.objects.create(first_name="F", last_name="Failed", dob=datetime.date(1990, 1, 1),
                                      location=hierarchy["H111"])
            tally.add("individual_individual", "location_id", [(hierarchy["H111"].pk, 1)])
            raise RuntimeError("the batch failed")
    assert Individual.objects.count() == before
    _all_counters_exact()
    with pytest.raises(ValueError, match="location_location has no counted column"), transaction.atomic():
        with counted_by_caller("location_location"):
            pass


def test_writes_under_the_replica_role_are_recounted_in_their_own_transaction(hierarchy: dict[str, Any]) -> None:
    """As the bench's set-up does (and an operator restoring a table's rows would)."""
    from core.row_counts import recount_sql

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("INSERT INTO individual_group (id, code, location_id, json_ext, version, is_deleted, "
                       "date_created, date_updated) SELECT gen_random_uuid(), 'RR' || g, %s, '{}', 1, g = 3, now(), now() "
                       "FROM generate_series(1, 5) g", [hierarchy["H111"].pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
        assert _counters("individual_group", "location_id") == {}  # the triggers did not fire
        cursor.execute(recount_sql("individual_group", "location_id"))
    assert _counters("individual_group", "location_id") == {hierarchy["H111"].pk: 4}
    with pytest.raises(ValueError, match="not a counted column"):
        recount_sql("individual_group", "code")


def test_a_truncate_that_cascades_clears_the_counters_of_every_table_it_empties(hierarchy: dict[str, Any]) -> None:
    from modules.individual.models import Group, Individual

    Individual.objects.create(first_name="G", last_name="T", dob=datetime.date(1990, 1, 1), location=hierarchy["H111"])
    Group.objects.create(code="TRC", location=hierarchy["H211"])
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE location_location CASCADE")  # empties people and households too
    assert not Individual._base_manager.exists()
    _all_counters_exact()
    assert _counters("individual_group", "location_id") == {}


def test_the_operators_recount_command_rebuilds_every_counter(hierarchy: dict[str, Any]) -> None:
    """For rows written or restored with the counting triggers off, or counters restored from
    another moment than their rows."""
    import io

    from django.core.management import CommandError, call_command

    from modules.individual.models import Group, Individual

    Individual.objects.create(first_name="H", last_name="R", dob=datetime.date(1990, 1, 1), location=hierarchy["H111"])
    Group.objects.create(code="RCC", location=hierarchy["H211"])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_row_count SET live = live * 2 + 3")
    out = io.StringIO()
    call_command("recount_rows", "individual_group", stdout=out)
    assert out.getvalue() == "recounted individual_group.location_id\n"
    assert _counters("individual_group", "location_id") == {hierarchy["H211"].pk: 1}
    assert _counters("individual_individual", "location_id") == {hierarchy["H111"].pk: 5}  # left as it was
    call_command("recount_rows", stdout=io.StringIO())
    _all_counters_exact()
    with pytest.raises(CommandError, match="Not a counted table: location_location"):
        call_command("recount_rows", "location_location")
