"""WFS 2.0 reads over the layer catalogue: capabilities, feature type schemas, GetFeature in GML 3.2.

A caller sees in the capabilities exactly the layers the OGC API lists for their role, and
each layer's properties as the OGC API shows them to that role. GetFeature runs the OGC
API's own page statement (:func:`layers.features.read_page`: the layer's view, row-level
security, the access log of personal layers), with each feature's GML written by PostGIS
(``ST_AsGML``, ``xmlforest`` escaping the values) instead of its GeoJSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

from psycopg import sql

from layers.catalogue import LAYERS, Layer
from layers.errors import InvalidParameter
from layers.features import Encoding, FeatureQuery, read_count, read_page
from layers.wfs.gml import offered_srs
from layers.wfs.xml import APP, APP_PREFIX, FES, GML, OWS, WFS, XLINK, XSD, XSI, escape

VERSION = "2.0.0"
DEFAULT_COUNT = 1000
MAX_COUNT = 10_000
GML32 = "application/gml+xml; version=3.2"
OUTPUT_FORMATS = (GML32, "text/xml; subtype=gml/3.2", "text/xml; subtype=gml/3.2.1")

_XSD_TYPES = {"string": "string", "integer": "long", "number": "double", "boolean": "boolean",
              "date-time": "dateTime"}
_GML_PROPERTY_TYPES = {"Point": "PointPropertyType", "Polygon": "SurfacePropertyType",
                       "MultiPolygon": "MultiSurfacePropertyType", "LineString": "CurvePropertyType"}
GEOMETRY = "geometry"  # the geometry property's name in every feature type
_SPATIAL_OPERATORS = ("BBOX", "Intersects", "Within", "Contains", "Disjoint", "Touches", "Crosses", "Overlaps", "Equals")
_COMPARISON_OPERATORS = ("PropertyIsEqualTo", "PropertyIsNotEqualTo", "PropertyIsLessThan", "PropertyIsGreaterThan",
                         "PropertyIsLessThanOrEqualTo", "PropertyIsGreaterThanOrEqualTo", "PropertyIsLike",
                         "PropertyIsNull", "PropertyIsBetween")


def readable_layers(role: str) -> list[Layer]:
    return [layer for layer in LAYERS if layer.readable_by(role)]


def type_name(layer: Layer) -> str:
    return f"{APP_PREFIX}:{layer.id}"


def editable_actions(layer: Layer, role: str) -> list[str]:
    """The transaction actions ``role`` may take on ``layer`` (Insert, Update, Delete)."""
    editing = layer.editing
    if editing is None:
        return []
    # Delete for a role that may withdraw its own new incidents too: which rows, the database decides per row
    return [name for name, roles in (("Insert", editing.create_roles), ("Update", editing.update_roles),
                                     ("Delete", editing.delete_roles | editing.withdraw_roles)) if role in roles]


# ---------------------------------------------------------------- GetCapabilities


def capabilities_document(*, role: str, base: str, extents: dict[str, tuple] | None = None) -> bytes:
    """The WFS 2.0 capabilities for ``role``: its layers, and Transaction when it may edit any of them."""
    layers = readable_layers(role)
    transactional = any(editable_actions(layer, role) for layer in layers)
    url = escape(base)
    operations = ["GetCapabilities", "DescribeFeatureType", "GetFeature"] + (["Transaction"] if transactional else [])
    ops_xml = "".join(
        f'<ows:Operation name="{name}"><ows:DCP><ows:HTTP><ows:Get xlink:href="{url}?"/>'
        f'<ows:Post xlink:href="{url}"/></ows:HTTP></ows:DCP>'
        + (_allowed("outputFormat", OUTPUT_FORMATS) if name == "GetFeature" else "")
        + (_allowed("resultType", ("results", "hits")) if name == "GetFeature" else "")
        + "</ows:Operation>"
        for name in operations
    )
    constraints = {
        "ImplementsBasicWFS": "TRUE", "ImplementsTransactionalWFS": "TRUE" if transactional else "FALSE",
        "ImplementsLockingWFS": "FALSE", "KVPEncoding": "TRUE", "XMLEncoding": "TRUE", "SOAPEncoding": "FALSE",
        "ImplementsInheritance": "FALSE", "ImplementsRemoteResolve": "FALSE", "ImplementsResultPaging": "TRUE",
        "ImplementsStandardJoins": "FALSE", "ImplementsSpatialJoins": "FALSE", "ImplementsTemporalJoins": "FALSE",
        "ImplementsFeatureVersioning": "FALSE", "ManageStoredQueries": "FALSE",
    }
    constraints_xml = "".join(_constraint(name, value) for name, value in constraints.items())
    constraints_xml += _constraint("CountDefault", str(DEFAULT_COUNT))
    types = "".join(_feature_type(layer, role, (extents or {}).get(layer.id)) for layer in layers)
    body = (
        f'<wfs:WFS_Capabilities version="{VERSION}" xmlns:wfs="{WFS}" xmlns:ows="{OWS}" xmlns:fes="{FES}" '
        f'xmlns:gml="{GML}" xmlns:xlink="{XLINK}" xmlns:xsi="{XSI}" xmlns:{APP_PREFIX}="{APP}" '
        f'xsi:schemaLocation="{WFS} http://schemas.opengis.net/wfs/2.0/wfs.xsd">'
        "<ows:ServiceIdentification><ows:Title>Community One Map (社区一张图)</ows:Title>"
        "<ows:Abstract>The published layers of Pingdeng Street, as the OGC API at /ogc/ serves them.</ows:Abstract>"
        "<ows:ServiceType>WFS</ows:ServiceType><ows:ServiceTypeVersion>2.0.0</ows:ServiceTypeVersion>"
        "<ows:Fees>NONE</ows:Fees><ows:AccessConstraints>NONE</ows:AccessConstraints></ows:ServiceIdentification>"
        "<ows:ServiceProvider><ows:ProviderName>Xidajie subdistrict, Guancheng district, Zhengzhou</ows:ProviderName>"
        "</ows:ServiceProvider>"
        f"<ows:OperationsMetadata>{ops_xml}{constraints_xml}</ows:OperationsMetadata>"
        f"<wfs:FeatureTypeList>{types}</wfs:FeatureTypeList>"
        f"{_filter_capabilities()}</wfs:WFS_Capabilities>"
    )
    return _document(body)


def _allowed(name: str, values) -> str:
    listed = "".join(f"<ows:Value>{escape(v)}</ows:Value>" for v in values)
    return f'<ows:Parameter name="{name}"><ows:AllowedValues>{listed}</ows:AllowedValues></ows:Parameter>'


def _constraint(name: str, value: str) -> str:
    return f'<ows:Constraint name="{name}"><ows:NoValues/><ows:DefaultValue>{value}</ows:DefaultValue></ows:Constraint>'


def _feature_type(layer: Layer, role: str, extent) -> str:
    srs = offered_srs()
    other = "".join(f"<wfs:OtherCRS>{s}</wfs:OtherCRS>" for s in srs[1:])
    keywords = "".join(f"<ows:Keyword>{escape(k)}</ows:Keyword>" for k in layer.keywords)
    west, south, east, north = extent or (-180, -90, 180, 90)
    title = escape(layer.title + (f" ({layer.title_zh})" if layer.title_zh else ""))
    return (
        f"<wfs:FeatureType><wfs:Name>{type_name(layer)}</wfs:Name><wfs:Title>{title}</wfs:Title>"
        f"<wfs:Abstract>{escape(layer.description)}</wfs:Abstract>"
        + (f"<ows:Keywords>{keywords}</ows:Keywords>" if keywords else "")
        + f"<wfs:DefaultCRS>{srs[0]}</wfs:DefaultCRS>{other}"
        f"<wfs:OutputFormats>{''.join(f'<wfs:Format>{escape(f)}</wfs:Format>' for f in OUTPUT_FORMATS)}</wfs:OutputFormats>"
        f"<ows:WGS84BoundingBox><ows:LowerCorner>{west} {south}</ows:LowerCorner>"
        f"<ows:UpperCorner>{east} {north}</ows:UpperCorner></ows:WGS84BoundingBox></wfs:FeatureType>"
    )


def _filter_capabilities() -> str:
    conformance = {
        "ImplementsQuery": "TRUE", "ImplementsAdHocQuery": "TRUE", "ImplementsFunctions": "FALSE",
        "ImplementsResourceId": "TRUE", "ImplementsMinStandardFilter": "TRUE", "ImplementsStandardFilter": "TRUE",
        "ImplementsMinSpatialFilter": "TRUE", "ImplementsSpatialFilter": "TRUE", "ImplementsMinTemporalFilter": "FALSE",
        "ImplementsTemporalFilter": "FALSE", "ImplementsVersionNav": "FALSE", "ImplementsSorting": "TRUE",
        "ImplementsExtendedOperators": "FALSE", "ImplementsMinimumXPath": "TRUE", "ImplementsSchemaElementFunc": "FALSE",
    }
    constraints = "".join(
        f'<fes:Constraint name="{k}"><ows:NoValues/><ows:DefaultValue>{v}</ows:DefaultValue></fes:Constraint>'
        for k, v in conformance.items()
    )
    comparisons = "".join(f'<fes:ComparisonOperator name="{n}"/>' for n in _COMPARISON_OPERATORS)
    spatial = "".join(f'<fes:SpatialOperator name="{n}"/>' for n in _SPATIAL_OPERATORS)
    operands = "".join(f'<fes:GeometryOperand name="gml:{n}"/>' for n in
                       ("Envelope", "Point", "LineString", "Polygon", "MultiPoint", "MultiCurve", "MultiSurface"))
    return (
        f"<fes:Filter_Capabilities><fes:Conformance>{constraints}</fes:Conformance>"
        '<fes:Id_Capabilities><fes:ResourceIdentifier name="fes:ResourceId"/></fes:Id_Capabilities>'
        f"<fes:Scalar_Capabilities><fes:LogicalOperators/><fes:ComparisonOperators>{comparisons}"
        "</fes:ComparisonOperators></fes:Scalar_Capabilities>"
        f"<fes:Spatial_Capabilities><fes:GeometryOperands>{operands}</fes:GeometryOperands>"
        f"<fes:SpatialOperators>{spatial}</fes:SpatialOperators></fes:Spatial_Capabilities></fes:Filter_Capabilities>"
    )


def _document(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode("utf-8")


# ---------------------------------------------------------------- DescribeFeatureType


def schema_document(layers: list[Layer], *, role: str) -> bytes:
    """An XML Schema of the feature types, with the properties ``role`` sees."""
    parts = []
    for layer in layers:
        elements = [f'<xsd:element name="{GEOMETRY}" type="gml:{_GML_PROPERTY_TYPES[layer.geometry_type]}" '
                    'minOccurs="0" maxOccurs="1" nillable="true"/>']
        elements += [
            f'<xsd:element name="{c.name}" type="xsd:{_XSD_TYPES.get(c.type, "string")}" minOccurs="0" '
            'maxOccurs="1" nillable="true"/>'
            for c in layer.columns_for(role)
        ]
        parts.append(
            f'<xsd:complexType name="{layer.id}Type"><xsd:complexContent>'
            '<xsd:extension base="gml:AbstractFeatureType"><xsd:sequence>'
            f'{"".join(elements)}</xsd:sequence></xsd:extension></xsd:complexContent></xsd:complexType>'
            f'<xsd:element name="{layer.id}" type="{APP_PREFIX}:{layer.id}Type" substitutionGroup="gml:AbstractFeature"/>'
        )
    body = (
        f'<xsd:schema xmlns:xsd="{XSD}" xmlns:gml="{GML}" xmlns:{APP_PREFIX}="{APP}" targetNamespace="{APP}" '
        'elementFormDefault="qualified" version="1.0">'
        f'<xsd:import namespace="{GML}" schemaLocation="http://schemas.opengis.net/gml/3.2.1/gml.xsd"/>'
        f'{"".join(parts)}</xsd:schema>'
    )
    return _document(body)


# ---------------------------------------------------------------- GetFeature


@dataclass(frozen=True)
class FeatureRequest:
    layer: Layer
    query: FeatureQuery
    hits: bool = False


def feature_collection(request: FeatureRequest, identity, *, base: str, params: dict[str, str],
                       access_log: dict | None) -> bytes:
    """The wfs:FeatureCollection of one GetFeature, with numberMatched and a ``next`` link while more remain."""
    query = request.query
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if request.hits:
        matched, returned, members, more = read_count(request.layer, identity, query), 0, b"", False
    else:
        page = read_page(request.layer, identity, query, access_log=access_log, encoding=GML_ENCODING)
        matched, returned, members = page.matched, page.returned, page.features
        more = returned == query.limit and (matched is None or query.offset + query.limit < matched)
    describe = f"{base}?" + urlencode({"SERVICE": "WFS", "VERSION": VERSION, "REQUEST": "DescribeFeatureType",
                                       "TYPENAMES": type_name(request.layer)})
    next_link = ""
    if more:
        following = {k: v for k, v in params.items() if k.upper() != "STARTINDEX"}
        following["STARTINDEX"] = str(query.offset + query.limit)
        next_link = f' next="{escape(base + "?" + urlencode(following))}"'
    head = (
        f'<wfs:FeatureCollection xmlns:wfs="{WFS}" xmlns:gml="{GML}" xmlns:xsi="{XSI}" '
        f'xmlns:{APP_PREFIX}="{APP}" timeStamp="{stamp}" numberMatched="{matched if matched is not None else "unknown"}" '
        f'numberReturned="{returned}"{next_link} xsi:schemaLocation="{WFS} '
        f'http://schemas.opengis.net/wfs/2.0/wfs.xsd {APP} {escape(describe)}">'
    )
    return b"".join((_document(head), members, b"</wfs:FeatureCollection>"))


def check_count(value: str | None, default: int = DEFAULT_COUNT) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidParameter(f"COUNT: {value!r} is not a whole number") from None
    if not 1 <= number <= MAX_COUNT:
        raise InvalidParameter(f"COUNT: {number} is out of range; use 1 to {MAX_COUNT}")
    return number


def _gml_feature_sql(layer: Layer, role: str, query: FeatureQuery) -> sql.Composable:
    """One feature as a ``wfs:member`` in GML 3.2, built in PostGIS."""
    columns = layer.columns_for(role)
    if query.properties is not None:
        columns = tuple(c for c in columns if c.name in query.properties)
    fid = sql.SQL("{} || '.' || replace(replace(replace(t.id::text, '&', '&amp;'), '<', '&lt;'), '\"', '&quot;')").format(
        sql.Literal(layer.id))
    open_tag = sql.SQL("'<wfs:member><' || {name} || ' gml:id=\"' || {fid} || '\">'").format(
        name=sql.Literal(type_name(layer)), fid=fid)
    close_tag = sql.Literal(f"</{type_name(layer)}></wfs:member>")
    parts = [open_tag]
    if not query.skip_geometry:
        parts.append(sql.SQL("coalesce({} || {} || {}, '')").format(
            sql.Literal(f"<{APP_PREFIX}:{GEOMETRY}>"), _gml_geometry(query, fid), sql.Literal(f"</{APP_PREFIX}:{GEOMETRY}>")))
    if columns:
        forest = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.Identifier("t", c.name), sql.Identifier(f"{APP_PREFIX}:{c.name}"))
            for c in columns
        )
        parts.append(sql.SQL("coalesce(xmlforest({})::text, '')").format(forest))
    parts.append(close_tag)
    return sql.SQL(" || ").join(parts)


def _gml_geometry(query: FeatureQuery, fid: sql.Composable) -> sql.Composable:
    target = query.crs
    geom = sql.SQL("t.geom")
    if target.srid != 4326:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(target.srid))
    # option 1: srsName as urn:ogc:def:crs:EPSG::n, which is read in the EPSG axis order
    options = 1 if target.north_first else 0
    if target.north_first:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    return sql.SQL("ST_AsGML(3, {}, {}, {}, 'gml', {} || '.geom')").format(
        geom, sql.Literal(target.decimals), sql.Literal(options), fid)


GML_ENCODING = Encoding("gml32", _gml_feature_sql, "")
