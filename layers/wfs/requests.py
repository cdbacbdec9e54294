"""GetFeature and DescribeFeatureType requests (KVP or XML) read into the OGC API's own query."""

from __future__ import annotations

from layers.catalogue import Layer
from layers.errors import Forbidden, InvalidParameter, NotAuthenticated
from layers.features import FeatureQuery
from layers.wfs.filters import Selection, filter_from_element, filter_from_text, parse_resource_id
from layers.wfs.gml import wfs_crs
from layers.wfs.reading import OUTPUT_FORMATS, FeatureRequest, check_count, readable_layers
from layers.wfs.xml import APP_PREFIX, attribute, child, children, local, text


def layer_for(identity, name: str) -> Layer:
    """The layer a type name (``onemap:incidents`` or ``incidents``) names, as the OGC API would give it to the caller."""
    from layers.catalogue import layer as find_layer

    plain = (name or "").strip().rsplit(":", 1)[-1]
    if not plain:
        raise InvalidParameter("TYPENAMES: name a feature type, e.g. onemap:grids")
    try:
        found = find_layer(plain)
    except KeyError:
        offered = ", ".join(f"{APP_PREFIX}:{lay.id}" for lay in readable_layers(identity.role))
        raise InvalidParameter(f"TYPENAMES: no feature type {name!r}; offered to you: {offered}") from None
    if not found.readable_by(identity.role):
        if identity.is_anonymous:
            raise NotAuthenticated(f"feature type {name!r} needs a signed-in user: send your username and a personal "
                                   "access token with HTTP Basic")
        raise Forbidden(f"your role ({identity.role}) may not read feature type {name!r}")
    return found


def described_layers(params: dict[str, str], identity) -> list[Layer]:
    """The layers a DescribeFeatureType names (all the caller may read when it names none)."""
    names = params.get("TYPENAMES") or params.get("TYPENAME") or ""
    if not names.strip():
        return readable_layers(identity.role)
    return [layer_for(identity, name) for name in names.split(",")]


def feature_request_kvp(params: dict[str, str], identity) -> FeatureRequest:
    """A GetFeature in key-value pairs (parameter names upper-cased) as the OGC API's query."""
    names = params.get("TYPENAMES") or params.get("TYPENAME") or ""
    if not names.strip():
        raise InvalidParameter("TYPENAMES is required, e.g. TYPENAMES=onemap:grids")
    if "," in names.strip("()"):
        raise InvalidParameter("TYPENAMES: one feature type per GetFeature here")
    layer = layer_for(identity, names.strip("()"))
    _output_format(params.get("OUTPUTFORMAT"))
    selection = Selection()
    if params.get("FILTER"):
        selection = filter_from_text(params["FILTER"], layer=layer)
    ids = params.get("RESOURCEID") or params.get("FEATUREID")
    if ids:
        if selection.expression is not None or selection.ids is not None:
            raise InvalidParameter("RESOURCEID and FILTER cannot be combined")
        found = [parse_resource_id(i, layer=layer) for i in ids.split(",")]
        selection = Selection(ids=tuple(i for i in found if i is not None))
    return FeatureRequest(
        layer=layer,
        query=FeatureQuery(
            limit=check_count(params.get("COUNT") or params.get("MAXFEATURES")),
            offset=_start_index(params.get("STARTINDEX")),
            bbox=_bbox(params.get("BBOX"), params.get("SRSNAME")),
            filter=selection.expression,
            ids=selection.ids,
            sortby=_sortby(params.get("SORTBY"), layer, identity.role),
            properties=_properties(params.get("PROPERTYNAME"), layer, identity.role),
            crs=wfs_crs(params.get("SRSNAME"), parameter="SRSNAME"),
        ),
        hits=_hits(params.get("RESULTTYPE")),
    )


def feature_request_xml(root, identity) -> FeatureRequest:
    """A GetFeature document (one Query) as the OGC API's query."""
    queries = children(root, "Query")
    if len(queries) != 1:
        raise InvalidParameter("GetFeature: send exactly one Query here")
    query = queries[0]
    layer = layer_for(identity, attribute(query, "typeNames") or attribute(query, "typeName") or "")
    _output_format(attribute(root, "outputFormat"))
    found = child(query, "Filter")
    selection = filter_from_element(found, layer=layer) if found is not None else Selection()
    sort_keys = []
    sort = child(query, "SortBy")
    for prop in children(sort, "SortProperty") if sort is not None else []:
        reference = child(prop, "ValueReference")
        if reference is None:
            reference = child(prop, "PropertyName")
        order = child(prop, "SortOrder")
        sort_keys.append(f"{text(reference)} {text(order) or 'ASC'}")
    names = [text(p) for p in children(query) if local(p) in ("PropertyName",)]
    return FeatureRequest(
        layer=layer,
        query=FeatureQuery(
            limit=check_count(attribute(root, "count") or attribute(root, "maxFeatures")),
            offset=_start_index(attribute(root, "startIndex")),
            filter=selection.expression,
            ids=selection.ids,
            sortby=_sortby(",".join(sort_keys) or None, layer, identity.role),
            properties=_properties(",".join(names) or None, layer, identity.role),
            crs=wfs_crs(attribute(query, "srsName"), parameter="srsName"),
        ),
        hits=_hits(attribute(root, "resultType")),
    )


def _output_format(value: str | None) -> None:
    if not value:
        return
    wanted = value.replace(" ", "").lower()
    if wanted not in {f.replace(" ", "").lower() for f in OUTPUT_FORMATS} | {"gml32", "application/gml+xml"}:
        raise InvalidParameter(f"OUTPUTFORMAT: {value!r} is not offered; use {OUTPUT_FORMATS[0]}")


def _start_index(value: str | None) -> int:
    if value in (None, ""):
        return 0
    try:
        number = int(value)
    except ValueError:
        raise InvalidParameter(f"STARTINDEX: {value!r} is not a whole number") from None
    if not 0 <= number <= 10**9:
        raise InvalidParameter(f"STARTINDEX: {number} is out of range")
    return number


def _hits(value: str | None) -> bool:
    if value in (None, "", "results"):
        return False
    if value == "hits":
        return True
    raise InvalidParameter(f"RESULTTYPE: use results or hits, not {value!r}")


def _bbox(value: str | None, srs_name: str | None):
    """BBOX=a,b,c,d[,crs] (in that CRS's axis order; the SRSNAME's when none is named) as lon/lat in EPSG:4326."""
    if not value:
        return None
    parts = [p.strip() for p in value.split(",")]
    crs_name = parts.pop() if len(parts) in (5, 7) else srs_name
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise InvalidParameter(f"BBOX: {value!r} is not four numbers and an optional CRS") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or any(n != n or abs(n) == float("inf") for n in numbers):
        raise InvalidParameter(f"BBOX: {value!r} is not four numbers and an optional CRS")
    crs = wfs_crs(crs_name, parameter="BBOX's CRS")
    a1, b1, a2, b2 = numbers
    if crs.north_first:
        a1, b1, a2, b2 = b1, a1, b2, a2
    if a1 > a2 or b1 > b2:
        raise InvalidParameter(f"BBOX: the lower corner must come first; got {value!r}")
    if crs.srid != 4326:
        from django.contrib.gis.geos import Polygon

        box = Polygon.from_bbox((a1, b1, a2, b2))
        box.srid = crs.srid
        box.transform(4326)
        a1, b1, a2, b2 = box.extent
    if not (-180 <= a1 <= a2 <= 180 and -90 <= b1 <= b2 <= 90):
        raise InvalidParameter(f"BBOX: {value!r} lies outside -180..180 / -90..90; check the axis order of its CRS")
    return (a1, b1, a2, b2)


def _sortby(value: str | None, layer: Layer, role: str):
    if not value:
        return ()
    columns = {c.name for c in layer.columns_for(role)}
    keys = []
    for part in value.split(","):
        words = part.split()
        if not words:
            continue
        name = words[0].rsplit(":", 1)[-1]
        direction = words[1].upper() if len(words) > 1 else "ASC"
        if name not in columns or direction not in ("ASC", "DESC", "A", "D"):
            raise InvalidParameter(f"SORTBY: {part.strip()!r}; sort by one of {', '.join(sorted(columns))} ASC or DESC")
        keys.append((name, direction in ("DESC", "D")))
    return tuple(keys)


def _properties(value: str | None, layer: Layer, role: str):
    if not value:
        return None
    columns = {c.name for c in layer.columns_for(role)}
    names = tuple(n.strip().rsplit(":", 1)[-1] for n in value.strip("()").split(",") if n.strip())
    unknown = [n for n in names if n not in columns and n != "geometry"]
    if unknown:
        raise InvalidParameter(f"PROPERTYNAME: unknown {', '.join(map(repr, unknown))}")
    return tuple(n for n in names if n != "geometry")
