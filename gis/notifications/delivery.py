"""One attempt at one notification: claim it, make its one request, record what came of it.

A worker claims a row in a short transaction (``FOR UPDATE SKIP LOCKED`` on a row that is
due): it becomes ``sending`` with a lease (``next_attempt_at`` = now + lease) and its
``attempts`` counter, the fence, goes up. The request is made outside any transaction.
Only the claimant settles a failure (its fence must still match); a success is recorded
whatever happened meanwhile. A worker that dies mid-request leaves the row ``sending``
until its lease runs out; then the sweep hands it to another worker, which sends it
again with the same key: at least once to the remote, never twice at the same time.

The in-app channel needs no request: the live-feed row and ``delivered`` are written in
one transaction, so it is exactly once.

DingTalk robots take at most 20 messages a minute each. Claims for one robot queue on an
advisory lock and count the requests of the last minute (``notification_attempts``);
the 20th slot, when more are waiting, carries one summary of all of them.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from core.settings import NotificationSettings, settings
from gis.incidents.services import live_event_add
from gis.notifications import channels
from gis.notifications.models import (
    COALESCED,
    DEAD,
    DELIVERED,
    DINGTALK,
    FAILED,
    IN_APP,
    PENDING,
    SENDING,
)

log = logging.getLogger("onemap.notifications")

SUMMARY = "summary"  # subject_kind of a summary a robot's storm was coalesced into
SUMMARY_MEMBERS = 200  # members one summary carries at most (the rest wait for the next slot)
RATE_WINDOW_S = 60


@dataclass(frozen=True)
class Outcome:
    """What one call of :func:`deliver` did; ``retry_at`` when the notification should be tried again then."""

    state: str  # delivered | failed | dead | postponed | skipped | superseded
    retry_at: datetime | None = None


@dataclass(frozen=True)
class _Claim:
    notification_id: int
    attempt: int  # the fence: the row's attempts when claimed
    attempt_id: int
    message: channels.Message


def deliver(*, notification_id: int) -> Outcome:
    """Try notification ``notification_id`` once, if it is due and no other worker holds it."""
    config = settings().notifications
    with connection.cursor() as cursor:
        cursor.execute("SELECT channel, recipient FROM notifications WHERE id = %s", [notification_id])
        found = cursor.fetchone()
    if found is None:
        return Outcome("skipped")
    channel, recipient = found
    if channel == IN_APP:
        return _deliver_in_app(notification_id)
    claim = _claim(notification_id, channel, recipient, config)
    if isinstance(claim, Outcome):
        return claim
    try:
        channels.send(claim.message, config)
    except channels.ChannelError as exc:
        return _failed(claim, exc, config)
    return _delivered(claim)


# -- in-app: one transaction ------------------------------------------------------------------------


def _deliver_in_app(notification_id: int) -> Outcome:
    with transaction.atomic(), connection.cursor() as cursor:
        if _lock_due(cursor, notification_id) is None:
            return Outcome("skipped")
        live_event_add(kind="notification", notification_id=notification_id)
        cursor.execute(
            "UPDATE notifications SET state = %s, attempts = attempts + 1, delivered_at = now(),"
            " next_attempt_at = NULL, last_error = '' WHERE id = %s", [DELIVERED, notification_id])
        cursor.execute("INSERT INTO notification_attempts (notification_id, channel, recipient, at, outcome)"
                       " SELECT id, channel, recipient, clock_timestamp(), 'ok' FROM notifications WHERE id = %s",
                       [notification_id])
    log.info("notification %s delivered in-app", notification_id)
    return Outcome(DELIVERED)


# -- claiming ---------------------------------------------------------------------------------------

_DUE_SQL = (
    "SELECT key, subject_kind, payload, attempts FROM notifications"
    " WHERE id = %s AND state IN (%s, %s, %s) AND next_attempt_at <= now() FOR UPDATE SKIP LOCKED"
)


def _lock_due(cursor, notification_id: int) -> tuple | None:
    """(key, subject_kind, payload, attempts) of the row, locked, if it is due (waiting, or sending past its lease)."""
    cursor.execute(_DUE_SQL, [notification_id, PENDING, FAILED, SENDING])
    row = cursor.fetchone()
    if row is None:
        return None
    key, kind, payload, attempts = row
    return key, kind, payload if isinstance(payload, dict) else json.loads(payload), attempts


def _claim(notification_id: int, channel: str, recipient: str, config: NotificationSettings) -> _Claim | Outcome:
    with transaction.atomic(), connection.cursor() as cursor:
        if channel == DINGTALK:  # one claimant per robot at a time: the minute's count stays true
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"onemap.dingtalk:{recipient}"])
        row = _lock_due(cursor, notification_id)
        if row is None:
            return Outcome("skipped")
        key, kind, payload, attempts = row
        if attempts >= config.max_attempts:  # only a row whose last attempt was cut off by a crash
            return _dead_now(cursor, notification_id, f"the worker stopped during attempt {attempts}; "
                             "whether the channel accepted it is unknown")
        members: tuple[channels.Member, ...] = ()
        if channel == DINGTALK and config.dingtalk_robot(recipient) is not None:
            used, free_at = _robot_budget(cursor, recipient)
            if used >= channels.DINGTALK_PER_MINUTE:
                return _postpone(cursor, notification_id, free_at)
            if used == channels.DINGTALK_PER_MINUTE - 1 and kind != SUMMARY:
                summary = _coalesce(cursor, notification_id, key, payload, recipient)
                if summary is not None:
                    notification_id, key, payload, members = summary
                    attempts = 0
        cursor.execute(
            "INSERT INTO notification_attempts (notification_id, channel, recipient, at, outcome)"
            " VALUES (%s, %s, %s, clock_timestamp(), '') RETURNING id", [notification_id, channel, recipient])
        attempt_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE notifications SET state = %s, attempts = attempts + 1,"
            " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
            [SENDING, config.lease_s, notification_id])
    message = channels.Message(key=key, channel=channel, recipient=recipient, title=str(payload.get("title", "")),
                               text=str(payload.get("text", "")), members=members)
    return _Claim(notification_id, attempts + 1, attempt_id, message)


def _robot_budget(cursor, robot: str) -> tuple[int, datetime | None]:
    """Requests made to ``robot`` in the last minute, and when the oldest of them leaves the window."""
    cursor.execute(
        "SELECT count(*), min(at) + make_interval(secs => %s) FROM notification_attempts"
        " WHERE channel = %s AND recipient = %s AND at > clock_timestamp() - make_interval(secs => %s)",
        [RATE_WINDOW_S, DINGTALK, robot, RATE_WINDOW_S])
    return cursor.fetchone()


def _postpone(cursor, notification_id: int, free_at: datetime) -> Outcome:
    """The robot's minute is full: wait for its oldest request to leave the window (not an attempt)."""
    cursor.execute(
        "UPDATE notifications SET state = CASE WHEN state = %s THEN %s ELSE state END,"
        " next_attempt_at = %s::timestamptz + interval '50 milliseconds' WHERE id = %s RETURNING next_attempt_at",
        [SENDING, PENDING, free_at, notification_id])
    return Outcome("postponed", retry_at=cursor.fetchone()[0])


def _coalesce(cursor, notification_id: int, key: str, payload: dict, robot: str):
    """The robot's last free slot this minute: one summary of this and every other notification waiting for it.

    None when nothing else waits (this one is then sent by itself). The members become
    ``coalesced`` (their summary_id says where they went); the summary is a notification of
    its own, retried and dead-lettered like any other.
    """
    cursor.execute(
        "SELECT id, key, payload ->> 'title' FROM notifications WHERE channel = %s AND recipient = %s"
        " AND state IN (%s, %s) AND subject_kind <> %s AND id <> %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        [DINGTALK, robot, PENDING, FAILED, SUMMARY, notification_id, SUMMARY_MEMBERS - 1])
    others = cursor.fetchall()
    if not others:
        return None
    members = (channels.Member(key, str(payload.get("title", ""))[:80]),) + tuple(
        channels.Member(other_key, (title or "")[:80]) for _, other_key, title in others)
    summary_key = f"dingtalk-summary:{notification_id}"
    summary_payload = {
        "title": f"{len(members)} 条通知合并发送 ({len(members)} notifications in one message: "
                 f"this robot may send {channels.DINGTALK_PER_MINUTE} a minute)",
        "members": [{"key": m.key, "title": m.title} for m in members],
    }
    cursor.execute(
        "INSERT INTO notifications (key, channel, recipient, subject_kind, payload, state, attempts, last_error,"
        " next_attempt_at, created_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s, 0, '', now(), now())"
        " ON CONFLICT (key) DO NOTHING RETURNING id",
        [summary_key, DINGTALK, robot, SUMMARY, json.dumps(summary_payload, ensure_ascii=False), PENDING])
    made = cursor.fetchone()
    if made is None:
        return None
    cursor.execute(
        "UPDATE notifications SET state = %s, summary_id = %s, next_attempt_at = NULL WHERE id = ANY(%s)",
        [COALESCED, made[0], [notification_id] + [other_id for other_id, _, _ in others]])
    log.info("%s notifications for robot %s coalesced into summary %s", len(members), robot, made[0])
    return made[0], summary_key, summary_payload, members


# -- settling ---------------------------------------------------------------------------------------


def _delivered(claim: _Claim) -> Outcome:
    """The channel accepted it: delivered, whatever another worker did meanwhile (a success is a fact)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE notification_attempts SET outcome = 'ok' WHERE id = %s", [claim.attempt_id])
        cursor.execute(
            "UPDATE notifications SET state = %s, delivered_at = now(), next_attempt_at = NULL, last_error = ''"
            " WHERE id = %s AND state IN (%s, %s, %s, %s)",
            [DELIVERED, claim.notification_id, SENDING, PENDING, FAILED, DEAD])
        cursor.execute("UPDATE notifications SET delivered_at = now() WHERE summary_id = %s", [claim.notification_id])
    log.info("notification %s delivered by %s (attempt %s)", claim.notification_id, claim.message.channel,
             claim.attempt)
    return Outcome(DELIVERED)


def _failed(claim: _Claim, exc: channels.ChannelError, config: NotificationSettings) -> Outcome:
    """Not accepted: retried after a backoff that doubles each attempt, or dead when out of attempts."""
    error = str(exc)[:1000]
    dead = exc.permanent or claim.attempt >= config.max_attempts
    delay = 0.0 if dead else min(config.backoff_s * 2 ** (claim.attempt - 1), config.backoff_max_s)
    delay *= random.uniform(1.0, 1.25)  # workers that failed together do not retry together
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE notification_attempts SET outcome = %s WHERE id = %s", [error, claim.attempt_id])
        cursor.execute(
            "UPDATE notifications SET state = %s, last_error = %s,"
            " next_attempt_at = CASE WHEN %s THEN NULL ELSE now() + make_interval(secs => %s) END"
            " WHERE id = %s AND state = %s AND attempts = %s RETURNING next_attempt_at",
            [DEAD if dead else FAILED, error, dead, delay, claim.notification_id, SENDING, claim.attempt])
        settled = cursor.fetchone()
    if settled is None:  # our lease ran out and another worker holds it now: its attempt decides
        return Outcome("superseded")
    log.warning("notification %s attempt %s by %s failed; %s: %s", claim.notification_id, claim.attempt,
                claim.message.channel, "dead-lettered" if dead else f"retry in {delay:.2f} s", error)
    return Outcome(DEAD) if dead else Outcome(FAILED, retry_at=settled[0])


def _dead_now(cursor, notification_id: int, error: str) -> Outcome:
    cursor.execute("UPDATE notifications SET state = %s, next_attempt_at = NULL, last_error = %s WHERE id = %s",
                   [DEAD, error, notification_id])
    log.warning("notification %s dead-lettered: %s", notification_id, error)
    return Outcome(DEAD)
