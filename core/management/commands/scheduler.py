"""``manage.py scheduler``: sweep the jobs and start the modules' periodic jobs (core/cron.py)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.cron import run_scheduler


class Command(BaseCommand):
    help = ("Run the scheduler: retry jobs whose run was lost, resume waiting jobs, hand over jobs "
            "the queue lost, and start periodic jobs. SIGTERM or Ctrl-C stops it after the current tick.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=None,
                            help="seconds between sweeps (default COREMIS_SCHEDULER_SWEEP_SECONDS or 5)")

    def handle(self, *args: Any, every: float | None = None, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        run_scheduler(stop, every)
