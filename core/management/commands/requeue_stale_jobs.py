"""Re-enqueue background jobs whose worker died (no heartbeat for a while)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.jobs import requeue_stale_jobs


class Command(BaseCommand):
    help = "Re-enqueue RUNNING jobs without a heartbeat for --minutes (default 5)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--minutes", type=int, default=5)

    def handle(self, *args: Any, minutes: int = 5, **options: Any) -> None:
        ids = requeue_stale_jobs(timedelta(minutes=minutes))
        self.stdout.write(f"Re-enqueued {len(ids)} job(s).")
