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
replica`` skips them too, as the bench's set-up writes do). A sum that comes out negative can
only mean such a bypass: the list then counts its rows and logs it.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.migrations.operations.base import Operation

COUNT_FUNCTIONS = """
CREATE OR REPLACE FUNCTION coremis_row_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text := TG_ARGV[0];
    changes text;
BEGIN
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


def recount(table: str, column: str) -> None:
    """Rebuild ``column``'s counters of ``table`` from its rows (in the caller's transaction,
    the table locked against writes while it is counted)."""
    if (table, column) not in counted_columns():
        raise ValueError(f"{table}.{column} is not a counted column")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;" + _recount_sql(table, column))
