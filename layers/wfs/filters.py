"""Filter Encoding (FES 2.0, and the OGC Filter 1.x QGIS 3.22 also writes) read into the CQL2 tree.

A filter becomes the same expression tree a CQL2 filter does (:mod:`layers.cql`), so the
OGC API's compiler turns it into SQL over the same queryables: the WFS offers no property,
operator or value the OGC API would refuse. Resource ids (``fes:ResourceId``,
``ogc:FeatureId``, ``ogc:GmlObjectId``) become a list of ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from layers import cql
from layers.catalogue import Layer
from layers.errors import InvalidParameter, NotFound
from layers.wfs.gml import geometry_from_gml
from layers.wfs.xml import MAX_FILTER_BYTES, attribute, children, local, parse, text

_COMPARISONS = {
    "PropertyIsEqualTo": "=", "PropertyIsNotEqualTo": "<>", "PropertyIsLessThan": "<",
    "PropertyIsGreaterThan": ">", "PropertyIsLessThanOrEqualTo": "<=", "PropertyIsGreaterThanOrEqualTo": ">=",
}
_SPATIAL = {
    "Intersects": "s_intersects", "Within": "s_within", "Contains": "s_contains", "Disjoint": "s_disjoint",
    "Touches": "s_touches", "Crosses": "s_crosses", "Overlaps": "s_overlaps", "Equals": "s_equals",
}
_ID_ELEMENTS = {"ResourceId", "FeatureId", "GmlObjectId"}
_GEOMETRY_NAMES = {"geometry", "geom", "the_geom", "msGeometry"}


@dataclass(frozen=True)
class Selection:
    """What a filter selects: an expression over the queryables, or a list of ids (or both None: everything)."""

    expression: object | None = None
    ids: tuple[int, ...] | None = None


def filter_from_text(value: str, *, layer: Layer) -> Selection:
    """A FILTER parameter's XML (one fes:Filter) as a selection of ``layer``."""
    root = parse(value, what="FILTER", limit=MAX_FILTER_BYTES)
    return filter_from_element(root, layer=layer)


def filter_from_element(element, *, layer: Layer) -> Selection:
    """A ``Filter`` element (or a bare operator) as a selection of ``layer``."""
    if local(element) == "Filter":
        operators = children(element)
        if not operators:
            raise InvalidParameter("FILTER: the Filter element is empty; leave FILTER out to select everything")
    else:
        operators = [element]
    if all(local(op) in _ID_ELEMENTS for op in operators):
        return Selection(ids=resource_ids(operators, layer=layer))
    if len(operators) > 1:
        raise InvalidParameter("FILTER: a Filter holds one operator (combine several with And or Or)")
    return Selection(expression=_predicate(operators[0], layer=layer, depth=0))


def resource_ids(elements, *, layer: Layer, strict: bool = False) -> tuple[int, ...]:
    """The integer ids of ``<layer>.<id>`` resource ids; ids of other layers select nothing (or 404 when ``strict``)."""
    ids = []
    for element in elements:
        value = attribute(element, "rid") or attribute(element, "fid") or attribute(element, "id") or ""
        found = parse_resource_id(value, layer=layer)
        if found is None:
            if strict:
                raise NotFound(f"{layer.id} has no feature {value!r}")
            continue
        ids.append(found)
    return tuple(ids)


def parse_resource_id(value: str, *, layer: Layer) -> int | None:
    """``incidents.12`` (or ``12``) as 12 for the layer ``incidents``; None when it names no feature of it."""
    name, dot, number = value.strip().rpartition(".")
    if dot and name != layer.id:
        return None
    try:
        found = int(number)
    except ValueError:
        return None
    return found if 0 < found < 2**63 else None


MAX_DEPTH = 50


def _predicate(element, *, layer: Layer, depth: int):
    if depth > MAX_DEPTH:
        raise InvalidParameter(f"FILTER: nested deeper than {MAX_DEPTH} levels; simplify it")
    name = local(element)
    if name in ("And", "Or"):
        operands = tuple(_predicate(c, layer=layer, depth=depth + 1) for c in children(element))
        if len(operands) < 2:
            raise InvalidParameter(f"FILTER: {name} needs at least two operators")
        return (cql.And if name == "And" else cql.Or)(operands)
    if name == "Not":
        operands = children(element)
        if len(operands) != 1:
            raise InvalidParameter("FILTER: Not holds exactly one operator")
        return cql.Not(_predicate(operands[0], layer=layer, depth=depth + 1))
    if name in _COMPARISONS:
        left, right = _two_values(element, name)
        if attribute(element, "matchCase") == "false":
            left, right = cql.Function("casei", (left,)), cql.Function("casei", (right,))
        return cql.Comparison(_COMPARISONS[name], left, right)
    if name == "PropertyIsLike":
        left, right = _two_values(element, name)
        if not isinstance(right, cql.Literal):
            raise InvalidParameter("FILTER: PropertyIsLike compares a property with a Literal pattern")
        pattern = _like_pattern(str(right.value), wild=attribute(element, "wildCard") or "*",
                                single=attribute(element, "singleChar") or "?",
                                escape=attribute(element, "escapeChar") or "\\")
        if attribute(element, "matchCase") == "false":
            return cql.Like(cql.Function("casei", (left,)), cql.Function("casei", (cql.Literal(pattern),)))
        return cql.Like(left, cql.Literal(pattern))
    if name in ("PropertyIsNull", "PropertyIsNil"):
        values = [_value(c) for c in children(element)]
        if len(values) != 1:
            raise InvalidParameter(f"FILTER: {name} holds one ValueReference")
        return cql.IsNull(values[0])
    if name == "PropertyIsBetween":
        parts = children(element)
        lower, upper = _bound(element, "LowerBoundary"), _bound(element, "UpperBoundary")
        subject = [c for c in parts if local(c) not in ("LowerBoundary", "UpperBoundary")]
        if len(subject) != 1 or lower is None or upper is None:
            raise InvalidParameter("FILTER: PropertyIsBetween holds a ValueReference, a LowerBoundary and an UpperBoundary")
        return cql.Between(_value(subject[0]), lower, upper)
    if name == "BBOX":
        return cql.Spatial("s_intersects", cql.Property("geometry"), _geometry_operand(element, bbox=True))
    if name in _SPATIAL:
        return cql.Spatial(_SPATIAL[name], cql.Property("geometry"), _geometry_operand(element, bbox=False))
    if name in _ID_ELEMENTS:
        raise InvalidParameter("FILTER: resource ids cannot be combined with other operators; send them alone")
    raise InvalidParameter(
        f"FILTER: the operator {name!r} is not supported; use the comparison, PropertyIsLike, PropertyIsNull, "
        "PropertyIsBetween, And/Or/Not, BBOX and the spatial operators listed in the capabilities"
    )


def _two_values(element, name: str):
    values = [_value(c) for c in children(element)]
    if len(values) != 2:
        raise InvalidParameter(f"FILTER: {name} compares two values (a ValueReference and a Literal)")
    return values


def _value(element):
    name = local(element)
    if name in ("ValueReference", "PropertyName"):
        return cql.Property(_property_name(text(element)))
    if name == "Literal":
        return cql.Literal(text(element))
    raise InvalidParameter(f"FILTER: expected a ValueReference or a Literal, got {name!r}")


def _property_name(value: str) -> str:
    """A ValueReference as a queryable name: its namespace prefix and a leading feature type dropped."""
    name = value.strip().rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if not name:
        raise InvalidParameter("FILTER: an empty ValueReference")
    return "geometry" if name in _GEOMETRY_NAMES else name


def _bound(element, name: str):
    for boundary in children(element, name):
        values = [_value(c) for c in children(boundary)]
        if len(values) == 1:
            return values[0]
    return None


def _geometry_operand(element, *, bbox: bool):
    parts = [c for c in children(element) if local(c) not in ("ValueReference", "PropertyName")]
    for reference in children(element):
        if local(reference) in ("ValueReference", "PropertyName") and _property_name(text(reference)) != "geometry":
            raise InvalidParameter(f"FILTER: {local(element)} applies to the geometry, not {text(reference)!r}")
    if len(parts) != 1:
        raise InvalidParameter(f"FILTER: {local(element)} holds one geometry{' or Envelope' if bbox else ''}")
    geometry = _envelope_geometry(parts[0]) if local(parts[0]) in ("Envelope", "Box") else None
    if geometry is None:
        geometry = geometry_from_gml(parts[0])
    return _cql_geometry(geometry)


def _envelope_geometry(element):
    """A gml:Envelope (or GML 2 Box) as a polygon in EPSG:4326."""
    from lxml import etree

    from layers.wfs.gml import wfs_crs

    corners = [text(c) for c in children(element) if local(c) in ("lowerCorner", "upperCorner")]
    if len(corners) != 2:
        coordinates = [text(c) for c in children(element) if local(c) == "coordinates"]
        if len(coordinates) == 1:
            corners = [pair.replace(",", " ") for pair in coordinates[0].split()]
    try:
        (a1, b1), (a2, b2) = [tuple(float(v) for v in corner.split()[:2]) for corner in corners]
    except ValueError:
        raise InvalidParameter("FILTER: an Envelope needs a lowerCorner and an upperCorner of two numbers each") from None
    crs = wfs_crs(attribute(element, "srsName"), parameter="srsName of the Envelope")
    if crs.north_first:
        a1, b1, a2, b2 = b1, a1, b2, a2
    ring = f"{a1} {b1} {a2} {b1} {a2} {b2} {a1} {b2} {a1} {b1}"
    polygon = etree.fromstring(
        f'<Polygon srsName="EPSG:{crs.srid}"><exterior><LinearRing><posList>{ring}</posList>'
        "</LinearRing></exterior></Polygon>"
    )
    return geometry_from_gml(polygon)


def _cql_geometry(geometry):
    import json

    document = json.loads(geometry.json)
    return cql.Geometry(document["type"], _frozen(document["coordinates"]))


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _like_pattern(pattern: str, *, wild: str, single: str, escape: str) -> str:
    """An FES pattern as an SQL LIKE pattern (backslash escapes)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if escape and ch == escape and i + 1 < len(pattern):
            out.append(_literal_char(pattern[i + 1]))
            i += 2
            continue
        out.append("%" if ch == wild else "_" if ch == single else _literal_char(ch))
        i += 1
    return "".join(out)


def _literal_char(ch: str) -> str:
    return "\\" + ch if ch in "%_\\" else ch
