"""The pygeoapi configuration, generated from the layer catalogue and the live database."""

from __future__ import annotations

from layers.catalogue import Layer, public_layers

PROVIDER = "layers.providers.StockPostgreSQLProvider"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
# Where the demo lies; used as a layer's extent while the layer is empty.
DEFAULT_BBOX = [113.64, 34.745, 113.68, 34.77]


def pygeoapi_config(*, base_url: str, using: str = "default") -> dict:
    """A complete pygeoapi configuration dict for ``base_url`` (e.g. http://127.0.0.1:8000/ogc)."""
    from django.db import connections

    settings = connections[using].settings_dict
    connection = {
        "host": settings["HOST"] or "127.0.0.1",
        "port": int(settings["PORT"] or 5432),
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "search_path": ["public"],
    }
    extents = _extents(public_layers(), using=using)
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 8000},
            "url": base_url.rstrip("/"),
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US", "zh-CN"],
            "cors": True,
            "pretty_print": False,
            "limits": {"default_items": 100, "max_items": 10000, "on_exceed": "throttle"},
            "map": {
                "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                "attribution": "&copy; OpenStreetMap contributors",
            },
            "admin": False,
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": {"en": "Community One Map", "zh": "社区一张图"},
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
            "provider": {"name": "Community One Map", "url": base_url},
            "contact": {
                "name": "Community One Map operators",
                "position": "operator",
                "address": "西大街街道",
                "city": "Zhengzhou",
                "stateorprovince": "Henan",
                "postalcode": "450000",
                "country": "China",
                "email": "onemap@example.invalid",
                "url": base_url,
                "role": "pointOfContact",
            },
        },
        "resources": {layer.id: _resource(layer, connection, extents.get(layer.id)) for layer in public_layers()},
    }


def _resource(layer: Layer, connection: dict, bbox: list[float] | None) -> dict:
    provider = {
        "type": "feature",
        "name": PROVIDER,
        "data": connection,
        "id_field": "id",
        "table": layer.view,
        "geom_field": "geom",
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
