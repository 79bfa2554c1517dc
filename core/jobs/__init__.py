"""Background jobs: a ``Job`` row a client can watch, leased to the RQ work horse that runs it.

The life of a job, and what makes it recover by itself:

- :func:`start_job` records the job (QUEUED) and hands it to the RQ queue once the surrounding
  transaction commits, so a rolled-back request never starts work. The row is the outbox: if
  Redis cannot take the job at that moment the row stays QUEUED, and the scheduler's
  :func:`sweep` hands it over as soon as Redis answers. A QUEUED job that the queue lost
  (Redis restarted without it, a worker died between taking it and starting it) is handed
  over again the same way.
- :func:`run_job`, in the work horse, claims the job (RUNNING, ``attempts`` + 1) and takes a
  *lease* that a heartbeat thread renews every few seconds while the handler runs, however
  long one of its statements takes. Progress and lease renewals are written on their own
  database connection, so a client sees them while the job's own work is still inside an
  uncommitted transaction.
- A lease that lapses means the run was lost: the work horse or its worker was killed, the
  machine went away. :func:`sweep` then queues the job again after an exponential back-off,
  up to ``max_failures`` lost runs, and fails it with a message saying so after that. A run
  that loses its database or Redis gives its job back the same way at once.
- Retrying is safe because every handler is idempotent: run again, it continues or redoes its
  work without duplicates (each handler's docstring says how). Every write a run makes to its
  job is fenced by the attempt number, so a run that lost its lease cannot overwrite the
  outcome of the run that replaced it.

Progress is also where a handler may be stopped: :meth:`JobContext.progress` raises
:class:`JobCancelled` once someone asked to cancel the job, so cancelling takes effect at the
handler's next progress report, where its work so far is either committed or rolled back.

The package, by job: :mod:`~core.jobs.context` (what a handler works with, timing),
:mod:`~core.jobs.kinds`, :mod:`~core.jobs.outbox` (starting and handing to the queue),
:mod:`~core.jobs.runner` (the work horse's side, the lease), :mod:`~core.jobs.retries` (lost
runs and the sweep), :mod:`~core.jobs.actions` (retry and cancel), :mod:`~core.jobs.records`
(the job's event log) and :mod:`~core.jobs.errors`. What others use is imported from here.
"""

from core.jobs.actions import (
    JobRequest,
    can_act_on,
    cancel_job,
    check_cancel_job,
    check_retry_job,
    do_cancel_job,
    do_retry_job,
    retry_job,
)
from core.jobs.context import (
    MAX_STORED_ERRORS,
    NOTHING_TO_DO,
    Handler,
    JobCancelled,
    JobContext,
    JobInterrupted,
    LeaseLost,
    Timing,
    ends_the_job,
    env_number,
    is_transient,
    progress_db,
    timing,
)
from core.jobs.errors import JobErrorCode
from core.jobs.kinds import job_kinds
from core.jobs.outbox import QUEUE, dispatch_on_commit, enqueue, rq_job_id, start_job
from core.jobs.records import FINAL_STAGES
from core.jobs.retries import SWEEP_BATCH, SweepReport, lapsed_lease_cutoff, lose_run, sweep
from core.jobs.runner import LeaseKeeper, run_job

__all__ = [
    "FINAL_STAGES", "MAX_STORED_ERRORS", "NOTHING_TO_DO", "QUEUE", "SWEEP_BATCH", "Handler", "JobCancelled", "JobContext",
    "JobErrorCode", "JobInterrupted", "JobRequest", "LeaseKeeper", "LeaseLost", "SweepReport", "Timing",
    "can_act_on", "cancel_job", "check_cancel_job", "check_retry_job", "dispatch_on_commit", "do_cancel_job",
    "do_retry_job", "ends_the_job", "enqueue", "env_number", "is_transient", "job_kinds", "lapsed_lease_cutoff",
    "lose_run", "progress_db", "retry_job", "rq_job_id", "run_job", "start_job", "sweep", "timing",
]
