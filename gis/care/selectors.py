"""Reads of the elder-care domain: a person's personal fields (logged), the alerts' indicators, the sensors' health.

Only :func:`care_private_read` names a person, and it writes the access log with every read;
the indicators count, the health lists devices by building.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection

from gis.care.private import private_open
from gis.care.rules import BATTERY_LOW_PCT, GATEWAY_SILENCE, HEARTBEAT_SILENCE



def care_private_read(*, identity, subject_ids, route: str, remote_addr: str | None,
                      collection: str = "care_subjects") -> dict[int, dict]:
    """The personal fields (opened) and gender of each person asked for, by id; one access-log row per person read.

    The caller decides who may ask (the phone: the worker of the person's case); this is the one
    place outside the restricted OGC layer (whose statement logs its rows itself) that opens them.
    """
    from gis.accounts.services import access_log_write

    ids = sorted({int(i) for i in subject_ids})
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT subject_id, gender, sealed FROM care_subject_private WHERE subject_id = ANY(%s)", [ids])
        rows = cursor.fetchall()
    people = {subject: {**private_open(subject_id=subject, sealed=sealed), "gender": gender}
              for subject, gender, sealed in rows}
    access_log_write(identity=identity, route=route, collection=collection, record_ids=sorted(people),
                     remote_addr=remote_addr)
    return people


# the share of alerts found to be false alarms before the rules (the starting point): the goal is below it
FALSE_ALARM_BASELINE = 0.75

# Per level-3 grid and calendar month (Asia/Shanghai) of [start, end): the alerts raised (inactivity and
# isolation), the first visit of each, the share of visited alerts that were false alarms, the median
# minutes from the alert to the check-in, and alerts per person-month (people: those monitored by at least
# one sensor in the grid now).
INDICATORS = """
WITH months AS (
    SELECT m::date AS month FROM generate_series(
        date_trunc('month', %(start)s::timestamptz AT TIME ZONE 'Asia/Shanghai'),
        (%(end)s::timestamptz AT TIME ZONE 'Asia/Shanghai') - interval '1 microsecond', interval '1 month') m
),
people AS (
    SELECT s.grid_id, count(*) AS n FROM care_subjects s
    WHERE s.active AND EXISTS (SELECT 1 FROM sensors se WHERE se.care_subject_id = s.id) GROUP BY 1
),
alerts AS (
    SELECT a.id, a.grid_id, a.raised_at, date_trunc('month', a.raised_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
           v.outcome, coalesce(v.checked_in_at, v.at) AS visited_at
    FROM care_alerts a
    LEFT JOIN cases c ON c.incident_id = a.incident_id
    LEFT JOIN LATERAL (SELECT outcome, checked_in_at, at FROM care_visits cv WHERE cv.case_id = c.id
                       ORDER BY cv.at, cv.id LIMIT 1) v ON true
    WHERE a.kind IN ('alert', 'isolation') AND a.raised_at >= %(start)s AND a.raised_at < %(end)s
),
cells AS (
    SELECT g.id AS grid_id, g.code, g.name, mo.month FROM grids g CROSS JOIN months mo WHERE g.level = 3
)
SELECT coalesce(json_agg(json_build_object(
    'grid', c.code, 'grid_name', c.name, 'month', to_char(c.month, 'YYYY-MM'),
    'people', coalesce(p.n, 0), 'alerts', x.alerts, 'visited', x.visited, 'false_alarms', x.false_alarms,
    'false_alarm_share', CASE WHEN x.visited > 0 THEN round(x.false_alarms::numeric / x.visited, 4) END,
    'median_minutes_to_visit', round(x.median_min::numeric, 1),
    'alerts_per_person_month', CASE WHEN p.n > 0 THEN round(x.alerts::numeric / p.n, 6) END
) ORDER BY c.month, c.code), '[]'::json)::text
FROM cells c
LEFT JOIN people p ON p.grid_id = c.grid_id
CROSS JOIN LATERAL (
    SELECT count(*) AS alerts, count(a.outcome) AS visited,
           count(*) FILTER (WHERE a.outcome = 'false_alarm') AS false_alarms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.visited_at - a.raised_at) / 60)
               FILTER (WHERE a.visited_at IS NOT NULL) AS median_min
    FROM alerts a WHERE a.grid_id = c.grid_id AND a.month = c.month
) x
"""


def care_indicators(*, start: datetime, end: datetime) -> list[dict]:
    """One row per level-3 grid and month of [start, end): alerts, visits, false-alarm share, time to visit."""
    with connection.cursor() as cursor:
        cursor.execute(INDICATORS, {"start": start, "end": end})
        return json.loads(cursor.fetchone()[0])


HEALTH = """
SELECT coalesce(json_agg(json_build_object(
    'code', se.code, 'kind', se.kind, 'status', se.status, 'battery_pct', se.battery_pct,
    'last_heartbeat_at', se.last_heartbeat_at, 'last_seen_at', se.last_seen_at,
    'gateway', g.code, 'gateway_status', g.status, 'building', b.name, 'bound', se.care_subject_id IS NOT NULL,
    'health', CASE
        WHEN g.id IS NOT NULL AND (g.status = 'offline' OR coalesce(g.last_seen_at, g.created_at) < %(gw_since)s)
            THEN 'network_fault'
        WHEN greatest(se.last_heartbeat_at, se.last_seen_at, se.created_at) < %(hb_since)s THEN 'silent'
        WHEN se.battery_pct < %(battery_low)s THEN 'battery_low'
        ELSE 'ok' END,
    'fault', (SELECT f.reason FROM care_faults f WHERE f.cleared_at IS NULL
              AND (f.sensor_id = se.id OR f.gateway_id = se.gateway_id) ORDER BY f.id LIMIT 1)
) ORDER BY se.code), '[]'::json)::text
FROM sensors se LEFT JOIN gateways g ON g.id = se.gateway_id LEFT JOIN buildings b ON b.id = se.building_id
WHERE (%(code)s::text IS NULL OR se.code = %(code)s)
"""


def sensors_health(*, now: datetime, code: str | None = None) -> list[dict]:
    """Every sensor (or one) with its health as the rules see it: ok, silent, battery_low, network_fault."""
    with connection.cursor() as cursor:
        cursor.execute(HEALTH, {"gw_since": now - GATEWAY_SILENCE, "hb_since": now - HEARTBEAT_SILENCE,
                                "battery_low": BATTERY_LOW_PCT, "code": code})
        return json.loads(cursor.fetchone()[0])
