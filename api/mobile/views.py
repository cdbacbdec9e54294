"""The grid worker's phone: the page ``/m/`` and its JSON APIs under ``/m/api/`` (thin: reads in ``selectors``).

Grid workers only; an anonymous caller gets 401, other roles 403. Everything a worker reads
is read under their row-level security (``layers.access.scoped_django``): their level-3 grid,
its buildings, the cases dispatched to them in it, the elder-care alerts in it. Workflow
actions go to ``/api/cases/{id}/{action}`` with an ``Idempotency-Key`` (``api.idempotency``),
so what the phone queued offline is applied once. See ``docs/mobile.md``.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import datetime
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse

from api.mobile import selectors as phone
from api.responses import json_answer, json_error
from core.roles import GRID_WORKER

MOBILE_ROLES = frozenset({GRID_WORKER})
MAX_POSITION_BODY = 4 * 1024
TEMPLATE = Path(__file__).resolve().parent / "templates" / "m.html"


class PhoneError(Exception):
    """A request the phone's API refuses; ``str(exc)`` says what to change."""

    def __init__(self, message: str, *, status: int, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, dict(headers or {})


def phone_view(*methods: str, roles: frozenset[str] = MOBILE_ROLES):
    """Only ``methods`` (405 otherwise), for ``roles``; refusals as JSON ``{status, error}``."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            from api.auth import AuthError, require_role
            from gis.services import ServiceError

            try:
                identity = require_role(request, roles, what="the grid worker's phone")
                if request.method not in methods:
                    raise PhoneError(f"{request.method} is not allowed here; use {' or '.join(methods)}",
                                     status=405, headers={"Allow": ", ".join(methods)})
                return view(request, identity, *args, **kwargs)
            except AuthError as exc:
                return json_error(exc.status, str(exc), exc.headers)
            except PhoneError as exc:
                return json_error(exc.status, str(exc), exc.headers)
            except ServiceError as exc:
                from gis.spatial.services import WorkerUnavailable

                return json_error(409 if isinstance(exc, WorkerUnavailable) else 400, str(exc))

        return wrapper

    return decorate


# -- the page -------------------------------------------------------------------------


def page(request: HttpRequest) -> HttpResponse:
    """The phone page: a shell that signs in by itself (username and token) and reads the APIs below."""
    if request.method not in ("GET", "HEAD"):
        return json_error(405, f"{request.method} is not allowed here; use GET", {"Allow": "GET, HEAD"})
    response = HttpResponse(_page_html(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


@functools.cache
def _page_html() -> str:
    from core.vocabulary import CARE_CATEGORY, CASE_STATES, CATEGORIES
    from gis.cases.workflow import ACTIONS

    config = {
        "urls": {"me": "/m/api/me", "tasks": "/m/api/tasks", "careAlerts": "/m/api/care-alerts",
                 "position": "/m/api/position", "photos": "/m/api/photos", "events": "/m/events",
                 "action": "/api/cases/{id}/{action}"},
        "basemap": basemap_url(),
        "categories": {c.code: c.label_zh for c in CATEGORIES},
        "states": {s.code: s.label_zh for s in CASE_STATES},
        "actions": {**{a.name: a.label_zh for a in ACTIONS.values()}, "visit": "走访结果"},
        "careCategory": CARE_CATEGORY,
        "positionEverySeconds": 30,
    }
    script = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    return TEMPLATE.read_text(encoding="utf-8").replace("{{CONFIG}}", script)


def basemap_url() -> str | None:
    """The intranet XYZ template of ``ONEMAP_SCREEN_BASEMAP`` (the big screen's), or None: no base layer."""
    import os

    raw = os.environ.get("ONEMAP_SCREEN_BASEMAP", "").strip()
    if raw.lower() in ("", "none") or not all(p in raw for p in ("{z}", "{x}", "{y}")):
        return None
    return raw if raw.startswith(("http://", "https://", "/")) else None


# -- reads ----------------------------------------------------------------------------


@phone_view("GET", "HEAD")
def me(request: HttpRequest, identity) -> JsonResponse:
    """Who is signed in: the worker, their level-3 grid's outline and its buildings."""
    return json_answer(phone.worker_home(identity=identity))


@phone_view("GET", "HEAD")
def tasks(request: HttpRequest, identity) -> JsonResponse:
    """The cases dispatched to the worker in their grid, most urgent first, with the actions they may take."""
    return json_answer({"tasks": phone.worker_tasks(identity=identity)})


@phone_view("GET", "HEAD")
def care_alerts(request: HttpRequest, identity) -> JsonResponse:
    """Open elder-care alerts in the worker's grid; the person's name and flat only on the worker's own case (logged)."""
    from api.auth import client_address

    return json_answer({"alerts": phone.grid_care_alerts(identity=identity, route=request.path,
                                                   remote_addr=client_address(request))})


# -- writes ---------------------------------------------------------------------------


@phone_view("POST")
def position(request: HttpRequest, identity) -> JsonResponse:
    """Where the worker is now (shared with consent, on duty): ``{"position": [lon, lat], "at": ISO?}``."""
    from gis.spatial.services import worker_position_share

    body = _json_body(request, MAX_POSITION_BODY)
    lon, lat = _lonlat(body.get("position"))
    at = _moment(body["at"]) if body.get("at") is not None else None
    worker = worker_position_share(user_id=identity.user_id, lon=lon, lat=lat, at=at)
    return json_answer({"worker": worker.code, "position": [lon, lat], "last_seen_at": worker.last_seen_at.isoformat(),
                  "on_duty": worker.on_duty})


@phone_view("POST")
def photo_upload(request: HttpRequest, identity) -> JsonResponse:
    """A photo from the phone's camera (the raw image as the body): checked by content, re-encoded as JPEG."""
    from api.mobile.photos import PhotoRefused, photo_store

    try:
        stored = photo_store(request.body)
    except PhotoRefused as exc:
        raise PhoneError(str(exc), status=exc.status) from None
    return json_answer(stored, status=201)


@phone_view("GET", "HEAD", roles=frozenset({"administrator", "commander", GRID_WORKER}))
def photo_file(request: HttpRequest, identity, name: str) -> HttpResponse:
    """A stored photo by its name (the SHA-256 of its JPEG: nobody finds one without being given it)."""
    from api.mobile.photos import photo_path

    path = photo_path(name)
    if path is None:
        raise PhoneError(f"there is no photo {name[:80]!r}", status=404)
    response = HttpResponse(path.read_bytes(), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response


# -- helpers --------------------------------------------------------------------------


def _json_body(request: HttpRequest, limit: int) -> dict:
    raw = request.body
    if len(raw) > limit:
        raise PhoneError(f"the body is {len(raw):,} bytes; at most {limit:,} are taken", status=413)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise PhoneError(f"the body is not JSON: {exc}", status=400) from None
    if not isinstance(body, dict):
        raise PhoneError("the body must be a JSON object", status=400)
    return body


def _lonlat(value) -> tuple[float, float]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise PhoneError("position must be [lon, lat] in degrees (EPSG:4326)", status=400)
    lon, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise PhoneError(f"position must be [lon, lat] with lon in -180…180 and lat in -90…90; got {value!r}",
                         status=400)
    return lon, lat


def _moment(value) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise PhoneError(f"at must be an ISO 8601 time with its offset; got {str(value)[:60]!r}", status=400)
    return moment


