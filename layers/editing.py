"""Changing features through the OGC API (Features Part 4): GeoJSON bodies in, gis services out.

Every write runs through the ``gis`` services inside a transaction under the caller's
database role and grid (:func:`layers.access.scoped_django`), so the row-level-security
policies check it a second time: a grid worker can neither touch nor create a feature
outside their grid, nor move one out of it.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass

from django.contrib.gis.gdal import GDALException
from django.contrib.gis.geos import GEOSException, GEOSGeometry
from django.db import DatabaseError
from django.utils import timezone

from layers import crs as crsmod
from layers.catalogue import Layer
from layers.errors import Forbidden, InvalidBody, NotFound, PayloadTooLarge, UnsupportedMediaType

_JSON_TYPES = ("application/geo+json", "application/json")
MAX_BODY = 2 * 1024 * 1024  # bytes of one feature; host.asgi refuses longer bodies with 413 before reading them
MAX_POSITIONS = 100_000  # coordinate pairs in one geometry


@dataclass(frozen=True)
class FeatureBody:
    """A validated GeoJSON feature from a request body."""

    properties: dict
    geometry: GEOSGeometry | None  # in EPSG:4326


def parse_body(request, layer: Layer, *, role: str, mode: str) -> FeatureBody:
    """Read and check a GeoJSON feature; ``mode`` is create, replace or update (PATCH)."""
    content_type = (request.content_type or "").lower()
    if content_type not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"send the feature as application/geo+json (got {request.content_type or 'no Content-Type'})"
        )
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(too_large_message(int(declared)))  # before reading it
    if len(request.body) > MAX_BODY:
        raise PayloadTooLarge(too_large_message(len(request.body)))
    try:
        document = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBody(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidBody("the body is nested too deeply to be a GeoJSON feature") from None
    if not isinstance(document, dict) or document.get("type") != "Feature":
        raise InvalidBody('the body must be one GeoJSON Feature ({"type": "Feature", "geometry": …, "properties": …})')
    properties = document.get("properties") or {}
    if not isinstance(properties, dict):
        raise InvalidBody("properties must be a JSON object")
    crs = crsmod.crs_from_parameter(_content_crs(request), parameter="Content-Crs")
    geometry = _geometry(document.get("geometry"), layer, crs) if "geometry" in document else None
    if mode == "create" and geometry is None:
        raise InvalidBody(f"a {layer.geometry_type} geometry is required")
    return FeatureBody(properties=_properties(properties, layer, role=role, mode=mode), geometry=geometry)


def feature_body(layer: Layer, *, role: str, mode: str, properties: dict, geometry: GEOSGeometry | None) -> FeatureBody:
    """A feature decoded elsewhere (the WFS reads it from XML), checked as a GeoJSON body is; geometry in EPSG:4326."""
    if geometry is not None:
        geometry = checked_geometry(geometry, layer)
    if mode == "create" and geometry is None:
        raise InvalidBody(f"a {layer.geometry_type} geometry is required")
    return FeatureBody(properties=_properties(properties, layer, role=role, mode=mode), geometry=geometry)


def checked_geometry(geometry: GEOSGeometry, layer: Layer) -> GEOSGeometry:
    """``geometry`` (EPSG:4326) when it is a valid geometry of the layer's type inside -180..180 / -90..90."""
    from django.contrib.gis.geos import MultiPolygon

    if geometry.geom_type == "Polygon" and layer.geometry_type == "MultiPolygon":
        geometry = MultiPolygon(geometry, srid=geometry.srid)
    if geometry.geom_type != layer.geometry_type:
        raise InvalidBody(f"geometry must be a {layer.geometry_type}, got a {geometry.geom_type}")
    if geometry.num_coords > MAX_POSITIONS:
        raise InvalidBody(f"geometry has more than {MAX_POSITIONS:,} positions; simplify it")
    if geometry.empty:
        raise InvalidBody("geometry is empty")
    if not geometry.valid:
        raise InvalidBody(f"geometry is not valid: {geometry.valid_reason}")
    west, south, east, north = geometry.extent
    if not all(math.isfinite(v) for v in (west, south, east, north)) or not (
            -180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidBody("geometry lies outside -180..180 / -90..90; check the axis order of its srsName")
    return geometry


def too_large_message(size: int) -> str:
    """The sentence a 413 carries."""
    return (f"the request body is {size / 1024 / 1024:.1f} MiB; this server accepts at most "
            f"{MAX_BODY / 1024 / 1024:g} MiB per feature. Send one feature per request, or simplify its geometry")


def _content_crs(request) -> str | None:
    value = request.headers.get("Content-Crs")
    return value.strip().strip("<>") if value else None


def _geometry(value, layer: Layer, crs: crsmod.Crs) -> GEOSGeometry | None:
    if value is None:
        raise InvalidBody("geometry cannot be null here")
    if not isinstance(value, dict) or value.get("type") != layer.geometry_type:
        raise InvalidBody(f"geometry must be a GeoJSON {layer.geometry_type}, got {_kind(value)}")
    coordinates = value.get("coordinates")
    _check_coordinates(layer.geometry_type, coordinates)
    if crs.north_first:
        coordinates = crsmod.swap_axes(coordinates)
    try:
        # GeoJSON is read as CRS84 by GDAL; the coordinates are in Content-Crs, which we then state
        geometry = GEOSGeometry(json.dumps({"type": layer.geometry_type, "coordinates": coordinates}))
        geometry.srid = crs.srid
    except (GEOSException, GDALException, ValueError, TypeError) as exc:
        raise InvalidBody(f"geometry cannot be read: {exc}") from None
    if geometry.empty:
        raise InvalidBody("geometry is empty")
    if not geometry.valid:
        raise InvalidBody(f"geometry is not valid: {geometry.valid_reason}")
    if crs.srid != 4326:
        try:
            geometry.transform(4326)
        except (GEOSException, GDALException) as exc:
            raise InvalidBody(f"geometry cannot be reprojected from {crs.uri}: {exc}") from None
    west, south, east, north = geometry.extent
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidBody("geometry lies outside -180..180 / -90..90; check the axis order of Content-Crs")
    return geometry


# how deep each type's coordinates nest, and the fewest positions one ring/line holds
_NESTING = {"Point": 0, "LineString": 1, "Polygon": 2, "MultiPolygon": 3}


def _check_coordinates(kind: str, coordinates) -> None:
    """GeoJSON coordinates of ``kind`` made of finite numbers, checked before GDAL or GEOS sees them."""
    depth = _NESTING[kind]
    count = 0

    def walk(node, level: int, where: str) -> None:
        nonlocal count
        if level == 0:
            _check_position(node, where)
            count += 1
            if count > MAX_POSITIONS:
                raise InvalidBody(f"geometry has more than {MAX_POSITIONS:,} positions; simplify it")
            return
        if not isinstance(node, list) or not node:
            expected = {1: "a list of positions", 2: "a list of rings", 3: "a list of polygons"}[level]
            raise InvalidBody(f"{kind} coordinates{where}: expected {expected}, got {_short(node)}")
        if level == 1 and kind in ("Polygon", "MultiPolygon") and len(node) < 4:
            raise InvalidBody(f"{kind} coordinates{where}: a ring needs at least 4 positions, got {len(node)}")
        if level == 1 and kind == "LineString" and len(node) < 2:
            raise InvalidBody(f"{kind} coordinates{where}: a line needs at least 2 positions, got {len(node)}")
        for i, child in enumerate(node):
            walk(child, level - 1, f"{where}[{i}]")

    walk(coordinates, depth, "")


def _check_position(node, where: str) -> None:
    if not isinstance(node, list) or len(node) not in (2, 3):
        raise InvalidBody(f"position{where or ''}: expected [x, y] (or [x, y, z]), got {_short(node)}")
    for number in node:
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise InvalidBody(f"position{where or ''}: coordinates must be finite numbers, got {_short(node)}")


def _short(value) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    except (RecursionError, ValueError, TypeError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "…"


def _kind(value) -> str:
    return repr(value.get("type")) if isinstance(value, dict) else type(value).__name__


def _properties(properties: dict, layer: Layer, *, role: str, mode: str) -> dict:
    editing = layer.editing
    allowed = editing.create_fields if mode == "create" else editing.update_fields
    visible = {c.name for c in layer.columns_for(role)}
    values = {}
    for name, value in properties.items():
        if name in allowed:
            values[name] = _checked(layer, name, value)
        elif name not in visible and name != "id":
            raise InvalidBody(f"unknown property {name!r}; {layer.id} properties you may set: {', '.join(allowed)}")
        elif mode == "update":
            # PATCH names what should change, so a read-only property there is a mistake
            raise InvalidBody(f"property {name!r} cannot be changed; you may set: {', '.join(allowed)}")
        # PUT/POST bodies carry whole features (QGIS sends every attribute): read-only ones are ignored
    return values


def _checked(layer: Layer, name: str, value):
    """The value's JSON type against the published column; lengths and ranges are the services' to check."""
    column = layer.column(name)
    if column.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            if value is None and name == "floor":
                return None
            raise InvalidBody(f"{name} must be an integer, got {_short(value)}")
    elif column.type == "string":
        if not isinstance(value, str):
            raise InvalidBody(f"{name} must be a string, got {_short(value)}")
    if column.choices and value not in column.choices:
        raise InvalidBody(f"{name} must be one of {', '.join(column.choices)}; got {_short(value)}")
    return value


# ---------------------------------------------------------------- applying


def feature_create(layer: Layer, identity, body: FeatureBody) -> int:
    """Create the feature; returns its id."""
    from layers.access import scoped_django

    _check_grid(identity, body.geometry)
    with _refusals(layer, "create"), scoped_django(identity):
        return _WRITERS[layer.id].create(body, identity)


def feature_change(layer: Layer, identity, item_id: str, body: FeatureBody) -> None:
    """Replace (PUT) or update (PATCH) an existing feature's editable values."""
    from layers.access import scoped_django

    pk = _pk(layer, item_id)
    if body.geometry is not None and identity.role not in layer.editing.geometry_roles:
        raise Forbidden(f"your role may not move {layer.id}; leave the geometry out")
    _check_grid(identity, body.geometry)
    with _refusals(layer, "change", item_id), scoped_django(identity):
        _check_visible(layer, pk, item_id)
        _WRITERS[layer.id].update(pk, body)


def feature_delete(layer: Layer, identity, item_id: str) -> None:
    """Delete a feature the caller may read (``withdraw_roles``: only their own new incident; else a 403 saying why).

    The layer's ``delete_roles`` delete any feature they may read. A role of its ``withdraw_roles``
    (a grid worker) deletes only an incident they reported themselves, in their grid, while its case
    is still new: the database decides (``onemap_incident_withdraw``), this turns its answer into words.
    """
    from layers.access import scoped_django

    pk = _pk(layer, item_id)
    editing = layer.editing
    with _refusals(layer, "delete", item_id), scoped_django(identity):
        _check_visible(layer, pk, item_id)
        if identity.role in editing.delete_roles:
            _WRITERS[layer.id].delete(pk)
        elif identity.role in editing.withdraw_roles:
            _WRITERS[layer.id].withdraw(pk)
        else:
            raise Forbidden(f"your role ({identity.role}) may not delete features of {layer.id}")


def withdraw_refusal(layer: Layer, identity, item_id: str) -> str | None:
    """Why the caller may not withdraw this item (None: they may), as the database would answer a DELETE."""
    from django.db import connection

    from gis.incidents.services import withdraw_refusal_text
    from layers.access import scoped_django

    pk = _pk(layer, item_id)
    with scoped_django(identity), connection.cursor() as cursor:
        cursor.execute("SELECT onemap_withdraw_refusal(%s)", [pk])
        refusal = cursor.fetchone()[0]
    return None if refusal is None else withdraw_refusal_text(refusal)


def _pk(layer: Layer, item_id: str) -> int:
    try:
        return int(item_id)
    except ValueError:
        raise NotFound(f"collection {layer.id!r} has no item {item_id!r}") from None


def _check_visible(layer: Layer, pk: int, item_id: str) -> None:
    """Inside the write's scoped transaction: the row is one the caller may read through the layer, else 404.

    Row-level security keeps a grid worker to their grid; the layer's view also leaves out
    rows no one may publish (an elder's alert), which a table-level policy alone would not.
    """
    from django.db import connection
    from psycopg import sql

    with connection.cursor() as cursor:
        statement = sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(layer.view))
        cursor.execute(statement.as_string(cursor.connection), [pk])
        if cursor.fetchone() is None:
            raise NotFound(f"collection {layer.id!r} has no item {item_id!r}")


def _check_grid(identity, geometry) -> None:
    """A grid worker's feature must lie inside their grid (checked here for a clear message, and by RLS)."""
    if identity.role != "grid_worker" or geometry is None:
        return
    from gis.models import Grid

    grid = Grid.objects.filter(pk=identity.grid_id).only("geom", "code").first()
    if grid is None or not grid.geom.covers(geometry):
        raise Forbidden(
            f"the geometry lies outside your grid {grid.code if grid else identity.grid_id}; "
            "grid workers create and move features only inside their own grid"
        )


class _refusals:
    """Turn service and database refusals into OGC errors."""

    def __init__(self, layer: Layer, action: str, item_id: str | None = None):
        self.layer, self.action, self.item_id = layer, action, item_id

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from django.core.exceptions import ObjectDoesNotExist

        from gis.incidents.services import WithdrawRefused
        from gis.services import ServiceError

        if exc is None:
            return False
        if isinstance(exc, WithdrawRefused):
            raise Forbidden(str(exc)) from None
        if isinstance(exc, ObjectDoesNotExist):
            raise NotFound(f"collection {self.layer.id!r} has no item {self.item_id!r}") from None
        if isinstance(exc, ServiceError):
            raise InvalidBody(str(exc)) from None
        if isinstance(exc, DatabaseError):
            message = str(exc).splitlines()[0]
            if "row-level security" in message:
                raise Forbidden(f"cannot {self.action} this feature: it is outside your grid") from None
            if "violates" in message:
                raise InvalidBody(f"cannot {self.action} this feature: {message}") from None
        return False


class _IncidentWriter:
    def create(self, body: FeatureBody, identity) -> int:
        from gis.cases.services import case_open
        from gis.incidents.services import incident_create

        p = body.properties
        if "category" not in p:
            raise InvalidBody("category is required")
        incident = incident_create(
            lon=body.geometry.x, lat=body.geometry.y, category=p["category"], source="staff",
            code=f"INC-{timezone.now():%Y%m%d%H%M%S}-{secrets.token_hex(3)}",
            severity=p.get("severity", 2), title=p.get("title", ""), floor=p.get("floor"),
            reported_by_id=identity.user_id,  # they, and only they, may withdraw it while it is new
        )
        case_open(incident_id=incident.id, actor=identity)  # every incident is a case, from its first moment
        if "notes" in p or "status" in p:
            self.update(incident.pk, FeatureBody({k: p[k] for k in ("notes", "status") if k in p}, None))
        return incident.pk

    def update(self, pk: int, body: FeatureBody) -> None:
        from gis.incidents.services import incident_update

        point = body.geometry
        incident_update(
            incident_id=pk, **body.properties,
            lon=point.x if point is not None else None, lat=point.y if point is not None else None,
        )

    def delete(self, pk: int) -> None:
        from gis.incidents.services import incident_delete

        incident_delete(incident_id=pk)

    def withdraw(self, pk: int) -> None:
        from gis.incidents.services import incident_withdraw

        incident_withdraw(incident_id=pk)


class _AreaWriter:
    def __init__(self, model_name: str):
        self.model_name = model_name

    @property
    def model(self):
        from gis import models

        return getattr(models, self.model_name)

    def create(self, body: FeatureBody, identity) -> int:
        from gis.spatial.services import area_feature_save

        return area_feature_save(model=self.model, values=body.properties, geom=body.geometry).pk

    def update(self, pk: int, body: FeatureBody) -> None:
        from gis.spatial.services import area_feature_save

        area_feature_save(model=self.model, values=body.properties, geom=body.geometry, feature_id=pk)

    def delete(self, pk: int) -> None:
        from gis.spatial.services import area_feature_delete

        area_feature_delete(model=self.model, feature_id=pk)


_WRITERS = {
    "incidents": _IncidentWriter(),
    "parking_spots": _AreaWriter("ParkingSpot"),
    "no_parking_zones": _AreaWriter("NoParkingZone"),
}
