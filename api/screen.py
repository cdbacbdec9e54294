"""The command-centre big screen at /screen/: the folium page, its JSON APIs, evidence and SVG charts.

Every URL here needs an administrator or a commander (``SCREEN_ROLES``). The page is
a folium (Leaflet) map rendered once per grid and base layer and cached in this
process; the browser then fills it from the JSON APIs below and from the live feed
``/screen/events`` (answered by ``api.live``). Every asset is served by us: our own
files under ``/static/screen/``, Leaflet and the font under ``/vendor/``. Nothing the
screen receives carries a person's data: elder care is counts and highlighted
buildings. See ``docs/screen.md``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path

from core.roles import SCREEN_ROLES
from core.vocabulary import CATEGORIES, STATUSES
from gis import scenes
from gis.selectors import incident_history

BASEMAP_ENV = "ONEMAP_SCREEN_BASEMAP"
EVIDENCE_ENV = "ONEMAP_EVIDENCE_DIR"
MAX_LIVE_MARKERS = 2000
MAX_EVENT_ROWS = 200
MAX_CHART_ROWS = 10  # a chart of grids shows the busiest ten
CLIP_MAX_FRAMES = 25 * 120  # a transcoded clip stops after two minutes at 25 fps

TILED = ("grids", "buildings", "incidents", "parking_spots")
# small layers the page reads as GeoJSON through the OGC API's item function
SMALL_LAYERS = ("no_parking_zones", "party_orgs", "service_points")

# the page's legend and labels, from the one vocabulary (core.vocabulary)
CATEGORY_LABELS = {c.code: c.label_zh for c in CATEGORIES}
CATEGORY_COLOURS = {c.code: c.colour for c in CATEGORIES}
STATUS_LABELS = {s.code: s.label_zh for s in STATUSES}
PARTY_KIND_LABELS = {
    "party_committee": "社区党委", "grid_branch": "网格党支部",
    "property_branch": "物业党支部", "enterprise_branch": "企业党支部",
}
SERVICE_LABELS = {"service": "社区服务", "commerce": "商业", "culture": "文娱"}
SOURCE_LABELS = {"camera": "摄像头 camera", "sensor": "传感器 sensor", "resident": "居民 resident", "staff": "工作人员 staff"}


class ScreenError(Exception):
    """A request the screen refuses; ``str(exc)`` says what to change."""

    def __init__(self, message: str, *, status: int, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


# -- the entry: who may ask ------------------------------------------------------------


def screen_view(*, html: bool = False, roles: frozenset[str] = SCREEN_ROLES, what: str = "the command-centre screen"):
    """GET/HEAD only, for ``roles``; errors as JSON (or as a page when ``html``)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            try:
                if request.method not in ("GET", "HEAD"):
                    raise ScreenError(f"{request.method} is not allowed here; use GET",
                                      status=405, headers={"Allow": "GET, HEAD"})
                identity = screen_identity(request, roles=roles, what=what)
                return view(request, identity, *args, **kwargs)
            except ScreenError as exc:
                return _error_response(exc, html=html)

        return wrapper

    return decorate


def screen_identity(request: HttpRequest, *, roles: frozenset[str] = SCREEN_ROLES,
                    what: str = "the command-centre screen"):
    """The caller if their role is one of ``roles``; otherwise ScreenError 401 (with a Basic challenge), 403 or 429."""
    from api.auth import AuthError, require_role

    try:
        return require_role(request, roles, what=what)
    except AuthError as exc:
        raise ScreenError(str(exc), status=exc.status, headers=exc.headers) from None


def _error_response(exc: ScreenError, *, html: bool) -> HttpResponse:
    if html:
        body = _ERROR_PAGE.format(status=exc.status, message=escape(str(exc)))
        response = HttpResponse(body, status=exc.status, content_type="text/html; charset=utf-8")
    else:
        response = JsonResponse({"status": exc.status, "error": str(exc)}, status=exc.status,
                                json_dumps_params={"ensure_ascii": False})
    for key, value in exc.headers.items():
        response[key] = value
    return response


_ERROR_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>社区一张图 · {status}</title>
<link rel="icon" type="image/svg+xml" href="/static/screen/icons/favicon.svg">
<link rel="stylesheet" href="/static/screen/screen.css"></head>
<body class="om-error-page"><main><h1>{status}</h1><p>{message}</p>
<p><a href="/screen/">返回大屏 / back to the screen</a></p></main></body></html>
"""


# -- the page ------------------------------------------------------------------------


@screen_view(html=True)
def page(request: HttpRequest, identity) -> HttpResponse:
    """The big screen; ``?grid=CODE`` focuses one grid."""
    grid = _grid_from_request(request)
    html = page_html(grid=grid, basemap=basemap_url(), focused=bool(request.GET.get("grid", "").strip()))
    return HttpResponse(html, content_type="text/html; charset=utf-8")


def basemap_url() -> str | None:
    """The intranet XYZ template of ``ONEMAP_SCREEN_BASEMAP``, or None for no base layer."""
    raw = os.environ.get(BASEMAP_ENV, "").strip()
    if raw.lower() in ("", "none"):
        return None
    if not all(part in raw for part in ("{z}", "{x}", "{y}")):
        raise ScreenError(f"{BASEMAP_ENV} must be 'none' or an XYZ URL template with {{z}}, {{x}} and {{y}}, "
                          f"e.g. http://tiles.intranet/{{z}}/{{x}}/{{y}}.png; got {raw!r}", status=500)
    if not raw.startswith(("http://", "https://", "/")):
        raise ScreenError(f"{BASEMAP_ENV} must start with http://, https:// or / ; got {raw!r}", status=500)
    return raw


def page_html(*, grid: scenes.SceneGrid, basemap: str | None, focused: bool = False) -> str:
    """The page for a grid and base layer (rendered once per process, then cached); ``focused``: live
    incidents outside the grid are left out."""
    return _page_html_cached(grid.code, grid.name, grid.level, grid.bounds, json.dumps(grid.outline), basemap,
                             focused)


@functools.lru_cache(maxsize=128)
def _page_html_cached(code: str, name: str, level: int, bounds: tuple, outline: str, basemap: str | None,
                      focused: bool) -> str:
    import folium
    from branca.element import Element

    west, south, east, north = bounds
    fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=15, tiles=None,
                      max_zoom=22, min_zoom=8, prefer_canvas=False, control_scale=True, attribution_control=False)
    # every asset from this server: folium's CDN defaults are replaced, jQuery/Bootstrap dropped
    fmap.default_js = [("leaflet", "/vendor/leaflet/leaflet.js"),
                       ("vectorgrid", "/vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"),
                       ("vectorgrid_fix", "/static/screen/vectorgrid-leaflet19.js")]
    fmap.default_css = [("leaflet_css", "/vendor/leaflet/leaflet.css"), ("font_css", "/vendor/fonts/onemap-sans.css"),
                        ("screen_css", "/static/screen/screen.css")]
    if basemap:
        folium.TileLayer(tiles=basemap, attr="intranet base map", name="底图 Base map", max_zoom=22).add_to(fmap)
    outline_layer = folium.GeoJson(
        json.loads(outline), name="当前网格 Focus grid",
        style_function=lambda _: {"color": "#00e5ff", "weight": 4, "fill": False, "dashArray": "8 6"},
    )
    outline_layer.add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]], padding=(20, 20))
    root = fmap.get_root()
    root.header.add_child(Element(
        '<title>社区一张图 · 指挥中心大屏 Community One Map</title>'
        '<link rel="icon" type="image/svg+xml" href="/static/screen/icons/favicon.svg">'
        '<script src="/static/screen/screen.js" defer></script>'
    ))
    config = {
        "mapName": fmap.get_name(), "outlineName": outline_layer.get_name(),
        "grid": {"code": code, "name": name, "level": level, "bounds": list(bounds)}, "focused": focused,
        "urls": {
            "events": "/screen/events", "scenes": "/screen/api/scenes", "live": "/screen/api/incidents",
            "incident": "/screen/api/incidents/", "careAlerts": "/screen/api/care-alerts",
            "cameras": "/screen/api/cameras", "gridLabels": "/screen/api/grid-labels",
            "tiles": "/screen/tiles/{layer}/{z}/{y}/{x}", "features": "/screen/api/features/",
            "density": "/screen/density/",
        },
        "tileZooms": tile_zooms(), "smallLayers": list(SMALL_LAYERS),
        "categories": CATEGORY_LABELS, "colours": CATEGORY_COLOURS, "statuses": STATUS_LABELS,
        "partyKinds": PARTY_KIND_LABELS, "services": SERVICE_LABELS, "sources": SOURCE_LABELS,
        "limits": {"markers": MAX_LIVE_MARKERS, "events": MAX_EVENT_ROWS, "newSeconds": 60},
    }
    root.html.add_child(Element(_PANELS.format(grid_name=escape(name), grid_code=escape(code))))
    script = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    root.header.add_child(Element(f"<script>window.ONEMAP_SCREEN_CONFIG = {script};</script>"))
    html = root.render()
    return html.replace("<html>", '<html lang="zh-CN">', 1)


def tile_zooms() -> dict[str, list[int]]:
    """The zoom range of each tiled layer, so the page never asks for a tile outside it (a 400)."""
    from layers.tiles import TILE_LAYERS

    return {name: [TILE_LAYERS[name].min_zoom, TILE_LAYERS[name].max_zoom] for name in TILED}


# The panels around the map; screen.js fills them.
_PANELS = """
<header class="om-header">
  <h1>社区一张图 <small>Community One Map · 指挥中心</small></h1>
  <div class="om-grid-name" data-grid-code="{grid_code}">{grid_name}</div>
  <div class="om-header-right"><span id="om-clock" class="om-clock"></span>
    <span id="om-connection" class="om-connection om-connection-connecting">连接中 connecting</span></div>
</header>
<aside class="om-column om-left">
  <section class="om-panel" id="om-scene-party">
    <h2>党建引领 <small>Party building</small></h2><div class="om-body"></div></section>
  <section class="om-panel" id="om-scene-governance">
    <h2>社区治理 <small>Governance</small></h2><div class="om-body"></div></section>
  <section class="om-panel" id="om-scene-safety">
    <h2>社区安全 <small>Safety</small></h2><div class="om-body"></div></section>
</aside>
<aside class="om-column om-right">
  <section class="om-panel" id="om-scene-elder_care">
    <h2>智慧养老 <small>Elder care</small></h2><div class="om-body"></div></section>
  <section class="om-panel" id="om-scene-parking">
    <h2>智慧停车 <small>Parking</small></h2><div class="om-body"></div></section>
  <section class="om-panel" id="om-scene-services">
    <h2>社区服务 <small>Services</small></h2><div class="om-body"></div></section>
  <section class="om-panel om-events">
    <h2>实时事件 <small>Live events</small> <span id="om-event-count"></span></h2>
    <ol id="om-event-list" class="om-event-list"></ol></section>
</aside>
<section id="om-incident-panel" class="om-incident-panel" hidden>
  <button type="button" class="om-close" aria-label="关闭 close">×</button><div class="om-body"></div>
</section>
"""


# -- JSON APIs -----------------------------------------------------------------------


@screen_view()
def scenes_api(request: HttpRequest, identity) -> JsonResponse:
    """Every scene panel of a grid, with its charts as SVG (the same answer for SCENES_TTL seconds)."""
    return _json(scenes_with_charts(grid=_grid_from_request(request)))


SCENES_TTL = 10.0  # many screens on one grid cost one set of panel queries per this many seconds
_scenes_cache: dict[int, tuple[float, dict]] = {}
_scenes_lock = threading.Lock()


def scenes_with_charts(*, grid: scenes.SceneGrid) -> dict:
    """The scene panels and their SVG charts, computed at most once per SCENES_TTL per grid in this process."""
    now = time.monotonic()
    with _scenes_lock:
        cached = _scenes_cache.get(grid.id)
    if cached is not None and now - cached[0] < SCENES_TTL:
        return cached[1]
    data = scenes.scenes_for_grid(grid=grid)
    data["charts"] = scene_charts(data)
    with _scenes_lock:
        if len(_scenes_cache) >= 256:
            _scenes_cache.clear()
        _scenes_cache[grid.id] = (now, data)
    return data


@screen_view()
def live_api(request: HttpRequest, identity) -> JsonResponse:
    """The initial live markers: open incidents of the last 24 hours in the grid (capped)."""
    grid = _grid_from_request(request)
    features = scenes.live_incidents(grid_id=grid.id)
    return _json({"type": "FeatureCollection", "features": features, "limit": scenes.LIVE_LIMIT})


@screen_view()
def care_alerts_api(request: HttpRequest, identity) -> JsonResponse:
    """Buildings with open elder-inactivity alerts: footprint and count, nothing about the person."""
    return _json(scenes.care_alert_buildings(grid_id=_grid_from_request(request).id))


@screen_view()
def cameras_api(request: HttpRequest, identity) -> JsonResponse:
    """Public-space cameras with status and field-of-view wedges."""
    return _json(scenes.cameras_with_wedges(grid_id=_grid_from_request(request).id))


@screen_view()
def grid_labels_api(request: HttpRequest, identity) -> JsonResponse:
    """Label points for the level-2 and level-3 grids."""
    return _json(scenes.grid_labels(grid_id=_grid_from_request(request).id))


@screen_view()
def incident_api(request: HttpRequest, identity, incident_id: str) -> JsonResponse:
    """One incident for the panel: feature, grid path, building, camera, evidence flags, status history."""
    number = _incident_number(incident_id)
    detail = scenes.incident_detail(incident_id=number)
    if detail is None:
        raise ScreenError(f"incident {number} does not exist (deleted, or a wrong id)", status=404)
    detail["history"] = incident_history(number)
    labels = detail["feature"]["properties"]
    detail["labels"] = {"category": CATEGORY_LABELS.get(labels["category"], labels["category"]),
                        "status": STATUS_LABELS.get(labels["status"], labels["status"])}
    base = f"/screen/api/incidents/{number}/evidence/"
    detail["evidence_urls"] = {kind: base + kind if present else None for kind, present in detail["evidence"].items()}
    return _json(detail)


# -- evidence ------------------------------------------------------------------------


@screen_view()
def evidence_api(request: HttpRequest, identity, incident_id: str, kind: str) -> HttpResponse:
    """The incident's keyframe (image) or clip (WebM, transcoded once when the stored clip will not play)."""
    path = evidence_file(incident_id=_incident_number(incident_id), kind=kind)
    if kind == "keyframe":
        content_type = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}.get(path.suffix.lower())
        if content_type is None:
            raise ScreenError(f"the keyframe {path.name} is not a JPEG or PNG image", status=415)
        return FileResponse(open(path, "rb"), content_type=content_type)
    return FileResponse(open(playable_clip(path), "rb"), content_type="video/webm")


def evidence_root() -> Path:
    """The folder evidence is served from: ``ONEMAP_EVIDENCE_DIR``, else ``$ONEMAP_VAR_DIR/evidence``."""
    raw = os.environ.get(EVIDENCE_ENV)
    return Path(raw).resolve() if raw else (settings.ONEMAP.var_dir / "evidence").resolve()


def evidence_file(*, incident_id: int, kind: str) -> Path:
    """The evidence file of an incident, only when it lies inside the evidence root (no path traversal)."""
    paths = scenes.incident_evidence_paths(incident_id=incident_id)
    if paths is None:
        raise ScreenError(f"incident {incident_id} does not exist (deleted, or a wrong id)", status=404)
    stored = paths.get(kind)
    if not stored:
        raise ScreenError(f"incident {incident_id} has no {kind} evidence", status=404)
    candidate = Path(stored)
    if not candidate.is_absolute():
        candidate = settings.ONEMAP.var_dir / candidate  # relative paths are under ONEMAP_VAR_DIR
    resolved = candidate.resolve()
    root = evidence_root()
    if not resolved.is_relative_to(root):
        raise ScreenError(f"the {kind} of incident {incident_id} lies outside the evidence folder {root} "
                          f"({EVIDENCE_ENV}); it is not served", status=404)
    if not resolved.is_file():
        raise ScreenError(f"the {kind} file of incident {incident_id} is missing from the evidence folder",
                          status=404)
    return resolved


_TRANSCODE_LOCK = threading.Lock()


def playable_clip(source: Path) -> Path:
    """A clip Chromium's <video> plays: WebM as stored, anything else (MJPEG AVI) transcoded once to VP8 WebM.

    The evidence file is only read; the copy lives under ``$ONEMAP_VAR_DIR/screen/clips``.
    """
    if source.suffix.lower() == ".webm":
        return source
    stat = source.stat()
    key = hashlib.sha256(f"{source}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    folder = settings.ONEMAP.var_dir / "screen" / "clips"
    target = folder / f"{key}.webm"
    if target.exists():
        return target
    with _TRANSCODE_LOCK:
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            _transcode_to_webm(source, target)
    return target


def _transcode_to_webm(source: Path, target: Path) -> None:
    import cv2

    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ScreenError(f"the clip {source.name} cannot be decoded", status=415)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    partial = target.with_name(f"{target.stem}.{os.getpid()}.{threading.get_ident()}.part.webm")
    writer = None
    try:
        for _ in range(CLIP_MAX_FRAMES):
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"VP80"), fps, (width, height))
                if not writer.isOpened():
                    raise ScreenError("this server's OpenCV cannot write VP8 WebM; the clip cannot be shown",
                                      status=500)
            writer.write(frame)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        partial.unlink(missing_ok=True)
        raise ScreenError(f"the clip {source.name} holds no frame", status=415)
    partial.replace(target)


# -- tiles and small layers, answered by the OGC API's own views ------------------------


@screen_view()
def tile_api(request: HttpRequest, identity, collection_id: str, z: str, y: str, x: str) -> HttpResponse:
    """An MVT tile of a big layer (the OGC API tile, under /screen/ so the browser sends the same credentials)."""
    from api import ogc

    return ogc.collection_tile(request, collection_id=collection_id, tms_id="WebMercatorQuad", z=z, y=y, x=x)


@screen_view()
def features_api(request: HttpRequest, identity, collection_id: str) -> HttpResponse:
    """GeoJSON items of a small layer (the OGC API items, under /screen/ for the same reason as tiles)."""
    from api import ogc

    return ogc.collection_items(request, collection_id=collection_id)


# -- SVG charts ----------------------------------------------------------------------


def scene_charts(data: dict) -> dict[str, str]:
    """The SVG charts of the scene panels (the longest lists cut to their top rows)."""
    governance, parking, services, party = data["governance"], data["parking"], data["services"], data["party"]
    by_category = [(CATEGORY_LABELS.get(r["category"], r["category"]), [r["open"], r["closed"]])
                   for r in governance["by_category"]]
    grids = sorted(governance["by_grid"], key=lambda r: (-r["open"], -r["closed"], r["code"]))[:MAX_CHART_ROWS]
    by_grid = [(r["name"], [r["open"], r["closed"]]) for r in grids]
    safety = [(CATEGORY_LABELS[c], [v["today"], v["last_7_days"], v["open"]]) for c, v in data["safety"].items()]
    branches = sorted(party["branches_by_grid"], key=lambda r: (-r["members"], r["code"]))[:MAX_CHART_ROWS]
    branch_texts = [f"{r['branches']}个支部 · {r['members']}人" for r in branches]
    open_closed = ("未办结 open", "已办结 closed")
    return {
        "governance_by_category": bar_chart_svg(rows=by_category, series=open_closed, colours=("#ff8c1a", "#4a6a8a")),
        "governance_by_grid": bar_chart_svg(rows=by_grid, series=open_closed, colours=("#ff8c1a", "#4a6a8a")),
        "safety": bar_chart_svg(rows=safety, series=("今日 today", "近7日 7 days", "未办结 open"),
                                colours=("#ff4d4f", "#ffd23f", "#ff8c1a"), grouped=True),
        "parking": donut_chart_svg(parts=[("空闲 free", parking["free"], "#52d273"),
                                          ("占用 occupied", parking["occupied"], "#ff4d4f"),
                                          ("未知 unknown", parking["unknown"], "#5b6b7f")]),
        "services": donut_chart_svg(parts=[(SERVICE_LABELS.get(k, k), v, c) for (k, v), c in
                                           zip(sorted(services["by_category"].items()),
                                               ("#ffd23f", "#3fb6ff", "#d46bff", "#52d273"))]),
        "party_branches": bar_chart_svg(rows=[(r["name"], [r["members"]]) for r in branches],
                                        series=("党员 members",), colours=("#ff4d4f",), row_height=20,
                                        value_texts=branch_texts),
    }


@dataclass(frozen=True)
class _Box:
    width: int = 400
    label_width: int = 120
    row_height: int = 22
    legend_height: int = 22


def bar_chart_svg(*, rows: list[tuple[str, list[int]]], series: tuple[str, ...], colours: tuple[str, ...],
                  grouped: bool = False, row_height: int = 22, value_texts: list[str] | None = None) -> str:
    """Horizontal bars, one row per label: stacked series, or side by side when ``grouped``.

    Each row ends with its values joined by '/', or with its entry of ``value_texts``.
    """
    box = _Box(row_height=row_height)
    height = box.legend_height + max(1, len(rows)) * box.row_height + 4
    plot = box.width - box.label_width - (100 if value_texts else 40)
    totals = [max(values) if grouped else sum(values) for _, values in rows]
    top = max(totals, default=0) or 1
    parts = [_svg_open(box.width, height), _legend(series, colours)]
    for n, (label, values) in enumerate(rows):
        y = box.legend_height + n * box.row_height
        middle = y + box.row_height / 2 + 5
        parts.append(f'<text x="{box.label_width - 6}" y="{middle:.1f}" text-anchor="end" class="om-chart-label">'
                     f"{escape(_short(label, 9))}</text>")
        x = float(box.label_width)
        bar_h = (box.row_height - 6) / (len(values) if grouped else 1)
        for k, value in enumerate(values):
            w = plot * value / top
            by = y + 3 + (k * bar_h if grouped else 0)
            parts.append(f'<rect x="{x:.1f}" y="{by:.1f}" width="{w:.1f}" height="{bar_h:.1f}" '
                         f'fill="{colours[k % len(colours)]}"><title>{escape(label)} · {escape(series[k])}: '
                         f"{value}</title></rect>")
            if not grouped:
                x += w
        end = box.label_width + plot * (totals[n] / top)
        text = value_texts[n] if value_texts else "/".join(str(v) for v in values)
        parts.append(f'<text x="{end + 4:.1f}" y="{middle:.1f}" class="om-chart-value">{escape(text)}</text>')
    if not rows:
        parts.append(f'<text x="{box.width / 2}" y="{box.legend_height + 15}" text-anchor="middle" '
                     'class="om-chart-label">无数据 no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def donut_chart_svg(*, parts: list[tuple[str, int, str]]) -> str:
    """A donut of shares with a legend of labels and counts beside it."""
    width, height, cx, cy, r, inner = 400, 160, 80, 80, 70, 42
    total = sum(value for _, value, _ in parts)
    out = [_svg_open(width, height)]
    if total == 0:
        out.append(f'<circle cx="{cx}" cy="{cy}" r="{(r + inner) / 2}" fill="none" stroke="#2a3a4f" '
                   f'stroke-width="{r - inner}"/>')
    angle = -math.pi / 2
    for label, value, colour in parts:
        if value <= 0:
            continue
        sweep = 2 * math.pi * value / total
        out.append(f'<path d="{_arc_path(cx, cy, r, inner, angle, min(sweep, 2 * math.pi - 1e-4))}" '
                   f'fill="{colour}"><title>{escape(label)}: {value}</title></path>')
        angle += sweep
    out.append(f'<text x="{cx}" y="{cy + 7}" text-anchor="middle" class="om-chart-total">{total}</text>')
    for n, (label, value, colour) in enumerate(parts):
        y = 30 + n * 26
        share = f"{100 * value / total:.0f}%" if total else "–"
        out.append(f'<rect x="176" y="{y - 12}" width="14" height="14" fill="{colour}"/>'
                   f'<text x="198" y="{y}" class="om-chart-label">{escape(label)} {value} ({share})</text>')
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: int, height: float) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
            f'class="om-chart" role="img" preserveAspectRatio="xMinYMin meet">')


def _legend(series: tuple[str, ...], colours: tuple[str, ...]) -> str:
    out, x = [], 4
    for name, colour in zip(series, colours):
        out.append(f'<rect x="{x}" y="5" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{x + 16}" y="15" class="om-chart-legend">{escape(name)}</text>')
        x += 24 + 9 * len(name)
    return "".join(out)


def _arc_path(cx: float, cy: float, r: float, inner: float, start: float, sweep: float) -> str:
    end = start + sweep
    large = 1 if sweep > math.pi else 0
    p = [(cx + r * math.cos(start), cy + r * math.sin(start)), (cx + r * math.cos(end), cy + r * math.sin(end)),
         (cx + inner * math.cos(end), cy + inner * math.sin(end)),
         (cx + inner * math.cos(start), cy + inner * math.sin(start))]
    return (f"M{p[0][0]:.2f},{p[0][1]:.2f} A{r},{r} 0 {large} 1 {p[1][0]:.2f},{p[1][1]:.2f} "
            f"L{p[2][0]:.2f},{p[2][1]:.2f} A{inner},{inner} 0 {large} 0 {p[3][0]:.2f},{p[3][1]:.2f} Z")


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


# -- helpers -------------------------------------------------------------------------


def _grid_from_request(request: HttpRequest) -> scenes.SceneGrid:
    code = request.GET.get("grid")
    if code is not None and not code.strip():
        code = None
    grid = scenes.scene_grid(code=code.strip() if code else None)
    if grid is None:
        if code is None:
            raise ScreenError("there is no level-1 grid yet; load the grids first (onemap load-demo)", status=404)
        raise ScreenError(f"no grid with code {code!r}; leave out ?grid= for the whole subdistrict, or give a "
                          "grid code from /ogc/collections/grids/items", status=404)
    return grid


def _incident_number(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise ScreenError(f"incident id must be a whole number, got {raw!r}", status=404)
    return int(raw)


def _json(data) -> JsonResponse:
    return JsonResponse(data, safe=False, json_dumps_params={"ensure_ascii": False})


urlpatterns = [
    re_path(r"^$", page, name="screen"),
    re_path(r"^api/scenes$", scenes_api, name="screen-scenes"),
    re_path(r"^api/incidents$", live_api, name="screen-live"),
    re_path(r"^api/incidents/(?P<incident_id>[^/]+)$", incident_api, name="screen-incident"),
    re_path(r"^api/incidents/(?P<incident_id>[^/]+)/evidence/(?P<kind>keyframe|clip)$", evidence_api,
            name="screen-evidence"),
    re_path(r"^api/care-alerts$", care_alerts_api, name="screen-care-alerts"),
    re_path(r"^api/cameras$", cameras_api, name="screen-cameras"),
    re_path(r"^api/grid-labels$", grid_labels_api, name="screen-grid-labels"),
    re_path(rf"^api/features/(?P<collection_id>{'|'.join(SMALL_LAYERS)})$", features_api, name="screen-features"),
    re_path(rf"^tiles/(?P<collection_id>{'|'.join(TILED)})/(?P<z>\d+)/(?P<y>\d+)/(?P<x>\d+)$", tile_api,
            name="screen-tile"),
]
