"""The worker's jobs: every domain's ``tasks.py``, collected, and the job queue's own housekeeping.

procrastinate's Django app imports each installed app's ``tasks`` module when Django starts
(this one, for the ``onemap`` app). This module imports ``gis.<domain>.tasks`` for every
domain that has one, so a domain adds jobs and periodic timers to ``onemap worker`` by
writing its own ``tasks.py`` with ``procrastinate.contrib.django.app``'s decorators: the
worker imports no domain, and nothing here names one.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil

from procrastinate.contrib.django import app

log = logging.getLogger("onemap.worker")

HOUSEKEEPING_QUEUE = "sweeps"
JOBS_KEPT_HOURS = 72  # finished jobs (failed ones too) are deleted after this


def domain_task_modules() -> list[str]:
    """The ``gis.<domain>.tasks`` modules there are, imported (their jobs registered)."""
    import gis

    found = []
    for info in pkgutil.iter_modules(gis.__path__):
        name = f"gis.{info.name}.tasks"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            found.append(name)
    return found


DOMAIN_TASKS = domain_task_modules()


@app.periodic(cron="*/5 * * * *", periodic_id="jobs")
@app.task(name="jobs.tidy", queue=HOUSEKEEPING_QUEUE, queueing_lock="jobs.tidy", pass_context=True)
async def jobs_tidy(context, timestamp: int) -> int:
    """Jobs left ``doing`` by a worker that died are marked failed (what they did is the domains' to redo,
    as the outbox's leases do); finished jobs older than ``JOBS_KEPT_HOURS`` are deleted."""
    from procrastinate.jobs import Status

    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs())
    for job in stalled:
        await manager.finish_job(job, status=Status.FAILED, delete_job=False)
    if stalled:
        log.warning("%s jobs of workers that stopped answering marked failed", len(stalled))
    await manager.delete_old_jobs(nb_hours=JOBS_KEPT_HOURS, include_failed=True, include_cancelled=True,
                                  include_aborted=True)
    return len(stalled)
