"""Print the GraphQL schema (SDL); ``--out`` writes it to a file (``make schema``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


def schema_sdl() -> str:
    from core.graphql.schema import schema

    return str(schema).rstrip() + "\n"


class Command(BaseCommand):
    help = "Print the GraphQL schema in SDL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", help="write to this file instead of standard output")

    def handle(self, *args: Any, out: str | None = None, **options: Any) -> None:
        text = schema_sdl()
        if out:
            Path(out).write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote {out}")
        else:
            self.stdout.write(text, ending="")
