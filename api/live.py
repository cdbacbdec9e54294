"""The live feed: changes to incidents pushed to the big screen as Server-Sent Events.

Triggers on ``incidents`` (migration 0006) write one ``live_events`` row per changed
incident, or one ``reset`` row for a bulk change, and ``NOTIFY onemap_live``, which
PostgreSQL delivers on commit; the notification outbox writes one ``notification`` row
per in-app notification it delivers (sent as event ``notification``). Each server
process keeps one :class:`Feed`: a LISTEN connection that wakes it, and one query that
reads every event after the last one it saw, with each incident's Feature, for all of
its subscribers at once.

An event's id is its ``live_events`` id, sent as the SSE ``id``. A browser that
reconnects (after a network cut or a server restart) sends it back as
``Last-Event-ID`` and is replayed what it missed from the table; when that is too
much, or no longer kept, it is told to reload (``reset``). Memory is bounded on
both sides: a subscriber that falls :data:`QUEUE_SIZE` events behind is cut off and
replays when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

CHANNEL = "onemap_live"
REPLAY_LIMIT = 2000  # more missed events than this: a reset instead of a replay
QUEUE_SIZE = 1000  # events a subscriber may fall behind before it is cut off
HEARTBEAT_S = 15.0
RETRY_MS = 1000
RETENTION = "7 days"  # live_events older than this are pruned
PRUNE_EVERY_S = 3600.0
RECONNECT_S = (0.5, 1.0, 2.0, 5.0)

log = logging.getLogger(__name__)

_EVENTS_SQL = "SELECT id, kind, op, incident_id, notification_id FROM live_events WHERE id > %s ORDER BY id LIMIT %s"


@dataclass(frozen=True)
class Message:
    """One Server-Sent Event."""

    event: str
    data: str  # JSON text
    id: int | None = None

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.event}\ndata: {self.data}\n\n".encode()


@dataclass(eq=False)
class Subscriber:
    """One open stream: the events it has not been sent yet, at most :data:`QUEUE_SIZE`."""

    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    cut_off: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, message: Message) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.cut_off.set()


class FeedUnavailable(Exception):
    """The database cannot be reached, so the feed cannot start."""


class Feed:
    """One per server process: listens for ``onemap_live`` and fans new events out to subscribers."""

    def __init__(self, database_url: str | None = None):
        self._url = database_url
        self._subscribers: set[Subscriber] = set()
        self._last_id: int | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._query_lock: asyncio.Lock | None = None
        self._query_conn = None
        self.stopping: asyncio.Event | None = None

    @property
    def last_id(self) -> int:
        return self._last_id or 0

    async def subscribe(self, *, timeout: float = 10.0) -> Subscriber:
        """A new subscriber, once the feed listens (started on first use)."""
        self._start()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise FeedUnavailable("the live feed cannot reach the database; try again shortly") from None
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    async def replay(self, *, after: int) -> list[Message] | None:
        """The messages after event ``after`` up to now, or None when the client must reload instead."""
        if after > self.last_id:  # an id this database never gave (it was reset, or another one)
            return None
        rows = await self._query(_EVENTS_SQL, [after, REPLAY_LIMIT + 1])
        if len(rows) > REPLAY_LIMIT:
            return None
        if (rows[0][0] != after + 1) if rows else (after < self.last_id):
            # a gap: ids of rolled-back transactions, or events pruned since the client left;
            # when nothing at or before its cursor is kept any more, assume the latter
            oldest = (await self._query("SELECT min(id) FROM live_events", []))[0][0]
            if oldest is None or oldest > after:
                return None
        return await self._messages(rows)

    async def stop(self) -> None:
        """End every stream (the server is stopping) and the listener."""
        if self.stopping is not None:
            self.stopping.set()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- the listener ------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self._query_lock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="onemap-live-feed")

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: listen again, then catch up
                delay = RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)]
                log.warning("live feed lost its database connection (%s); retrying in %.1f s", exc, delay)
                attempt += 1
                await self._close_query_conn()
                await asyncio.sleep(delay)
            else:
                attempt = 0

    async def _listen(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(
            self._database_url(), autocommit=True, application_name="onemap-live-listen"
        ) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            if self._last_id is None:
                rows = await self._query("SELECT coalesce(max(id), 0) FROM live_events", [])
                self._last_id = rows[0][0]
            else:  # after a lost connection: what committed meanwhile
                await self._drain()
            self._ready.set()
            pruned_at = 0.0
            while True:
                if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                    await self._query(f"DELETE FROM live_events WHERE at < now() - interval '{RETENTION}'", [])
                    pruned_at = time.monotonic()
                woke = False
                async for _notify in conn.notifies(timeout=HEARTBEAT_S, stop_after=1):
                    woke = True
                if woke:
                    await self._drain()

    async def _drain(self) -> None:
        while True:
            rows = await self._query(_EVENTS_SQL, [self.last_id, 500])
            if not rows:
                return
            for message in await self._messages(rows):
                for subscriber in list(self._subscribers):
                    subscriber.offer(message)
            self._last_id = rows[-1][0]

    async def _messages(self, rows) -> list[Message]:
        from gis.incidents.selectors import INCIDENT_FEATURES_SQL
        from gis.notifications.selectors import NOTIFICATION_FEED_SQL

        wanted = [incident for _id, kind, op, incident, _n in rows if kind == "incident" and op != "delete"]
        noted = [notification for _id, kind, _op, _i, notification in rows if kind == "notification"]
        features, notices = {}, {}
        if wanted:
            features = {row[0]: row[1] for row in await self._query(INCIDENT_FEATURES_SQL, [wanted])}
        if noted:
            notices = {row[0]: row[1] for row in await self._query(NOTIFICATION_FEED_SQL, [noted])}
        messages = []
        for event_id, kind, op, incident, notification in rows:
            if kind == "reset":
                messages.append(Message("reset", json.dumps({"reason": f"bulk {op} of incidents"}), event_id))
                continue
            if kind == "notification":  # an in-app notification the outbox delivered
                if notification in notices:
                    messages.append(Message("notification", notices[notification], event_id))
                continue
            if kind != "incident":
                continue
            feature = features.get(incident, "null") if op != "delete" else "null"
            if op != "delete" and feature == "null":
                op = "delete"  # changed, then deleted before we read it
            data = f'{{"op": "{op}", "id": {int(incident)}, "feature": {feature}}}'
            messages.append(Message("incident", data, event_id))
        return messages

    async def _query(self, statement: str, params: list) -> list[tuple]:
        import psycopg

        async with self._query_lock:
            if self._query_conn is None or self._query_conn.closed:
                self._query_conn = await psycopg.AsyncConnection.connect(
                    self._database_url(), autocommit=True, application_name="onemap-live-query"
                )
            async with self._query_conn.cursor() as cursor:
                await cursor.execute(statement, params)
                return await cursor.fetchall() if cursor.description else []

    async def _close_query_conn(self) -> None:
        if self._query_conn is not None:
            try:
                await self._query_conn.close()
            except Exception:
                pass
            self._query_conn = None

    def _database_url(self) -> str:
        if self._url is None:
            from core.settings import database_url

            self._url = database_url()
        return self._url


def hello(feed: Feed, *, cursor: int) -> Message:
    """The first message of a stream: where the feed stands.

    Its SSE id is the client's cursor, so a browser that reconnects before any event came
    still sends ``Last-Event-ID`` and is replayed what it missed meanwhile.
    """
    now = datetime.now(timezone.utc).isoformat()
    return Message("hello", json.dumps({"last_event_id": feed.last_id, "server_time": now}), cursor)


def reset(feed: Feed, reason: str) -> Message:
    return Message("reset", json.dumps({"reason": reason}), feed.last_id)


def parse_last_event_id(header: str | None, query_value: str | None) -> int | None:
    """The client's cursor from ``Last-Event-ID`` (preferred) or ``?last_event_id=``; ValueError when malformed."""
    raw = header if header not in (None, "") else query_value
    if raw in (None, ""):
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError(f"last_event_id must be a non-negative whole number (an SSE id this server sent); got {raw!r}")
    return int(raw)
