"""Reads of residents' reports: likely duplicates, a report's progress for its reporter, the moderation queue.

What a resident sees of other residents' reports is only what a moderator published
(``moderation = 'public'``): category, state, time, distance, and the published words and
photos. A reporter's phone number is never read here.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from core import vocabulary
from gis.cases.workflow import REOPEN_DAYS
from gis.reports.models import Report

DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = timedelta(hours=24)
# what a resident is told of each case state (the command centre's words are for staff)
PUBLIC_STATES = {"reported": "已收到", "accepted": "已受理", "rejected": "不予受理", "filed": "已立案",
                 "dispatched": "处理中", "acknowledged": "处理中", "returned": "处理中", "handled": "处理中",
                 "suspended": "暂缓处理", "closed": "已办结"}
# the steps of a case a reporter sees (who did them is not said)
_PUBLIC_STEPS = {"report": "收到上报", "accept": "受理", "reject": "不予受理", "file": "立案", "dispatch": "派遣网格员",
                 "acknowledge": "网格员已接单", "handle": "已处置", "pass": "核查通过，办结", "fail": "核查未通过，返工",
                 "reopen": "重新办理", "join": "有居民附议", "merge": "与重复案件合并", "suspend": "暂缓处理",
                 "resume": "恢复处理", "escalate": "上报上级处理", "approve_deferral": "延期办理"}


def duplicates_near(*, category: str, lon: float, lat: float, at: datetime | None = None,
                    limit: int = 5) -> list[dict]:
    """Open cases of the same category within 50 m reported in the last 24 h, nearest first.

    ``lon``/``lat`` in WGS84. Words and photos are those of the case's first report when a
    moderator has published it; a camera's or worker's case shows its category and time.
    Photos are ``<report id>/<name>``: a tracking code is its holder's key and is never shown.
    """
    at = at or timezone.now()
    sql = """
        SELECT c.code, c.state, i.reported_at,
               ST_Distance(i.geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) AS metres,
               r.id, r.description, r.photos,
               (SELECT count(*) FROM reports j WHERE j.case_id = c.id AND NOT j.banned) AS reporters
        FROM cases c
        JOIN incidents i ON i.id = c.incident_id
        LEFT JOIN reports r ON r.incident_id = i.id AND r.moderation = 'public'
        WHERE c.category = %(category)s AND c.state = ANY(%(open)s)
          AND i.reported_at > %(since)s AND i.reported_at <= %(at)s
          AND ST_DWithin(i.geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(radius)s)
        ORDER BY metres, i.reported_at DESC
        LIMIT %(limit)s
    """
    open_states = [s for s in vocabulary.OPEN_CASE_STATES]
    with connection.cursor() as cursor:
        cursor.execute(sql, {"lon": lon, "lat": lat, "category": category, "open": open_states,
                             "since": at - DUPLICATE_WINDOW, "at": at, "radius": DUPLICATE_RADIUS_M, "limit": limit})
        rows = cursor.fetchall()
    return [{"case": code, "state": PUBLIC_STATES[state], "reported_at": reported.isoformat(),
             "metres": round(metres, 1), "category": category,
             "category_zh": vocabulary.CATEGORY[category].label_zh,
             "description": description or "", "photos": [f"{report}/{p}" for p in _listed(photos)] if report else [],
             "reporters": reporters}
            for code, state, reported, metres, report, description, photos, reporters in rows]


def _listed(value) -> list:
    """A jsonb list as a raw cursor returns it (Django leaves jsonb as text there)."""
    return json.loads(value) if isinstance(value, str) else list(value or [])


def report_progress(*, code: str, at: datetime | None = None) -> dict | None:
    """What the holder of a tracking code sees: their report, the case's state and steps, the due time.

    None for an unknown code. The steps say what happened and when, never who. The words and
    photos are shown back only while no moderator hid them (``hidden``); photos are
    ``<report id>/<name>`` like every photo reference here, never carrying the code.
    """
    report = (Report.objects.filter(code=code).select_related("case", "case__incident").first()
              if isinstance(code, str) and len(code) <= 16 else None)
    if report is None:
        return None
    at = at or timezone.now()
    case = report.case
    steps = []
    if case is not None:
        steps = [{"at": when.isoformat(), "step": _PUBLIC_STEPS[action], "note": reason if action == "reject" else ""}
                 for when, action, reason in case.events.order_by("id").values_list("at", "action", "reason")
                 if action in _PUBLIC_STEPS]
    closed = case is not None and case.state == "closed"
    hidden = report.moderation == "hidden"
    may_dispute = bool(closed and case.closed_at and at - case.closed_at <= timedelta(days=REOPEN_DAYS))
    return {
        "code": report.code, "kind": report.kind, "category": report.category,
        "category_zh": vocabulary.CATEGORY[report.category].label_zh,
        "description": "" if hidden else report.description,
        "photos": [] if hidden else [f"{report.id}/{p}" for p in report.photos], "hidden": hidden,
        "published": report.moderation == "public",
        "reported_at": report.created_at.isoformat(),
        "state": PUBLIC_STATES[case.state] if case is not None else "已收到",
        "case": case.code if case is not None else None,
        "due_at": case.due_at.isoformat() if case is not None and case.due_at and not closed else None,
        "closed_at": case.closed_at.isoformat() if closed and case.closed_at else None,
        "steps": steps, "rating": report.rating,
        "may_rate": closed and report.rating is None, "may_dispute": may_dispute,
        "dispute_until": (case.closed_at + timedelta(days=REOPEN_DAYS)).isoformat() if may_dispute else None,
    }


def moderation_queue(*, state: str = "pending", limit: int = 100) -> list[dict]:
    """Reports waiting for (or past) a moderator, oldest first, with their moderation history; for staff.

    Photos are ``<report id>/<name>`` (a reference that does not carry the reporter's code).
    """
    reports = (Report.objects.filter(moderation=state).order_by("created_at").select_related("case")
               .prefetch_related("moderation_steps")[:limit])
    return [{"id": r.id, "code": r.code, "kind": r.kind, "category": r.category, "description": r.description,
             "photos": [f"{r.id}/{p}" for p in r.photos], "case": r.case.code if r.case_id else None,
             "moderation": r.moderation, "banned": r.banned, "created_at": r.created_at.isoformat(),
             "has_phone": r.phone_cipher is not None,
             "history": [{"at": s.at.isoformat(), "actor": s.actor, "action": s.action, "reason": s.reason,
                          "before": s.before} for s in r.moderation_steps.all()]}
            for r in reports]


def report_exists(*, code: str) -> bool:
    """Whether a tracking code names a report."""
    return isinstance(code, str) and len(code) <= 16 and Report.objects.filter(code=code).exists()


def photo_shown(*, report_id: int, name: str, staff: bool):
    """The stored file of a report's photo when the caller may see it (published, or staff), else None."""
    from gis.reports import photos

    row = Report.objects.filter(pk=report_id).values_list("code", "photos", "moderation", "banned").first()
    if row is None:
        return None
    code, names, moderation, banned = row
    if name not in _listed(names) or not (staff or (moderation == "public" and not banned)):
        return None
    return photos.path_of(code, name)


def service_area() -> dict:
    """The subdistrict (its level-1 grids) as one GeoJSON outline with its bounds, for the resident's map."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_AsGeoJSON(u, 6), ST_XMin(u), ST_YMin(u), ST_XMax(u), ST_YMax(u)"
                       " FROM (SELECT ST_Union(geom) AS u FROM grids WHERE level = 1) q")
        outline, west, south, east, north = cursor.fetchone()
    if outline is None:
        return {"outline": None, "bounds": None}
    return {"outline": json.loads(outline), "bounds": [west, south, east, north]}
