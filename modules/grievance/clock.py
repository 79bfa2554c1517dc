"""The time the module goes by: due dates, overdue checks and escalations read :func:`now`.

Production reads the system clock. The seam is :func:`use`, which the test plugin
(``modules/grievance/testing.py``) calls with a clock it moves by hand, so escalation timing is
tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from django.utils import timezone


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return timezone.now()


_clock: Clock = SystemClock()


def now() -> datetime:
    return _clock.now()


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous
