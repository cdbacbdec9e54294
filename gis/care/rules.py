"""The elder-care rules, evaluated from state in PostgreSQL: one set-based sweep over every person, every minute.

``care_rules_sweep(now=…)`` runs, in one transaction (serialised by an advisory lock):

1. **faults** — a sensor not heard from for ``HEARTBEAT_SILENCE`` or with its battery under
   ``BATTERY_LOW_PCT`` opens a device fault (maintenance); a gateway whose last-will arrived or
   that was silent for ``GATEWAY_SILENCE`` opens one network fault, and its sensors open none of
   their own meanwhile. A fault clears when the device speaks again.
2. **deadlines** — each person's rule (``care_subjects.monitoring_rule``, read at every sweep,
   so a change needs no restart) and state give ``care_rule_states``: the start of the current
   silence (``basis_at``: the latest activity, visit, return from an absence or repair) and the
   warning and alert moments counted from it, or why no deadline runs (away, in hospital, a
   device or network fault, no sensor).
3. **episodes** — a warning or alert whose silence was broken is cleared; a deadline that has
   come raises a warning or an alert once per episode (``care_alerts``' unique key, and no second
   one while one is uncleared); a door opened during a home-isolation period raises an alert.

Alerts then become cases (``gis.care.services.care_alert_cases``), each in its own transaction;
an alert left without its case by a crash gets it on the next sweep. ``docs/care.md`` explains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

DEFAULT_WARN_HOURS = 24.0
DEFAULT_ALERT_HOURS = 48.0
HEARTBEAT_SILENCE = timedelta(hours=6)  # a sensor heard from by no message for this long is faulty
BATTERY_LOW_PCT = 20
GATEWAY_SILENCE = timedelta(minutes=15)  # a gateway sends a heartbeat every minute or so
ISOLATION_LOOKBACK = timedelta(days=7)  # door openings older than this are not looked at again
SEEN_OUTCOMES = ("fine", "false_alarm", "emergency")  # a visit that saw the person starts a new episode
_LOCK = 0x63617265  # 'care': one sweep at a time


@dataclass
class CareSweepReport:
    faults_opened: list[int] = field(default_factory=list)
    faults_cleared: list[int] = field(default_factory=list)
    states_changed: int = 0
    cleared: list[int] = field(default_factory=list)  # warnings and alerts whose silence was broken
    warnings: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)  # inactivity alerts and isolation breaches
    cases: list[int] = field(default_factory=list)


def care_rules_sweep(*, now: datetime | None = None, open_cases: bool = True) -> CareSweepReport:
    """Faults, deadlines and episodes as of ``now``; the alerts raised become cases (unless ``open_cases`` is off)."""
    from gis.care.services import care_alert_cases, care_announce_sweep

    now = now or timezone.now()
    report = CareSweepReport()
    params = {"now": now, "hb_since": now - HEARTBEAT_SILENCE, "gw_since": now - GATEWAY_SILENCE,
              "battery_low": BATTERY_LOW_PCT, "warn_h": DEFAULT_WARN_HOURS, "alert_h": DEFAULT_ALERT_HOURS,
              "seen": list(SEEN_OUTCOMES), "isolation_since": now - ISOLATION_LOOKBACK}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        report.faults_opened = _ids(cursor, OPEN_NETWORK_FAULTS, params) + _ids(cursor, OPEN_DEVICE_FAULTS, params)
        report.faults_cleared = _ids(cursor, CLEAR_NETWORK_FAULTS, params) + _ids(cursor, CLEAR_DEVICE_FAULTS, params)
        cursor.execute(EVALUATE, params)
        report.states_changed = cursor.rowcount
        report.cleared = _ids(cursor, CLEAR_EPISODES, params)
        raised = _rows(cursor, RAISE, params) + _rows(cursor, RAISE_ISOLATION, params)
        report.warnings = sorted(row[0] for row in raised if row[1] == "warning")
        report.alerts = sorted(row[0] for row in raised if row[1] != "warning")
        care_announce_sweep(faults=report.faults_opened, warnings=report.warnings, cleared=report.cleared, at=now)
    if open_cases:
        report.cases = care_alert_cases(at=now)
    return report


def _ids(cursor, statement: str, params: dict) -> list[int]:
    cursor.execute(statement, params)
    return sorted(row[0] for row in cursor.fetchall())


def _rows(cursor, statement: str, params: dict) -> list[tuple]:
    cursor.execute(statement, params)
    return cursor.fetchall()


# -- the statements ---------------------------------------------------------------------------------

# a gateway is down when its last-will arrived or its heartbeats stopped
_DOWN_GATEWAYS = """
down_gateways AS MATERIALIZED (
    SELECT id FROM gateways WHERE status = 'offline' OR coalesce(last_seen_at, created_at) < %(gw_since)s
)"""
# any message proves a sensor alive (a heartbeat, a door, a sighting); one never heard from counts from its creation
_SENSOR_HEARD = "greatest(se.last_heartbeat_at, se.last_seen_at, se.created_at)"

OPEN_NETWORK_FAULTS = """
INSERT INTO care_faults (kind, reason, gateway_id, building_id, grid_id, opened_at)
SELECT 'network', CASE WHEN g.status = 'offline' THEN 'gateway_offline' ELSE 'gateway_silent' END,
       g.id, g.building_id, b.grid_id, %(now)s
FROM gateways g LEFT JOIN buildings b ON b.id = g.building_id
WHERE g.status = 'offline' OR coalesce(g.last_seen_at, g.created_at) < %(gw_since)s
ON CONFLICT (gateway_id) WHERE kind = 'network' AND cleared_at IS NULL DO NOTHING
RETURNING id
"""

OPEN_DEVICE_FAULTS = f"""
WITH {_DOWN_GATEWAYS}
INSERT INTO care_faults (kind, reason, sensor_id, building_id, grid_id, opened_at)
SELECT 'device', CASE WHEN {_SENSOR_HEARD} < %(hb_since)s THEN 'heartbeat_lost' ELSE 'battery_low' END,
       se.id, se.building_id, b.grid_id, %(now)s
FROM sensors se LEFT JOIN buildings b ON b.id = se.building_id
WHERE ({_SENSOR_HEARD} < %(hb_since)s OR se.battery_pct < %(battery_low)s)
  AND (se.gateway_id IS NULL OR se.gateway_id NOT IN (SELECT id FROM down_gateways))
ON CONFLICT (sensor_id) WHERE kind = 'device' AND cleared_at IS NULL DO NOTHING
RETURNING id
"""

CLEAR_NETWORK_FAULTS = """
UPDATE care_faults f SET cleared_at = %(now)s
FROM gateways g
WHERE f.kind = 'network' AND f.cleared_at IS NULL AND g.id = f.gateway_id
  AND g.status <> 'offline' AND g.last_seen_at >= %(gw_since)s
RETURNING f.id
"""

CLEAR_DEVICE_FAULTS = f"""
UPDATE care_faults f SET cleared_at = %(now)s
FROM sensors se
WHERE f.kind = 'device' AND f.cleared_at IS NULL AND se.id = f.sensor_id
  AND {_SENSOR_HEARD} >= %(hb_since)s AND coalesce(se.battery_pct, 100) >= %(battery_low)s
RETURNING f.id
"""


def _number(key: str) -> str:
    """A number of the person's rule, or NULL (a malformed rule never stops the sweep for everyone)."""
    return f"CASE WHEN jsonb_typeof(s.monitoring_rule -> '{key}') = 'number' THEN (s.monitoring_rule ->> '{key}')::float8 END"


def _window_end(index: int) -> str:
    item = f"s.monitoring_rule -> 'counted_hours' -> {index}"
    return (f"CASE WHEN jsonb_typeof({item}) = 'number' AND ({item})::text::float8 BETWEEN 0 AND 24"
            f" THEN ({item})::text::float8 END")


# Every active person's deadlines, written only where they changed. The rule's hours: alert_hours
# (or the older no_activity_hours; default 48), warn_hours (default half of the alert's); counted_hours
# [from, to] counts only that time of day (Asia/Shanghai); "inactivity": false turns the rule off.
EVALUATE = f"""
WITH {_DOWN_GATEWAYS},
health AS (
    SELECT se.care_subject_id AS subject_id,
           bool_or(se.gateway_id IN (SELECT id FROM down_gateways)) AS network_down,
           bool_or({_SENSOR_HEARD} < %(hb_since)s) AS silent
    FROM sensors se WHERE se.care_subject_id IS NOT NULL GROUP BY 1
),
absent AS (
    SELECT DISTINCT ON (subject_id) subject_id, kind FROM care_periods
    WHERE kind IN ('away', 'hospital') AND starts_at <= %(now)s AND (ends_at IS NULL OR ends_at > %(now)s)
    ORDER BY subject_id, starts_at DESC
),
restart AS (  -- moments a silence starts again from: a return, a visit that saw the person, a repair
    SELECT subject_id, max(ends_at) AS at FROM care_periods
    WHERE kind IN ('away', 'hospital') AND ends_at <= %(now)s GROUP BY 1
    UNION ALL
    SELECT subject_id, max(at) FROM care_visits WHERE outcome = ANY(%(seen)s) AND at <= %(now)s GROUP BY 1
    UNION ALL
    SELECT se.care_subject_id, max(f.cleared_at) FROM care_faults f JOIN sensors se ON se.id = f.sensor_id
    WHERE f.cleared_at <= %(now)s AND f.reason <> 'battery_low' AND se.care_subject_id IS NOT NULL GROUP BY 1
    UNION ALL
    SELECT se.care_subject_id, max(f.cleared_at) FROM care_faults f JOIN sensors se ON se.gateway_id = f.gateway_id
    WHERE f.cleared_at <= %(now)s AND se.care_subject_id IS NOT NULL GROUP BY 1
),
restarted AS (SELECT subject_id, max(at) AS at FROM restart GROUP BY 1),
rule AS (
    SELECT s.id AS subject_id,
           greatest(s.last_activity_at, s.created_at, r.at) AS basis,
           CASE WHEN s.monitoring_rule ->> 'inactivity' = 'false' THEN 'disabled'
                WHEN a.kind IS NOT NULL THEN a.kind
                WHEN h.subject_id IS NULL THEN 'unmonitored'
                WHEN h.network_down THEN 'network_fault'
                WHEN h.silent THEN 'device_fault'
                ELSE '' END AS suspended,
           coalesce({_number('alert_hours')}, {_number('no_activity_hours')}, %(alert_h)s) AS alert_h,
           {_number('warn_hours')} AS warn_h,
           {_window_end(0)} AS w_from, {_window_end(1)} AS w_to
    FROM care_subjects s
    LEFT JOIN health h ON h.subject_id = s.id
    LEFT JOIN absent a ON a.subject_id = s.id
    LEFT JOIN restarted r ON r.subject_id = s.id
    WHERE s.active
)
INSERT INTO care_rule_states AS st (subject_id, basis_at, warn_at, alert_at, suspended, evaluated_at)
SELECT subject_id, basis,
       CASE WHEN suspended = '' THEN care_counted_deadline(basis, coalesce(warn_h, least(%(warn_h)s, alert_h / 2)),
                                                           w_from, w_to) END,
       CASE WHEN suspended = '' THEN care_counted_deadline(basis, alert_h, w_from, w_to) END,
       suspended, %(now)s
FROM rule
ON CONFLICT (subject_id) DO UPDATE
SET basis_at = EXCLUDED.basis_at, warn_at = EXCLUDED.warn_at, alert_at = EXCLUDED.alert_at,
    suspended = EXCLUDED.suspended, evaluated_at = EXCLUDED.evaluated_at
WHERE (st.basis_at, st.warn_at, st.alert_at, st.suspended)
      IS DISTINCT FROM (EXCLUDED.basis_at, EXCLUDED.warn_at, EXCLUDED.alert_at, EXCLUDED.suspended)
"""

# a warning or alert of an earlier silence: the person was active (or seen, or back) since
CLEAR_EPISODES = """
UPDATE care_alerts a SET cleared_at = %(now)s
FROM care_rule_states st
WHERE a.subject_id = st.subject_id AND a.cleared_at IS NULL AND a.kind IN ('warning', 'alert')
  AND st.basis_at > a.basis_at
RETURNING a.id
"""

# once per episode: the unique (subject, kind, basis) and no uncleared one of the same kind
RAISE = """
INSERT INTO care_alerts (subject_id, kind, basis_at, raised_at, grid_id)
SELECT st.subject_id, k.kind, st.basis_at, %(now)s, s.grid_id
FROM care_rule_states st
JOIN care_subjects s ON s.id = st.subject_id AND s.active
CROSS JOIN (VALUES ('warning'), ('alert')) AS k(kind)
WHERE st.suspended = '' AND st.warn_at <= %(now)s
  AND (k.kind = 'warning' OR st.alert_at <= %(now)s)
  AND NOT EXISTS (SELECT 1 FROM care_alerts a WHERE a.subject_id = st.subject_id AND a.kind = k.kind
                  AND (a.cleared_at IS NULL OR a.basis_at >= st.basis_at))
ON CONFLICT (subject_id, kind, basis_at) DO NOTHING
RETURNING id, kind
"""

# a door opened during home isolation: the first opening not yet answered (by an alert, or after a visit)
RAISE_ISOLATION = """
INSERT INTO care_alerts (subject_id, kind, basis_at, raised_at, grid_id)
SELECT DISTINCT ON (p.subject_id) p.subject_id, 'isolation', e.ts, %(now)s, s.grid_id
FROM care_periods p
JOIN care_subjects s ON s.id = p.subject_id AND s.active
JOIN sensors se ON se.care_subject_id = p.subject_id AND se.kind = 'door_magnet'
JOIN sensor_events e ON e.sensor_id = se.id AND e.type = 'door_open'
     AND e.ts >= p.starts_at AND (p.ends_at IS NULL OR e.ts < p.ends_at)
     AND e.ts <= %(now)s AND e.ts >= %(isolation_since)s
WHERE p.kind = 'isolation' AND p.starts_at <= %(now)s AND (p.ends_at IS NULL OR p.ends_at >= %(isolation_since)s)
  AND NOT EXISTS (SELECT 1 FROM care_alerts a WHERE a.subject_id = p.subject_id AND a.kind = 'isolation'
                  AND (a.cleared_at IS NULL OR a.cleared_at >= e.ts OR a.basis_at >= e.ts))
ORDER BY p.subject_id, e.ts
ON CONFLICT (subject_id, kind, basis_at) DO NOTHING
RETURNING id, kind
"""
