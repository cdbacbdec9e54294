"""Reads of Open311: the jurisdiction, service requests as the public may see them, a token's request.

A service request is a resident's report (``kind = 'report'``) with its case. Anyone may read
them, so only what may be public is read: the words and the exact place only when a moderator
published the report (``moderation = 'public'``), otherwise the place rounded to about 100 m
and no words; never the reporter, a phone number, a tracking code, a case or incident code.
Hidden reports and reports of banned senders are not service requests to the public.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from django.db import connection

from core import vocabulary
from gis.open311 import catalogue
from gis.reports import photos
from gis.reports.models import Report
from gis.reports.selectors import PUBLIC_STATES

MAX_REQUESTS = 1000
ROUNDED_DECIMALS = 3  # about 100 m: where an unpublished report is shown
_TOKEN = re.compile(r"[A-Za-z0-9]{1,16}")


def jurisdictions() -> list[tuple[str, str]]:
    """(id, name) of the jurisdictions this endpoint serves: the level-1 grids (the subdistrict)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT code, name FROM grids WHERE level = 1 ORDER BY code")
        return list(cursor.fetchall())


def service_requests(*, ids: list[int] | None = None, service_codes: list[str] | None = None,
                     start: datetime | None = None, end: datetime | None = None, status: str | None = None,
                     limit: int | None = None) -> list[dict]:
    """Public service requests, newest first: by ids, or by services, a period [start, end) and open/closed."""
    params = {"services": [s.code for s in catalogue.services()], "open": list(vocabulary.OPEN_CASE_STATES),
              "limit": min(limit or MAX_REQUESTS, MAX_REQUESTS), "ids": ids, "codes": service_codes or None, "start": start,
              "end": end, "status": status}
    with connection.cursor() as cursor:
        cursor.execute(_REQUESTS, params)
        rows = cursor.fetchall()
    return [_request(row) for row in rows]


def service_request(request_id: int) -> dict | None:
    found = service_requests(ids=[request_id], limit=1)
    return found[0] if found else None


def building_place(*, address: str | None = None, building_id: int | None = None) -> list[tuple[int, str, float, float]]:
    """Buildings an address names, (id, address, lon, lat) of a point inside each, at most 4.

    We have no geocoder: an address is matched against the buildings' own addresses and names,
    exactly first, then as the end of an address ("顺城北街1号院1号楼"); ``building_id`` is an
    Open311 address_id (a building's id).
    """
    from gis.spatial.models import Building

    if building_id is not None:
        found = Building.objects.filter(pk=building_id)
    else:
        text = (address or "").strip()
        found = Building.objects.filter(address=text) | Building.objects.filter(name=text)
        if not found.exists() and len(text) >= 4:
            found = Building.objects.filter(address__endswith=text)
    return [(b.id, b.address, b.geom.point_on_surface.x, b.geom.point_on_surface.y)
            for b in found.order_by("id")[:4]]


def request_for_token(token: str) -> int | None:
    """The service_request_id a token (the tracking code given when the request was made) stands for."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    return Report.objects.filter(code=token, kind="report").values_list("id", flat=True).first()


def public_photo(request_id: int, name: str) -> Path | None:
    """The file of a published request's photo, or None (unknown, unpublished, or not one of its photos)."""
    report = Report.objects.filter(pk=request_id, kind="report", moderation="public", banned=False).only(
        "code", "photos").first()
    if report is None or name not in report.photos:
        return None
    return photos.path_of(report.code, name)


# one statement for every filter: a filter left out is NULL and drops away
_REQUESTS = """
    SELECT r.id, r.category, r.description, r.moderation = 'public' AS public, r.photos,
           ST_X(r.geom), ST_Y(r.geom), r.created_at, c.state, c.due_at, c.updated_at,
           COALESCE(NULLIF(c.department, ''), g.name, ''), b.id, b.address
    FROM reports r
    JOIN cases c ON c.id = r.case_id
    LEFT JOIN grids g ON g.id = c.grid_id
    LEFT JOIN LATERAL (SELECT b.id, b.address FROM buildings b
                       WHERE r.moderation = 'public' AND ST_Intersects(b.geom, r.geom)
                       ORDER BY b.id LIMIT 1) b ON true
    WHERE r.kind = 'report' AND NOT r.banned AND r.moderation <> 'hidden'
      AND r.category = ANY(%(services)s)
      AND (%(ids)s::bigint[] IS NULL OR r.id = ANY(%(ids)s::bigint[]))
      AND (%(codes)s::text[] IS NULL OR r.category = ANY(%(codes)s::text[]))
      AND (%(start)s::timestamptz IS NULL OR r.created_at >= %(start)s::timestamptz)
      AND (%(end)s::timestamptz IS NULL OR r.created_at < %(end)s::timestamptz)
      AND (%(status)s::text IS NULL OR (c.state = ANY(%(open)s)) = (%(status)s::text = 'open'))
    ORDER BY r.created_at DESC, r.id DESC
    LIMIT %(limit)s
"""


def _request(row) -> dict:
    (request_id, category, description, public, photo_names, lon, lat, created_at, state, due_at, updated_at,
     agency, building_id, address) = row
    svc = catalogue.service(category)
    if not public:
        lon, lat = round(lon, ROUNDED_DECIMALS), round(lat, ROUNDED_DECIMALS)
    names = json.loads(photo_names) if isinstance(photo_names, str) else list(photo_names or [])
    open_ = state in vocabulary.OPEN_CASE_STATES
    return {
        "service_request_id": str(request_id),
        "status": "open" if open_ else "closed",
        "status_notes": PUBLIC_STATES.get(state, ""),
        "service_name": svc.name,
        "service_code": svc.code,
        "description": description if public else "",
        "agency_responsible": agency,
        "service_notice": svc.notice,
        "requested_datetime": created_at,
        "updated_datetime": updated_at,
        "expected_datetime": due_at if open_ else None,
        "address": address or "",
        "address_id": str(building_id) if building_id else "",
        "zipcode": "",
        "lat": round(lat, 6),
        "long": round(lon, 6),
        "photos": names if public else [],
    }
