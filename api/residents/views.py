"""The resident's page at ``/report/`` and the JSON it calls; the tracking page ``/report/t/<code>``.

Thin: parse, call :mod:`gis.reports.services` (writes) or :mod:`gis.reports.selectors`
(reads), answer. Nothing here ever reads or returns a phone number. A report's photos are
addressed by the report's id (``/report/photos/<id>/<name>``), never by its tracking code,
which is the reporter's key to rate and dispute; they are served only once a moderator
published the report, or to staff.
"""

from __future__ import annotations

import functools
from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse

from api.residents import limits
from api.residents.access import (
    STAFF_ROLES,
    Refusal,
    config_block,
    error_response,
    json_body,
    json_response,
    page,
    page_response,
    resident_view,
    text_field,
)
from core import vocabulary

DEVICE_FIELD = "device"
TRACKING_CODE = r"R[A-Z0-9]{1,15}"  # the URL patterns take nothing else (a NUL never reaches the database)


# -- pages --------------------------------------------------------------------------------------


@resident_view("GET", "HEAD", html=True)
def report_page(request: HttpRequest, identity) -> HttpResponse:
    """The resident's page: the map, the form, the likely duplicates, the tracking code on submit."""
    return page_response(_report_page_html())


@functools.cache
def _report_page_html() -> str:
    from gis.reports.selectors import service_area
    from gis.reports.services import CATEGORIES

    config = {
        "area": service_area(),
        "categories": [{"code": c, "zh": vocabulary.CATEGORY[c].label_zh, "en": vocabulary.CATEGORY[c].label}
                       for c in CATEGORIES],
        "limits": {"photos": limits.MAX_PHOTOS, "photoBytes": limits.PHOTO_BYTES, "description": 4000},
        "urls": {"submit": limits.SUBMIT_PATH, "duplicates": "/report/api/duplicates", "meToo": "/report/api/me-too",
                 "track": "/report/t/", "tiles": "/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"},
        "tileZooms": _tile_zooms(),
        "writeHeader": ["X-Requested-With", "onemap-report"],
    }
    return page("report.html", config=config_block(config))


def _tile_zooms() -> dict:
    from layers.tiles import TILE_LAYERS

    return {name: [TILE_LAYERS[name].min_zoom, TILE_LAYERS[name].max_zoom] for name in ("grids", "buildings")}


@resident_view("GET", "HEAD", html=True)
def tracking_page(request: HttpRequest, identity, code: str) -> HttpResponse:
    """The tracking page of a code (its figures come from :func:`progress`); 404 for an unknown code."""
    from gis.reports.selectors import report_exists

    if not report_exists(code=code):
        raise Refusal(404, "没有这个查询码的上报，请核对。 There is no report with this tracking code.")
    config = {"code": code, "urls": {"progress": f"/report/api/t/{code}", "rate": f"/report/api/t/{code}/rate",
                                     "dispute": f"/report/api/t/{code}/dispute", "report": "/report/"},
              "writeHeader": ["X-Requested-With", "onemap-report"]}
    return page_response(page("track.html", code=escape(code), config=config_block(config)))


# -- a new report, duplicates, me too -------------------------------------------------------------


@resident_view("POST")
def submit(request: HttpRequest, identity) -> HttpResponse:
    """A new report from the page's multipart form: fields, up to three photos; 201 with its tracking code."""
    from api.auth import client_address
    from gis.reports.services import Sender, report_submit

    fields, files = _multipart(request)
    report = report_submit(
        category=_field(fields, "category"), description=_field(fields, "description", ""),
        lon=_coordinate(fields, "lon"), lat=_coordinate(fields, "lat"), crs=_field(fields, "crs", "wgs84"),
        photo_files=_photos(files),
        sender=Sender(device=_field(fields, DEVICE_FIELD, ""), ip=client_address(request) or "",
                      phone=_field(fields, "phone", "").strip(), channel="web"))
    return json_response(_receipt(report), status=201, headers={"Location": f"/report/t/{report.code}"})


@resident_view("GET", "HEAD")
def duplicates(request: HttpRequest, identity) -> HttpResponse:
    """Open cases of a category within 50 m and 24 h of a point (``crs`` wgs84 or gcj02), with the point in WGS84.

    Without a category, only the point (the page places a pasted GCJ-02 pin with it).
    """
    from gis.reports.selectors import duplicates_near
    from gis.reports.services import CATEGORIES, ReportRefused, locate

    query = request.GET
    category = _field(query, "category", "")
    if category and category not in CATEGORIES:
        raise ReportRefused(f"category must be one of {', '.join(CATEGORIES)}; got {category[:60]!r}")
    lon, lat = locate(lon=_coordinate(query, "lon"), lat=_coordinate(query, "lat"), crs=_field(query, "crs", "wgs84"))
    found = duplicates_near(category=category, lon=lon, lat=lat) if category else []
    for item in found:  # published reports' photos only (the selector's rule), addressed by report id
        item["photos"] = [_photo_url(path) for path in item["photos"]]
    return json_response({"point": [round(lon, 7), round(lat, 7)], "duplicates": found})


@resident_view("POST")
def me_too(request: HttpRequest, identity) -> HttpResponse:
    """附议: JSON ``{case, device?, phone?, description?}``; 201 with the co-reporter's own tracking code."""
    from api.auth import client_address
    from gis.reports.services import Sender, report_me_too

    body = json_body(request)
    case_code = text_field(body, "case")
    if not case_code or len(case_code) > 64 or "\x00" in case_code:
        raise Refusal(404, f"there is no open case {case_code[:40]!r} to join")
    report = report_me_too(
        case_code=case_code, description=text_field(body, "description", ""),
        sender=Sender(device=text_field(body, DEVICE_FIELD, ""), ip=client_address(request) or "",
                      phone=text_field(body, "phone", "").strip(), channel="web"))
    return json_response(_receipt(report), status=201, headers={"Location": f"/report/t/{report.code}"})


# -- tracking, rating, dispute --------------------------------------------------------------------


@resident_view("GET", "HEAD")
def progress(request: HttpRequest, identity, code: str) -> HttpResponse:
    """What the holder of a tracking code sees: the report, the case's state and steps, what they may do."""
    return json_response(_progress(code))


@resident_view("POST")
def rate(request: HttpRequest, identity, code: str) -> HttpResponse:
    """评价 the closed case, JSON ``{rating: 1..5}``; the progress afterwards."""
    from gis.reports.services import report_rate

    body = json_body(request)
    rating = body.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int):
        raise Refusal(400, f"rating must be a whole number from 1 to 5; got {str(rating)[:20]!r}")
    report_rate(code=code, rating=rating)
    return json_response(_progress(code))


@resident_view("POST")
def dispute(request: HttpRequest, identity, code: str) -> HttpResponse:
    """异议 within 7 days of closure, JSON ``{reason}``: the case is reopened; the progress afterwards."""
    from gis.reports.services import report_dispute

    body = json_body(request)
    reason = text_field(body, "reason", "").strip()
    if not reason:
        raise Refusal(400, "请写明异议的理由。 A dispute needs a reason.")
    if len(reason) > 2000:
        raise Refusal(400, f"reason is {len(reason):,} characters long; at most 2,000 are allowed")
    report_dispute(code=code, reason=reason)
    return json_response(_progress(code))


# -- photos ---------------------------------------------------------------------------------------


def photo(request: HttpRequest, report_id: str, name: str) -> HttpResponse:
    """A report's photo: for anyone once published, else for staff only; 404 for every method otherwise."""
    from api.auth import AuthError, identity_for_request
    from gis.reports.selectors import photo_shown

    try:
        identity = identity_for_request(request)
    except AuthError as exc:
        return error_response(exc.status, str(exc), exc.headers)
    found = None
    if report_id.isdigit() and len(report_id) <= 18 and len(name) <= 40:
        found = photo_shown(report_id=int(report_id), name=name, staff=identity.role in STAFF_ROLES)
    if found is None:  # hidden, pending, removed or never there: one answer, whatever the method
        return error_response(404, f"there is no photo {report_id}/{name[:40]} to show")
    if request.method not in ("GET", "HEAD"):
        return error_response(405, f"{request.method} is not allowed here; use GET", {"Allow": "GET, HEAD"})
    response = HttpResponse(found.read_bytes(), content_type="image/jpeg")  # re-encoded: small
    response["Cache-Control"] = "private, no-store"  # a photo a moderator hides must not live on in a cache
    return response


# -- helpers --------------------------------------------------------------------------------------


def _receipt(report) -> dict:
    return {"code": report.code, "kind": report.kind, "tracking": f"/report/t/{report.code}", "state": "已收到",
            "message": f"已收到您的上报。请记下查询码 {report.code}，用它查看办理进度。"}


def _progress(code: str) -> dict:
    from gis.reports.selectors import report_progress

    found = report_progress(code=code)
    if found is None:
        raise Refusal(404, "没有这个查询码的上报，请核对。 There is no report with this tracking code.")
    # the holder's own photos, unless hidden; the photo route itself serves them only once published
    found["photos"] = [_photo_url(p) for p in found["photos"]] if found["published"] else []
    return found


def _photo_url(path: str) -> str:
    """``/report/photos/<id>/<name>`` of a selector's ``<id>/<name>`` photo reference."""
    return f"/report/photos/{path}"


def _multipart(request: HttpRequest):
    """The form's fields and files; a broken or oversized body is a 400 or 413 with a sentence."""
    from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
    from django.http.multipartparser import MultiPartParserError

    content_type = request.content_type or ""
    if content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise Refusal(400, f"the report must be sent as multipart/form-data; got {content_type[:60]!r}")
    try:
        return request.POST, request.FILES
    except RequestDataTooBig:
        raise Refusal(413, "the form's text fields are too large; a description holds at most 4,000 characters") from None
    except (MultiPartParserError, SuspiciousOperation, UnicodeDecodeError, ValueError) as exc:
        raise Refusal(400, f"the form could not be read ({str(exc)[:120] or type(exc).__name__}); "
                           "send it as multipart/form-data") from None


def _photos(files) -> list[bytes]:
    chosen = files.getlist("photo")
    if len(files) > len(chosen) or len(chosen) > limits.MAX_PHOTOS:
        extra = sorted(set(files) - {"photo"})
        if extra:
            raise Refusal(400, f"unexpected file fields {', '.join(n[:40] for n in extra)}; photos go in 'photo'")
        raise Refusal(400, f"{len(chosen)} photos; at most {limits.MAX_PHOTOS} are allowed")
    for n, upload in enumerate(chosen, start=1):
        if upload.size > limits.PHOTO_BYTES:
            raise Refusal(413, f"照片 {n} 为 {upload.size / 1048576:.1f} MB，每张最多 {limits.PHOTO_BYTES // 1048576} MB。"
                               f" Photo {n} is {upload.size / 1048576:.1f} MB; each may be at most "
                               f"{limits.PHOTO_BYTES // 1048576} MB.")
    return [upload.read() for upload in chosen]


def _field(source, name: str, default: str | None = None) -> str:
    value = source.get(name)
    if value is None or value == "":
        if default is None:
            raise Refusal(400, f"{name} is required")
        return default
    return value


def _coordinate(source, name: str) -> float:
    raw = _field(source, name)
    try:
        return float(raw.strip())
    except ValueError:
        raise Refusal(400, f"{name} must be a number in degrees; got {raw[:40]!r}") from None
