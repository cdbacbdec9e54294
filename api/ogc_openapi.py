"""pygeoapi's OpenAPI document for /ogc/, made self-contained: no ``$ref`` leaves the document.

pygeoapi points parameters, responses and geometry schemas at schemas.opengis.net,
geojson.org and GitHub; a client on an intranet (Swagger UI, a code generator) cannot
resolve them. Each such reference is replaced by a local component written here, with
the same meaning (OGC API – Features Part 1, GeoJSON RFC 7946).
"""

from __future__ import annotations

_EXCEPTION = {"$ref": "#/components/schemas/exception"}


def _geometry(kind: str, depth: int) -> dict:
    position = {"type": "array", "minItems": 2, "items": {"type": "number"}}
    coordinates = position
    for _ in range(depth):
        coordinates = {"type": "array", "items": coordinates}
    return {"type": "object", "required": ["type", "coordinates"], "description": f"A GeoJSON {kind} (RFC 7946)",
            "properties": {"type": {"type": "string", "enum": [kind]}, "coordinates": coordinates,
                           "bbox": {"type": "array", "items": {"type": "number"}}}}


def _response(description: str, *media: str, schema: dict | None = None) -> dict:
    return {"description": description, "content": {m: {"schema": schema or {"type": "object"}} for m in media}}


SCHEMAS = {
    "exception": {"type": "object", "required": ["code"], "description": "An OGC API exception",
                  "properties": {"code": {"type": "string"}, "type": {"type": "string"},
                                 "description": {"type": "string"}}},
    "link": {"type": "object", "required": ["href"],
             "properties": {key: {"type": "string"} for key in ("href", "rel", "type", "hreflang", "title")}},
    "geojson-Point": _geometry("Point", 0),
    "geojson-Polygon": _geometry("Polygon", 2),
    "geojson-MultiPolygon": _geometry("MultiPolygon", 3),
}
PARAMETERS = {
    "datetime": {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
                 "description": "An instant or an interval (RFC 3339, '..' for an open end)", "schema": {"type": "string"}},
    "featureId": {"name": "featureId", "in": "path", "required": True, "description": "the id of a feature",
                  "schema": {"type": "string"}},
    "sortby": {"name": "sortby", "in": "query", "required": False, "style": "form", "explode": False,
               "description": "properties to sort by, '-' before a name for descending",
               "schema": {"type": "array", "items": {"type": "string", "pattern": "[+|-]?[A-Za-z_].*"}}},
}
RESPONSES = {
    "LandingPage": _response("The landing page: links to the API definition, conformance and collections",
                             "application/json", "text/html"),
    "Collection": _response("A collection's metadata", "application/json", "text/html"),
    "Features": _response("A page of features", "application/geo+json", "text/html"),
    "InvalidParameter": _response("A query parameter has an invalid value", "application/json", schema=_EXCEPTION),
    "NotFound": _response("The requested resource does not exist", "application/json", schema=_EXCEPTION),
    "ServerError": _response("A server error occurred", "application/json", schema=_EXCEPTION),
}

# every outside reference pygeoapi writes (by its text after the last "/" or "#/components/"), and its local component
_LOCAL = {
    "MultiPolygon.json": "#/components/schemas/geojson-MultiPolygon",
    "Point.json": "#/components/schemas/geojson-Point",
    "Polygon.json": "#/components/schemas/geojson-Polygon",
    "sortby.yaml": "#/components/parameters/sortby",
    "parameters/datetime": "#/components/parameters/datetime",
    "parameters/featureId": "#/components/parameters/featureId",
    "NotFound.yaml": "#/components/responses/NotFound",
    "exception.yaml": "#/components/schemas/exception",
    "schemas/link": "#/components/schemas/link",
    **{f"responses/{name}": f"#/components/responses/{name}" for name in RESPONSES},
}


class OutsideReference(ValueError):
    """pygeoapi wrote a reference to outside the document that has no local component here."""


def self_contained(document: dict) -> dict:
    """``document`` with every outside ``$ref`` pointing at a local component (added under ``components``)."""
    components = document.setdefault("components", {})
    for kind, table in (("schemas", SCHEMAS), ("parameters", PARAMETERS), ("responses", RESPONSES)):
        section = components.setdefault(kind, {})
        for name, value in table.items():
            section[name] = value  # ours: the outside references now land here
    return _rewrite(document)


def _rewrite(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return {**{k: _rewrite(v) for k, v in node.items() if k != "$ref"}, "$ref": _local(ref)}
        return {key: _rewrite(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    return node


def _local(ref: str) -> str:
    for tail, local in _LOCAL.items():
        if ref.endswith(tail):
            return local
    raise OutsideReference(f"no local component for {ref}; add one to api/ogc_openapi.py")
