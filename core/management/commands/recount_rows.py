"""``manage.py recount_rows``: rebuild every row counter from its table, for an operator who wrote
counted tables without their triggers (a data-only restore, ``session_replication_role =
replica``, triggers disabled by hand)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.row_counts import counted_columns, recount


class Command(BaseCommand):
    help = ("Count the live rows of every counted column again (core_row_count), in one transaction: "
            "run it after restoring or writing a counted table with its triggers disabled.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("tables", nargs="*", help="only these tables (default: every counted table)")

    def handle(self, *args: Any, tables: list[str], **options: Any) -> None:
        columns = sorted(counted_columns())
        unknown = sorted(set(tables) - {table for table, _ in columns})
        if unknown:
            raise CommandError(f"Not a counted table: {', '.join(unknown)}. Counted tables: "
                               f"{', '.join(sorted({table for table, _ in columns}))}.")
        with transaction.atomic():
            for table, column in columns:
                if not tables or table in tables:
                    recount(table, column)
                    self.stdout.write(f"recounted {table}.{column}")
