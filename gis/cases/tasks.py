"""The cases' timer for ``onemap worker``: the SLA sweep, every minute (procrastinate's periodic task).

The due and warning moments are rows (``cases.warn_at``, ``cases.due_at``), so a worker that
was down catches up on its first sweep; several workers queue each tick once, and the sweep's
conditional updates mark each case once even if two sweeps ran together.
"""

from __future__ import annotations

from procrastinate.contrib.django import app

from gis.cases.sla import sla_sweep

SWEEP_QUEUE = "sweeps"


@app.periodic(cron="* * * * *", periodic_id="cases-sla")
@app.task(name="cases.sla_sweep", queue=SWEEP_QUEUE, queueing_lock="cases.sla_sweep")
def sweep(timestamp: int) -> dict:
    """Warnings, breaches and escalations due by now; their counts."""
    report = sla_sweep()
    return {"warned": len(report.warned), "breached": len(report.breached), "escalated": len(report.escalated)}
