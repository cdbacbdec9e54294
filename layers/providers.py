"""Our pygeoapi feature provider, referenced by dotted path from the generated configuration.

pygeoapi calls it for the pages it renders (HTML items and item, queryables, schema).
It reads through the same SQL builders as the JSON routes (:mod:`layers.features`),
under the row-level-security scope of the request's caller, which the route puts in
:data:`api.ogc.current_identity` before handing the request to pygeoapi; CQL2 filters
are compiled from the request's own parameters (:data:`api.ogc.current_params`).
"""

from __future__ import annotations

import json

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    SchemaType,
)

from layers.catalogue import Column
from layers.catalogue import layer as find_layer
from layers.errors import InvalidParameter, NotFound
from layers.features import FeatureQuery, _interval, read_item, read_page

_JSON_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean", "string": "string", "date-time": "string"}


class PostGISProvider(BaseProvider):
    """A catalogue layer read from its ``ogc_<id>`` view; GeoJSON comes out of PostGIS."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        self.layer = find_layer(provider_def["data"])
        self.id_field = "id"
        self.time_field = self.layer.time_field
        self.get_fields()

    def get_fields(self) -> dict:
        self._fields = {c.name: _field(c) for c in self.layer.columns_for(_identity().role)}
        return self._fields

    def get_schema(self, schema_type: SchemaType = SchemaType.item):
        properties = dict(self.get_fields())
        properties["geometry"] = {"$ref": f"https://geojson.org/schema/{self.layer.geometry_type}.json"}
        return "application/geo+json", {"$schema": "http://json-schema.org/draft/2020-12/schema",
                                        "type": "object", "properties": properties}

    def query(self, offset=0, limit=10, resulttype="results", bbox=(), datetime_=None, properties=(),
              sortby=(), select_properties=(), skip_geometry=False, q=None, filterq=None, **kwargs):
        identity = _identity()
        names = {c.name for c in self.layer.columns_for(identity.role)}
        try:
            cql = _filter(self.layer, identity) if filterq is not None else {}
            query = FeatureQuery(
                **cql,
                limit=int(limit), offset=int(offset),
                bbox=tuple(bbox) if bbox else None,
                interval=_interval(datetime_, self.layer),
                equals=tuple((name, value) for name, value in properties if name in names),
                sortby=tuple((s["property"], s["order"] == "-") for s in sortby if s["property"] in names),
                properties=tuple(select_properties) or None,
                skip_geometry=bool(skip_geometry),
            )
            page = read_page(self.layer, identity, query, access_log=_access(identity, self.layer))
        except InvalidParameter as exc:
            raise ProviderInvalidQueryError(user_msg=exc.description) from None
        features = json.loads("[" + page.features + "]")
        result = {"type": "FeatureCollection", "features": features, "numberReturned": page.returned}
        if page.matched is not None:
            result["numberMatched"] = page.matched
        return result

    def get(self, identifier, **kwargs):
        identity = _identity()
        try:
            text = read_item(self.layer, identity, str(identifier), FeatureQuery(),
                             access_log=_access(identity, self.layer))
        except NotFound as exc:
            raise ProviderItemNotFoundError(user_msg=exc.description) from None
        return json.loads(text)


def _identity():
    from api.auth import ANONYMOUS
    from api.ogc import current_identity

    return current_identity.get(ANONYMOUS)


def _filter(layer, identity) -> dict:
    """The request's CQL2 filter parsed by our compiler (pygeoapi's own parse is not used)."""
    from api.ogc import current_params
    from layers.features import parse_query

    params = current_params.get()
    if params is None:
        raise ProviderInvalidQueryError(user_msg="filters are answered as JSON: add f=json to the request")
    query = parse_query(params, layer=layer, role=identity.role)
    return {"filter": query.filter, "filter_crs": query.filter_crs}


def _access(identity, layer) -> dict | None:
    """The access-log caller of the request pygeoapi serves (its address, route and query), for personal layers."""
    if not layer.personal:
        return None
    from api.ogc import current_caller

    caller = current_caller.get()
    if caller is None:  # not called through a route (a script using pygeoapi directly): log what is known
        caller = {"user_id": identity.user_id, "username": identity.username, "role": identity.role,
                  "route": "/ogc (HTML)", "remote_addr": None, "query": None}
    return caller


def _field(column: Column) -> dict:
    field = {"type": _JSON_TYPES.get(column.type, "string"), "title": column.title or column.name}
    if column.type == "date-time":
        field["format"] = "date-time"
    if column.choices:
        field["enum"] = list(column.choices)
    return field
