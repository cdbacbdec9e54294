"""The pygeoapi configuration, conformance and collection documents, from the layer catalogue."""

from __future__ import annotations

from layers.catalogue import LAYERS, Layer
from layers.crs import CRS84, supported_uris

PROVIDER = "layers.providers.PostGISProvider"
# Where the demo lies; used as a layer's extent while the layer is empty.
DEFAULT_BBOX = [113.64, 34.745, 113.68, 34.77]


def pygeoapi_config(*, base_url: str, using: str = "default") -> dict:
    """A complete pygeoapi configuration dict for ``base_url`` (e.g. http://127.0.0.1:8000/ogc)."""
    extents = _extents(LAYERS, using=using)
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 8000},
            "url": base_url.rstrip("/"),
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US", "zh-CN"],
            "cors": True,
            "pretty_print": False,
            "limits": {"default_items": 100, "max_items": 10000, "on_exceed": "error"},
            # no "map": the pages draw features on a plain map, as intranets have no basemap to fetch
            "admin": False,
        },
        "logging": {"level": "ERROR"},
        "metadata": _metadata(base_url),
        "resources": {layer.id: _resource(layer, extents.get(layer.id)) for layer in LAYERS},
    }


def _metadata(base_url: str) -> dict:
    """Title, description and contact of the service, from the operator's settings (``ONEMAP_SITE_*``, ``ONEMAP_CONTACT_*``)."""
    from core.settings import settings

    site = settings().site
    contact = {"name": site.operator, "address": site.address, "url": base_url, "role": "pointOfContact"}
    contact.update({key: value for key, value in (("email", site.email), ("phone", site.phone)) if value})
    return {
        "identification": {
            "title": {"en": site.title, "zh": site.title_zh},
            "description": {
                "en": "Grid-based community governance layers of Xidajie subdistrict, Zhengzhou (demo data is synthetic).",
                "zh": "郑州市西大街街道网格化社会治理图层（演示数据为合成数据）。",
            },
            "keywords": ["community", "grid", "governance", "社区一张图", "网格化"],
            "keywords_type": "theme",
            "terms_of_service": "",
            "url": base_url,
        },
        "license": {"name": "Proprietary; demo data synthetic", "url": base_url},
        "provider": {"name": site.operator, "url": base_url},
        "contact": contact,
    }


def _resource(layer: Layer, bbox: list[float] | None) -> dict:
    provider = {
        "type": "feature",
        "name": PROVIDER,
        "data": layer.id,
        "id_field": "id",
        "crs": supported_uris(),
        "storage_crs": CRS84,
        "editable": bool(layer.editing),
    }
    if layer.time_field:
        provider["time_field"] = layer.time_field
    return {
        "type": "collection",
        "title": {"en": layer.title, "zh": layer.title_zh or layer.title},
        "description": layer.description,
        "keywords": list(layer.keywords),
        "links": [],
        "extents": {"spatial": {"bbox": bbox or DEFAULT_BBOX, "crs": CRS84}},
        "providers": [provider],
    }


def _extents(layers, *, using: str) -> dict[str, list[float]]:
    from django.db import connections
    from psycopg import sql

    extents = {}
    with connections[using].cursor() as cursor:
        for layer in layers:
            query = sql.SQL(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) AS e FROM {}) x"
            ).format(sql.Identifier(layer.view))
            cursor.execute(query.as_string(cursor.connection))
            row = cursor.fetchone()
            if row and row[0] is not None:
                extents[layer.id] = [round(v, 6) for v in row]
    return extents


_COMMON = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/"
_FEATURES = "http://www.opengis.net/spec/ogcapi-features-{}/1.0/conf/{}"
_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"


def conformance_classes() -> list[str]:
    """Every conformance class the API implements (and only those)."""
    from layers.cql import CONFORMANCE as CQL2

    classes = [_COMMON + c for c in ("core", "landing-page", "json", "html", "oas30")]
    classes.append("http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections")
    classes += [_FEATURES.format(1, c) for c in ("core", "oas30", "html", "geojson")]
    classes.append(_FEATURES.format(2, "crs"))
    classes += [_FEATURES.format(3, c) for c in ("filter", "features-filter", "queryables", "queryables-query-parameters")]
    classes += [_FEATURES.format(4, c) for c in ("create-replace-delete", "update", "features")]
    classes += [_FEATURES.format(5, c) for c in ("schemas", "core-roles-features")]
    classes += list(CQL2)
    classes += [_TILES + c for c in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")]
    classes += ["http://www.opengis.net/spec/tms/2.0/conf/tilematrixset", "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset"]
    return sorted(set(classes))


def decorate_collections(document: dict, *, role: str, base_url: str, single: str | None,
                         tilesets: bool = True) -> dict:
    """pygeoapi's collection documents, limited to what the role may read, with tiles links added (``tilesets``)."""
    from layers.catalogue import layer as find_layer
    from layers.tiles import TILE_LAYERS

    def decorate(collection: dict) -> dict:
        layer_id = collection["id"]
        links = [link for link in collection.get("links", []) if "/tiles" not in link.get("href", "")]
        if layer_id in TILE_LAYERS and tilesets:
            links.append({
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                "type": "application/json", "title": "vector tiles",
                "href": f"{base_url}/collections/{layer_id}/tiles?f=json",
            })
        collection["links"] = links
        collection["crs"] = supported_uris()
        collection["storageCrs"] = CRS84
        return collection

    if single is not None:
        return decorate(document)
    document["collections"] = [
        decorate(c) for c in document.get("collections", []) if find_layer(c["id"]).readable_by(role)
    ]
    return document
