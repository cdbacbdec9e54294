"""The big screen's page and its JSON APIs (thin: the figures come from :mod:`api.screen.selectors`).

The page is a folium (Leaflet) map rendered once per grid and base layer and cached in
this process; the browser then fills it from the JSON APIs here and from the live feed
``/screen/events`` (answered by ``api.live``). Tiles and small layers are the OGC API's
own answers under ``/screen/``, so the browser sends the same credentials.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse, JsonResponse

from api.screen import selectors as scenes
from api.screen.access import ScreenError, incident_number, page_template, screen_view
from api.screen.charts import scene_charts
from api.screen.labels import (
    CASE_STATE_LABELS,
    CATEGORY_COLOURS,
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    PARTY_KIND_LABELS,
    SERVICE_LABELS,
    SOURCE_LABELS,
    STATUS_LABELS,
)
from gis.incidents.selectors import incident_history

BASEMAP_ENV = "ONEMAP_SCREEN_BASEMAP"
MAX_LIVE_MARKERS = 2000
MAX_EVENT_ROWS = 200
MAX_CASE_GRID_ROWS = 50  # grids with open cases the governance panel lists (the busiest first)
MAX_DEAD_ROWS = 50  # dead letters the screen lists (newest first)
TILED = ("grids", "buildings", "incidents", "parking_spots")
# small layers the page reads as GeoJSON through the OGC API's item function
SMALL_LAYERS = ("no_parking_zones", "party_orgs", "service_points")


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
                      max_zoom=22, min_zoom=8, prefer_canvas=False, control_scale=False, attribution_control=False)  # screen.js: a metric scale
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
            "caseGrids": "/screen/api/case-grids",
            # the outbox's dead letters, from the cases API (the screen's roles may use both)
            "deadNotices": f"/api/cases/notices/dead?limit={MAX_DEAD_ROWS}",
            "replayNotice": "/api/cases/notices/{id}/replay",
            "cameras": "/screen/api/cameras", "gridLabels": "/screen/api/grid-labels",
            "tiles": "/screen/tiles/{layer}/{z}/{y}/{x}", "features": "/screen/api/features/",
            "density": "/screen/density/",
        },
        "tileZooms": tile_zooms(), "smallLayers": list(SMALL_LAYERS),
        "categories": CATEGORY_LABELS, "colours": CATEGORY_COLOURS, "statuses": STATUS_LABELS,
        "partyKinds": PARTY_KIND_LABELS, "services": SERVICE_LABELS, "sources": SOURCE_LABELS,
        "channels": CHANNEL_LABELS,
        "timeZone": scene_time_zone(),  # the clock and every time on the page (ONEMAP_TIME_ZONE)
        "limits": {"markers": MAX_LIVE_MARKERS, "events": MAX_EVENT_ROWS, "newSeconds": 60},
        "lists": {"caseGrids": MAX_CASE_GRID_ROWS, "deadLetters": MAX_DEAD_ROWS},
    }
    root.html.add_child(Element(page_template("panels.html").format(grid_name=escape(name), grid_code=escape(code))))
    script = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    root.header.add_child(Element(f"<script>window.ONEMAP_SCREEN_CONFIG = {script};</script>"))
    html = root.render()
    return html.replace("<html>", '<html lang="zh-CN">', 1)


def scene_time_zone() -> str:
    """The one time zone of the screen's panels and clock (``ONEMAP_TIME_ZONE``, default Asia/Shanghai)."""
    from core.settings import settings

    return settings().time_zone


def tile_zooms() -> dict[str, list[int]]:
    """The zoom range of each tiled layer, so the page never asks for a tile outside it (a 400)."""
    from layers.tiles import TILE_LAYERS

    return {name: [TILE_LAYERS[name].min_zoom, TILE_LAYERS[name].max_zoom] for name in TILED}


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
def case_grids_api(request: HttpRequest, identity) -> JsonResponse:
    """Open, overdue and escalated cases per level-3 grid of the grid, and their total, as the caller may see them."""
    from gis.cases.selectors import case_counts_by_grid
    from layers.access import scoped_django

    grid = _grid_from_request(request)
    with scoped_django(identity):
        counts = case_counts_by_grid(grid_id=grid.id)
    return _json({"grid": grid.as_json(), **counts})


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
    number = incident_number(incident_id)
    detail = scenes.incident_detail(incident_id=number)
    if detail is None:
        raise ScreenError(f"incident {number} does not exist (deleted, or a wrong id)", status=404)
    detail["history"] = incident_history(number)
    labels = detail["feature"]["properties"]
    detail["labels"] = {"category": CATEGORY_LABELS.get(labels["category"], labels["category"]),
                        "status": STATUS_LABELS.get(labels["status"], labels["status"])}
    base = f"/screen/api/incidents/{number}/evidence/"
    detail["evidence_urls"] = {kind: base + kind if present else None for kind, present in detail["evidence"].items()}
    detail["case"] = _case(number, identity)
    return _json(detail)


def _case(incident_id: int, identity) -> dict | None:
    """The incident's case for the panel, with what the caller may do and, when it may be dispatched, whom to send."""
    from gis.cases.models import Case
    from gis.cases.selectors import case_detail, cases_by_id
    from gis.cases.services import case_recommendation
    from gis.cases.workflow import allowed_actions

    found = cases_by_id(list(Case.objects.filter(incident_id=incident_id).values_list("id", flat=True)))
    if not found:
        return None
    detail = {**case_detail(found[0]), "allowed": allowed_actions(found[0].state, identity.role),
              "label": CASE_STATE_LABELS.get(found[0].state, found[0].state)}
    if "dispatch" in detail["allowed"]:
        detail["recommendation"] = case_recommendation(case=found[0])
    return detail


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


def _json(data) -> JsonResponse:
    return JsonResponse(data, safe=False, json_dumps_params={"ensure_ascii": False})
