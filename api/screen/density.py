"""Incident density at /screen/density/: the daily kernel-density GeoTIFF for QGIS, its PNG and JSON for the screen.

Open to ``DENSITY_ROLES`` (the screen's roles and analysts, who open the GeoTIFF in
QGIS with HTTP Basic: username and personal access token). Every URL takes the
optional ``?grid=CODE&category=a,b``. The GeoTIFF answers ``HEAD`` and single byte
ranges, as GDAL's ``/vsicurl/`` asks. The computation lives in ``layers.density``;
see ``docs/density.md``.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path

from api.screen.access import ScreenError, screen_view
from core.roles import DENSITY_ROLES
from layers import density
from layers.density import DensityError

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def density_view(view):
    """GET/HEAD only, for DENSITY_ROLES (the screen's rules); DensityErrors answered like the screen's errors."""

    @screen_view(roles=DENSITY_ROLES, what="the incident density")
    @functools.wraps(view)
    def checked(request: HttpRequest, identity, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DensityError as exc:
            raise ScreenError(str(exc), status=exc.status) from None

    return checked


# -- views -------------------------------------------------------------------------------------------------


@density_view
def index(request: HttpRequest) -> HttpResponse:
    """The days with incidents (newest first, with counts), the latest day's links and the URL templates."""
    grid_code, categories = _filters(request)
    checked = density.density_request(day=density.today(), grid_code=grid_code, categories=categories)
    days = density.density_days(grid_code=checked.grid_code, categories=checked.categories)
    query = _query(checked)
    latest = days[0][0].isoformat() if days else None
    template = request.build_absolute_uri("/screen/density/") + "{date}"
    return _json({
        "title": "Incident kernel density (事件核密度)",
        "description": (
            f"Daily kernel density of published incidents, false alarms left out, {density.KERNEL} kernel, bandwidth "
            f"{density.BANDWIDTH_M:g} m, cell {density.CELL_M:g} m, in {density.UNITS}, computed in "
            f"EPSG:{density.CRS_EPSG}; days are local days in {density.TZ}."
        ),
        "grid": checked.grid_code,
        "categories": list(checked.categories),
        "excluded_statuses": list(density.EXCLUDED_STATUSES),
        "today": density.today().isoformat(),
        "latest": latest,
        "days": [{"date": day.isoformat(), "count": count} for day, count in days],
        "templates": {ext: f"{template}.{ext}{query}" for ext in ("json", "tif", "png")},
        "links": _links(request, density.parse_day(latest), query) if latest else {},
    })


@density_view
def day_document(request: HttpRequest, day: str, fmt: str) -> HttpResponse:
    """``<day>.json`` (what the raster holds, overlay bounds, links), ``<day>.tif`` (GeoTIFF) or ``<day>.png``."""
    grid_code, categories = _filters(request)
    checked = density.density_request(day=day, grid_code=grid_code, categories=categories)
    raster = density.density_raster(request=checked)
    if fmt == "tif":
        return _geotiff_response(request, raster)
    overlay = density.density_overlay(raster=raster)
    if fmt == "png":
        return _bytes_response(request, overlay.png, content_type="image/png", etag=f'"{overlay.fingerprint}"',
                               cache="private, max-age=30, must-revalidate")
    return _json(_day_json(request, raster, overlay))


def _day_json(request: HttpRequest, raster: density.DensityRaster, overlay: density.DensityOverlay) -> dict:
    checked = raster.request
    document = {
        "date": checked.day.isoformat(),
        "timezone": str(density.TZ),
        "grid": checked.grid_code,
        "categories": list(checked.categories),
        "excluded_statuses": list(density.EXCLUDED_STATUSES),
        "count": raster.count,
        "empty": raster.empty,
        "max": raster.max_density,
        "units": density.UNITS,
        "kernel": density.KERNEL,
        "bandwidth_m": checked.bandwidth_m,
        "cell_m": checked.cell_m,
        "crs": f"EPSG:{density.CRS_EPSG}",
        "size": [raster.width, raster.height],
        "bounds": list(raster.bounds),
        "synthetic": raster.synthetic,
        "overlay": {
            "crs": f"EPSG:{density.WEB_EPSG}",
            "size": [overlay.width, overlay.height],
            "bbox": list(overlay.bbox),
            "leaflet_bounds": overlay.leaflet_bounds,
        },
        "links": _links(request, checked.day, _query(checked)),
    }
    if raster.empty:
        document["note"] = "No incidents on this day: the raster is all zero and the overlay fully transparent."
    return document


# -- helpers -------------------------------------------------------------------------------------------------


def _filters(request: HttpRequest) -> tuple[str | None, list[str]]:
    grid_code = request.GET.get("grid") or None
    categories = [part for value in request.GET.getlist("category") for part in value.split(",")]
    return grid_code, categories


def _query(checked: density.DensityRequest) -> str:
    params = {}
    if checked.grid_code:
        params["grid"] = checked.grid_code
    if checked.categories:
        params["category"] = ",".join(checked.categories)
    return "?" + urlencode(params, safe=",") if params else ""


def _links(request: HttpRequest, day, query: str) -> dict[str, str]:
    base = request.build_absolute_uri(f"/screen/density/{day.isoformat()}")
    return {ext: f"{base}.{ext}{query}" for ext in ("json", "tif", "png")}


def _json(document: dict) -> JsonResponse:
    response = JsonResponse(document, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "private, no-cache"
    return response


def _geotiff_response(request: HttpRequest, raster: density.DensityRaster) -> HttpResponse:
    response = _bytes_response(
        request, raster.path.read_bytes(), content_type=density.TIFF_MEDIA_TYPE, etag=f'"{raster.fingerprint}"',
        cache="private, no-cache",
    )
    response["Content-Disposition"] = f'attachment; filename="{raster.request.filename}"'
    return response


def _bytes_response(request: HttpRequest, body: bytes, *, content_type: str, etag: str, cache: str) -> HttpResponse:
    """``body`` with its ETag; 304 on a matching If-None-Match, 206 for one byte range, no body for HEAD."""
    headers = {"ETag": etag, "Cache-Control": cache, "Accept-Ranges": "bytes"}
    if etag in [tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")]:
        return _with_headers(HttpResponse(status=304), headers)
    status, part = 200, body
    wanted = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    if wanted:  # one range, as GDAL asks; anything else is answered with the whole body, as HTTP allows
        span = _byte_range(wanted, len(body))
        if span is None:
            response = HttpResponse(status=416, content_type=content_type)
            return _with_headers(response, {**headers, "Content-Range": f"bytes */{len(body)}"})
        start, end = span
        status, part = 206, body[start : end + 1]
        headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
    response = HttpResponse(b"" if request.method == "HEAD" else part, status=status, content_type=content_type)
    response["Content-Length"] = str(len(part))
    return _with_headers(response, headers)


def _byte_range(match: re.Match, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a ``bytes=a-b`` range within ``size``; None when it cannot be satisfied."""
    if not (match[1] or match[2]):
        return None
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    else:  # the last N bytes
        start, end = max(0, size - int(match[2])), size - 1
    return (start, end) if start <= end and start < size else None


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for key, value in headers.items():
        response[key] = value
    return response


urlpatterns = [
    path("", index, name="density-index"),
    re_path(r"^(?P<day>[^/]+)\.(?P<fmt>json|tif|png)$", day_document, name="density-day"),
]
