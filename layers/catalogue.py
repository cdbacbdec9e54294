"""The published-layer catalogue: one definition per layer, the single source for the OGC API.

Each layer is served from a database view ``ogc_<id>`` that holds only its public
rows and columns (see :mod:`layers.views`); the pygeoapi configuration is generated
from these definitions (see :mod:`layers.config`). To publish a layer, add it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One published property: the SQL expression over the source row ``t`` and its schema type."""

    name: str
    sql: str
    type: str = "string"  # string | integer | number | boolean | date-time
    title: str = ""


@dataclass(frozen=True)
class Layer:
    id: str
    title: str
    description: str
    table: str
    geometry_type: str  # Point | MultiPolygon | Polygon | LineString
    columns: tuple[Column, ...]
    keywords: tuple[str, ...] = ()
    # trusted, static SQL over ``t``: rows that must never be published
    where: str | None = None
    joins: tuple[str, ...] = ()
    public: bool = True
    time_field: str | None = None
    title_zh: str = ""
    scenes: tuple[str, ...] = field(default=())

    @property
    def view(self) -> str:
        return f"ogc_{self.id}"


def _grid_code(alias: str = "g") -> Column:
    return Column("grid_code", f"{alias}.code", "string", "level-3 grid (code)")


_GRID_JOIN = "LEFT JOIN grids g ON g.id = t.grid_id"
_SYNTHETIC = Column("synthetic", "t.synthetic", "boolean", "generated demo data, not a real feature")

LAYERS: tuple[Layer, ...] = (
    Layer(
        id="grids",
        title="Governance grids",
        title_zh="网格",
        description="Level-1 (subdistrict), level-2 (community) and level-3 grids; each level tiles its parent.",
        table="grids",
        geometry_type="MultiPolygon",
        keywords=("grid", "网格", "governance"),
        columns=(
            Column("code", "t.code", "string", "hierarchical grid code"),
            Column("level", "t.level", "integer", "1 subdistrict, 2 community, 3 grid"),
            Column("name", "t.name"),
            Column("parent_code", "p.code", "string", "code of the parent grid"),
            Column("responsible_unit", "t.responsible_unit"),
            Column("population", "t.population", "integer"),
            _SYNTHETIC,
        ),
        joins=("LEFT JOIN grids p ON p.id = t.parent_id",),
        scenes=("one_map", "governance"),
    ),
    Layer(
        id="buildings",
        title="Buildings",
        title_zh="楼栋",
        description="Building footprints with floors, height, address and entrances.",
        table="buildings",
        geometry_type="MultiPolygon",
        keywords=("building", "楼栋"),
        columns=(
            Column("code", "t.code"),
            Column("name", "t.name"),
            Column("address", "t.address"),
            Column("floors", "t.floors", "integer"),
            Column("height_m", "t.height_m", "number"),
            Column("units", "t.units", "integer", "entrances (单元)"),
            Column("households", "t.households", "integer"),
            Column("use", "t.use"),
            Column("built_year", "t.built_year", "integer"),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(_GRID_JOIN,),
        scenes=("one_map",),
    ),
    Layer(
        id="cameras",
        title="Cameras",
        title_zh="摄像头",
        description="Public-space cameras (façade, courtyard, parking). Peephole cameras at elders' doors are not published.",
        table="cameras",
        geometry_type="Point",
        keywords=("camera", "视频监控", "safety"),
        columns=(
            Column("code", "t.code"),
            Column("name", "t.name"),
            Column("purpose", "t.purpose", "string", "facade | courtyard | parking"),
            Column("height_m", "t.height_m", "number"),
            Column("heading_deg", "t.heading_deg", "number"),
            Column("fov_deg", "t.fov_deg", "number"),
            Column("status", "t.status"),
            Column("calibrated", "(t.calibration ? 'ground' OR t.calibration ? 'facade')", "boolean"),
            Column("building_code", "b.code"),
            _grid_code(),
            _SYNTHETIC,
        ),
        # a peephole camera's position is an elder's home
        where="t.purpose <> 'peephole'",
        joins=(_GRID_JOIN, "LEFT JOIN buildings b ON b.id = t.building_id"),
        scenes=("safety",),
    ),
    Layer(
        id="parking_spots",
        title="Parking spots",
        title_zh="停车位",
        description="Parking spots with their last known occupancy.",
        table="parking_spots",
        geometry_type="Polygon",
        keywords=("parking", "停车"),
        columns=(
            Column("code", "t.code"),
            Column("kind", "t.kind"),
            Column("occupancy", "t.occupancy", "string", "free | occupied | unknown"),
            Column("occupancy_updated_at", "t.occupancy_updated_at", "date-time"),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(_GRID_JOIN,),
        scenes=("governance",),
    ),
    Layer(
        id="no_parking_zones",
        title="No-parking zones",
        title_zh="禁停区",
        description="Fire lanes, entrances and other places where parking is forbidden.",
        table="no_parking_zones",
        geometry_type="Polygon",
        keywords=("parking", "fire lane", "消防通道"),
        columns=(
            Column("code", "t.code"),
            Column("name", "t.name"),
            Column("reason", "t.reason"),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(_GRID_JOIN,),
        scenes=("safety", "governance"),
    ),
    Layer(
        id="incidents",
        title="Incidents",
        title_zh="事件",
        description=(
            "Geolocated incidents from cameras, sensors, residents and staff. "
            "Alerts about individual elders and free-text notes are not published."
        ),
        table="incidents",
        geometry_type="Point",
        keywords=("incident", "事件", "dispatch"),
        columns=(
            Column("code", "t.code"),
            Column("category", "t.category"),
            Column("source", "t.source"),
            Column("severity", "t.severity", "integer", "1 low … 4 critical"),
            Column("status", "t.status"),
            Column("title", "t.title"),
            Column("floor", "t.floor", "integer"),
            Column("reported_at", "t.reported_at", "date-time"),
            Column("resolved_at", "t.resolved_at", "date-time"),
            _grid_code(),
            _SYNTHETIC,
        ),
        where="t.category <> 'elder_inactivity'",
        joins=(_GRID_JOIN,),
        time_field="reported_at",
        scenes=("safety", "governance"),
    ),
    Layer(
        id="party_orgs",
        title="Party organizations",
        title_zh="党组织",
        description="Community party committees, grid party branches and property-company branches.",
        table="party_orgs",
        geometry_type="Point",
        keywords=("party", "党建"),
        columns=(
            Column("code", "t.code"),
            Column("name", "t.name"),
            Column("kind", "t.kind"),
            Column("members", "t.members", "integer"),
            Column("parent_code", "p.code"),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(_GRID_JOIN, "LEFT JOIN party_orgs p ON p.id = t.parent_id"),
        scenes=("party_building",),
    ),
    Layer(
        id="service_points",
        title="Service points",
        title_zh="服务点位",
        description="Community services, commerce and culture points of interest.",
        table="service_points",
        geometry_type="Point",
        keywords=("service", "commerce", "culture", "便民"),
        columns=(
            Column("code", "t.code"),
            Column("name", "t.name"),
            Column("category", "t.category", "string", "service | commerce | culture"),
            Column("subcategory", "t.subcategory"),
            Column("address", "t.address"),
            Column("opening_hours", "t.opening_hours"),
            Column("phone", "t.phone"),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(_GRID_JOIN,),
        scenes=("services", "commerce_culture"),
    ),
)

# Layers that exist in the model but are never published as they are.
UNPUBLISHED = {
    "care_subjects": "personal data: only for authorised roles (a later issue), analysts get care_density",
}


def public_layers() -> tuple[Layer, ...]:
    return tuple(layer for layer in LAYERS if layer.public)


def layer(layer_id: str) -> Layer:
    for candidate in LAYERS:
        if candidate.id == layer_id:
            return candidate
    raise KeyError(f"no layer {layer_id!r}; known: {', '.join(l.id for l in LAYERS)}")
