"""History of every change, captured by PostgreSQL so bulk paths cannot bypass it.

Each tracked table gets three statement-level triggers with transition tables: one
``INSERT … SELECT`` per statement, whatever the number of rows. That keeps a million-row
``INSERT … SELECT`` import within a small factor of the same statement without history,
where a row-level trigger or a per-row Python signal would not.

The acting user and a context (job id, mutation id) are read from transaction-local
settings that :func:`acting_as` sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.migrations.operations import RunSQL

CAPTURE_FUNCTIONS = """
CREATE OR REPLACE FUNCTION coremis_history_actor() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('coremis.user_id', true), '')::uuid
$$;
CREATE OR REPLACE FUNCTION coremis_history_context() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('coremis.context', true), '')::jsonb
$$;
CREATE OR REPLACE FUNCTION coremis_history_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor uuid := coremis_history_actor();
    ctx jsonb := coremis_history_context();
BEGIN
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, n.id, 'I', to_jsonb(n), clock_timestamp(), actor, ctx
    FROM new_rows n;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION coremis_history_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor uuid := coremis_history_actor();
    ctx jsonb := coremis_history_context();
BEGIN
    -- rows an UPDATE touched without changing anything are not history; comparing the rows
    -- themselves is much cheaper than comparing two jsonb renderings of each
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, n.id, 'U', to_jsonb(n), clock_timestamp(), actor, ctx
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n IS DISTINCT FROM o;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION coremis_history_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor uuid := coremis_history_actor();
    ctx jsonb := coremis_history_context();
BEGIN
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, o.id, 'D', to_jsonb(o), clock_timestamp(), actor, ctx
    FROM old_rows o;
    RETURN NULL;
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS coremis_history_inserted() CASCADE;
DROP FUNCTION IF EXISTS coremis_history_updated() CASCADE;
DROP FUNCTION IF EXISTS coremis_history_deleted() CASCADE;
DROP FUNCTION IF EXISTS coremis_history_actor();
DROP FUNCTION IF EXISTS coremis_history_context();
"""


def track_sql(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_history_i AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_inserted();
CREATE TRIGGER {table}_history_u AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_updated();
CREATE TRIGGER {table}_history_d AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_deleted();
"""


def untrack_sql(table: str) -> str:
    return "".join(
        f"DROP TRIGGER IF EXISTS {table}_history_{op} ON {table};\n" for op in ("i", "u", "d")
    )


class TrackHistory(RunSQL):
    """Migration operation: start capturing every change of ``table`` in ``core_history``."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(sql=track_sql(table), reverse_sql=untrack_sql(table))

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.table], {})

    def describe(self) -> str:
        return f"Track history of {self.table}"


def tracked_tables() -> set[str]:
    """Tables that currently carry the history triggers (used by a test over every model)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE '%%_history_i' AND NOT t.tgisinternal"
        )
        return {row[0] for row in cursor.fetchall()}


@contextmanager
def acting_as(user: Any, **context: Any) -> Iterator[None]:
    """A transaction whose changes history attributes to ``user`` (and ``context``).

    The settings are transaction-local, so when this block is nested in an outer transaction
    the outer actor is put back on the way out; later changes are not attributed to ``user``.
    """
    nested = connection.in_atomic_block
    with transaction.atomic():
        user_id = getattr(user, "pk", None)
        with connection.cursor() as cursor:
            previous: tuple[str | None, str | None] | None = None
            if nested:
                cursor.execute(
                    "SELECT current_setting('coremis.user_id', true), "
                    "current_setting('coremis.context', true)"
                )
                previous = cursor.fetchone()
            cursor.execute(
                "SELECT set_config('coremis.user_id', %s, true), set_config('coremis.context', %s, true)",
                [str(user_id) if user_id else "", json.dumps(context, default=str) if context else ""],
            )
        yield
        if previous is not None:
            # (On an exception the savepoint's rollback restores them by itself.)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('coremis.user_id', %s, true), "
                    "set_config('coremis.context', %s, true)",
                    [previous[0] or "", previous[1] or ""],
                )


def history_of(table: str, row_id: Any) -> list[dict[str, Any]]:
    from core.models import HistoryEntry

    return list(
        HistoryEntry.objects.filter(table_name=table, row_id=row_id)
        .order_by("id")
        .values("id", "operation", "data", "changed_at", "user_id", "context")
    )
