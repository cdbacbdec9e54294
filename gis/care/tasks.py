"""The care rules' timer for ``onemap worker``: the sweep, every minute (procrastinate's periodic task).

Every deadline is a row (``care_rule_states``) recomputed from the people's state and rules at
each sweep, so a worker that was down catches up on its first sweep and a rule changed by an
operator applies at the next minute; the sweep's unique episodes raise nothing twice.
"""

from __future__ import annotations

from procrastinate.contrib.django import app

from gis.care.rules import care_rules_sweep

SWEEP_QUEUE = "sweeps"


@app.periodic(cron="* * * * *", periodic_id="care-rules")
@app.task(name="care.rules_sweep", queue=SWEEP_QUEUE, queueing_lock="care.rules_sweep")
def sweep(timestamp: int) -> dict:
    """Faults, warnings, alerts (into cases) as of now; their counts."""
    report = care_rules_sweep()
    return {"faults_opened": len(report.faults_opened), "faults_cleared": len(report.faults_cleared),
            "warnings": len(report.warnings), "alerts": len(report.alerts), "cases": len(report.cases),
            "cleared": len(report.cleared), "states_changed": report.states_changed}
