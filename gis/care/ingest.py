"""Sensor ingest: device messages into ``sensor_events`` and the care state, a batch per transaction.

:func:`events_record` is the one write, used by the MQTT ingest (``onemap ingest``) and the HTTP
ingest alike. In the batch's one transaction it stores each new event (``(sensor, seq)`` unique:
a repeated message is a duplicate, counted and ignored), moves the sensors' latest columns
(``last_seen_at``, ``last_seq``, ``last_heartbeat_at``, ``battery_pct`` and ``status``) and the
people's ``last_activity_at`` forward only (``greatest``: a late, older message never moves them
back), records gateways' heartbeats and last-wills, and writes every rejected message to
``sensor_rejects`` with its reason. The caller acknowledges the messages after it returns.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from django.db import connection, transaction

from gis.care.models import SensorEvent

TYPES = tuple(t for t, _ in SensorEvent.TYPES)
ACTIVITY_TYPES = ("door_open", "door_close", "motion", "sighting")  # a sign of life of the person at home
GATEWAY_STATUSES = ("online", "offline")
MAX_BODY = 8192  # bytes of one message
MAX_SEQ = 2**63 - 1
LOW_BATTERY_PCT = 15  # a battery reading below this makes the sensor's status low_battery
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
EXCERPT = 200


@dataclass(frozen=True)
class DeviceMessage:
    """One message from a device: ``kind`` sensor (an event) or gateway (a heartbeat or its last-will)."""

    kind: str
    code: str
    body: bytes | str | dict
    source: str = "mqtt"


@dataclass
class IngestCounts:
    """What became of a batch; ``reasons`` holds (index in the batch, why) of each rejected message."""

    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    gateways: int = 0
    reasons: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"inserted": self.inserted, "duplicates": self.duplicates, "rejected": self.rejected,
                "gateways": self.gateways}


@dataclass(frozen=True, slots=True)
class SensorReading:
    """A valid sensor event, parsed: the fields of the table, the rest of the body as ``payload``
    (and as the JSON text that is stored)."""

    seq: int
    ts: datetime
    type: str
    payload: dict
    payload_json: str = "{}"


class Rejected(ValueError):
    """A message that cannot be stored; the message says why."""


class TokenBucket:
    """Per device: ``rate`` messages a second kept up, ``burst`` at once; the rest is refused."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, float(burst)
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, when last counted)
        self._prune_at = 100_000
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._state[key] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._state) > self._prune_at:  # a device quiet long enough is full again: forget it
                refill_s = self.burst / self.rate
                self._state = {k: v for k, v in self._state.items() if now - v[1] < refill_s}
                self._prune_at = max(100_000, 2 * len(self._state))
            return allowed

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` may send one more."""
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate


def events_record(*, messages: list[DeviceMessage], now: datetime | None = None,
                  future_s: float = 300.0) -> IngestCounts:
    """Store a batch of device messages in one transaction; what was inserted, duplicated, rejected."""
    now = now or datetime.now(UTC)
    counts = IngestCounts()
    readings: list[tuple[int, str, SensorReading]] = []
    statuses: list[tuple[int, str, str, datetime]] = []
    rejects: list[tuple[int, DeviceMessage, str]] = []
    for index, message in enumerate(messages):
        try:
            if message.kind == "gateway":
                statuses.append((index, message.code, *gateway_status_parse(message.body, now=now)))
            else:
                readings.append((index, message.code, event_parse(message.body, now=now, future_s=future_s)))
        except Rejected as exc:
            rejects.append((index, message, str(exc)))
    with transaction.atomic(), connection.wrap_database_errors, _binding_cursor() as cursor:
        known = _sensor_ids(cursor, {code for _, code, _ in readings})
        stored = [(known[code], r) for index, code, r in readings if code in known]
        rejects += [(index, messages[index], f"no sensor {code!r}") for index, code, _ in readings
                    if code not in known]
        if stored:
            counts.inserted = _insert_events(cursor, stored)
        counts.duplicates = len(stored) - counts.inserted
        for index, code, status, ts in statuses:
            if _gateway_update(cursor, code, status, ts):
                counts.gateways += 1
            else:
                rejects.append((index, messages[index], f"no gateway {code!r}"))
        if rejects:
            rejects.sort(key=lambda r: r[0])
            rejects_record(cursor=cursor, rows=[(m.source, m.code, reason, _excerpt(m.body))
                                                for _, m, reason in rejects])
    counts.rejected = len(rejects)
    counts.reasons = [(index, reason) for index, _, reason in rejects]
    return counts


def event_parse(body: bytes | str | dict, *, now: datetime, future_s: float = 300.0) -> SensorReading:
    """The reading in a sensor message ``{ts, type, seq, ...}``, or :class:`Rejected` saying what is wrong."""
    data = _json_object(body)
    for name in ("ts", "type", "seq"):
        if name not in data:
            raise Rejected(f"{name} is missing (a sensor message is {{ts, type, seq, ...}})")
    ts = _timestamp(data["ts"])
    if ts > now + timedelta(seconds=future_s):
        raise Rejected(f"ts {data['ts']} is more than {future_s:g} s in the future (the device's clock is wrong)")
    kind = data["type"]
    if kind not in TYPES:
        raise Rejected(f"type {str(kind)[:40]!r} is not one of {', '.join(TYPES)}")
    seq = data["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise Rejected(f"seq must be an integer from 0 to {MAX_SEQ}, got {str(seq)[:40]}")
    payload = {key: value for key, value in data.items() if key not in ("ts", "type", "seq")}
    payload_json = _storable_json(payload)
    if kind == "battery":
        pct = payload.get("battery_pct")
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise Rejected(f"a battery event needs battery_pct, an integer from 0 to 100, got {str(pct)[:40]}")
    return SensorReading(seq=seq, ts=ts, type=kind, payload=payload, payload_json=payload_json)


def gateway_status_parse(body: bytes | str | dict, *, now: datetime) -> tuple[str, datetime]:
    """(status, moment) of a gateway message ``{status, ts}``; a last-will may leave ``ts`` out (then: now)."""
    data = _json_object(body)
    status = data.get("status")
    if status not in GATEWAY_STATUSES:
        raise Rejected(f"status must be one of {', '.join(GATEWAY_STATUSES)}, got {str(status)[:40]}")
    if "ts" not in data:
        if status == "online":
            raise Rejected("ts is missing (a gateway's heartbeat is {status: online, ts})")
        return status, now
    return status, min(_timestamp(data["ts"]), now)


def rejects_record(*, cursor=None, rows: list[tuple[str, str, str, str]], count: int = 1) -> None:
    """Write rejected messages: (source, device code, reason, excerpt), each standing for ``count`` messages."""
    sql = ("INSERT INTO sensor_rejects (source, code, reason, excerpt, count) "
           "SELECT s, c, r, e, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS t(s, c, r, e)")
    params = [count, [_clean(r[0])[:10] for r in rows], [_clean(r[1])[:100] for r in rows],
              [_clean(r[2])[:300] for r in rows], [_clean(r[3])[:300] for r in rows]]
    if cursor is not None:
        cursor.execute(sql, params)
        return
    with connection.cursor() as own:
        own.execute(sql, params)


# -- helpers ----------------------------------------------------------------------------

# One statement: the new events, then the sensors' and the people's latest columns from those
# alone (a duplicate changes nothing). greatest() ignores NULLs, so a column moves only forward.
_INSERT_EVENTS = """
WITH incoming AS (
    SELECT * FROM unnest(%(sensor)s::bigint[], %(seq)s::bigint[], %(ts)s::timestamptz[], %(type)s::text[],
                         %(payload)s::text[]) AS t(sensor_id, seq, ts, type, payload)
), inserted AS (
    INSERT INTO sensor_events (sensor_id, seq, ts, type, payload, received_at)
    SELECT sensor_id, seq, ts, type, payload::jsonb, statement_timestamp() FROM incoming
    ON CONFLICT (sensor_id, seq) DO NOTHING
    RETURNING sensor_id, seq, ts, type
), latest AS (
    SELECT sensor_id, max(ts) AS seen, max(seq) AS seq,
           max(ts) FILTER (WHERE type = 'heartbeat') AS heartbeat,
           max(ts) FILTER (WHERE type = 'battery') AS battery,
           max(ts) FILTER (WHERE type = ANY(%(activity)s::text[])) AS activity
      FROM inserted GROUP BY sensor_id
), sensors_moved AS (
    UPDATE sensors s
       SET last_seen_at = greatest(s.last_seen_at, l.seen), last_seq = greatest(s.last_seq, l.seq),
           last_heartbeat_at = greatest(s.last_heartbeat_at, l.heartbeat)
      FROM latest l
     WHERE s.id = l.sensor_id
    RETURNING s.id
), subjects_moved AS (
    UPDATE care_subjects c
       SET last_activity_at = greatest(c.last_activity_at, a.activity)
      FROM (SELECT s.care_subject_id, max(l.activity) AS activity
              FROM latest l JOIN sensors s ON s.id = l.sensor_id
             WHERE l.activity IS NOT NULL AND s.care_subject_id IS NOT NULL
             GROUP BY s.care_subject_id) a
     WHERE c.id = a.care_subject_id
    RETURNING c.id
)
SELECT (SELECT count(*) FROM inserted),
       array(SELECT sensor_id FROM latest WHERE battery IS NOT NULL),
       (SELECT count(*) FROM sensors_moved) + (SELECT count(*) FROM subjects_moved)
"""

# after the events are in: each sensor with a new battery reading takes its latest one (by ts),
# so an older reading arriving late leaves a newer one in place
_BATTERY = """
UPDATE sensors s
   SET battery_pct = b.pct,
       status = CASE WHEN b.pct < %(low)s THEN 'low_battery'
                     WHEN s.status = 'low_battery' THEN 'online' ELSE s.status END
  FROM unnest(%(ids)s::bigint[]) AS x(id)
 CROSS JOIN LATERAL (SELECT (e.payload->>'battery_pct')::int AS pct FROM sensor_events e
                      WHERE e.sensor_id = x.id AND e.type = 'battery' ORDER BY e.ts DESC, e.seq DESC LIMIT 1) b
 WHERE s.id = x.id
"""

# a heartbeat newer than any seen says online; a last-will says offline; a late, older heartbeat only
# moves nothing back
_GATEWAY = """
UPDATE gateways
   SET status = CASE WHEN %(status)s = 'offline' THEN 'offline'
                     WHEN last_seen_at IS NULL OR %(ts)s > last_seen_at THEN 'online' ELSE status END,
       last_seen_at = CASE WHEN %(status)s = 'online' THEN greatest(last_seen_at, %(ts)s) ELSE last_seen_at END,
       updated_at = now()
 WHERE code = %(code)s
"""


def _insert_events(cursor, stored: list[tuple[int, SensorReading]]) -> int:
    cursor.execute(_INSERT_EVENTS, {
        "sensor": [sensor_id for sensor_id, _ in stored], "seq": [r.seq for _, r in stored],
        "ts": [r.ts for _, r in stored], "type": [r.type for _, r in stored],
        "payload": [r.payload_json for _, r in stored],
        "activity": list(ACTIVITY_TYPES),
    })
    inserted, battery_ids, _ = cursor.fetchone()
    if battery_ids:
        cursor.execute(_BATTERY, {"ids": battery_ids, "low": LOW_BATTERY_PCT})
    return inserted


@contextlib.contextmanager
def _binding_cursor():
    """A cursor on Django's connection (in its transaction) that sends the parameters apart from the
    statement: the batch's arrays go to the server as they are, not quoted into the SQL text in Python
    (Django's cursors bind on the client, which was a quarter of the ingest's time)."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _gateway_update(cursor, code: str, status: str, ts: datetime) -> bool:
    cursor.execute(_GATEWAY, {"code": code, "status": status, "ts": ts})
    return cursor.rowcount > 0


def _sensor_ids(cursor, codes: set[str]) -> dict[str, int]:
    if not codes:
        return {}
    cursor.execute("SELECT code, id FROM sensors WHERE code = ANY(%s::text[])", [sorted(codes)])
    return dict(cursor.fetchall())


def _json_object(body: bytes | str | dict) -> dict:
    if isinstance(body, dict):
        return body
    if len(body) > MAX_BODY:
        raise Rejected(f"the message is {len(body):,} bytes; at most {MAX_BODY:,} are taken")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(f"not JSON: {exc}") from None
    except RecursionError:
        raise Rejected("not JSON that can be read: nested too deep") from None
    if not isinstance(data, dict):
        raise Rejected(f"the message must be a JSON object, got {type(data).__name__}")
    return data


def _storable_json(payload: dict) -> str:
    """The payload as JSON text; PostgreSQL's jsonb holds no NUL character and no lone surrogate: such a
    message is refused here."""
    if not payload:
        return "{}"
    text = json.dumps(payload, ensure_ascii=False)
    if "\x00" in text or "\\u0000" in text:
        raise Rejected("the message holds a NUL character (\\u0000), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("the message holds a lone UTF-16 surrogate (an invalid \\ud800-\\udfff escape)") from None
    return text


def _timestamp(value) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Rejected(f"ts must be an ISO-8601 string with a time zone, got {str(value)[:40]}")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(f"ts {value!r} is not an ISO-8601 date and time") from None
    if ts.tzinfo is None:
        raise Rejected(f"ts {value!r} has no time zone (add Z or +08:00)")
    if ts < EARLIEST:
        raise Rejected(f"ts {value!r} is before {EARLIEST.year}")
    return ts


def _excerpt(body: bytes | str | dict) -> str:
    if isinstance(body, dict):
        return json.dumps(body, ensure_ascii=False, default=str)[:EXCERPT]
    if isinstance(body, bytes):
        return body[:EXCERPT].decode("utf-8", "replace")
    return body[:EXCERPT]


def _clean(text: str) -> str:
    """Text PostgreSQL takes: no NUL, no lone surrogate."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\0")
