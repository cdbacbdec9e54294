"""Writes to the outbox: a notification written with the change it tells of, and a dead letter replayed."""

from __future__ import annotations

import json
import logging
import re

from django.db import connection, transaction

from gis.notifications import recipients
from gis.notifications.models import DEAD, PENDING, SMS, Notification
from gis.services import ServiceError, check_values

log = logging.getLogger("onemap.notifications")

_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
TITLE_CHARS = 200
TEXT_CHARS = 2000


def notify(*, key: str, channel: str, recipient: str, subject: tuple[str, int | None], payload: dict) -> bool:
    """Put a notification in the outbox, in the caller's transaction; False when ``key`` is there already.

    It commits (or rolls back) with the caller's change; the worker sends it after commit.
    ``key`` is the idempotency key: one notification per key, ever, and the same key on
    every attempt, so choose it from what the notification is (``"case:42:assigned:li.wei:sms"``),
    never from when it was made. ``payload`` holds at least ``title`` (and usually ``text``).
    """
    subject_kind, subject_id = subject
    _check(key=key, channel=channel, recipient=recipient, subject_kind=subject_kind, subject_id=subject_id,
           payload=payload)
    with connection.cursor() as cursor:
        # the database roles of scoped requests may add rows, never read them: so no RETURNING, and no conflict
        # target (naming one needs SELECT on it); key is the only unique column a new row can collide on
        cursor.execute(
            "INSERT INTO notifications (key, channel, recipient, subject_kind, subject_id, payload, state, attempts,"
            " last_error, next_attempt_at, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, 0, '', now(), now()) ON CONFLICT DO NOTHING",
            [key, channel, recipient, subject_kind, subject_id, json.dumps(payload, ensure_ascii=False), PENDING])
        created = cursor.rowcount == 1
    if created:
        transaction.on_commit(lambda: _enqueue_key(key), robust=True)
    return created


def notification_replay(*, notification_id: int) -> Notification:
    """A dead letter back to the outbox with a fresh set of attempts (a commander's replay button)."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if notification is None:
            raise ServiceError(f"there is no notification {notification_id}")
        if notification.state != DEAD:
            raise ServiceError(f"notification {notification_id} is {notification.state}, not dead: "
                               "only a dead letter can be replayed")
        with connection.cursor() as cursor:
            cursor.execute("UPDATE notifications SET state = %s, attempts = 0, next_attempt_at = now() WHERE id = %s",
                           [PENDING, notification_id])
        transaction.on_commit(lambda: _enqueue_id(notification_id), robust=True)
    notification.refresh_from_db()
    return notification


def _check(*, key, channel, recipient, subject_kind, subject_id, payload) -> None:
    if not isinstance(key, str) or not key.strip():
        raise ServiceError("key (the idempotency key) cannot be empty")
    check_values(Notification, {"key": key, "channel": channel, "recipient": recipient,
                                "subject_kind": subject_kind, "subject_id": subject_id})
    if not recipient.strip():
        raise ServiceError("recipient cannot be empty")
    if channel == SMS and not _PHONE.match(recipient) and not recipients.is_reference(recipient):
        raise ServiceError(f"an SMS recipient is a phone number (digits, an optional leading +) or a reference such as report:12; got {recipient!r}")
    if not subject_kind:
        raise ServiceError("subject must name what the notification is about, e.g. ('case', 42)")
    if not isinstance(payload, dict) or not isinstance(payload.get("title"), str) or not payload["title"].strip():
        raise ServiceError("payload must be an object with a title (and usually a text)")
    if len(payload["title"]) > TITLE_CHARS or len(str(payload.get("text", ""))) > TEXT_CHARS:
        raise ServiceError(f"a notification's title is at most {TITLE_CHARS} characters, its text {TEXT_CHARS}")
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ServiceError(f"payload must be plain JSON: {exc}") from None
    if any("\x00" in text for text in _strings(payload)):
        raise ServiceError("payload contains a NUL character (\\u0000), which the database cannot hold")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield name
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _enqueue_key(key: str) -> None:
    notification_id = Notification.objects.filter(key=key).values_list("id", flat=True).first()
    if notification_id is not None:
        _enqueue_id(notification_id)


def _enqueue_id(notification_id: int) -> None:
    """Queue its delivery now (the sweep would find it anyway: this only saves the wait)."""
    from gis.notifications.tasks import enqueue

    try:
        enqueue(notification_id)
    except Exception as exc:  # the job queue is unreachable: the row is committed, the sweep sends it
        log.warning("notification %s not queued at once (%s); the sweep will send it", notification_id, exc)
