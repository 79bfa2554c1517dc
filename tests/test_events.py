"""A module's event reaches every listener, and a listener that fails gets it again from a
job instead of losing it (``core/events.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

from core import events
from core.hooks import hookimpl
from core.jobs import run_job
from core.loader import get_registry
from core.models import Job

EVENT = "testevents_after_counted"


class Spec:
    @pluggy.HookspecMarker("coremis")
    def testevents_after_counted(self, ids: list[str], source: str) -> None:
        """Stands for a module's own ``after_*`` event."""


class Listener:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.heard: list[tuple[list[str], str]] = []

    @hookimpl
    def testevents_after_counted(self, ids: list[str], source: str) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the listener's database table is locked")
        self.heard.append((ids, source))


@pytest.fixture
def listeners() -> Iterator[dict[str, Listener]]:
    pm = get_registry().plugin_manager
    if not hasattr(pm.hook, EVENT):
        pm.add_hookspecs(Spec)
    made = {"steady": Listener(0), "flaky": Listener(2)}
    for name, listener in made.items():
        pm.register(listener, name=name)
    yield made
    for name in made:
        pm.unregister(name=name)


def delivery_jobs() -> list[Job]:
    return list(Job.objects.filter(kind=events.DELIVERY_JOB_KIND).order_by("created_at"))


def run_again(job: Job) -> Job:
    """What the sweep does when a WAITING job's delay is over, then the worker."""
    Job.objects.filter(pk=job.pk).update(state=Job.QUEUED, available_at=None)
    run_job(str(job.pk))
    job.refresh_from_db()
    return job


def test_a_failing_listener_does_not_lose_the_event_nor_stop_the_others(db: Any, listeners: dict) -> None:
    deferred = events.announce(EVENT, ids=["a", "b"], source="import:1")
    assert deferred == ["flaky"]
    assert listeners["steady"].heard == [(["a", "b"], "import:1")]
    assert listeners["flaky"].heard == []
    (job,) = delivery_jobs()
    assert (job.state, job.params) == (Job.QUEUED, {"hook": EVENT, "listener": "flaky",
                                                    "arguments": {"ids": ["a", "b"], "source": "import:1"}})

    job = run_again(job)  # fails once more: waits, then tries again by itself
    assert job.state == Job.WAITING and job.available_at is not None
    assert "try 1 of 8" in job.message and "RuntimeError" not in job.message
    job = run_again(job)
    assert job.state == Job.SUCCEEDED
    assert listeners["flaky"].heard == [(["a", "b"], "import:1")]
    assert listeners["steady"].heard == [(["a", "b"], "import:1")]  # only the failed one hears it again


def test_a_listener_that_keeps_failing_fails_its_job_with_a_sentence(db: Any, listeners: dict,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    listeners["flaky"].failures = 100
    monkeypatch.setattr(events, "MAX_DELIVERIES", 2)
    events.announce(EVENT, ids=["x"], source="s")
    (job,) = delivery_jobs()
    assert run_again(job).state == Job.WAITING
    job = run_again(job)
    assert job.state == Job.FAILED
    assert job.message.startswith("Module 'flaky' failed to take the event") and "RuntimeError" not in job.message


def test_arguments_that_cannot_be_stored_are_refused_before_anyone_hears(db: Any, listeners: dict) -> None:
    with pytest.raises(TypeError, match="must be JSON"):
        events.announce(EVENT, ids=[object()], source="s")
    assert listeners["steady"].heard == [] and delivery_jobs() == []


def test_the_delay_grows_and_is_capped() -> None:
    assert [events.retry_delay(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert events.retry_delay(50) == events.LONGEST_RETRY_SECONDS
