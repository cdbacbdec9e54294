"""Reads of the outbox: what is due (the sweep), the dead letters (commanders), a notification on the live feed."""

from __future__ import annotations

from django.db import connection

from gis.notifications.models import DEAD, FAILED, PENDING, SENDING

# An in-app notification as the live feed sends it (event ``notification``): who it is for, what
# about, its title and text. (id, JSON text) for each id in the array ``%s``.
NOTIFICATION_FEED_SQL = """
SELECT n.id, json_build_object(
    'id', n.id, 'key', n.key, 'recipient', n.recipient,
    'subject', json_build_object('kind', n.subject_kind, 'id', n.subject_id),
    'title', n.payload ->> 'title', 'text', coalesce(n.payload ->> 'text', ''), 'created_at', n.created_at
)::text
FROM notifications n WHERE n.id = ANY(%s::bigint[])
"""


def notifications_due(*, limit: int = 1000) -> list[int]:
    """Ids of notifications whose time has come: waiting ones, and ones being sent past their lease."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM notifications WHERE state IN (%s, %s, %s) AND next_attempt_at <= now()"
            " ORDER BY next_attempt_at LIMIT %s", [PENDING, FAILED, SENDING, limit])
        return [row[0] for row in cursor.fetchall()]


def dead_notifications(*, limit: int = 100) -> list[dict]:
    """The dead letters, newest first: what a commander sees beside the replay button.

    Each is ``{id, key, channel, recipient, subject: {kind, id}, title, attempts, last_error,
    created_at, members}``; ``members`` counts the notifications a dead summary carries.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.id, n.key, n.channel, n.recipient, n.subject_kind, n.subject_id, n.payload ->> 'title',"
            " n.attempts, n.last_error, n.created_at,"
            " (SELECT count(*) FROM notifications m WHERE m.summary_id = n.id)"
            " FROM notifications n WHERE n.state = %s ORDER BY n.created_at DESC, n.id DESC LIMIT %s",
            [DEAD, limit])
        rows = cursor.fetchall()
    return [
        {"id": id_, "key": key, "channel": channel, "recipient": recipient, "subject": {"kind": kind, "id": subject_id},
         "title": title or "", "attempts": attempts, "last_error": error, "created_at": created.isoformat(),
         "members": members}
        for id_, key, channel, recipient, kind, subject_id, title, attempts, error, created, members in rows
    ]
