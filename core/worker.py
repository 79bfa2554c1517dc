"""The RQ worker every coremis worker process runs (``settings.RQ["WORKER_CLASS"]``).

Three changes to rq's own worker, each for a fault seen in production:

- The work horse dies with its worker. rq puts the horse in its own process group, so a
  worker killed by a signal, by the OOM killer or by its supervisor left the horse running
  the job alone (paying a payroll for 30 s after everything else had stopped). The kernel now
  kills the horse when its worker goes; the job's lease then lapses and the scheduler runs it
  again.
- Redis going away while a horse runs is not a reason to quit: the horse only needs the
  database, so the worker keeps waiting for it and skips the bookkeeping Redis cannot take.
  (With no job in hand rq already waits for Redis to come back.)
- Heartbeats are frequent enough for ``/health`` to tell a live worker from a dead one within
  a minute: rq's default lets an idle worker stay silent for seven.

And when its work horse is killed, the worker says so on the job at once, so it is retried
after its back-off instead of after its lease lapses.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

import redis
import rq

log = logging.getLogger("coremis.worker")

# Seconds an idle worker may stay silent before its Redis record expires; it heartbeats every
# WORKER_TTL - 15 s while idle and every JOB_MONITORING_INTERVAL s while a horse runs.
WORKER_TTL = 30
JOB_MONITORING_INTERVAL = 10
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signum)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class Worker(rq.Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING_INTERVAL)
        super().__init__(*args, **kwargs)
        # Whatever the command line asked for (django-rq's rqworker defaults to 420 s).
        self.worker_ttl = min(self.worker_ttl, WORKER_TTL)

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()
        die_with_parent()

    def maintain_heartbeats(self, job: Any, execution: Any) -> None:
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_DOWN as exc:
            # Raising here would make rq abandon the horse it is waiting for.
            log.warning("Redis is away while a job runs; waiting for the job", extra={"error": str(exc)})

    def execute_job(self, job: Any, queue: Any) -> None:
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN as exc:
            # The horse has ended (the job's outcome is in the database); only rq's own record of
            # it could not be written.
            log.warning("job ran, but Redis could not record it", extra={"rq_job": job.id, "error": str(exc)})

    def handle_work_horse_killed(self, job: Any, retpid: Any, ret_val: Any, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if job.func_name != "core.jobs.run_job" or not job.args:
            return
        from django.db import connections

        from core.jobs import lose_run

        how = f"of signal {os.WTERMSIG(ret_val)}" if ret_val and os.WIFSIGNALED(ret_val) else f"with status {ret_val}"
        try:
            lose_run(job.args[0], f"its work horse died {how}", worker_name=self.name)
        except Exception as exc:  # the database is away: the lease lapses instead
            log.warning("lost run not recorded", extra={"rq_job": job.id, "error": str(exc)})
        finally:
            # Nothing of this connection may reach the next work horse through fork().
            connections.close_all()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_DOWN as exc:
            if pipeline is not None:
                raise
            log.warning("worker heartbeat not sent: Redis is away", extra={"error": str(exc)})
