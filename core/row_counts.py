"""Exact counts of live rows per key (a location, a plan, a payroll), kept by PostgreSQL.

A list's ``totalCount`` must be exact for a location-scoped user or a list of one plan's
beneficiaries or one payroll's payments, and at national scale those are hundreds of
thousands of rows: a ``count(*)`` scans them all on every page. A counted column instead has
three statement-level triggers with transition tables (as history has, ``core.history``) that
add each statement's change per key to ``core_row_count``: one ``INSERT … ON CONFLICT`` per
statement, whatever the number of rows, so a million-row import pays one aggregate of its
batch per statement, never a per-row trigger. The count of a list is then a sum over the
counter rows of the keys its filter selects (``core.graphql.counting``).

What counts is a live row: ``is_deleted = false`` and the key not null. An insert adds, a
delete subtracts, an update subtracts the old row's key and adds the new one's (a soft delete,
a restore and a move to another location all do). Keys are upserted in key order, so two
transactions writing the same keys take the counter rows' locks in the same order.

A model declares its counted foreign keys with ``counted_by = ("location",)``; its migration
installs them with :class:`CountRows`, which also counts the rows already there (under a lock
that lets readers through but holds writers back for that one scan). ``TRUNCATE`` clears the
table's counters. :func:`recount` rebuilds one column's counters from the table, for an
operator who restored the table's data without its triggers (``session_replication_role =
replica`` skips them too, as the bench's set-up writes do: it runs :func:`recount_sql` in the
same transaction); ``manage.py recount_rows`` runs it for every counted column. A sum that
comes out negative can only mean such a bypass: the list then counts its rows and logs it.

A bulk path whose transactions run side by side (the import's batch writers) counts its own
statements with :func:`counted_by_caller`: each trigger's upsert keeps its counter rows locked
until the commit, and batches touching the same keys then wait for each other's whole
transaction; counted by the caller, the upsert is the transaction's last statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.migrations.operations.base import Operation

COUNT_FUNCTIONS = """
CREATE OR REPLACE FUNCTION coremis_row_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text := TG_ARGV[0];
    changes text;
BEGIN
    -- a bulk path that counts its own statements (row_counts.counted_by_caller) names the
    -- tables it counts in this transaction-local setting
    IF TG_TABLE_NAME = ANY(string_to_array(nullif(current_setting('coremis.counted_by_caller', true), ''), ','))
    THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        changes := format('SELECT %1$I AS key, count(*) AS delta FROM new_rows '
                          'WHERE NOT is_deleted AND %1$I IS NOT NULL GROUP BY 1', col);
    ELSIF TG_OP = 'DELETE' THEN
        changes := format('SELECT %1$I AS key, -count(*) AS delta FROM old_rows '
                          'WHERE NOT is_deleted AND %1$I IS NOT NULL GROUP BY 1', col);
    ELSE
        changes := format('SELECT key, sum(delta) AS delta FROM ('
                          'SELECT %1$I AS key, 1 AS delta FROM new_rows WHERE NOT is_deleted AND %1$I IS NOT NULL '
                          'UNION ALL SELECT %1$I, -1 FROM old_rows WHERE NOT is_deleted AND %1$I IS NOT NULL'
                          ') d GROUP BY 1 HAVING sum(delta) <> 0', col);
    END IF;
    EXECUTE format('INSERT INTO core_row_count AS c (table_name, column_name, key, live) '
                   'SELECT %L, %L, key, delta FROM (%s) changed ORDER BY key '
                   'ON CONFLICT (table_name, column_name, key) DO UPDATE SET live = c.live + EXCLUDED.live',
                   TG_TABLE_NAME, col, changes);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION coremis_row_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM core_row_count WHERE table_name = TG_TABLE_NAME AND column_name = TG_ARGV[0];
    RETURN NULL;
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS coremis_row_count_changed() CASCADE;
DROP FUNCTION IF EXISTS coremis_row_count_truncated() CASCADE;
"""


def _trigger(table: str, column: str, op: str) -> str:
    return f"{table}_count_{column}_{op}"


def count_sql(table: str, column: str) -> str:
    fn = f"coremis_row_count_changed('{column}')"
    return f"""
LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;
CREATE TRIGGER {_trigger(table, column, 'i')} AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn};
CREATE TRIGGER {_trigger(table, column, 'u')} AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn};
CREATE TRIGGER {_trigger(table, column, 'd')} AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn};
CREATE TRIGGER {_trigger(table, column, 't')} AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION coremis_row_count_truncated('{column}');
{_recount_sql(table, column)}
"""


def _recount_sql(table: str, column: str) -> str:
    return f"""
DELETE FROM core_row_count WHERE table_name = '{table}' AND column_name = '{column}';
INSERT INTO core_row_count (table_name, column_name, key, live)
    SELECT '{table}', '{column}', {column}, count(*) FROM {table}
    WHERE NOT is_deleted AND {column} IS NOT NULL GROUP BY {column};
"""


def uncount_sql(table: str, column: str) -> str:
    drops = "".join(f"DROP TRIGGER IF EXISTS {_trigger(table, column, op)} ON {table};\n" for op in "iudt")
    return drops + f"DELETE FROM core_row_count WHERE table_name = '{table}' AND column_name = '{column}';\n"


class CountRows(Operation):
    """Migration operation: keep ``core_row_count`` exact for ``table``'s live rows per ``column``.

    Runs in the migration's transaction; the table is locked against writes (not reads) while
    its existing rows are counted, so no write falls between the count and the triggers.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, table: str, column: str) -> None:
        self.table, self.column = table, column

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.table, self.column], {})

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        schema_editor.execute(count_sql(self.table, self.column))

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        schema_editor.execute(uncount_sql(self.table, self.column))

    def describe(self) -> str:
        return f"Count live rows of {self.table} per {self.column}"


def counted_columns() -> set[tuple[str, str]]:
    """(table, column) pairs that carry the counting triggers now (read from the catalogue)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE '%%\\_count\\_%%\\_i' AND NOT t.tgisinternal"
        )
        rows = cursor.fetchall()
    return {(table, name[len(table) + len("_count_"):-len("_i")]) for table, name in rows
            if name.startswith(f"{table}_count_")}


def recount_sql(table: str, column: str) -> str:
    """The statements that rebuild ``column``'s counters of ``table`` from its rows, the table
    locked against writes (not reads) until the end of the transaction they run in. For a
    connection that is not Django's (the bench's set-up), to run in the very transaction that
    bypassed the triggers, so a crash leaves the rows and their counts both before or both after."""
    if (table, column) not in counted_columns():
        raise ValueError(f"{table}.{column} is not a counted column")
    return f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;" + _recount_sql(table, column)


def recount(table: str, column: str) -> None:
    """Rebuild ``column``'s counters of ``table`` from its rows (in the caller's transaction,
    the table locked against writes while it is counted)."""
    sql = recount_sql(table, column)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


class Tally:
    """The live-row changes of the statements a bulk path counts itself, per counted column and
    key, written to ``core_row_count`` by :func:`counted_by_caller` as its block ends."""

    def __init__(self, tables: tuple[str, ...]) -> None:
        self.tables = tables
        self._deltas: dict[tuple[str, str], dict[Any, int]] = {}

    def add(self, table: str, column: str, changes: Iterable[tuple[Any, int]]) -> None:
        """Add ``(key, live rows added)`` pairs (negative for rows removed; a null key is not
        counted, as the triggers do not count it). Every counted column of the block's tables
        must be added to, if only with no pairs, or the block fails: a column forgotten would
        drift."""
        if table not in self.tables:
            raise ValueError(f"{table} is not counted by this block")
        deltas = self._deltas.setdefault((table, column), {})
        for key, delta in changes:
            if key is not None and delta:
                deltas[key] = deltas.get(key, 0) + int(delta)

    def columns(self) -> set[tuple[str, str]]:
        """The (table, column) pairs added to so far."""
        return set(self._deltas)

    def rows(self) -> list[tuple[str, str, Any, int]]:
        """The non-zero changes in the order the counter rows are locked: table, column, key."""
        return sorted((table, column, key, delta) for (table, column), deltas in self._deltas.items()
                      for key, delta in deltas.items() if delta)


@contextmanager
def counted_by_caller(*tables: str) -> Iterator[Tally]:
    """A block of one transaction whose statements on ``tables`` the counting triggers skip:
    the caller adds each statement's live-row change to the yielded :class:`Tally`, and the
    block's last statement adds them all to ``core_row_count`` in one upsert.

    Why: the triggers upsert a statement's counter rows as the statement ends, and those row
    locks are held until the commit, so side-by-side batches that touch the same keys (an
    import's batches all touch most of the country's collines) wait for each other's whole
    transaction. Counted last, the locks are held only for the commit. The setting is
    transaction-local and the upsert is in the same transaction as the rows: a crash or a
    rollback leaves the rows and their counts both before or both after. Only the caller's
    statements on ``tables`` are skipped; other tables' triggers still count.
    """
    counted = counted_columns()
    for table in tables:
        if not any(t == table for t, _ in counted):
            raise ValueError(f"{table} has no counted column")
    # No savepoint of its own: rows written in a subtransaction cost every later visibility
    # check a lookup; on an exception the enclosing block rolls back (or is marked to).
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('coremis.counted_by_caller', true)")
        previous = cursor.fetchone()[0] or ""
        names = sorted(set(filter(None, previous.split(","))) | set(tables))
        cursor.execute("SELECT set_config('coremis.counted_by_caller', %s, true)", [",".join(names)])
        tally = Tally(tables)
        yield tally  # (on an exception the rollback undoes the setting and the rows alike)
        missing = {(t, c) for t, c in counted if t in tables} - tally.columns()
        if missing:
            raise ValueError("the block did not count " + ", ".join(sorted(f"{t}.{c}" for t, c in missing)))
        cursor.execute("SELECT set_config('coremis.counted_by_caller', %s, true)", [previous])
        changes = tally.rows()
        if changes:
            table_names, columns, keys, deltas = zip(*changes, strict=True)
            cursor.execute(
                "INSERT INTO core_row_count AS c (table_name, column_name, key, live) "
                "SELECT t, c, k, d FROM unnest(%s::text[], %s::text[], %s::uuid[], %s::bigint[]) AS x(t, c, k, d) "
                "ORDER BY t, c, k "
                "ON CONFLICT (table_name, column_name, key) DO UPDATE SET live = c.live + EXCLUDED.live",
                [list(table_names), list(columns), list(keys), list(deltas)])
