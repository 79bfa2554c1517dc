"""Unique ``json_ext`` keys (``national_id``…) enforced by the database across the registry.

The keys come from ``modules_config.json``, so their indexes are kept in step with the
configuration after every ``migrate`` instead of in a migration file. A key that the live
data already violates stops ``migrate`` with the offending values.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from core.loader import module_config

PREFIX = "individual_uk_"
TABLE = "individual_individual"


def unique_keys() -> list[str]:
    return list(module_config("individual")["unique_keys"])


def index_name(key: str) -> str:
    return f"{PREFIX}{key}"[:63]


def sync_unique_key_indexes(**kwargs: Any) -> None:
    wanted = {index_name(k): k for k in unique_keys()}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            [TABLE, PREFIX + "%"],
        )
        present = {row[0] for row in cursor.fetchall()}
        for name in present - set(wanted):
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        for name, key in wanted.items():
            if name in present:
                continue
            cursor.execute(
                f"SELECT json_ext->>%s, count(*) FROM {TABLE} WHERE NOT is_deleted "
                f"AND json_ext ? %s GROUP BY 1 HAVING count(*) > 1 LIMIT 5",
                [key, key],
            )
            clashes = cursor.fetchall()
            if clashes:
                values = ", ".join(f"'{v}' ({n} times)" for v, n in clashes)
                raise RuntimeError(
                    f"individual: cannot make json_ext.{key} unique, live individuals share "
                    f"values: {values}. Resolve the duplicates or remove '{key}' from unique_keys."
                )
            cursor.execute(
                f'CREATE UNIQUE INDEX "{name}" ON {TABLE} ((json_ext->>%s)) '
                f"WHERE NOT is_deleted AND json_ext ? %s",
                [key, key],
            )
