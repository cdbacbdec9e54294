"""Reading features (OGC API Features Parts 1–3): query parameters in, GeoJSON bytes out.

PostGIS builds each feature's GeoJSON text; Python only splices the page together, so
no geometry is walked in Python. One SQL statement per request returns the page, its
size, ``numberMatched`` and the layer's data version; exact counts are cached per
(layer, scope, filter) until the layer's data changes, so paging through a large layer
counts it once.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from psycopg import sql

from gis.personal import UnreadablePersonalData
from layers import crs as crsmod
from layers.catalogue import Column, Layer
from layers.errors import InvalidParameter, NotFound, OGCError, database_errors
from layers.views import SEALED_COLUMN

if TYPE_CHECKING:
    from layers.access import Read

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
# parameters with a meaning of their own; any other name that is a queryable filters on it
RESERVED = {
    "f", "limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang",
    "filter-crs", "sortby", "properties", "skipGeometry", "lang",
}
# names a gateway in front of the server may add (its API key); passed through and kept in links
PASSED_THROUGH = {"token", "access_token", "api_key", "apikey", "key"}
GEOJSON = "application/geo+json"


@dataclass(frozen=True)
class FeatureQuery:
    """A validated items request."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: crsmod.Crs = crsmod.STORAGE
    interval: tuple[datetime | None, datetime | None] | None = None
    filter: object | None = None  # a parsed CQL2 expression
    filter_crs: str | None = None
    equals: tuple[tuple[str, object], ...] = ()
    sortby: tuple[tuple[str, bool], ...] = ()  # (property, descending)
    properties: tuple[str, ...] | None = None
    skip_geometry: bool = False
    crs: crsmod.Crs = crsmod.STORAGE
    ids: tuple[int, ...] | None = None  # only these ids (WFS resource ids); None: no such condition

    @property
    def filtered(self) -> bool:
        return bool(self.bbox or self.interval or self.filter is not None or self.equals or self.ids is not None)


@dataclass
class Page:
    """One page of features, with its counts.

    ``features`` is the comma-separated feature texts (GeoJSON, or GML for WFS) as the UTF-8
    bytes PostgreSQL built them: they go into the response as they are.
    """

    features: bytes
    returned: int
    matched: int | None
    version: int | None = None
    links: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------- parsing


def parse_query(params, *, layer: Layer, role: str) -> FeatureQuery:
    """Validate an items request's query parameters; 400 with what to change on any bad value.

    The same parameters for the same layer and role give the same query (it holds no
    moment: a time range is kept as the client wrote it), so a repeated request — QGIS
    panning back, the big screen's refresh — is parsed once (:data:`QUERIES`).
    """
    items = tuple(params.items())
    if sum(len(name) + len(value) for name, value in items) > _REMEMBERED_QUERY_CHARS:
        return _parsed(params, layer=layer, role=role)
    key = (layer.id, role, items)
    known = QUERIES.get(key)
    if known is not None and known[0] is layer:
        return known[1]
    query = _parsed(params, layer=layer, role=role)
    QUERIES.put(key, (layer, query))
    return query


_REMEMBERED_QUERY_CHARS = 2000  # longer parameters (a long filter) are parsed every time, not kept


def _parsed(params, *, layer: Layer, role: str) -> FeatureQuery:
    columns = {c.name: c for c in layer.columns_for(role)}
    _refuse_unknown(params, columns)
    bbox_crs = crsmod.crs_from_parameter(params.get("bbox-crs"), parameter="bbox-crs")
    query = FeatureQuery(
        limit=_int(params.get("limit"), "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT),
        offset=_int(params.get("offset"), "offset", 0, low=0, high=10**9),
        bbox=_bbox(params.get("bbox"), bbox_crs),
        bbox_crs=bbox_crs,
        interval=_interval(params.get("datetime"), layer),
        filter=_filter(params, layer=layer, columns=columns),
        filter_crs=params.get("filter-crs") or None,
        equals=_equals(params, columns),
        sortby=_sortby(params.get("sortby"), columns),
        properties=_properties(params.get("properties"), {**columns, **{c.name: c for c in layer.sealed_for(role)}}),
        skip_geometry=_bool(params.get("skipGeometry"), "skipGeometry"),
        crs=crsmod.crs_from_parameter(params.get("crs"), parameter="crs"),
    )
    if query.filter_crs:
        crsmod.crs_from_parameter(query.filter_crs, parameter="filter-crs")
    return query


def _refuse_unknown(params, columns: dict[str, Column]) -> None:
    """A 400 naming every parameter that is neither standard nor a queryable (OGC API – Features /req/core/query-param-unknown)."""
    unknown = sorted(set(params.keys()) - RESERVED - PASSED_THROUGH - set(columns))
    if unknown:
        named = ", ".join(repr(name[:40]) for name in unknown[:10]) + (", …" if len(unknown) > 10 else "")
        raise InvalidParameter(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {named}: use the standard ones "
            f"({', '.join(sorted(RESERVED))}) or a queryable of this collection as property=value "
            f"({', '.join(columns) or 'none'}; see its /queryables)"
        )


def _int(value, name: str, default: int, *, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidParameter(f"{name}: {value!r} is not an integer; use a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise InvalidParameter(f"{name}: {number} is out of range; use a value from {low} to {high}")
    return number


def _bool(value, name: str) -> bool:
    if value in (None, "", "false", "False"):
        return False
    if value in ("true", "True"):
        return True
    raise InvalidParameter(f"{name}: use true or false, not {value!r}")


def _bbox(value, crs: crsmod.Crs):
    if value is None or value == "":
        return None
    parts = value.split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise InvalidParameter(
            f"bbox: {value!r} is not four comma-separated numbers (minx,miny,maxx,maxy in bbox-crs axis order)"
        ) from None
    if len(numbers) == 6:  # with heights, which features here do not have
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
        raise InvalidParameter(f"bbox: expected 4 numbers (minx,miny,maxx,maxy), got {len(parts)}: {value!r}")
    a1, b1, a2, b2 = numbers
    if crs.north_first:  # lat,lon,lat,lon (or northing first) in that CRS's axis order
        a1, b1, a2, b2 = b1, a1, b2, a2
    if a1 > a2 or b1 > b2:
        raise InvalidParameter(
            f"bbox: the lower corner must come first and be below-left of the upper one; got {value!r}"
            + (" (latitude first for this bbox-crs)" if crs.north_first and not crs.projected else
               "; the usual cause is axis order: without bbox-crs a bbox is lon,lat,lon,lat "
               "(minimum longitude, minimum latitude, maximum longitude, maximum latitude)")
        )
    if not crs.projected and (b1 < -90 or b2 > 90 or a1 < -180 or a2 > 180):
        raise InvalidParameter(
            f"bbox: {value!r} is outside -180..180 / -90..90"
            + ("; EPSG:4326 and EPSG:4490 take latitude first" if crs.north_first else
               "; the usual cause is axis order: without bbox-crs a bbox is lon,lat,lon,lat "
               "(e.g. 113.64,34.745,113.68,34.77 here, not 34.745,113.64,…)")
        )
    return (a1, b1, a2, b2)


def _interval(value, layer: Layer):
    if value is None or value == "":
        return None
    if not layer.time_field:
        raise InvalidParameter(f"datetime: collection {layer.id!r} has no time; remove the datetime parameter")
    parts = value.split("/")
    if len(parts) > 2:
        raise InvalidParameter(f"datetime: {value!r} is neither an instant nor start/end")
    times = [_instant(p) for p in parts]
    if len(times) == 1:
        if times[0] is None:
            raise InvalidParameter("datetime: an instant cannot be '..'")
        return (times[0], times[0])
    start, end = times
    if start and end and start > end:
        raise InvalidParameter(f"datetime: the interval {value!r} ends before it starts")
    return (start, end)


def _instant(text: str):
    if text in ("", ".."):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(
            f"datetime: {text!r} is not RFC 3339, e.g. 2026-11-20T08:00:00Z or 2026-11-01T00:00:00Z/.."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _filter(params, *, layer: Layer, columns: dict[str, Column]):
    text = params.get("filter")
    if text is None or text == "":
        return None
    from layers.cql import FilterError, parse_filter

    lang = params.get("filter-lang") or "cql2-text"
    try:
        return parse_filter(text, lang=lang)
    except FilterError as exc:
        raise InvalidParameter(str(exc)) from None


def _equals(params, columns: dict[str, Column]):
    pairs = []
    for name in params.keys():
        if name in RESERVED:
            continue
        column = columns.get(name)
        if column is None:
            continue  # a gateway's key (PASSED_THROUGH): kept in links, never a filter
        pairs.append((name, _typed(params.get(name), column, parameter=name)))
    return tuple(pairs)


def _typed(value: str, column: Column, *, parameter: str):
    try:
        if column.type == "integer":
            return int(value)
        if column.type == "number":
            return float(value)
        if column.type == "boolean":
            return {"true": True, "false": False}[value.lower()]
        if column.type == "date-time":
            return _instant(value)
    except (ValueError, KeyError):
        raise InvalidParameter(f"{parameter}: {value!r} is not a valid {column.type}") from None
    return value


def _sortby(value, columns: dict[str, Column]):
    if value is None or value == "":
        return ()
    keys = []
    for part in value.split(","):
        part = part.strip()
        descending = part.startswith("-")
        name = part.lstrip("+-").strip()
        if " " in name:  # "name DESC" style
            name, _, direction = name.partition(" ")
            descending = direction.strip().upper() == "DESC"
        if name not in columns:
            raise InvalidParameter(f"sortby: unknown property {name!r}; sortable: {', '.join(columns)}")
        keys.append((name, descending))
    return tuple(keys)


def _properties(value, columns: dict[str, Column]):
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise InvalidParameter(f"properties: unknown {', '.join(map(repr, unknown))}; available: {', '.join(columns)}")
    return names


# ---------------------------------------------------------------- SQL


def queryables(layer: Layer, role: str) -> dict:
    """The layer's queryable properties for the CQL2 compiler, as the caller may see them."""
    from layers.cql import Queryable

    fields = {c.name: Queryable(c.name, sql.Identifier("t", c.name), c.type) for c in layer.columns_for(role)}
    fields["geometry"] = Queryable("geometry", sql.Identifier("t", "geom"), "geometry")
    return fields


def feature_sql(layer: Layer, role: str, query: FeatureQuery) -> sql.Composable:
    """The GeoJSON text of one feature of row ``t``, built in PostGIS (a sealed blob as hex: :func:`open_sealed`)."""
    columns = layer.columns_for(role)
    if query.properties is not None:
        columns = tuple(c for c in columns if c.name in query.properties)
    props = _properties_sql(columns)
    if sealed_names(layer, role, query):
        blob = sql.SQL("{} || coalesce(to_json(encode({}, 'hex'))::text, 'null')").format(
            sql.Literal(("," if columns else "") + json.dumps(SEALED_COLUMN) + ":"), sql.Identifier("t", SEALED_COLUMN))
        props = blob if not columns else sql.SQL("{} || {}").format(props, blob)
    return sql.SQL(
        """'{{"type":"Feature","id":' || to_json(t.id)::text || ',"geometry":' || {geometry}"""
        """ || ',"properties":{{' || {props} || '}}}}'"""
    ).format(geometry=_geometry_sql(query), props=props)


def sealed_names(layer: Layer, role: str, query: FeatureQuery) -> tuple[str, ...]:
    """The sealed properties this query returns (none unless the layer has them and the role sees them)."""
    names = tuple(c.name for c in layer.sealed_for(role))
    if query.properties is not None:
        names = tuple(n for n in names if n in query.properties)
    return names


def open_sealed(layer: Layer, role: str, query: FeatureQuery, features: bytes) -> bytes:
    """Features text with each sealed blob replaced by the properties it holds (opened in this process).

    Called only on rows the statement that read them has already written to the access log.
    A blob that does not open (another key, another record's blob) is a 500 that says so.
    """
    names = sealed_names(layer, role, query)
    if not names or not features:
        return features
    parsed = json.loads(b"[" + features + b"]")
    for feature in parsed:
        properties = feature["properties"]
        blob = properties.pop(SEALED_COLUMN, None)
        try:
            opened = {} if blob is None else layer.sealed.open(feature["id"], bytes.fromhex(blob))
        except UnreadablePersonalData as exc:
            log.error("%s", exc)
            raise OGCError(f"the personal fields of {layer.id} {feature['id']} could not be decrypted with the "
                           "server's key (ONEMAP_PII_KEY); the server's log says more") from None
        properties.update({name: opened.get(name) for name in names})
    return json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))[1:-1].encode()


def _properties_sql(columns) -> sql.Composable:
    """``"name":value`` pairs concatenated as text (several times cheaper than json_build_object)."""
    if not columns:
        return sql.SQL("''")
    pairs = []
    for i, column in enumerate(columns):
        key = sql.Literal(("," if i else "") + json.dumps(column.name, ensure_ascii=False) + ":")
        value = sql.Identifier("t", column.name)
        if column.type in ("integer", "boolean"):  # their text form is already JSON
            text = sql.SQL("{}::text").format(value)
        else:  # strings, numbers (NaN becomes a string) and times, escaped by PostgreSQL's JSON code
            text = sql.SQL("to_json({})::text").format(value)
        pairs.append(sql.SQL("{} || coalesce({}, 'null')").format(key, text))
    return sql.SQL(" || ").join(pairs)


def _geometry_sql(query: FeatureQuery) -> sql.Composable:
    if query.skip_geometry:
        return sql.SQL("'null'")
    target = query.crs
    geom = sql.SQL("t.geom")
    if target.srid != 4326:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(target.srid))
    if target.north_first:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    return sql.SQL("coalesce(ST_AsGeoJSON({}, {}), 'null')").format(geom, sql.Literal(target.decimals))


def where_sql(layer: Layer, role: str, query: FeatureQuery) -> tuple[sql.Composable, list]:
    """The WHERE clause (or empty) and its parameters (:func:`where_sql_params`, in the same order)."""
    clauses: list[sql.Composable] = []
    if query.bbox:
        envelope = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, {})").format(sql.Literal(query.bbox_crs.srid))
        if query.bbox_crs.srid != 4326:
            envelope = sql.SQL("ST_Transform({}, 4326)").format(envelope)
        clauses.append(sql.SQL("ST_Intersects(t.geom, {})").format(envelope))
    if query.interval:
        start, end = query.interval
        column = sql.Identifier("t", layer.time_field)
        if start is not None:
            clauses.append(sql.SQL("{} >= %s").format(column))
        if end is not None:
            clauses.append(sql.SQL("{} <= %s").format(column))
    for name, _ in query.equals:
        clauses.append(sql.SQL("{} = %s").format(sql.Identifier("t", name)))
    if query.ids is not None:
        clauses.append(sql.SQL("t.id = ANY(%s)"))
    if query.filter is not None:
        clauses.append(_filter_clause(layer, role, query))
    params = where_sql_params(layer, query)
    if not clauses:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params


def _filter_clause(layer: Layer, role: str, query: FeatureQuery) -> sql.Composable:
    from layers.cql import FilterError, filter_sql

    try:
        clause = filter_sql(query.filter, queryables=queryables(layer, role), filter_crs=query.filter_crs)
    except FilterError as exc:
        raise InvalidParameter(str(exc)) from None
    # CQL literals are inlined by the compiler; keep '%' in them from reading as placeholders
    return sql.SQL("({})").format(_EscapedPercent(clause))


class _EscapedPercent(sql.Composable):
    """A composed clause with ``%`` doubled, to sit beside ``%s`` placeholders."""

    def __init__(self, inner: sql.Composable):
        super().__init__(inner)

    def as_bytes(self, context=None) -> bytes:
        return self._obj.as_bytes(context).replace(b"%", b"%%")


def order_sql(query: FeatureQuery) -> sql.Composable:
    keys = [
        sql.SQL("{} {} NULLS LAST").format(sql.Identifier("t", name), sql.SQL("DESC" if desc else "ASC"))
        for name, desc in query.sortby
    ]
    keys.append(sql.SQL("t.id"))  # a total order, so pages neither skip nor repeat features
    return sql.SQL(" ORDER BY ") + sql.SQL(", ").join(keys)


@dataclass(frozen=True)
class Encoding:
    """How a page's features are written: each feature's text built in PostGIS, and what joins them."""

    name: str
    feature: Callable[[Layer, str, FeatureQuery], sql.Composable]
    separator: str


GEOJSON_ENCODING = Encoding("geojson", feature_sql, ",")


def items_statement(
    layer: Layer, role: str, query: FeatureQuery, *, cached_count: tuple[int, int] | None = None,
    access_log: dict | None = None, encoding: Encoding = GEOJSON_ENCODING,
) -> tuple[sql.Composable, list]:
    """One statement: (returned, features text, matched, version) for a page of ``layer``."""
    where, where_params = where_sql(layer, role, query)
    view = sql.Identifier(layer.view)
    page = sql.SQL("SELECT t.id, {feature} AS f FROM {view} t{where}{order} LIMIT %s OFFSET %s").format(
        feature=encoding.feature(layer, role, query), view=view, where=where, order=order_sql(query)
    )
    count = sql.SQL("(SELECT count(*) FROM {view} t{where})").format(view=view, where=where)
    version = sql.SQL("(SELECT version FROM layer_versions WHERE layer = %s)")
    # referenced once, the page is planned inline: one pass from the index to the aggregate below
    ctes = [sql.SQL("page AS ({})").format(page)]
    if cached_count is not None:
        matched = sql.SQL("CASE WHEN {version} = %s THEN %s ELSE {count} END").format(version=version, count=count)
    else:
        matched = count
    if access_log is not None:  # logged row by row too, so the page and its count are computed once
        ctes = [sql.SQL("page AS MATERIALIZED ({})").format(page),
                sql.SQL("counted AS MATERIALIZED (SELECT {} AS n)").format(matched),
                _access_log_cte(), _query_log_cte()]
        matched = sql.SQL("(SELECT n FROM counted)")
    # the aggregate reads the page in its order (no join above it to reorder it), counting as it joins
    statement = sql.SQL(
        "WITH {ctes} SELECT a.n, a.f, {matched}, {version} "
        "FROM (SELECT count(*) AS n, coalesce(string_agg(page.f, {separator}), '') AS f FROM page) a"
    ).format(ctes=sql.SQL(", ").join(ctes), matched=matched, version=version,
             separator=sql.Literal(encoding.separator))
    return statement, _page_parameters(layer, query, where_params, cached_count, access_log)


def _access_log_cte() -> sql.Composable:
    return sql.SQL(
        "logged AS (INSERT INTO access_log (user_id, username, role, route, collection, record_id, remote_addr) "
        "SELECT %s::bigint, %s::text, %s::text, %s::text, %s::text, page.id::text, %s::inet FROM page)"
    )


def _query_log_cte() -> sql.Composable:
    return sql.SQL(
        "logged_query AS (INSERT INTO access_log "
        "(user_id, username, role, route, collection, remote_addr, query, matched) "
        "SELECT %s::bigint, %s::text, %s::text, %s::text, %s::text, %s::inet, %s::text, n FROM counted)"
    )


def _log_parameters(layer: Layer, access_log: dict) -> list:
    """The values of one :func:`_access_log_cte` row (the caller, the route, the layer, the address)."""
    return [access_log["user_id"], access_log["username"], access_log["role"], access_log["route"],
            layer.id, access_log["remote_addr"]]


def item_statement(layer: Layer, role: str, query: FeatureQuery, *, access_log: dict | None = None):
    """One statement returning the feature text of one id, or no row."""
    select = sql.SQL("SELECT t.id, {feature} AS f FROM {view} t WHERE t.id = %s").format(
        feature=feature_sql(layer, role, query), view=sql.Identifier(layer.view)
    )
    if access_log is None:
        return select, []
    statement = sql.SQL("WITH page AS MATERIALIZED ({select}), {log} SELECT id, f FROM page").format(
        select=select, log=_access_log_cte()
    )
    return statement, _log_parameters(layer, access_log)


# ---------------------------------------------------------------- running


class _LRU:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int):
        self._entries: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


class CountCache(_LRU):
    """Exact ``numberMatched`` per (layer, scope, filter): ``(version, count)``, valid while the layer's version holds."""

    def __init__(self, size: int = 4096):
        super().__init__(size)

    def put(self, key, version: int | None, count: int | None) -> None:
        if version is not None and count is not None:
            super().put(key, (version, count))


COUNTS = CountCache()


class _StatementCache(_LRU):
    """Rendered SQL per query shape: composing a statement costs more than running it."""

    def __init__(self, size: int = 1024):
        super().__init__(size)

    def text(self, key, build) -> str:
        text = self.get(key)
        if text is None:
            text = build().as_string(None)
            self.put(key, text)
        return text


STATEMENTS = _StatementCache()
QUERIES = _LRU(1024)  # (layer id, role, parameters) -> (layer, FeatureQuery): see parse_query


def _shape(query: FeatureQuery) -> tuple:
    """Everything about a query that changes its SQL text (values go as parameters)."""
    return (
        query.bbox is not None, query.bbox_crs.srid,
        None if query.interval is None else (query.interval[0] is not None, query.interval[1] is not None),
        tuple(name for name, _ in query.equals), query.sortby, query.properties, query.skip_geometry,
        query.crs.uri, query.filter, query.filter_crs, query.ids is not None,
    )


def read_page(layer: Layer, identity, query: FeatureQuery, *, access_log: dict | None = None,
              encoding: Encoding = GEOJSON_ENCODING) -> Page:
    """One page of ``layer`` as ``identity`` may see it (one statement, one round trip)."""
    from layers.access import run_reads

    return run_reads(page_steps(layer, identity, query, access_log=access_log, encoding=encoding))


def page_steps(layer: Layer, identity, query: FeatureQuery, *, access_log: dict | None = None,
               encoding: Encoding = GEOJSON_ENCODING) -> Generator[Read, tuple | None, Page]:
    """:func:`read_page` as steps: yields its one read, is sent the row, returns the page (see ``run_reads``)."""
    from layers.access import Read

    role = identity.role
    shape = (layer.id, role, _shape(query))
    where_text = STATEMENTS.text(("where", *shape), lambda: where_sql(layer, role, query)[0])
    where_params = where_sql_params(layer, query)
    count_key = (layer.id, role, identity.grid_id, where_text, tuple(map(repr, where_params)))
    cached = COUNTS.get(count_key)
    text = STATEMENTS.text(
        ("page", *shape, cached is not None, access_log is not None, encoding.name),
        lambda: items_statement(layer, role, query, cached_count=cached, access_log=access_log,
                                encoding=encoding)[0],
    )
    params = _page_parameters(layer, query, where_params, cached, access_log)
    returned, features, matched, version = yield Read(identity, text, params, raw=_FEATURES_COLUMN,
                                                      generic_plan=_plan_independent(query))
    COUNTS.put(count_key, version, matched)
    if encoding is GEOJSON_ENCODING:  # another encoding (WFS's GML) writes no sealed personal fields at all
        features = open_sealed(layer, role, query, features)
    return Page(features=features, returned=returned, matched=matched, version=version)


# the page and item statements' second column, the features' text: kept as bytes (see scoped_fetchone)
_FEATURES_COLUMN = frozenset({1})


def _plan_independent(query: FeatureQuery) -> bool:
    """Whether one plan serves every value of the query's parameters (see :func:`layers.access.scoped_fetchone`).

    A bbox or a time range may hold one row or the whole layer, and the best plan for a
    page differs (walk the ids and stop, or collect the matches and sort them), so those
    are planned with their values; limits, offsets, equalities and CQL2 filters (whose
    literals are in the statement) are not.
    """
    return query.bbox is None and query.interval is None


def read_count(layer: Layer, identity, query: FeatureQuery) -> int:
    """How many features of ``layer`` match ``query`` for ``identity`` (WFS resultType=hits); reads none of them."""
    from layers.access import scoped_fetchone

    role = identity.role
    text = STATEMENTS.text(
        ("count", layer.id, role, _shape(query)),
        lambda: sql.SQL("SELECT count(*) FROM {} t").format(sql.Identifier(layer.view)) + where_sql(layer, role, query)[0],
    )
    with database_errors():
        return scoped_fetchone(identity, text, where_sql_params(layer, query))[0]


def where_sql_params(layer: Layer, query: FeatureQuery) -> list:
    """The parameters of :func:`where_sql`'s clause, in order, without composing its SQL."""
    params: list = list(query.bbox or ())
    if query.interval:
        params += [t for t in query.interval if t is not None]
    params += [value for _, value in query.equals]
    if query.ids is not None:
        params.append(list(query.ids))
    return params


def _page_parameters(layer, query, where_params, cached, access_log) -> list:
    """The parameters of :func:`items_statement`, in the order its placeholders appear."""
    params = [*where_params, query.limit, query.offset]
    params += [layer.id, cached[0], cached[1], *where_params] if cached is not None else [*where_params]
    if access_log is not None:
        params += _log_parameters(layer, access_log)
        params += [*_log_parameters(layer, access_log), access_log.get("query") or ""]
    return params + [layer.id]


def read_item(layer: Layer, identity, item_id: str, query: FeatureQuery, *, access_log=None) -> bytes:
    """The feature text of one id (UTF-8 bytes); NotFound when it does not exist or the caller may not see it."""
    from layers.access import run_reads

    return run_reads(item_steps(layer, identity, item_id, query, access_log=access_log))


def item_steps(layer: Layer, identity, item_id: str, query: FeatureQuery, *,
               access_log=None) -> Generator[Read, tuple | None, bytes]:
    """:func:`read_item` as steps: yields its one read, is sent the row, returns the text (see ``run_reads``)."""
    from layers.access import Read

    key = item_key(layer, item_id)
    text = STATEMENTS.text(
        ("item", layer.id, identity.role, _shape(query), access_log is not None),
        lambda: item_statement(layer, identity.role, query, access_log=access_log)[0],
    )
    params = [key] if access_log is None else [key, *_log_parameters(layer, access_log)]
    row = yield Read(identity, text, params, generic_plan=True, raw=_FEATURES_COLUMN)
    if row is None:
        raise NotFound(f"collection {layer.id!r} has no item {item_id!r}")
    return open_sealed(layer, identity.role, query, row[1])


def item_key(layer: Layer, item_id: str):
    """The id as the layer's key holds it: text for aggregate layers, else an integer (NotFound if it is none)."""
    if layer.view_body:  # aggregate layers have text ids
        return item_id
    try:
        return int(item_id)
    except ValueError:
        raise NotFound(f"collection {layer.id!r} has no item {item_id!r} (ids are integers)") from None


# ---------------------------------------------------------------- documents


def collection_document(page: Page, *, query: FeatureQuery, base: str, params: dict[str, str]) -> bytes:
    """The FeatureCollection bytes: a small JSON head from Python, the features from PostGIS."""
    head = {
        "type": "FeatureCollection",
        "numberReturned": page.returned,
        "timeStamp": _time_stamp(int(time.time())),
        "links": page_links(page, query=query, base=base, params=params),
    }
    if page.matched is not None:
        head["numberMatched"] = page.matched
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":")).encode()
    return b"".join((text[:-1], b',"features":[', page.features, b"]}"))


@functools.lru_cache(maxsize=4)
def _time_stamp(second: int) -> str:
    return datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def page_links(page: Page, *, query: FeatureQuery, base: str, params: dict[str, str]) -> list[dict]:
    """self / next / prev / alternate links that keep every query parameter the client sent."""

    encoded = {k: _query_pair(k, v) for k, v in params.items()}  # each pair once, not once per link

    def url(**changes) -> str:
        pairs = [pair for k, pair in encoded.items() if k not in changes]
        pairs += [_query_pair(k, v) for k, v in changes.items() if v is not None]
        return base + ("?" + "&".join(pairs) if pairs else "")

    links = [
        {"rel": "self", "type": GEOJSON, "title": "this page", "href": url(f="json")},
        {"rel": "alternate", "type": "text/html", "title": "this page as HTML", "href": url(f="html")},
    ]
    more = page.returned == query.limit and (page.matched is None or query.offset + query.limit < page.matched)
    if more:
        links.append({"rel": "next", "type": GEOJSON, "title": "next page",
                      "href": url(offset=str(query.offset + query.limit), f="json")})
    if query.offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "title": "previous page",
                      "href": url(offset=str(max(0, query.offset - query.limit)), f="json")})
    links.append({"rel": "collection", "type": "application/json", "title": "the collection",
                  "href": base.rsplit("/items", 1)[0] + "?f=json"})
    return links


def _query_pair(name: str, value: str) -> str:
    """``name=value`` as ``urlencode`` writes it (``+`` for spaces, ``,`` and ``:`` kept)."""
    if len(name) + len(value) <= 64:  # limits, offsets, formats, short filters: asked again and again
        return _short_query_pair(name, value)
    return urlencode({name: value}, safe=",:")


@functools.lru_cache(maxsize=4096)
def _short_query_pair(name: str, value: str) -> str:
    return urlencode({name: value}, safe=",:")


def item_document(feature_text: bytes, *, base: str, collection_url: str) -> bytes:
    links = [
        {"rel": "self", "type": GEOJSON, "href": base + "?f=json"},
        {"rel": "alternate", "type": "text/html", "href": base + "?f=html"},
        {"rel": "collection", "type": "application/json", "href": collection_url + "?f=json"},
    ]
    return b"".join((feature_text[:-1], b',"links":', json.dumps(links).encode(), b"}"))
