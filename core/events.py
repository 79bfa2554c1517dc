"""Announcing a module's event to its listeners without losing it when one of them fails.

A module that owns an ``after_*`` event (``individual_after_created``) calls
:func:`announce` once the change is committed. Each listener (a module implementing the hook)
is called on its own: one that raises does not stop the others, and its delivery is not
dropped with a log line. It becomes a ``core.event_delivery`` job for that one listener, retried
after a growing delay by the job machinery (``resume_after``), and failed with a sentence,
visible on the job dashboard and retryable there, only after :data:`MAX_DELIVERIES` tries.

So the caller may record the event as announced as soon as :func:`announce` returns: every
listener has either heard it or holds a job that will deliver it. Listeners must therefore be
idempotent (the same event can arrive twice: a crash between the announce and the caller's
mark announces again), as every ``after_*`` hook already is.

The event's arguments are stored in the job: they must be JSON (ids as strings, not rows).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from core.actors import system_actor
from core.errors import CoreErrorCode, ServiceError
from core.jobs import JobContext, start_job
from core.loader import get_registry

log = logging.getLogger("coremis.events")

DELIVERY_JOB_KIND = "core.event_delivery"
MAX_DELIVERIES = 8
FIRST_RETRY_SECONDS = 10.0
LONGEST_RETRY_SECONDS = 1800.0


def _listeners(hook_name: str) -> list[Any]:
    caller = getattr(get_registry().plugin_manager.hook, hook_name, None)
    if caller is None:
        raise KeyError(f"no enabled module declares the event hook {hook_name!r}")
    # In calling order (pluggy calls the last registered first), one by one.
    return list(reversed(caller.get_hookimpls()))


def _call(impl: Any, arguments: dict[str, Any]) -> Any:
    return impl.function(**{name: arguments[name] for name in impl.argnames if name in arguments})


def announce(hook_name: str, **arguments: Any) -> list[str]:
    """Call every listener of ``hook_name`` with ``arguments``; returns the modules whose
    delivery failed now and was handed to a ``core.event_delivery`` job."""
    try:
        json.dumps(arguments)
    except TypeError as exc:
        raise TypeError(f"the arguments of event {hook_name!r} must be JSON to be redelivered: {exc}") from None
    deferred = []
    for impl in _listeners(hook_name):
        try:
            _call(impl, arguments)
        except Exception:
            log.exception("event listener failed; its delivery is retried by a job",
                          extra={"event": hook_name, "listener": impl.plugin_name})
            start_job(DELIVERY_JOB_KIND, {"hook": hook_name, "listener": impl.plugin_name,
                                          "arguments": arguments}, system_actor())
            deferred.append(impl.plugin_name)
    return deferred


def retry_delay(delivery: int) -> float:
    """How long the ``delivery``-th try (the first try of the job is 1) waits before the next."""
    return float(min(LONGEST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, delivery - 1)))


def deliver(ctx: JobContext) -> dict[str, Any]:
    """Handler of ``core.event_delivery`` jobs: the event again, to the one listener that
    failed. Waits and tries again while it fails, then fails the job saying so."""
    hook_name, listener = ctx.params["hook"], ctx.params["listener"]
    impls = [impl for impl in _listeners(hook_name) if impl.plugin_name == listener]
    if not impls:
        # Its module was disabled since: nobody is left to tell.
        return {"state": "SUCCEEDED", "message": f"Module '{listener}' no longer listens to {hook_name}; "
                                                 "nothing to deliver."}
    tries = int(ctx.job.result.get("tries", 0) if isinstance(ctx.job.result, dict) else 0) + 1
    try:
        _call(impls[0], ctx.params["arguments"])
    except Exception as exc:
        log.exception("event listener failed again", extra={"event": hook_name, "listener": listener,
                                                             "tries": tries})
        if tries >= MAX_DELIVERIES:
            raise ServiceError(CoreErrorCode.INTERNAL,
                               f"Module '{listener}' failed to take the event {hook_name} {tries} times; the "
                               "error is logged under this job. Retry the job once the cause is fixed.") from exc
        delay = retry_delay(tries)
        return {"state": "WAITING", "resume_after": delay, "tries": tries,
                "message": f"Module '{listener}' failed to take the event {hook_name} (try {tries} of "
                           f"{MAX_DELIVERIES}); it is tried again in {delay:.0f} s."}
    return {"tries": tries, "message": f"Delivered {hook_name} to module '{listener}' (try {tries})."}
