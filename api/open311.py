"""Open311 GeoReport v2 at ``/open311/v2/``: the services, service requests in JSON and XML, tokens, discovery.

Every answer comes in the format its URL ends with (``.xml``, which the specification makes
mandatory, or ``.json``). Reads are public and show only what may be public
(:mod:`gis.open311.selectors`); a POST needs an ``api_key`` issued by ``onemap open311-key add``
and goes through the residents' report services like every report. Errors are the
specification's ``[{code, description}]`` (XML: ``<errors><error>…``) with 400, 403, 404, 405,
413 or 429, and a description that says what to change. See ``docs/open311.md``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, time, timedelta

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-07T00:00:00+08:00"  # when this endpoint's contract last changed
FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
MAX_DAYS = 90
MAX_IDS = 1000
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_ATTRIBUTE = re.compile(r"^attribute\[([^\]\[]{1,64})\](?:\[\])?$")
# the items of a list, by the list's name, as XML names them
_ITEMS = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format",
          "jurisdictions": "jurisdiction"}
# characters XML 1.0 cannot hold (a resident's text may carry them): dropped from XML answers
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def _view(*methods: str):
    """The format from the URL, the method, the jurisdiction checked; every refusal as an Open311 error."""

    def decorate(view):
        @csrf_exempt
        def wrapper(request: HttpRequest, fmt: str, **kwargs):
            from django.core.exceptions import (
                RequestDataTooBig,
                SuspiciousOperation,
                TooManyFieldsSent,
            )
            from django.http.multipartparser import MultiPartParserError

            from gis.reports.photos import PhotoRefused
            from gis.reports.services import ReportLimited
            from gis.services import ServiceError

            shown = fmt if fmt in FORMATS else "xml"
            try:
                if fmt not in FORMATS:
                    raise _Refusal(404, f"the format must be .xml or .json; got {fmt[:20]!r}")
                if request.method not in methods:
                    raise _Refusal(405, f"{request.method} is not allowed here; use {' or '.join(methods)}",
                                   {"Allow": ", ".join(methods)})
                _check_jurisdiction(request)
                return view(request, fmt, **kwargs)
            except _Refusal as exc:
                return _errors(shown, exc.status, str(exc), exc.headers)
            except ReportLimited as exc:
                return _errors(shown, 429, str(exc), {"Retry-After": str(exc.retry_after_s)})
            except PhotoRefused as exc:
                return _errors(shown, 400, f"media: {exc}")
            except ServiceError as exc:
                return _errors(shown, 400, str(exc))
            except RequestDataTooBig:
                return _errors(shown, 413, "the form is too large; a photo goes in the multipart field media")
            except (MultiPartParserError, TooManyFieldsSent, SuspiciousOperation) as exc:
                return _errors(shown, 400, f"the form could not be read: {exc}")

        return wrapper

    return decorate


# -- discovery and services ------------------------------------------------------------------


@_view("GET", "HEAD")
def discovery(request: HttpRequest, fmt: str) -> HttpResponse:
    """The GeoReport v2 service discovery document: where the endpoint is, what it speaks, who to ask for a key."""
    from gis.open311.selectors import jurisdictions

    document = {
        "changeset": CHANGESET,
        "contact": "西大街街道社区治理指挥中心 (the Xidajie subdistrict's command centre)",
        "key_service": "api keys are issued by the command centre (onemap open311-key add NAME)",
        "endpoints": [{"specification": SPECIFICATION, "url": request.build_absolute_uri("/open311/v2"),
                       "changeset": CHANGESET, "type": "production", "formats": ["text/xml", "application/json"]}],
        "jurisdictions": [{"jurisdiction_id": code, "name": name} for code, name in jurisdictions()],
    }
    return _render(fmt, "discovery", document, single=True)


@_view("GET", "HEAD")
def service_list(request: HttpRequest, fmt: str) -> HttpResponse:
    """Every service: the categories residents may report, with their time limits."""
    from gis.open311.catalogue import services

    rows = [{"service_code": s.code, "service_name": s.name, "description": s.description, "metadata": s.metadata,
             "type": "realtime", "keywords": s.keywords, "group": s.group} for s in services()]
    return _render(fmt, "services", rows, item="service")


@_view("GET", "HEAD")
def service_definition(request: HttpRequest, fmt: str, code: str) -> HttpResponse:
    """One service's questions (attributes), in their order."""
    from gis.open311.catalogue import service

    svc = service(code)
    if svc is None:
        raise _Refusal(404, f"there is no service {code[:60]!r}; services.{fmt} lists them")
    attributes = [{"variable": True, "code": a.code, "datatype": a.datatype, "required": a.required,
                   "datatype_description": a.datatype_description, "order": a.order, "description": a.description,
                   "values": [{"key": key, "name": name} for key, name in a.values]} for a in svc.attributes]
    return _render(fmt, "service_definition", {"service_code": svc.code, "attributes": attributes}, single=True)


# -- service requests ------------------------------------------------------------------------


@_view("GET", "HEAD", "POST")
def service_requests(request: HttpRequest, fmt: str) -> HttpResponse:
    """GET: public requests by ids, or by service, period (at most 90 days) and status; POST: a new request."""
    from gis.open311.selectors import service_requests as read

    if request.method == "POST":
        return _create(request, fmt)
    query = request.GET
    if query.get("service_request_id"):
        rows = read(ids=_ids(query["service_request_id"]))
    else:
        start, end = _period(query.get("start_date"), query.get("end_date"))
        rows = read(service_codes=_service_codes(query.get("service_code")), start=start, end=end,
                    status=_status(query.get("status")))
    return _render(fmt, "service_requests", [_public(request, row) for row in rows], item="request")


@_view("GET", "HEAD")
def service_request(request: HttpRequest, fmt: str, request_id: str) -> HttpResponse:
    """One public request; 404 for one that is not (or not public)."""
    from gis.open311.selectors import service_request as read

    row = read(int(request_id)) if _whole(request_id) else None
    if row is None:
        raise _Refusal(404, f"there is no service request {request_id[:40]!r}")
    return _render(fmt, "service_requests", [_public(request, row)], item="request")


@_view("GET", "HEAD")
def token(request: HttpRequest, fmt: str, token: str) -> HttpResponse:
    """The service_request_id a token (given in the POST's answer) stands for."""
    from gis.open311.selectors import request_for_token

    found = request_for_token(token)
    if found is None:
        raise _Refusal(404, f"there is no request with the token {token[:40]!r}")
    return _render(fmt, "service_requests", [{"service_request_id": str(found), "token": token}], item="request")


@csrf_exempt
def media(request: HttpRequest, request_id: str, name: str) -> HttpResponse:
    """A published request's photo (re-encoded JPEG without metadata); 404 for anything else."""
    from gis.open311.selectors import public_photo

    if request.method not in ("GET", "HEAD"):
        return _errors("xml", 405, f"{request.method} is not allowed here; use GET", {"Allow": "GET, HEAD"})
    found = public_photo(int(request_id), name) if _whole(request_id) else None
    if found is None:
        return _errors("xml", 404, "there is no such published photo")
    return FileResponse(found.open("rb"), content_type="image/jpeg")


def _create(request: HttpRequest, fmt: str) -> HttpResponse:
    from gis.open311.services import key_holder, request_submit

    kind = request.content_type or ""
    if kind not in _FORM_TYPES:
        raise _Refusal(400, "send the request form-encoded (application/x-www-form-urlencoded), or as "
                            f"multipart/form-data with a photo in the field media; got {kind[:60] or 'no type'!r}")
    form = request.POST
    secret = form.get("api_key", "")
    if not secret:
        raise _Refusal(403, "api_key is required to post a request (the command centre issues keys)")
    key = key_holder(secret)
    if key is None:
        raise _Refusal(403, "api_key is not valid (unknown or revoked)")
    lon, lat, crs = _location(form)
    report = request_submit(
        key=key, service_code=form.get("service_code", ""), lon=lon, lat=lat, crs=crs,
        description=form.get("description", ""), answers=_answers(form), media_url=form.get("media_url", ""),
        photo_files=_photos(request), device=form.get("device_id", ""), phone=form.get("phone", ""))
    from gis.open311.catalogue import service

    answer = [{"service_request_id": str(report.id), "token": report.code,
               "service_notice": service(report.category).notice, "account_id": ""}]
    return _render(fmt, "service_requests", answer, item="request", status=201)


# -- reading the request ---------------------------------------------------------------------


def _check_jurisdiction(request: HttpRequest) -> None:
    given = request.GET.get("jurisdiction_id")
    if given is None and request.method == "POST" and (request.content_type or "") in _FORM_TYPES:
        given = request.POST.get("jurisdiction_id")
    if not given:
        return
    from gis.open311.selectors import jurisdictions

    known = [code for code, _ in jurisdictions()]
    if given not in known:
        raise _Refusal(404, f"jurisdiction_id {given[:40]!r} is not served here; this endpoint serves "
                            f"{', '.join(known) or 'no jurisdiction yet'}")


def _location(form) -> tuple[float, float, str]:
    """(lon, lat, crs): from lat and long, else from a building named by address_id or address_string."""
    lat, lon = form.get("lat", ""), form.get("long", "")
    crs = form.get("crs", "") or "wgs84"
    if lat or lon:
        if not (lat and lon):
            raise _Refusal(400, "lat and long go together; give both (WGS84 decimal degrees)")
        return _number(lon, "long"), _number(lat, "lat"), crs
    from gis.open311.selectors import building_place

    if form.get("address_id"):
        raw = form["address_id"]
        found = building_place(building_id=int(raw)) if _whole(raw) else []
        if not found:
            raise _Refusal(400, f"address_id {raw[:40]!r} is not one of our buildings' ids; send lat and long")
        return found[0][2], found[0][3], "wgs84"
    text = form.get("address_string", "")
    if not text.strip():
        raise _Refusal(400, "a location is required: lat and long (WGS84), or an address_string or address_id "
                            "naming one of the subdistrict's buildings")
    if len(text) > 200 or "\x00" in text:
        raise _Refusal(400, "address_string must be at most 200 characters without NUL")
    found = building_place(address=text)
    if not found:
        raise _Refusal(400, f"no building here has the address {text[:60]!r} (there is no geocoder: an "
                            "address_string must be a building's address or name); send lat and long")
    if len(found) > 1:
        raise _Refusal(400, f"address_string {text[:60]!r} names several buildings, e.g. "
                            f"{'; '.join(address for _, address, _, _ in found[:3])}; give the whole address, "
                            "or lat and long")
    return found[0][2], found[0][3], "wgs84"


def _number(raw: str, name: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise _Refusal(400, f"{name} must be a decimal number of degrees; got {raw[:40]!r}") from None


def _answers(form) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    for name in form:
        matched = _ATTRIBUTE.match(name)
        if matched:
            answers.setdefault(matched.group(1), []).extend(form.getlist(name))
        elif name.startswith("attribute"):
            raise _Refusal(400, f"{name[:60]!r} is not an attribute; write attribute[CODE]=VALUE")
    return answers


def _photos(request: HttpRequest) -> list[bytes]:
    from gis.reports.photos import MAX_BYTES, MAX_PHOTOS

    files = request.FILES.getlist("media")
    if len(files) > MAX_PHOTOS:
        raise _Refusal(400, f"{len(files)} photos in media; at most {MAX_PHOTOS} are taken")
    for n, upload in enumerate(files, start=1):
        if upload.size > MAX_BYTES:
            raise _Refusal(413, f"media photo {n} is {upload.size / 1048576:.1f} MB; at most "
                                f"{MAX_BYTES // 1048576} MB are taken")
    return [upload.read() for upload in files]


def _ids(raw: str) -> list[int]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > MAX_IDS:
        raise _Refusal(400, f"service_request_id lists {len(parts):,} ids; at most {MAX_IDS:,} are taken")
    return [_id(p) for p in parts]


def _whole(raw: str) -> bool:
    """ASCII digits only (``"²".isdigit()`` is true, and int() refuses it), and a number PostgreSQL's bigint holds."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 18


def _id(raw: str) -> int:
    if not _whole(raw):
        raise _Refusal(400, f"a service_request_id is a whole number; got {raw[:40]!r}")
    return int(raw)


def _service_codes(raw: str | None) -> list[str] | None:
    from gis.open311.catalogue import service, services

    if not raw:
        return None
    codes = [c.strip() for c in raw.split(",") if c.strip()]
    for code in codes:
        if service(code) is None:
            raise _Refusal(400, f"service_code must be among {', '.join(s.code for s in services())}; "
                                f"got {code[:60]!r}")
    return codes


def _status(raw: str | None) -> str | None:
    wanted = {s.strip() for s in (raw or "").split(",") if s.strip()}
    if not wanted <= {"open", "closed"}:
        raise _Refusal(400, f"status must be open, closed or both (comma-separated); got {raw[:40]!r}")
    return next(iter(wanted)) if len(wanted) == 1 else None


def _period(start_raw: str | None, end_raw: str | None) -> tuple[datetime, datetime | None]:
    """[start, end) of at most 90 days; by default the last 90."""
    start = _moment(start_raw, "start_date") if start_raw else None
    end = _moment(end_raw, "end_date") if end_raw else None
    span = timedelta(days=MAX_DAYS)
    if start is None and end is None:
        return timezone.now() - span, None
    if start is None:
        return end - span, end
    if end is None:
        return start, start + span
    if end <= start:
        raise _Refusal(400, "end_date must come after start_date")
    if end - start > span:
        raise _Refusal(400, f"start_date to end_date spans {(end - start).days} days; at most {MAX_DAYS} are "
                            "searched at once")
    return start, end


def _moment(raw: str, name: str) -> datetime:
    """A w3c date-time with its offset (2026-12-01T08:00:00+08:00, or …Z), or a date (its local midnight)."""
    try:
        if len(raw) == 10:
            moment = timezone.make_aware(datetime.combine(date.fromisoformat(raw), time()))
        else:
            moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _Refusal(400, f"{name} must be a date-time with its offset, e.g. 2026-12-01T08:00:00+08:00; "
                            f"got {raw[:40]!r}") from None
    if moment.tzinfo is None:
        raise _Refusal(400, f"{name} must carry its offset from UTC (…+08:00 or …Z); got {raw[:40]!r}")
    if not 1970 <= moment.year <= 2200:
        raise _Refusal(400, f"{name} must lie between the years 1970 and 2200; got {raw[:40]!r}")
    return moment


# -- answers ---------------------------------------------------------------------------------


def _public(request: HttpRequest, row: dict) -> dict:
    """A request as the specification names its fields; media_url: our own copy of a published photo."""
    shown = {key: value for key, value in row.items() if key != "photos"}
    photos = row["photos"]
    shown["media_url"] = (request.build_absolute_uri(f"/open311/v2/media/{row['service_request_id']}/{photos[0]}")
                          if photos else "")
    return shown


def _render(fmt: str, root: str, data, *, item: str = "", single: bool = False, status: int = 200,
            headers: dict | None = None) -> HttpResponse:
    if fmt == "json":
        response = JsonResponse(_jsonable(data), status=status, safe=False, json_dumps_params={"ensure_ascii": False})
    else:
        element = ET.Element(root)
        if single:
            _fill(element, data)
        else:
            for row in data:
                _fill(ET.SubElement(element, item), row)
        body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="unicode")
        response = HttpResponse(body.encode("utf-8"), status=status, content_type=FORMATS["xml"])
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _fill(element: ET.Element, value) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _fill(ET.SubElement(element, key), inner)
    elif isinstance(value, list):
        for inner in value:
            _fill(ET.SubElement(element, _ITEMS.get(element.tag, "item")), inner)
    else:
        element.text = _NOT_XML.sub("", _text(value))


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat(timespec="seconds")
    return str(value)


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_jsonable(inner) for inner in value]
    if isinstance(value, datetime):
        return _text(value)
    return value


def _errors(fmt: str, status: int, message: str, headers: dict | None = None) -> HttpResponse:
    return _render(fmt, "errors", [{"code": status, "description": message}], item="error", status=status,
                   headers=headers)


_F = r"\.(?P<fmt>[^/.]*)$"
urlpatterns = [
    re_path(r"^discovery" + _F, discovery, name="open311-discovery"),
    re_path(r"^services" + _F, service_list, name="open311-services"),
    re_path(r"^services/(?P<code>[^/.]+)" + _F, service_definition, name="open311-service"),
    re_path(r"^requests" + _F, service_requests, name="open311-requests"),
    re_path(r"^requests/(?P<request_id>[^/.]+)" + _F, service_request, name="open311-request"),
    re_path(r"^tokens/(?P<token>[^/.]+)" + _F, token, name="open311-token"),
    re_path(r"^media/(?P<request_id>[^/]+)/(?P<name>[^/]+)$", media, name="open311-media"),
]
