"""Residents' reports made over HTTP or through the services, shared by the security and browser tests.

Not a test module (``tests/`` is on ``sys.path``). Reports made against the live server are
committed to the shared test database: ``forget_reports`` takes them away again.
"""

from __future__ import annotations

import requests

REPORT_WRITE = {"X-Requested-With": "onemap-report"}


def a_jpeg(width: int = 320, height: int = 240) -> bytes:
    """A real JPEG made with OpenCV (a red square on black)."""
    import cv2
    import numpy as np

    image = np.zeros((height, width, 3), np.uint8)
    cv2.rectangle(image, (20, 20), (120, 120), (0, 0, 255), -1)
    return cv2.imencode(".jpg", image)[1].tobytes()


def post_report(base_url: str, lon, lat, *, photos=(), headers=None, **fields) -> requests.Response:
    """A resident's report as the page sends it (multipart, the write header); fields override the defaults."""
    data = {"category": "sanitation", "description": "楼下垃圾堆了三天", "lon": str(lon), "lat": str(lat),
            "device": "security-suite", **fields}
    files = [("photo", (f"p{n}.jpg", body, "image/jpeg")) for n, body in enumerate(photos, start=1)]
    return requests.post(f"{base_url}/report/api/reports", data=data, files=files or None, timeout=120,
                         headers=REPORT_WRITE if headers is None else headers)


def report_spot() -> tuple[float, float]:
    """A point well inside a level-3 grid (60 m from its edges) of the test database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_X(p), ST_Y(p) FROM grids g, LATERAL (SELECT ST_PointOnSurface("
                       "ST_Buffer(g.geom::geography, -60)::geometry) AS p) q"
                       " WHERE g.level = 3 AND NOT ST_IsEmpty(p) ORDER BY g.code DESC LIMIT 1")
        return cursor.fetchone()


def forget_reports(codes) -> None:
    """Delete committed reports with their incidents, cases and photo files (tests share the database)."""
    import shutil

    from gis import models as m
    from gis.reports import photos

    reports = m.Report.objects.filter(code__in=list(codes))
    incidents = [i for i in reports.values_list("incident_id", flat=True) if i]
    for code in reports.values_list("code", flat=True):
        shutil.rmtree(photos.folder(code), ignore_errors=True)
    reports.delete()
    m.Incident.objects.filter(pk__in=incidents).delete()
