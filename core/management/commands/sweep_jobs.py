"""``manage.py sweep_jobs``: one sweep of the scheduler, for an operator who wants it now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.jobs import sweep


class Command(BaseCommand):
    help = ("Retry jobs whose lease lapsed, resume waiting jobs that are due and hand over queued "
            "jobs missing from Redis, once (the scheduler does this every few seconds).")

    def handle(self, *args: Any, **options: Any) -> None:
        report = sweep()
        for label, ids in vars(report).items():
            self.stdout.write(f"{label}: {len(ids)}" + (f" ({', '.join(ids)})" if ids else ""))
