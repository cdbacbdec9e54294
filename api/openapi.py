"""The whole server's OpenAPI 3.0 document at ``/openapi.json``: every route, self-contained.

pygeoapi's own document (``/ogc/openapi``) describes only its OGC part and points at
schemas on the internet (schemas.opengis.net, geojson.org), which a client on an
intranet cannot resolve. This one is built from the layer catalogue and the screen's
route tables, covers every route the server answers (OGC API, tiles, the big screen,
the density downloads, the cases, Open311, the landing page), and holds every schema it names. The
attacking suite (``tests/security/``) fuzzes the server from it, and a test checks that
every URL pattern of the server is in it, so a new route must be described here.
"""

from __future__ import annotations

import copy
import functools

from layers.catalogue import LAYERS, Layer

OPENAPI_VERSION = "3.0.3"
ROUTE_KEY = "x-onemap-route"  # on each path: the name of the Django URL pattern that answers it

_JSON = "application/json"
_GEOJSON = "application/geo+json"
_HTML = "text/html"
_TYPES = {"integer": {"type": "integer"}, "number": {"type": "number"}, "boolean": {"type": "boolean"},
          "string": {"type": "string"}, "date-time": {"type": "string", "format": "date-time"}}


def openapi_document(*, server_url: str = "/") -> dict:
    """The document, with ``servers`` set to ``server_url``; a fresh copy every call."""
    document = copy.deepcopy(_document())
    document["servers"] = [{"url": server_url.rstrip("/") or "/"}]
    return document


def documented_routes() -> set[str]:
    """The names of the URL patterns the document describes."""
    return {item[ROUTE_KEY] for item in _document()["paths"].values()}


@functools.cache
def _document() -> dict:
    paths: dict[str, dict] = {}
    _site_paths(paths)
    _ogc_paths(paths)
    _screen_paths(paths)
    _case_paths(paths)
    _care_paths(paths)
    _mobile_paths(paths)
    _report_paths(paths)
    _open311_paths(paths)
    _sensor_paths(paths)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Community One Map (社区一张图)",
            "version": "1",
            "description": "Every route of the server. Sign in with a personal access token as the password of HTTP "
                           "Basic (with the username) or as a Bearer token; without one you are anonymous. "
                           "Errors of the OGC API are OGC exceptions ({code, description}).",
        },
        "paths": paths,
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                                           "bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": _schemas(), "parameters": _shared_parameters()},
        "security": [{}, {"basic": []}, {"bearer": []}],
    }


# ---------------------------------------------------------------- the site


def _site_paths(paths: dict) -> None:
    _add(paths, "/", "home", get=_operation(
        "The landing page: each surface and who may open it, the layers the caller may read with their counts, "
        "how to sign in and connect", _HTML))
    _add(paths, "/favicon.ico", "favicon", get=_operation("The product's logo (SVG)", "image/svg+xml"))
    _add(paths, "/healthz", "healthz", get=_operation("Liveness: the database answers", _JSON))
    _add(paths, "/openapi.json", "openapi", get=_operation("This document", _JSON))


# ---------------------------------------------------------------- the OGC API


def _ogc_paths(paths: dict) -> None:
    page = _operation("OGC API landing page", _JSON, _HTML, parameters=["f"])
    _add(paths, "/ogc", "ogc-landing-bare", get=page)
    _wfs_paths(paths)
    _add(paths, "/ogc/", "ogc-landing", get=page)
    _add(paths, "/ogc/static/{path}", "ogc-static",
         get=_operation("pygeoapi's stylesheet and images for its HTML pages", "text/css", "image/png",
                        parameters=[_path_parameter("path", {"type": "string"})]))
    _add(paths, "/ogc/openapi", "ogc-openapi",
         get=_operation("pygeoapi's OpenAPI document of the OGC part", "application/vnd.oai.openapi+json;version=3.0",
                        _HTML, parameters=["f"]))
    _add(paths, "/ogc/conformance", "ogc-conformance", get=_operation("Conformance classes", _JSON, _HTML,
                                                                      parameters=["f"]))
    _add(paths, "/ogc/collections", "ogc-collections", get=_operation("The collections", _JSON, _HTML,
                                                                      parameters=["f"]))
    _add(paths, "/ogc/tileMatrixSets", "ogc-tms-list", get=_operation("Tile matrix sets", _JSON))
    _add(paths, "/ogc/tileMatrixSets/{tileMatrixSetId}", "ogc-tms",
         get=_operation("One tile matrix set", _JSON, parameters=["tileMatrixSetId"]))
    tilejson = _operation("TileJSON 3.0 of every tiled layer you may read, with {z}/{x}/{y} tile URLs", _JSON)
    _add(paths, "/ogc/tilejson.json", "ogc-tilejson-all", get=tilejson)
    _add(paths, "/ogc/xyz/metadata.json", "ogc-tilejson-all", get=tilejson)
    _add(paths, "/ogc/xyz/{z}/{x}/{y}.pbf", "ogc-xyz",
         get=_operation("One Mapbox vector tile holding every tiled layer you may read (204 when empty)",
                        "application/vnd.mapbox-vector-tile", parameters=_xyz_parameters(0, 24)))
    for layer in LAYERS:
        _layer_paths(paths, layer)


def _wfs_paths(paths: dict) -> None:
    """WFS 2.0 at /wfs: key-value pairs on GET, an XML document (Transaction among them) on POST."""
    text = {"type": "string", "maxLength": 65536}
    kvp = [_query_parameter(name, schema) for name, schema in (
        ("SERVICE", {"type": "string", "enum": ["WFS"]}), ("VERSION", {"type": "string", "enum": ["2.0.0", "2.0.2"]}),
        ("REQUEST", {"type": "string", "enum": ["GetCapabilities", "DescribeFeatureType", "GetFeature"]}),
        ("TYPENAMES", text), ("BBOX", text), ("FILTER", text), ("RESOURCEID", text), ("SORTBY", text),
        ("PROPERTYNAME", text), ("SRSNAME", text), ("OUTPUTFORMAT", text),
        ("COUNT", {"type": "integer", "minimum": 1, "maximum": 10000}), ("STARTINDEX", {"type": "integer", "minimum": 0}),
        ("RESULTTYPE", {"type": "string", "enum": ["results", "hits"]}),
    )]
    get = _operation("WFS 2.0: GetCapabilities, DescribeFeatureType, GetFeature (GML 3.2); errors are OWS "
                     "ExceptionReports", "text/xml", "application/gml+xml", parameters=kvp)
    post = _operation("WFS 2.0 as an XML document: GetFeature, Transaction (Insert, Update, Delete) and the rest",
                      "text/xml")
    # any bytes at all: the document is checked by its content (layers/wfs/xml.py)
    xml = {"schema": {"type": "string", "format": "binary"}}
    post["requestBody"] = {"required": True, "content": {"text/xml": xml, "application/xml": xml}}
    for path, name in (("/wfs", "wfs"), ("/wfs/", "wfs-slash")):
        _add(paths, path, name, get=get, post=post)


def _layer_paths(paths: dict, layer: Layer) -> None:
    from layers.tiles import TILE_LAYERS, TILE_MATRIX_SETS

    base = f"/ogc/collections/{layer.id}"
    who = _who(layer)
    _add(paths, base, "ogc-collection", get=_operation(f"The {layer.title} collection. {who}", _JSON, _HTML,
                                                        parameters=["f"]))
    items = {"get": _operation(f"{layer.title}: features. {who} Any query parameter not listed here (other than a "
                               "gateway's api_key, apikey, key, token or access_token) is refused with a 400 naming it "
                               "(OGC API – Features /req/core/query-param-unknown); a bbox without bbox-crs is "
                               "lon,lat,lon,lat", _GEOJSON, _HTML, parameters=_item_query(layer)),
             "options": _options()}
    item = {"get": _operation(f"{layer.title}: one feature. {who}", _GEOJSON, _HTML,
                              parameters=["featureId", "f", "crs"]),
            "options": _options(["featureId"])}
    editing = layer.editing
    if editing is not None:
        feature = {"$ref": f"#/components/schemas/{layer.id}_write"}
        items["post"] = _write(f"Add a feature ({_roles(editing.create_roles)})", feature, created=True)
        for method, what in (("put", "Replace"), ("patch", "Update")):
            item[method] = _write(f"{what} a feature ({_roles(editing.update_roles)})", feature, item=True)
        item["delete"] = _operation(f"Delete a feature ({_roles(editing.delete_roles)})", parameters=["featureId"],
                                    ok="204")
    _add(paths, f"{base}/items", "ogc-items", **items)
    _add(paths, f"{base}/items/{{featureId}}", "ogc-item", **item)
    _add(paths, f"{base}/queryables", "ogc-queryables",
         get=_operation("Properties a filter may use", "application/schema+json", _HTML, parameters=["f"]))
    _add(paths, f"{base}/schema", "ogc-schema", get=_operation("The features' schema", "application/schema+json",
                                                               _HTML, parameters=["f"]))
    if layer.id in TILE_LAYERS:
        spec = TILE_LAYERS[layer.id]
        _add(paths, f"{base}/tiles", "ogc-tilesets", get=_operation("Vector tilesets", _JSON))
        _add(paths, f"{base}/tiles/{{tileMatrixSetId}}", "ogc-tileset",
             get=_operation("One tileset", _JSON, parameters=["tileMatrixSetId"]))
        zooms = [tms.zoom_range(spec) for tms in TILE_MATRIX_SETS.values()]
        zoom = {"type": "integer", "minimum": min(low for low, _ in zooms), "maximum": max(high for _, high in zooms)}
        ranges = "; ".join(f"{tms_id} {low}…{high}" for tms_id, (low, high) in zip(TILE_MATRIX_SETS, zooms))
        # TileJSON and its {z}/{x}/{y} are WebMercatorQuad's only
        web_mercator = _path_parameter("tileMatrixSetId", {"type": "string", "enum": ["WebMercatorQuad"]})
        layer_tilejson = _operation(f"TileJSON 3.0 of {layer.title}, with {{z}}/{{x}}/{{y}} tile URLs", _JSON,
                                    parameters=[web_mercator])
        _add(paths, f"{base}/tiles/{{tileMatrixSetId}}/tilejson.json", "ogc-tilejson", get=layer_tilejson)
        _add(paths, f"{base}/tiles/{{tileMatrixSetId}}/xyz/metadata.json", "ogc-tilejson", get=layer_tilejson)
        _add(paths, f"{base}/tiles/{{tileMatrixSetId}}/xyz/{{z}}/{{x}}/{{y}}.pbf", "ogc-tile-xyz",
             get=_operation(f"A Mapbox vector tile by z/x/y (zoom {spec.min_zoom}…{spec.max_zoom}; 204 when empty)",
                            "application/vnd.mapbox-vector-tile",
                            parameters=[web_mercator, *_xyz_parameters(spec.min_zoom, spec.max_zoom)]))
        _add(paths, f"{base}/tiles/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}", "ogc-tile",
             get=_operation(f"A Mapbox vector tile (tile matrices {ranges}; 204 when empty)",
                            "application/vnd.mapbox-vector-tile",
                            parameters=["tileMatrixSetId", _path_parameter("tileMatrix", zoom),
                                        _path_parameter("tileRow", {"type": "integer", "minimum": 0}),
                                        _path_parameter("tileCol", {"type": "integer", "minimum": 0}),
                                        _query_parameter("f", {"type": "string", "enum": ["mvt"]})]))


def _xyz_parameters(min_zoom: int, max_zoom: int) -> list:
    return [_path_parameter("z", {"type": "integer", "minimum": min_zoom, "maximum": max_zoom}),
            _path_parameter("x", {"type": "integer", "minimum": 0}),
            _path_parameter("y", {"type": "integer", "minimum": 0})]


def _who(layer: Layer) -> str:
    if layer.public:
        return "Anyone may read it (a grid worker: their own grid)."
    return f"Readable by {_roles(layer.read_roles)}" + (" (every read is logged)." if layer.personal else ".")


def _roles(roles) -> str:
    return ", ".join(sorted(roles)) or "nobody"


def _item_query(layer: Layer) -> list:
    parameters = ["f", "limit", "offset", "bbox", "bbox-crs", "crs", "filter", "filter-lang", "filter-crs",
                  "skipGeometry"]
    names = [c.name for c in layer.columns]
    parameters.append(_query_parameter("sortby", {"type": "string"}, "Comma-separated properties, '-' for descending: "
                                       + ", ".join(names)))
    parameters.append(_query_parameter("properties", {"type": "string"}, "Comma-separated properties to return"))
    if layer.time_field:
        parameters.append("datetime")
    for column in layer.columns:
        schema = dict(_TYPES.get(column.type, {"type": "string"}))
        if column.choices:
            schema["enum"] = list(column.choices)
        parameters.append(_query_parameter(column.name, schema, f"equals ({column.title or column.name})"))
    return parameters


def _write(summary: str, feature: dict, *, created: bool = False, item: bool = False) -> dict:
    operation = _operation(summary, parameters=["featureId"] if item else [], ok="201" if created else "204")
    operation["requestBody"] = {"required": True, "content": {_GEOJSON: {"schema": feature}, _JSON: {"schema": feature}}}
    operation["parameters"].append({"name": "Content-Crs", "in": "header", "required": False,
                                    "schema": {"type": "string"},
                                    "description": "The CRS of the geometry, <URI> of one the collection lists"})
    return operation


def _options(parameters=()) -> dict:
    return {"summary": "The methods your role may use here (Allow)", "parameters": list(parameters),
            "responses": {"204": {"description": "No content; see the Allow header"}, **_errors()}}


# ---------------------------------------------------------------- the big screen and the density


def _screen_paths(paths: dict) -> None:
    from api.screen.views import SMALL_LAYERS, TILED

    grid = _query_parameter("grid", {"type": "string"}, "A grid's code; the whole subdistrict when left out")
    incident = _path_parameter("incidentId", {"type": "integer", "minimum": 1})
    staff = "(administrators and commanders)"
    _add(paths, "/screen/", "screen", get=_operation(f"The big screen {staff}", _HTML, parameters=[grid]))
    _add(paths, "/screen/events", "screen-events",
         get=_operation(f"Live incident changes as Server-Sent Events {staff}; never ends by itself",
                        "text/event-stream", parameters=[grid]))
    for route, name, what in (("scenes", "screen-scenes", "The six scenes' figures and charts"),
                              ("incidents", "screen-live", "Open incidents for the live markers"),
                              ("care-alerts", "screen-care-alerts", "Buildings with open elder-care alerts (counts)"),
                              ("case-grids", "screen-case-grids",
                               "Open, overdue and escalated cases per level-3 grid, and their total"),
                              ("cameras", "screen-cameras", "Cameras with their view wedges"),
                              ("grid-labels", "screen-grid-labels", "Grid names for the map")):
        _add(paths, f"/screen/api/{route}", name, get=_operation(f"{what} {staff}", _JSON, parameters=[grid]))
    _add(paths, "/screen/api/incidents/{incidentId}", "screen-incident",
         get=_operation(f"One incident for the panel, with its history {staff}", _JSON, parameters=[incident]))
    _add(paths, "/screen/api/incidents/{incidentId}/evidence/{kind}", "screen-evidence",
         get=_operation(f"An incident's keyframe or clip {staff}", "image/jpeg", "video/webm",
                        parameters=[incident, _path_parameter("kind", {"type": "string", "enum": ["keyframe", "clip"]})]))
    _add(paths, "/screen/api/features/{collectionId}", "screen-features",
         get=_operation(f"A small layer as GeoJSON {staff}", _GEOJSON,
                        parameters=[_path_parameter("collectionId", {"type": "string", "enum": list(SMALL_LAYERS)}),
                                    "f", "limit", "bbox"]))
    _add(paths, "/screen/tiles/{collectionId}/{z}/{y}/{x}", "screen-tile",
         get=_operation(f"A vector tile for the screen {staff}", "application/vnd.mapbox-vector-tile",
                        parameters=[_path_parameter("collectionId", {"type": "string", "enum": list(TILED)}),
                                    *(_path_parameter(n, {"type": "integer", "minimum": 0}) for n in "zyx")]))
    density = [grid, _query_parameter("category", {"type": "string"}, "Comma-separated incident categories")]
    _add(paths, "/screen/density/", "density-index",
         get=_operation("The days with a daily incident density, and links (analysts too)", _JSON, parameters=density))
    _add(paths, "/screen/density/{day}.{format}", "density-day",
         get=_operation("One day's density: JSON, GeoTIFF (EPSG:4547) or PNG (analysts too)", _JSON,
                        "image/tiff; application=geotiff", "image/png",
                        parameters=[_path_parameter("day", {"type": "string", "format": "date"}),
                                    _path_parameter("format", {"type": "string", "enum": ["json", "tif", "png"]}),
                                    *density]))


# ---------------------------------------------------------------- cases


def _case_paths(paths: dict) -> None:
    from core.vocabulary import CASE_STATE_CODES, CATEGORY_CODES
    from gis.cases.workflow import ACTIONS

    who = "(administrators, commanders, grid workers for their grid, departments)"
    case = _path_parameter("caseId", {"type": "integer", "minimum": 1})
    filters = [_query_parameter("state", {"type": "string", "enum": list(CASE_STATE_CODES)}),
               _query_parameter("category", {"type": "string", "enum": list(CATEGORY_CODES)}),
               _query_parameter("grid", {"type": "string"}, "A level-3 grid's code"),
               _query_parameter("overdue", {"type": "boolean"}, "Only cases past (or within) their time limit"),
               _query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": 500}), "offset"]
    _add(paths, "/api/cases/", "cases", get=_operation(f"Cases, newest first {who}", _JSON, parameters=filters))
    period = [_query_parameter("start", {"type": "string", "format": "date-time"}, "Default: 30 days before end"),
              _query_parameter("end", {"type": "string", "format": "date-time"}, "Default: now"),
              _query_parameter("by", {"type": "string", "enum": ["grid", "worker", "department"]}),
              _query_parameter("f", {"type": "string", "enum": ["json", "csv"]})]
    _add(paths, "/api/cases/indicators", "case-indicators",
         get=_operation("The GB/T 30428 indicators of the cases filed in a period (administrators, commanders, "
                        "analysts)", _JSON, "text/csv", parameters=period))
    _add(paths, "/api/cases/notices/dead", "case-notices-dead",
         get=_operation("Notifications that failed every attempt (administrators, commanders)", _JSON,
                        parameters=[_query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": 500})]))
    replay = _operation("Put a dead notification back in the outbox (administrators, commanders; 409 unless dead)",
                        _JSON, parameters=[_path_parameter("notificationId", {"type": "integer", "minimum": 1})])
    replay["responses"]["409"] = {"description": "The notification is not dead"}
    _add(paths, "/api/cases/notices/{notificationId}/replay", "case-notice-replay", post=replay)
    _add(paths, "/api/cases/{caseId}", "case",
         get=_operation(f"One case with its history and the actions you may take {who}", _JSON, parameters=[case]))
    # "visit": an elder-care alert's visit outcome (gis.care.services.care_visit_record)
    action = _path_parameter("action", {"type": "string", "enum": [*ACTIONS, "visit"]})
    body = {"type": "object", "properties": {
        "reason": {"type": "string"}, "note": {"type": "string"}, "worker_id": {"type": "integer", "minimum": 1},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5}, "until": {"type": "string", "format": "date-time"},
        "approve": {"type": "boolean"}, "photos": {"type": "array", "items": {"type": "string"}},
        "department_id": {"type": "integer", "minimum": 1}, "due_at": {"type": "string", "format": "date-time"},
        "position": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "outcome": {"type": "string", "enum": ["fine", "emergency", "false_alarm", "away", "hospitalised"]}}}
    key = {"name": "Idempotency-Key", "in": "header", "required": False,
           "schema": {"type": "string", "minLength": 8, "maxLength": 100, "pattern": "^[A-Za-z0-9._:-]+$"},
           "description": "The client's key for this action: applied once, a replay gets the first answer"}
    operation = _operation(f"Take a workflow action (409 when the case's state or your role does not allow it) {who}",
                           _JSON, parameters=[case, action, key])
    operation["responses"]["422"] = {"description": "The Idempotency-Key was used for another request"}
    operation["requestBody"] = {"required": False, "content": {_JSON: {"schema": body}}}
    operation["responses"]["409"] = {"description": "Not allowed now; the message names the allowed actions"}
    _add(paths, "/api/cases/{caseId}/{action}", "case-action", post=operation)


def _care_paths(paths: dict) -> None:
    period = [_query_parameter("start", {"type": "string", "format": "date-time"}, "Default: 90 days before end"),
              _query_parameter("end", {"type": "string", "format": "date-time"}, "Default: now"),
              _query_parameter("f", {"type": "string", "enum": ["json", "csv"]})]
    _add(paths, "/api/care/indicators", "care-indicators",
         get=_operation("Elder-care alerts per level-3 grid and month: false-alarm share, minutes from alert to "
                        "visit, alerts per person-month (administrators, commanders, analysts)", _JSON, "text/csv",
                        parameters=period))


# ---------------------------------------------------------------- the grid worker's phone


def _mobile_paths(paths: dict) -> None:
    who = "(grid workers)"
    page = _operation("The grid worker's phone page (signs in by itself with a username and a token)", _HTML)
    _add(paths, "/m/", "mobile", get=page)
    _add(paths, "/m", "mobile-bare", get=page)
    _add(paths, "/m/events", "mobile-events",
         get=_operation(f"Live changes to your grid's incidents and your notifications as Server-Sent Events {who}; "
                        "never ends by itself", "text/event-stream"))
    _add(paths, "/m/api/me", "mobile-me", get=_operation(f"You, your grid's outline and its buildings {who}", _JSON))
    _add(paths, "/m/api/tasks", "mobile-tasks",
         get=_operation(f"The cases dispatched to you in your grid, most urgent first {who}", _JSON))
    _add(paths, "/m/api/care-alerts", "mobile-care-alerts",
         get=_operation(f"Open elder-care alerts in your grid; the person only on your own case, logged {who}", _JSON))
    position = _operation(f"Share where you are now (on duty; 409 off duty or with no worker bound) {who}", _JSON)
    position["requestBody"] = {"required": True, "content": {_JSON: {"schema": {
        "type": "object", "required": ["position"], "properties": {
            "position": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            "at": {"type": "string", "format": "date-time"}}}}}}
    position["responses"]["409"] = {"description": "Off duty, or your account has no grid worker"}
    _add(paths, "/m/api/position", "mobile-position", post=position)
    upload = _operation(f"Upload a photo (JPEG, PNG or WebP by content, at most 8 MiB); re-encoded without EXIF {who}",
                        _JSON, ok="201")
    upload["requestBody"] = {"required": True, "content": {media: {"schema": {"type": "string", "format": "binary"}}
                                                           for media in ("image/jpeg", "image/png", "image/webp")}}
    _add(paths, "/m/api/photos", "mobile-photos", post=upload)
    _add(paths, "/m/api/photos/{name}", "mobile-photo",
         get=_operation("A stored photo by its name (administrators, commanders, grid workers)", "image/jpeg",
                        parameters=[_path_parameter("name", {"type": "string", "pattern": "^[0-9a-f]{64}$"})]))


# ---------------------------------------------------------------- residents' reports


def _report_paths(paths: dict) -> None:
    from api.residents.limits import JSON_BODY_BYTES, MAX_PHOTOS
    from api.residents.moderation import ACTIONS, STATES
    from gis.reports.services import CATEGORIES

    write = {"name": "X-Requested-With", "in": "header", "required": True,
             "schema": {"type": "string", "enum": ["onemap-report"]},
             "description": "Every write must carry it (the page sends it); a page of another origin cannot"}
    code = _path_parameter("code", {"type": "string", "pattern": "^R[A-Z0-9]{1,15}$"})
    lonlat = [_query_parameter("lon", {"type": "number", "minimum": -180, "maximum": 180}),
              _query_parameter("lat", {"type": "number", "minimum": -90, "maximum": 90}),
              _query_parameter("crs", {"type": "string", "enum": ["wgs84", "gcj02"]})]
    category = {"type": "string", "enum": list(CATEGORIES)}
    staff = "(administrators and commanders)"
    _add(paths, "/report/", "report", get=_operation("The residents' report page (anyone)", _HTML))
    submit = _operation(f"Report a problem: fields and up to {MAX_PHOTOS} photos (8 MB each); 201 with the tracking "
                        "code; 429 with Retry-After past the rate limits; 400 outside the subdistrict",
                        _JSON, parameters=[write], ok="201")
    submit["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["category", "lon", "lat"],
        "properties": {"category": category, "description": {"type": "string", "maxLength": 4000},
                       "lon": {"type": "number"}, "lat": {"type": "number"},
                       "crs": {"type": "string", "enum": ["wgs84", "gcj02"]},
                       "device": {"type": "string", "maxLength": 200}, "phone": {"type": "string"},
                       "photo": {"type": "array", "maxItems": MAX_PHOTOS,
                                 "items": {"type": "string", "format": "binary"}}}}}}}
    submit["responses"]["429"] = {"description": "Too many reports from this device, phone or address"}
    _add(paths, "/report/api/reports", "report-submit", post=submit)
    _add(paths, "/report/api/duplicates", "report-duplicates",
         get=_operation("Open cases of a category within 50 m and 24 h of a point (published words and photos only), "
                        "and the point in WGS84", _JSON,
                        parameters=[_query_parameter("category", category), *lonlat]))
    me_too = _operation("Me too (附议): join an open case as a co-reporter; 201 with one's own tracking code", _JSON,
                        parameters=[write], ok="201")
    me_too["requestBody"] = {"required": True, "content": {_JSON: {"schema": {
        "type": "object", "required": ["case"], "maxProperties": 8,
        "properties": {"case": {"type": "string"}, "device": {"type": "string"}, "phone": {"type": "string"},
                       "description": {"type": "string"}}}}}}
    me_too["responses"]["409"] = {"description": "The case is no longer open"}
    _add(paths, "/report/api/me-too", "report-me-too", post=me_too)
    _add(paths, "/report/t/{code}", "report-track",
         get=_operation("The tracking page of a code (the code is the reporter's key)", _HTML, parameters=[code]))
    _add(paths, "/report/api/t/{code}", "report-progress",
         get=_operation("A report's progress: state, steps (never who), what its holder may do", _JSON,
                        parameters=[code]))
    for route, name, what, schema in (
            ("rate", "report-rate", "Rate the closed case 1–5",
             {"rating": {"type": "integer", "minimum": 1, "maximum": 5}}),
            ("dispute", "report-dispute", "Dispute within 7 days of closure: the case is reopened",
             {"reason": {"type": "string", "maxLength": 2000}})):
        operation = _operation(what, _JSON, parameters=[code, write])
        operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": {
            "type": "object", "required": list(schema), "properties": schema}}}}
        operation["responses"]["409"] = {"description": "Not possible in the case's state, or too late"}
        _add(paths, f"/report/api/t/{{code}}/{route}", name, post=operation)
    _add(paths, "/report/photos/{reportId}/{name}", "report-photo",
         get=_operation("A report's photo, once a moderator published it (staff: always); 404 otherwise", "image/jpeg",
                        parameters=[_path_parameter("reportId", {"type": "integer", "minimum": 1}),
                                    _path_parameter("name", {"type": "string", "pattern": "^[0-9]{1,2}\\.jpg$"})]))
    _add(paths, "/report/moderation", "report-moderation",
         get=_operation(f"The moderation queue's page {staff}", _HTML))
    _add(paths, "/report/api/moderation", "report-moderation-queue",
         get=_operation(f"Reports in one moderation state with their history {staff}", _JSON,
                        parameters=[_query_parameter("state", {"type": "string", "enum": list(STATES)}),
                                    _query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": 500})]))
    moderate = _operation(f"Publish, hide, redact, remove a photo, or ban the sender {staff}", _JSON,
                          parameters=[code, _path_parameter("action", {"type": "string", "enum": list(ACTIONS)}),
                                      write])
    moderate["requestBody"] = {"required": False, "content": {_JSON: {"schema": {
        "type": "object", "description": f"at most {JSON_BODY_BYTES} bytes",
        "properties": {"reason": {"type": "string"}, "text": {"type": "string"}, "photo": {"type": "string"}}}}}}
    _add(paths, "/report/api/moderation/{code}/{action}", "report-moderate", post=moderate)


# ---------------------------------------------------------------- Open311 GeoReport v2


def _open311_paths(paths: dict) -> None:
    from gis.open311.catalogue import services

    fmt = _path_parameter("format", {"type": "string", "enum": ["xml", "json"]})
    kinds = ("text/xml", _JSON)
    jurisdiction = _query_parameter("jurisdiction_id", {"type": "string"}, "The subdistrict's id (optional)")
    code = {"type": "string", "enum": [s.code for s in services()]}
    base = "/open311/v2"
    _add(paths, f"{base}/discovery.{{format}}", "open311-discovery",
         get=_open311(_operation("GeoReport v2 service discovery", *kinds, parameters=[fmt])))
    _add(paths, f"{base}/services.{{format}}", "open311-services",
         get=_open311(_operation("The services: the categories residents may report, with their time limits",
                                 *kinds, parameters=[fmt, jurisdiction])))
    _add(paths, f"{base}/services/{{service_code}}.{{format}}", "open311-service",
         get=_open311(_operation("One service's questions (attributes)", *kinds,
                                 parameters=[_path_parameter("service_code", code), fmt, jurisdiction])))
    listing = [fmt, jurisdiction,
               _query_parameter("service_request_id", {"type": "string"}, "Comma-separated ids (the rest is ignored)"),
               _query_parameter("service_code", {"type": "string"}, "Comma-separated service codes"),
               _query_parameter("start_date", {"type": "string", "format": "date-time"}),
               _query_parameter("end_date", {"type": "string", "format": "date-time"}, "At most 90 days after start"),
               _query_parameter("status", {"type": "string", "enum": ["open", "closed", "open,closed"]})]
    create = _open311(_operation("A new service request (an api_key from `onemap open311-key add`; 403 without)",
                                 *kinds, parameters=[fmt], ok="201"))
    fields = {"api_key": {"type": "string"}, "jurisdiction_id": {"type": "string"}, "service_code": code,
              "lat": {"type": "number"}, "long": {"type": "number"},
              "crs": {"type": "string", "enum": ["wgs84", "gcj02"]}, "address_string": {"type": "string"},
              "address_id": {"type": "string"}, "description": {"type": "string", "maxLength": 4000},
              "media_url": {"type": "string"}, "device_id": {"type": "string"}, "phone": {"type": "string"},
              "email": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
              "account_id": {"type": "string"}, "attribute[facility]": {"type": "string"},
              "attribute[floor]": {"type": "string"}}
    form = {"type": "object", "required": ["api_key", "service_code"], "properties": fields}
    upload = {"type": "object", "required": ["api_key", "service_code"],
              "properties": {**fields, "media": {"type": "string", "format": "binary"}}}
    create["requestBody"] = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form},
                                                          "multipart/form-data": {"schema": upload}}}
    create["responses"]["403"] = {"description": "No api_key, or one that is not valid"}
    create["responses"]["413"] = {"description": "A photo over 8 MB"}
    create["responses"]["429"] = {"description": "Too many requests with this key (Retry-After says when to retry)"}
    _add(paths, f"{base}/requests.{{format}}", "open311-requests",
         get=_open311(_operation("Service requests, newest first, at most 1,000 (public: published words only)",
                                 *kinds, parameters=listing)), post=create)
    _add(paths, f"{base}/requests/{{service_request_id}}.{{format}}", "open311-request",
         get=_open311(_operation("One service request", *kinds, parameters=[
             _path_parameter("service_request_id", {"type": "integer", "minimum": 1}), fmt, jurisdiction])))
    _add(paths, f"{base}/tokens/{{token}}.{{format}}", "open311-token",
         get=_open311(_operation("The service_request_id of a token", *kinds, parameters=[
             _path_parameter("token", {"type": "string"}), fmt, jurisdiction])))
    _add(paths, f"{base}/media/{{service_request_id}}/{{name}}", "open311-media",
         get=_operation("A published request's photo", "image/jpeg", parameters=[
             _path_parameter("service_request_id", {"type": "integer", "minimum": 1}),
             _path_parameter("name", {"type": "string"})]))


def _open311(operation: dict) -> dict:
    """Open311's errors are a list of {code, description} (XML: <errors><error>…)."""
    errors = {"content": {_JSON: {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/exception"}}},
                          "text/xml": {}}}
    for status in ("400", "403", "404", "413", "429"):
        operation["responses"][status] = {"description": operation["responses"].get(status, {}).get(
            "description", "Refused; the description says why"), **errors}
    return operation


# ---------------------------------------------------------------- devices


def _sensor_paths(paths: dict) -> None:
    from gis.care.ingest import TYPES

    event = {"type": "object", "required": ["ts", "type", "seq"], "properties": {
        "ts": {"type": "string", "format": "date-time", "description": "ISO-8601 with a time zone"},
        "type": {"type": "string", "enum": list(TYPES)},
        "seq": {"type": "integer", "minimum": 0, "description": "the device's own counter; (sensor, seq) is unique"},
        "battery_pct": {"type": "integer", "minimum": 0, "maximum": 100, "description": "battery events only"}}}
    code = _path_parameter("sensorCode", {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,40}$"})
    post = _operation("Store a sensor's events, as its MQTT messages (the device itself: HTTP Basic with its code and "
                      "password, or the password as Bearer; idempotent by seq; nothing stored if any event is wrong)",
                      _JSON, parameters=[code])
    post["requestBody"] = {"required": True, "content": {_JSON: {"schema": {"oneOf": [
        event, {"type": "array", "items": event, "minItems": 1, "maxItems": 500}]}}}}
    post["responses"]["429"] = {"description": "The device sends faster than its share; see Retry-After"}
    post["security"] = [{"basic": []}, {"bearer": []}]
    _add(paths, "/api/sensors/{sensorCode}/events", "sensor-events", post=post)


# ---------------------------------------------------------------- building blocks


def _add(paths: dict, path: str, route_name: str, **operations) -> None:
    paths[path] = {ROUTE_KEY: route_name, **{method: _resolve(op) for method, op in operations.items()}}


def _resolve(operation: dict) -> dict:
    """Shared parameter names as references to ``components/parameters``."""
    operation = dict(operation)
    operation["parameters"] = [{"$ref": f"#/components/parameters/{p}"} if isinstance(p, str) else p
                               for p in operation.get("parameters", [])]
    return operation


def _operation(summary: str, *media_types: str, parameters=(), ok: str = "200") -> dict:
    success = {"description": "OK"}
    if media_types:
        success["content"] = {media: {} for media in media_types}
    return {"summary": summary, "parameters": list(parameters), "responses": {ok: success, **_errors()}}


def _errors() -> dict:
    error = {"content": {_JSON: {"schema": {"$ref": "#/components/schemas/exception"}}}}
    return {
        "400": {"description": "A parameter or the body is wrong; the description says which and why", **error},
        "401": {"description": "Sign in (WWW-Authenticate says how)", **error},
        "403": {"description": "Your role may not do this", **error},
        "404": {"description": "No such thing, or not one you may see", **error},
        "413": {"description": "The body is too large"},
        "429": {"description": "Too many requests; try again after Retry-After seconds"},
        "503": {"description": "The database cannot be reached; try again after Retry-After seconds", **error},
    }


def _path_parameter(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameter(name: str, schema: dict, description: str = "") -> dict:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _shared_parameters() -> dict:
    from layers.crs import supported_uris
    from layers.features import MAX_LIMIT
    from layers.tiles import TILE_MATRIX_SETS

    crs = {"type": "string", "enum": list(supported_uris())}
    return {
        "f": _query_parameter("f", {"type": "string", "enum": ["json", "html"]}, "Response format"),
        "limit": _query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        "offset": _query_parameter("offset", {"type": "integer", "minimum": 0}),
        "bbox": _query_parameter("bbox", {"type": "string"}, "minx,miny,maxx,maxy in bbox-crs (default CRS84)"),
        "bbox-crs": _query_parameter("bbox-crs", crs),
        "crs": _query_parameter("crs", crs, "The CRS of the response's geometries"),
        "filter": _query_parameter("filter", {"type": "string"}, "A CQL2 filter (cql2-text or cql2-json)"),
        "filter-lang": _query_parameter("filter-lang", {"type": "string", "enum": ["cql2-text", "cql2-json"]}),
        "filter-crs": _query_parameter("filter-crs", crs),
        "skipGeometry": _query_parameter("skipGeometry", {"type": "boolean"}),
        "datetime": _query_parameter("datetime", {"type": "string"}, "An instant or an interval (RFC 3339, '..')"),
        "featureId": _path_parameter("featureId", {"type": "string"}),
        "tileMatrixSetId": _path_parameter("tileMatrixSetId", {"type": "string", "enum": list(TILE_MATRIX_SETS)}),
    }


def _schemas() -> dict:
    number = {"type": "number"}
    position = {"type": "array", "items": number, "minItems": 2, "maxItems": 3}
    ring = {"type": "array", "items": position, "minItems": 4}
    geometries = {
        "Point": {"type": "object", "required": ["type", "coordinates"],
                  "properties": {"type": {"type": "string", "enum": ["Point"]}, "coordinates": position}},
        "Polygon": {"type": "object", "required": ["type", "coordinates"],
                    "properties": {"type": {"type": "string", "enum": ["Polygon"]},
                                   "coordinates": {"type": "array", "items": ring, "minItems": 1}}},
        "MultiPolygon": {"type": "object", "required": ["type", "coordinates"],
                         "properties": {"type": {"type": "string", "enum": ["MultiPolygon"]},
                                        "coordinates": {"type": "array", "minItems": 1,
                                                        "items": {"type": "array", "items": ring, "minItems": 1}}}},
    }
    schemas = {"exception": {"type": "object", "required": ["code", "description"],
                             "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}}
    for layer in LAYERS:
        if layer.editing is None:
            continue
        fields = {}
        for name in sorted(set(layer.editing.create_fields) | set(layer.editing.update_fields)):
            column = layer.column(name)
            schema = dict(_TYPES.get(column.type, {"type": "string"}))
            if column.choices:
                schema["enum"] = list(column.choices)
            fields[name] = schema
        schemas[f"{layer.id}_write"] = {
            "type": "object", "required": ["type"],
            "properties": {"type": {"type": "string", "enum": ["Feature"]},
                           "geometry": geometries.get(layer.geometry_type, {"type": "object"}),
                           "properties": {"type": "object", "properties": fields}},
        }
    return schemas
