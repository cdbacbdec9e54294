"""The OGC API at ``/ogc/``: our feature and tile routes, with pygeoapi for the rest.

Features as JSON (items, item, Part 4 writes) and vector tiles are answered by our own
code over :mod:`layers` — one SQL statement per read, GeoJSON built in PostGIS, under
the caller's row-level-security scope. The landing page, collection metadata,
queryables, OpenAPI and every HTML page come from pygeoapi, whose ``API`` object is
built once per process and reads through our provider (:mod:`layers.providers`).

URLs are answered as linked, with and without a trailing slash, never redirected
(QGIS misbehaves on redirects; see shared/QGIS-CLIENT.md).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from pathlib import Path

from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import re_path
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.static import serve

from layers.errors import (
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    OGCError,
    TooManyRequests,
    database_errors,
    from_database,
)

_lock = threading.Lock()
_built_api = None

GEOJSON = "application/geo+json"


def _api():
    """The pygeoapi API for this process, built on first use (normally at worker start)."""
    global _built_api
    if _built_api is None:
        with _lock:
            if _built_api is None:
                _built_api = _build_api()
    return _built_api


def _build_api():
    """A pygeoapi API whose configuration is generated from the layer catalogue."""
    from pygeoapi.api import API
    from pygeoapi.openapi import get_oas

    from layers.config import pygeoapi_config

    _script_safe_templates()
    config = pygeoapi_config(base_url=_base_url())
    config["server"]["templates"] = {"path": str(TEMPLATES)}
    config["onemap"] = _site()
    from api.ogc_openapi import self_contained

    return API(config, self_contained(get_oas(config)))


# our own page frames for pygeoapi's data (pygeoapi looks here first, then in its own templates)
TEMPLATES = Path(__file__).parent / "templates" / "ogc"


def _site() -> dict:
    """The product's name, operator and logo as the page templates read them (``config['onemap']``)."""
    from dataclasses import asdict

    from core.settings import settings

    site = settings().site
    return {**asdict(site), "full_title": site.full_title}


def _script_safe_templates() -> None:
    """Make the JSON pygeoapi's HTML templates put inside ``<script>`` unable to end the script.

    The item and items pages write ``var geojson_data = {{ data | to_json | safe }}``: a
    title holding ``</script><img onerror=…>`` would close the script and run as markup
    in the reader's session. Every template gets ``to_json`` from ``pygeoapi.util`` when it
    renders, so that one function is replaced by :func:`script_safe_json`, whose output is
    the same JSON value with ``<``, ``>``, ``&`` and the two JavaScript line separators
    written as ``\\uXXXX`` escapes. JSON responses do not pass through it.
    """
    import pygeoapi.util

    pygeoapi.util.to_json = script_safe_json


_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                   0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_safe_json(value, pretty: bool = False) -> str:
    """``value`` as JSON text that can sit inside an HTML ``<script>`` element as it is."""
    from pygeoapi.util import json_serial

    text = json.dumps(value, default=json_serial, indent=4 if pretty else None, separators=(",", ":"),
                      ensure_ascii=False)
    return text.translate(_SCRIPT_ESCAPES)


@functools.lru_cache(maxsize=1)
def _base_url() -> str:
    from core.settings import settings

    current = settings()
    base = current.public_url or f"http://{current.http_host}:{current.http_port}"
    return f"{base.rstrip('/')}/ogc"


def warm_up() -> None:
    """Build the API and open the connection pool now, rather than on the first request."""
    from layers.db import pool

    _api()
    pool()


# ---------------------------------------------------------------- plumbing


def _ogc_view(*methods: str, writable=None, guard=None):
    """Answer OPTIONS and 405 with the right ``Allow``, authenticate, and turn errors into OGC JSON.

    ``writable(identity, **route)`` names the write methods the caller's role has on the route
    (``exact=True`` for OPTIONS: those it has on this very item, where that depends on the row);
    ``guard(request, identity, **route)`` runs first and may refuse the request (a hidden item: 404
    whatever the method, before anything about the request is checked). A collection the caller
    may not read is refused for every method as for GET.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            try:
                identity = _identity(request)
                if "collection_id" in kwargs:  # one the caller may not read: every method (OPTIONS too) as GET
                    _layer_for(identity, kwargs["collection_id"])
                if guard is not None:
                    guard(request, identity, **kwargs)
                allowed = set(methods) | {"HEAD", "OPTIONS"}
                if writable is not None:
                    allowed |= writable(identity, exact=request.method == "OPTIONS", **kwargs)
                if request.method == "OPTIONS":
                    response = HttpResponse(status=204)
                    response["Allow"] = ", ".join(sorted(allowed))
                    return response
                if request.method not in allowed:
                    if identity.is_anonymous and writable is not None and request.method in _writable(None, **kwargs):
                        from api.auth import BASIC_CHALLENGE

                        raise NotAuthenticated(
                            f"{request.method} needs a signed-in user with a role that may edit this collection: "
                            "send a personal access token as the password of HTTP Basic or as a Bearer token",
                            headers={"WWW-Authenticate": BASIC_CHALLENGE},
                        )
                    raise MethodNotAllowed(
                        f"{request.method} is not allowed here for your role; allowed: {', '.join(sorted(allowed))}",
                        headers={"Allow": ", ".join(sorted(allowed))},
                    )
                return view(request, identity, *args, **kwargs)
            except OGCError as exc:
                return _error(exc)
            except Exception as exc:
                error = from_database(exc)
                if error is None:
                    raise
                return _error(error)

        # token clients send no CSRF cookie; this API never uses session authentication
        return csrf_exempt(wrapper)

    return decorate


def _identity(request: HttpRequest):
    from api.auth import AuthError, identity_for_request

    try:
        return identity_for_request(request)
    except AuthError as exc:
        error = TooManyRequests if exc.status == 429 else NotAuthenticated
        raise error(str(exc), headers=exc.headers) from None


def _error(exc: OGCError) -> HttpResponse:
    response = HttpResponse(exc.body(), status=exc.status, content_type="application/json")
    for key, value in exc.headers.items():
        response[key] = value
    return response


def _layer_for(identity, collection_id: str):
    """The catalogue layer, or 404/401/403 as the caller's role warrants."""
    from layers.catalogue import layer as find_layer
    from layers.errors import Forbidden

    try:
        layer = find_layer(collection_id)
    except KeyError:
        raise NotFound(f"no collection {collection_id!r}; see /ogc/collections") from None
    if not layer.readable_by(identity.role):
        if identity.is_anonymous:
            from api.auth import BASIC_CHALLENGE

            raise NotAuthenticated(
                f"collection {collection_id!r} needs a signed-in user: send a personal access token "
                "as the password of HTTP Basic or as a Bearer token",
                headers={"WWW-Authenticate": BASIC_CHALLENGE},
            )
        raise Forbidden(f"your role ({identity.role}) may not read collection {collection_id!r}")
    return layer


def _wants_html(request: HttpRequest) -> bool:
    f = request.GET.get("f")
    if f:
        if f not in ("json", "geojson", "html", "jsonld"):
            from layers.errors import InvalidParameter

            raise InvalidParameter(f"f: {f!r} is not offered; use json or html")
        return f == "html"
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "json" not in accept.split("text/html")[0]


def _url(request: HttpRequest, route: str) -> str:
    return _base_url() + route


def _access_log(request: HttpRequest, identity, layer) -> dict | None:
    """What a read of ``layer`` writes to the access log about its caller, or None for a layer with no personal data."""
    if not layer.personal:
        return None
    return _caller(request, identity)


def _caller(request: HttpRequest, identity) -> dict:
    """The caller of a request as the access log records it: who, from where, which route and query (no secrets)."""
    from api.auth import client_address, redact_secrets

    return {
        "user_id": identity.user_id, "username": identity.username, "role": identity.role,
        "route": request.path, "remote_addr": client_address(request),
        "query": redact_secrets(request.META.get("QUERY_STRING", "")),
    }


def _pygeoapi(function, request: HttpRequest, identity, *args, skip_valid_check: bool = False,
              query=None) -> HttpResponse:
    """pygeoapi's answer, its provider reading as ``identity`` with ``query`` (the route's own parse)."""
    from pygeoapi.api import APIRequest, apply_gzip

    from layers.providers import RequestContext, serving

    api = _api()
    request.GET = _without_empty(request.GET)  # pygeoapi trips over some empty values (sortby=)
    api_request = APIRequest.from_django(request, api.locales)
    if query is not None:
        api_request._args = _ParsedByUs(request.GET.urlencode())
    with serving(RequestContext(identity=identity, query=query, caller=_caller(request, identity))):
        if not skip_valid_check and not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            headers, status, content = function(api, api_request, *args)
            content = apply_gzip(headers, content)
    response = HttpResponse(content, status=status)
    for key, value in headers.items():
        response[key] = value
    return response


class _ParsedByUs(QueryDict):
    """pygeoapi's view of the query parameters: the filter ones stay in its links, but it does not parse them.

    The route parsed the filter already (CQL2 text or JSON, as the JSON route does); pygeoapi's
    own parse knows less of CQL2 (``filter-lang=cql2-text``, ``BBOX(…)`` in ``S_INTERSECTS``) and
    would refuse what the provider answers. pygeoapi reads these names with ``get`` and writes
    its paging links from ``items``.
    """

    HIDDEN = frozenset({"filter", "filter-lang", "filter-crs"})

    def get(self, key, default=None):
        return default if key in self.HIDDEN else super().get(key, default)


def _without_empty(params):
    """The query parameters less those with an empty value (an empty value means the parameter's default)."""
    cleaned = params.copy()
    for name in [name for name, values in params.lists() if all(value == "" for value in values)]:
        del cleaned[name]
    return cleaned


# ---------------------------------------------------------------- features


def _writable(identity, collection_id: str, item_id: str | None = None, *, exact: bool = False) -> set[str]:
    """The write methods the caller's role has on a collection's items (``item_id``: on one item).

    ``identity`` None: the methods any role has (to tell an anonymous caller to sign in rather than 405).
    ``exact``: for one item, leave out a DELETE the row would refuse (a grid worker withdraws only
    their own new incidents); asked for OPTIONS only, so reads and writes pay nothing for it. A
    DELETE sent anyway is a 403 that says why, not a 405.
    """
    from layers.catalogue import layer as find_layer

    try:
        layer = find_layer(collection_id)
    except KeyError:
        return set()
    if not layer.editing:
        return set()
    roles = [identity.role] if identity is not None else sorted(layer.read_roles)
    methods: set[str] = set()
    for role in roles:
        methods |= layer.editing.allowed_methods(role, item=item_id is not None)
    if (exact and item_id is not None and identity is not None and "DELETE" in methods
            and identity.role not in layer.editing.delete_roles):
        from layers.editing import withdraw_refusal

        if withdraw_refusal(layer, identity, item_id) is not None:
            methods.discard("DELETE")
    return methods


def _hidden_item_guard(request, identity, collection_id: str, item_id: str) -> None:
    """An item the caller may not read is a 404 for every method, before the method or body is looked at.

    GET and HEAD find that out by reading it; every other method asks the layer's view first,
    under the caller's scope, so a hidden item answers exactly as a missing one.
    """
    if request.method in ("GET", "HEAD"):
        return
    from layers.features import FeatureQuery, read_item

    layer = _layer_for(identity, collection_id)
    read_item(layer, identity, item_id, FeatureQuery(skip_geometry=True, properties=()),
              access_log=_access_log(request, identity, layer))


@_ogc_view("GET", writable=_writable)
def collection_items(request: HttpRequest, identity, collection_id: str):
    layer = _layer_for(identity, collection_id)
    if request.method == "POST":
        return _create(request, identity, layer)
    if _wants_html(request):  # parsed here, once, exactly as for JSON; pygeoapi renders what the provider reads
        import pygeoapi.api.itemtypes as items

        from layers.features import parse_query

        query = parse_query(request.GET, layer=layer, role=identity.role)
        return _pygeoapi(items.get_collection_items, request, identity, collection_id, skip_valid_check=True,
                         query=query)
    return _response(*items_json(request, identity, layer))


@_ogc_view("GET", writable=_writable, guard=_hidden_item_guard)
def collection_item(request: HttpRequest, identity, collection_id: str, item_id: str):
    layer = _layer_for(identity, collection_id)
    if request.method in ("PUT", "PATCH"):
        return _change(request, identity, layer, item_id)
    if request.method == "DELETE":
        return _delete(identity, layer, item_id)
    if _wants_html(request):
        import pygeoapi.api.itemtypes as items

        return _pygeoapi(items.get_collection_item, request, identity, collection_id, item_id,
                         query=_item_query(request))
    return _response(*item_json(request, identity, layer, item_id))


def items_json(request, identity, layer) -> tuple[bytes, dict[str, str]]:
    """A page of features as GeoJSON bytes and its headers (also served by :mod:`api.fastpath`)."""
    from layers.access import run_reads

    return run_reads(items_steps(request, identity, layer))


def items_steps(request, identity, layer):
    """:func:`items_json` as steps around its one read (``layers.access.run_reads``; the event loop runs them too)."""
    from layers.features import collection_document, page_steps, parse_query

    query = parse_query(request.GET, layer=layer, role=identity.role)
    page = yield from page_steps(layer, identity, query, access_log=_access_log(request, identity, layer))
    base = _url(request, f"/collections/{layer.id}/items")
    body = collection_document(page, query=query, base=base, params=request.GET.dict())
    return body, _geojson_headers(query.crs, identity)


def item_json(request, identity, layer, item_id: str) -> tuple[bytes, dict[str, str]]:
    """One feature as GeoJSON bytes and its headers (also served by :mod:`api.fastpath`)."""
    from layers.access import run_reads

    return run_reads(item_json_steps(request, identity, layer, item_id))


def item_json_steps(request, identity, layer, item_id: str):
    """:func:`item_json` as steps around its one read (see :func:`items_steps`)."""
    from layers.features import item_document, item_steps

    query = _item_query(request)
    text = yield from item_steps(layer, identity, item_id, query, access_log=_access_log(request, identity, layer))
    base = _url(request, f"/collections/{layer.id}/items/{item_id}")
    body = item_document(text, base=base, collection_url=_url(request, f"/collections/{layer.id}"))
    return body, _geojson_headers(query.crs, identity)


def _item_query(request):
    """One item's query: only its CRS."""
    from layers.crs import crs_from_parameter
    from layers.features import FeatureQuery

    return FeatureQuery(crs=crs_from_parameter(request.GET.get("crs"), parameter="crs"))


def _geojson_headers(crs, identity) -> dict[str, str]:
    headers = {"Content-Type": GEOJSON, "Content-Crs": f"<{crs.uri}>"}
    if identity.is_anonymous:
        headers["Cache-Control"] = "public, max-age=10"
    return headers


def _response(body: bytes, headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(body)
    for key, value in headers.items():
        response[key] = value
    return response


def _create(request, identity, layer) -> HttpResponse:
    from layers.editing import feature_create, parse_body

    body = parse_body(request, layer, role=identity.role, mode="create")
    new_id = feature_create(layer, identity, body)
    response = HttpResponse(status=201)
    response["Location"] = _url(request, f"/collections/{layer.id}/items/{new_id}")
    return response


def _change(request, identity, layer, item_id: str) -> HttpResponse:
    from layers.editing import feature_change, parse_body

    mode = "replace" if request.method == "PUT" else "update"
    body = parse_body(request, layer, role=identity.role, mode=mode)
    feature_change(layer, identity, item_id, body)
    return HttpResponse(status=204)


def _delete(identity, layer, item_id: str) -> HttpResponse:
    from layers.editing import feature_delete

    feature_delete(layer, identity, item_id)
    return HttpResponse(status=204)


# ---------------------------------------------------------------- tiles

_tile_cache = None


def _tiles():
    global _tile_cache
    from layers import tiles

    if _tile_cache is None:
        _tile_cache = tiles.TileCache()
    return tiles, _tile_cache


def _json(document: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(document, ensure_ascii=False), status=status, content_type="application/json")


def _tile_call(function, *args, **kwargs):
    tiles, _ = _tiles()
    try:
        return function(*args, **kwargs)
    except tiles.TileError as exc:
        from layers.errors import InvalidParameter

        raise (NotFound if exc.status == 404 else InvalidParameter)(str(exc)) from None


@_ogc_view("GET")
def tile_matrix_sets(request, identity, tms_id: str | None = None):
    tiles, _ = _tiles()
    if tms_id is None:
        return _json(tiles.tilematrixsets_document(_base_url()))
    _check_tms(tms_id)
    return _json(tiles.tilematrixset_document(_base_url(), tms_id))


@_ogc_view("GET")
def collection_tilesets(request, identity, collection_id: str):
    tiles, _ = _tiles()
    _layer_for(identity, collection_id)
    return _json(_tile_call(tiles.collection_tilesets_document, _base_url(), collection_id))


@_ogc_view("GET")
def collection_tileset(request, identity, collection_id: str, tms_id: str):
    tiles, _ = _tiles()
    _layer_for(identity, collection_id)
    _tile_call(tiles.tile_layer, collection_id)
    _check_tms(tms_id)
    extent = _extents(identity, [collection_id])[collection_id]
    return _json(_tile_call(tiles.tileset_document, _base_url(), collection_id, tile_matrix_set=tms_id, extent=extent))


def _check_tms(tms_id: str, *, offered=None) -> None:
    """404 unless ``tms_id`` is one of ``offered`` (default: every tile matrix set served)."""
    tiles, _ = _tiles()
    offered = tuple(tiles.TILE_MATRIX_SETS) if offered is None else offered
    if tms_id not in offered:
        raise NotFound(f"no tile matrix set {tms_id!r} here; offered: {', '.join(offered)}")


def _extents(identity, layer_ids) -> dict:
    """Each tiled layer's lon/lat box of the rows the caller may see (None: none), in one transaction."""
    from layers.access import scoped_connection

    tiles, _ = _tiles()
    with database_errors(), scoped_connection(identity) as conn:
        return {layer_id: tiles.layer_extent(conn, layer_id=layer_id) for layer_id in layer_ids}


def _tiled_layers_for(identity) -> list[str]:
    """The tiled layers the caller may read, in the catalogue's tile order."""
    from layers.catalogue import layer as find_layer

    tiles, _ = _tiles()
    return [layer_id for layer_id in tiles.TILE_LAYERS if find_layer(layer_id).readable_by(identity.role)]


def _site_title() -> str:
    from core.settings import settings

    return settings().site.full_title


@_ogc_view("GET")
def collection_tilejson(request, identity, collection_id: str, tms_id: str):
    """TileJSON 3.0 of one tiled collection: ``{z}/{x}/{y}`` tiles that answer without a query string."""
    tiles, _ = _tiles()
    layer = _layer_for(identity, collection_id)
    _tile_call(tiles.tile_layer, collection_id)
    _check_tms(tms_id, offered=(tiles.TILE_MATRIX_SET,))  # TileJSON's {z}/{x}/{y} are WebMercatorQuad's
    url = _base_url() + f"/collections/{layer.id}/tiles/{tiles.TILE_MATRIX_SET}/xyz/{{z}}/{{x}}/{{y}}.pbf"
    document = tiles.tilejson_document(
        tiles_url=url, extents=_extents(identity, [layer.id]), name=f"{layer.title} · {layer.title_zh}",
        description=layer.description, attribution=_site_title(),
    )
    return _json(document)


@_ogc_view("GET")
def tilejson(request, identity):
    """TileJSON 3.0 of every tiled layer the caller may read, together in one tile."""
    tiles, _ = _tiles()
    layer_ids = _tiled_layers_for(identity)
    document = _tile_call(
        tiles.tilejson_document, tiles_url=_base_url() + "/xyz/{z}/{x}/{y}.pbf", extents=_extents(identity, layer_ids),
        name=_site_title(), description="Every tiled layer you may read, one MVT layer each", attribution=_site_title(),
    )
    return _json(document)


@_ogc_view("GET")
def collection_tile(request, identity, collection_id: str, tms_id: str, z: str, y: str, x: str):
    """A tile by OGC API – Tiles' path: ``{tileMatrix}/{tileRow}/{tileCol}``."""
    return _collection_tile(request, identity, collection_id, tms_id, z=z, x=x, y=y)


@_ogc_view("GET")
def collection_tile_xyz(request, identity, collection_id: str, tms_id: str, z: str, x: str, y: str):
    """A tile by the ``{z}/{x}/{y}.pbf`` path of TileJSON clients (and GDAL's MVT driver, which reads z/x/y from it)."""
    tiles, _ = _tiles()
    _check_tms(tms_id, offered=(tiles.TILE_MATRIX_SET,))
    return _collection_tile(request, identity, collection_id, tms_id, z=z, x=x, y=y)


def _collection_tile(request, identity, collection_id: str, tms_id: str, *, z: str, x: str, y: str):
    """One layer's tile, whichever path named it."""
    from layers.access import scoped_connection

    tiles, cache = _tiles()
    layer = _layer_for(identity, collection_id)
    _tile_format(request)
    with database_errors(), scoped_connection(identity) as conn:
        tile = _tile_call(tiles.tile_cached, conn, cache, scope_key=_scope(identity), layer_id=layer.id, z=z, x=x, y=y,
                          tile_matrix_set=tms_id)
    return _tile_response(request, tile, shared=layer.public and identity.is_anonymous)


@_ogc_view("GET")
def tile_xyz(request, identity, z: str, x: str, y: str):
    """One tile of every tiled layer the caller may read (``/ogc/tilejson.json``)."""
    from layers.access import scoped_connection
    from layers.catalogue import layer as find_layer

    tiles, cache = _tiles()
    _tile_format(request)
    layer_ids = _tiled_layers_for(identity)
    with database_errors(), scoped_connection(identity) as conn:
        tile = _tile_call(tiles.tile_of_layers, conn, cache, scope_key=_scope(identity), layer_ids=layer_ids,
                          z=z, x=x, y=y)
    shared = identity.is_anonymous and all(find_layer(layer_id).public for layer_id in layer_ids)
    return _tile_response(request, tile, shared=shared)


def _scope(identity) -> str:
    return f"{identity.role}:{identity.grid_id or ''}"


def _tile_format(request) -> None:
    f = request.GET.get("f")
    if f not in (None, "", "mvt"):
        from layers.errors import InvalidParameter

        raise InvalidParameter(f"f: tiles are offered as mvt only, not {f!r}")


def _tile_response(request, tile, *, shared: bool) -> HttpResponse:
    tiles, _ = _tiles()
    headers = tiles.tile_http_headers(tile, shared=shared)
    if tiles.etag_matches(tile, request.headers.get("If-None-Match")):
        response = HttpResponse(status=304)
    elif not tile.data:
        response = HttpResponse(status=204)
    else:
        response = HttpResponse(tile.data)
    for key, value in headers.items():
        if response.status_code == 200 or key != "Content-Type":
            response[key] = value
    return response


# ---------------------------------------------------------------- metadata (pygeoapi)


@_ogc_view("GET")
def landing_page(request, identity):
    import pygeoapi.api as core

    return _pygeoapi(core.landing_page, request, identity)


@_ogc_view("GET")
def openapi(request, identity):
    import pygeoapi.api as core

    return _pygeoapi(core.openapi_, request, identity)


@_ogc_view("GET")
def conformance(request, identity):
    if _wants_html(request):
        import pygeoapi.api as core

        return _pygeoapi(core.conformance, request, identity)
    from layers.config import conformance_classes

    return _json({"conformsTo": conformance_classes()})


@_ogc_view("GET")
def collections(request, identity, collection_id: str | None = None):
    import pygeoapi.api as core

    if collection_id is not None:
        _layer_for(identity, collection_id)
    args = () if collection_id is None else (collection_id,)
    response = _pygeoapi(core.describe_collections, request, identity, *args)
    if response.status_code != 200 or _wants_html(request):
        return response
    from layers.config import decorate_collections

    document = json.loads(response.content)
    decorated = decorate_collections(document, role=identity.role, base_url=_base_url(), single=collection_id,
                                     tilesets=not _gdal_without_tiles(request))
    answer = _json(decorated)
    patch_vary_headers(answer, ("User-Agent",))  # GDAL before 3.7 gets the document without its tilesets link
    return answer


_GDAL_AGENT = re.compile(r"\bGDAL/(\d+)\.(\d+)")
_GDAL_ACCEPT = "application/geo+json, application/json"  # what GDAL's OGCAPI driver sends for JSON documents


def _gdal_without_tiles(request) -> bool:
    """Whether the client is GDAL before 3.7, whose OGCAPI driver cannot read OGC API tiles.

    Its driver reads a collection's vector tiles whenever the collection links some, and
    before 3.7 (Debian 12 ships 3.6) that reading finds no layer with any tile matrix set
    (GDAL pull request 7656: 3.6 hands the whole tile matrix set document to a parser
    that expects a name), with no fallback. Without the link it reads the items
    (``OAPIF_COLLECTION``), which it does well; later versions get the link and the tiles.
    GDAL 3.6 sends no User-Agent (unless GDAL_HTTP_USERAGENT is set) and asks for
    collections with exactly ``_GDAL_ACCEPT``; every other client we know names itself.
    """
    agent = request.headers.get("User-Agent", "")
    if not agent:
        return request.headers.get("Accept", "") == _GDAL_ACCEPT
    found = _GDAL_AGENT.search(agent)
    return found is not None and (int(found[1]), int(found[2])) < (3, 7)


@_ogc_view("GET")
def queryables(request, identity, collection_id: str):
    import pygeoapi.api.itemtypes as items

    _layer_for(identity, collection_id)
    return _pygeoapi(items.get_collection_queryables, request, identity, collection_id)


@_ogc_view("GET")
def schema(request, identity, collection_id: str):
    import pygeoapi.api as core

    _layer_for(identity, collection_id)
    return _pygeoapi(core.get_collection_schema, request, identity, collection_id)


def static_file(request, path: str) -> HttpResponse:
    """pygeoapi's stylesheet and images; a path no file can have (too long, a NUL) is a 404 like any other."""
    from django.http import Http404

    try:
        return serve(request, path, document_root=_static_root())
    except (OSError, ValueError):
        raise Http404("no such file") from None


def _route(pattern: str, view, name: str):
    """``pattern`` (a regex tail) answered with and without a trailing slash, never redirected."""
    return re_path(rf"^{pattern}/?$", view, name=name)


_ID = r"(?P<collection_id>[^/]+)"
_TMS = r"(?P<tms_id>[^/]+)"


def _static_root() -> str:
    import pygeoapi

    return str(Path(pygeoapi.__file__).parent / "static")


# the routes clients call most come first: Django tries the patterns in order
urlpatterns = [
    _route(rf"collections/{_ID}/items/(?P<item_id>[^/]+)", collection_item, "ogc-item"),
    _route(rf"collections/{_ID}/items", collection_items, "ogc-items"),
    _route(rf"collections/{_ID}/tiles/{_TMS}/(?P<z>[^/]+)/(?P<y>[^/]+)/(?P<x>[^/]+)", collection_tile, "ogc-tile"),
    re_path(rf"^collections/{_ID}/tiles/{_TMS}/xyz/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/.]+)\.(?:pbf|mvt)$",
            collection_tile_xyz, name="ogc-tile-xyz"),
    re_path(r"^xyz/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/.]+)\.(?:pbf|mvt)$", tile_xyz, name="ogc-xyz"),
    re_path(r"^$", landing_page, name="ogc-landing"),
    # pygeoapi's HTML pages link their stylesheet and images under /ogc/static/
    re_path(r"^static/(?P<path>.+)$", static_file, name="ogc-static"),
    _route("openapi", openapi, "ogc-openapi"),
    _route("conformance", conformance, "ogc-conformance"),
    _route("tileMatrixSets", tile_matrix_sets, "ogc-tms-list"),
    _route(rf"tileMatrixSets/{_TMS}", tile_matrix_sets, "ogc-tms"),
    _route("collections", collections, "ogc-collections"),
    _route(rf"collections/{_ID}", collections, "ogc-collection"),
    _route(rf"collections/{_ID}/queryables", queryables, "ogc-queryables"),
    _route(rf"collections/{_ID}/schema", schema, "ogc-schema"),
    _route(rf"collections/{_ID}/tiles", collection_tilesets, "ogc-tilesets"),
    _route(rf"collections/{_ID}/tiles/{_TMS}", collection_tileset, "ogc-tileset"),
    # TileJSON; GDAL's MVT driver opening ``…/xyz/{z}`` as a folder looks for ``…/xyz/metadata.json``
    re_path(rf"^collections/{_ID}/tiles/{_TMS}/(?:tilejson\.json|xyz/metadata\.json)$", collection_tilejson,
            name="ogc-tilejson"),
    re_path(r"^(?:tilejson\.json|xyz/metadata\.json)$", tilejson, name="ogc-tilejson-all"),
]
