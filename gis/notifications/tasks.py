"""The outbox's jobs for ``onemap worker`` (procrastinate): deliver one notification, and the sweep.

A delivery job is queued when its notification commits (a shortcut) and again by the sweep,
every ``ONEMAP_OUTBOX_SWEEP_S`` seconds, for every row that is due, so nothing is lost when
a process dies between commit and queueing, or a worker dies mid-delivery. A queueing lock
per notification keeps at most one waiting job each; the row's claim
(:mod:`gis.notifications.delivery`) keeps two workers from sending it at once.
"""

from __future__ import annotations

from datetime import datetime

from procrastinate import exceptions as job_errors
from procrastinate.contrib.django import app

from core.settings import settings
from gis.notifications import delivery
from gis.notifications.selectors import notifications_due

DELIVERY_QUEUE = "notifications"
SWEEP_QUEUE = "sweeps"
SWEEP_BATCH = 1000


@app.task(name="notifications.deliver", queue=DELIVERY_QUEUE)
def deliver(notification_id: int) -> str:
    """One attempt at one notification; a retry (or a postponement) is queued for its time."""
    outcome = delivery.deliver(notification_id=notification_id)
    if outcome.retry_at is not None:
        enqueue(notification_id, at=outcome.retry_at)
    return outcome.state


@app.periodic(cron=f"* * * * * */{settings().notifications.sweep_s}", periodic_id="outbox")
@app.task(name="notifications.sweep", queue=SWEEP_QUEUE, queueing_lock="notifications.sweep")
def sweep(timestamp: int) -> int:
    """Queue a delivery for every notification that is due; how many were queued."""
    return sum(enqueue(notification_id) for notification_id in notifications_due(limit=SWEEP_BATCH))


def enqueue(notification_id: int, *, at: datetime | None = None) -> bool:
    """Queue a delivery job (at ``at``, else now); False when one is waiting already."""
    try:
        deliver.configure(queueing_lock=f"notification:{notification_id}", schedule_at=at).defer(
            notification_id=notification_id)
    except job_errors.AlreadyEnqueued:
        return False
    return True
