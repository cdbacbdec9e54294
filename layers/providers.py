"""Our pygeoapi feature provider, referenced by dotted path from the generated configuration.

pygeoapi calls it for the pages it renders (HTML items and item, queryables, schema).
It reads through the same SQL builders as the JSON routes (:mod:`layers.features`).
The route that hands a request to pygeoapi first parses it once, as it would for JSON,
and opens a :class:`RequestContext` (:func:`serving`): the caller (whose row-level
security scope every read runs under), the parsed query (bbox, bbox-crs, datetime,
filter, crs, sorting, properties: the same features as the JSON route) and what the
access log records. pygeoapi's own parse of those parameters is not used; only its
``limit`` and ``offset``, which are the route's too.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
from contextlib import contextmanager
from typing import Iterator

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    SchemaType,
)

from core.identity import ANONYMOUS
from layers.catalogue import Column
from layers.catalogue import layer as find_layer
from layers.errors import InvalidParameter, NotFound
from layers.features import FeatureQuery, read_item, read_page

_JSON_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean", "string": "string", "date-time": "string"}


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """What the route knows of the request pygeoapi renders."""

    identity: object  # api.auth.Identity
    query: FeatureQuery | None = None  # the route's parse of the request; None: no feature query here
    caller: dict | None = None  # the access log's view of the caller (address, route, query string)


_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("onemap_provider_context", default=None)


@contextmanager
def serving(context: RequestContext) -> Iterator[None]:
    """Run pygeoapi inside ``context``: the provider reads as its caller, with its query."""
    token = _context.set(context)
    try:
        yield
    finally:
        _context.reset(token)


class PostGISProvider(BaseProvider):
    """A catalogue layer read from its ``ogc_<id>`` view; GeoJSON comes out of PostGIS."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        self.layer = find_layer(provider_def["data"])
        self.id_field = "id"
        self.time_field = self.layer.time_field
        self.get_fields()

    def get_fields(self) -> dict:
        self._fields = {c.name: _field(c) for c in self.layer.columns_for(_current().identity.role)}
        return self._fields

    def get_schema(self, schema_type: SchemaType = SchemaType.item):
        properties = dict(self.get_fields())
        # sealed properties are returned (opened after the logged read) but not queryable
        properties.update({c.name: _field(c) for c in self.layer.sealed_for(_current().identity.role)})
        properties["geometry"] = {"$ref": f"https://geojson.org/schema/{self.layer.geometry_type}.json"}
        return "application/geo+json", {"$schema": "http://json-schema.org/draft/2020-12/schema",
                                        "type": "object", "properties": properties}

    def query(self, offset=0, limit=10, resulttype="results", bbox=(), datetime_=None, properties=(),
              sortby=(), select_properties=(), skip_geometry=False, q=None, filterq=None, **kwargs):
        context = _current()
        if context.query is None:
            raise ProviderInvalidQueryError(user_msg="features are read through /ogc/collections/{id}/items")
        try:
            query = dataclasses.replace(context.query, limit=int(limit), offset=int(offset))
            page = read_page(self.layer, context.identity, query, access_log=_access(context, self.layer))
        except InvalidParameter as exc:
            raise ProviderInvalidQueryError(user_msg=exc.description) from None
        features = json.loads(b"[" + page.features + b"]")
        result = {"type": "FeatureCollection", "features": features, "numberReturned": page.returned}
        if page.matched is not None:
            result["numberMatched"] = page.matched
        return result

    def get(self, identifier, **kwargs):
        context = _current()
        query = FeatureQuery(crs=context.query.crs) if context.query is not None else FeatureQuery()
        try:
            text = read_item(self.layer, context.identity, str(identifier), query,
                             access_log=_access(context, self.layer))
        except NotFound as exc:
            raise ProviderItemNotFoundError(user_msg=exc.description) from None
        return json.loads(text)


def _current() -> RequestContext:
    """The request being rendered; anonymous with no query when pygeoapi is used outside a route."""
    context = _context.get()
    if context is None:
        return RequestContext(identity=ANONYMOUS)
    return context


def _access(context: RequestContext, layer) -> dict | None:
    """What the access log records of the caller, for personal layers."""
    if not layer.personal:
        return None
    if context.caller is not None:
        return context.caller
    identity = context.identity
    return {"user_id": identity.user_id, "username": identity.username, "role": identity.role,
            "route": "/ogc (HTML)", "remote_addr": None, "query": None}


def _field(column: Column) -> dict:
    field = {"type": _JSON_TYPES.get(column.type, "string"), "title": column.title or column.name}
    if column.type == "date-time":
        field["format"] = "date-time"
    if column.choices:
        field["enum"] = list(column.choices)
    return field
