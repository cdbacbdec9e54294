"""The published-layer catalogue: one definition per layer, the single source for the OGC API.

Each layer is served from a database view ``ogc_<id>`` that holds only its publishable
rows and columns (see :mod:`layers.views`); who may read and edit it, its queryables and
the pygeoapi configuration (see :mod:`layers.config`) all come from these definitions.
To publish a layer, add it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from core.roles import (
    ADMINS,
    ANONYMOUS_ROLE,
    CASE_ROLES,
    EVERYONE,
    FIGURE_ROLES,
    GRID_WORKER,
    PERSONAL_ROLES,
    REPORTING_ROLES,
    STAFF_ROLES,
)
from core.vocabulary import CARE_CATEGORY, PUBLISHED_CATEGORIES, STATUS_CODES
from gis.care.private import private_open
from gis.cases.selectors import INDICATORS_SQL


@dataclass(frozen=True)
class Column:
    """One published property: the SQL expression over the source row ``t`` and its schema type."""

    name: str
    sql: str
    type: str = "string"  # string | integer | number | boolean | date-time
    title: str = ""
    # roles that see this property (None: everyone who may read the layer)
    roles: frozenset[str] | None = None
    # values a client may write, when the property is editable
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sealed:
    """Personal properties kept encrypted in one column: opened per row by the server, never in SQL.

    The view carries the blob (``sql`` over the source row) as ``_sealed``; the statement that
    reads a page logs every row it returns, and :func:`layers.features.open_sealed` then
    replaces the blob with ``columns`` opened by ``open(record_id, blob)`` (a dict of them).
    They are returned, never queryable or sortable: PostgreSQL cannot compare what it cannot read.
    """

    sql: str
    columns: tuple[Column, ...]
    open: Callable[..., dict]


@dataclass(frozen=True)
class Editing:
    """Who may change a layer through the OGC API (Part 4), and which properties."""

    update_roles: frozenset[str]
    update_fields: tuple[str, ...]
    create_roles: frozenset[str] = frozenset()
    create_fields: tuple[str, ...] = ()
    delete_roles: frozenset[str] = frozenset()
    # roles that may delete only what they reported themselves, in their grid, while its case is new
    # (the database decides, row by row: onemap_incident_withdraw, migration 0026)
    withdraw_roles: frozenset[str] = frozenset()
    # roles that may set or move the geometry on update
    geometry_roles: frozenset[str] = frozenset()

    def may_delete(self, role: str) -> bool:
        """Whether ``role`` may delete some of the layer's features (all of them, or only its own new ones)."""
        return role in self.delete_roles or role in self.withdraw_roles

    def allowed_methods(self, role: str, *, item: bool) -> set[str]:
        """The write methods of ``role``; a withdrawing role's DELETE holds only for some items (see api.ogc)."""
        methods = set()
        if item:
            if role in self.update_roles:
                methods |= {"PUT", "PATCH"}
            if self.may_delete(role):
                methods.add("DELETE")
        elif role in self.create_roles:
            methods.add("POST")
        return methods


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
    read_roles: frozenset[str] = EVERYONE
    editing: Editing | None = None
    # personal records: every read is written to the access log
    personal: bool = False
    # a whole view body instead of table/joins/where (aggregates); trusted static SQL
    view_body: str | None = None
    # the view reads as its owner and scopes rows itself (see layers.access)
    definer_view: bool = False
    time_field: str | None = None
    title_zh: str = ""
    scenes: tuple[str, ...] = field(default=())
    # personal properties sealed at rest, opened per row after the logged read
    sealed: Sealed | None = None

    @property
    def view(self) -> str:
        return f"ogc_{self.id}"

    @property
    def public(self) -> bool:
        return ANONYMOUS_ROLE in self.read_roles

    def readable_by(self, role: str) -> bool:
        return role in self.read_roles

    def columns_for(self, role: str) -> tuple[Column, ...]:
        """The properties the role may see, filter and sort on (sealed ones are apart: :meth:`sealed_for`)."""
        return tuple(c for c in self.columns if c.roles is None or role in c.roles)

    def sealed_for(self, role: str) -> tuple[Column, ...]:
        """The sealed properties the role may see (returned only)."""
        if self.sealed is None:
            return ()
        return tuple(c for c in self.sealed.columns if c.roles is None or role in c.roles)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _grid_code(alias: str = "g") -> Column:
    return Column("grid_code", f"{alias}.code", "string", "level-3 grid (code)")


_GRID_JOIN = "LEFT JOIN grids g ON g.id = t.grid_id"
_SYNTHETIC = Column("synthetic", "t.synthetic", "boolean", "generated demo data, not a real feature")

# an elder's alerts (CARE_CATEGORY) come only from sensors and are never published. Deleting
# incidents (a camera's evidence, a resident's report) is the administrators'; a grid worker may
# withdraw one they entered themselves by mistake, while nobody has worked on its case yet
_INCIDENT_EDITING = Editing(
    update_roles=CASE_ROLES,
    update_fields=("status", "notes", "severity"),
    create_roles=REPORTING_ROLES,
    create_fields=("category", "severity", "title", "notes", "floor", "status"),
    delete_roles=ADMINS,
    withdraw_roles=frozenset({GRID_WORKER}),
    geometry_roles=REPORTING_ROLES,
)


def _admin_editing(*fields: str) -> Editing:
    return Editing(
        update_roles=ADMINS, update_fields=fields, create_roles=ADMINS, create_fields=fields,
        delete_roles=ADMINS, geometry_roles=ADMINS,
    )


_ADMIN_EDITING_PARKING = _admin_editing("kind", "occupancy")
_ADMIN_EDITING_NO_PARKING = _admin_editing("name", "reason")

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
        read_roles=STAFF_ROLES,
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
            Column("kind", "t.kind", choices=("public", "residential", "disabled", "ev")),
            Column("occupancy", "t.occupancy", "string", "free | occupied | unknown", choices=("free", "occupied", "unknown")),
            Column("occupancy_updated_at", "t.occupancy_updated_at", "date-time"),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(_GRID_JOIN,),
        scenes=("governance",),
        editing=_ADMIN_EDITING_PARKING,
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
            Column("reason", "t.reason", choices=("fire_lane", "hydrant", "entrance", "other")),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(_GRID_JOIN,),
        scenes=("safety", "governance"),
        editing=_ADMIN_EDITING_NO_PARKING,
    ),
    Layer(
        id="incidents",
        title="Incidents",
        title_zh="事件",
        description=(
            "Geolocated incidents from cameras, sensors, residents and staff. "
            "Alerts about individual elders are not published; dispatch notes only to case handlers."
        ),
        table="incidents",
        geometry_type="Point",
        keywords=("incident", "事件", "dispatch"),
        columns=(
            Column("code", "t.code"),
            Column("category", "t.category", choices=PUBLISHED_CATEGORIES),
            Column("source", "t.source"),
            Column("severity", "t.severity", "integer", "1 low … 4 critical"),
            Column("status", "t.status", choices=STATUS_CODES),
            Column("title", "t.title"),
            Column("notes", "t.notes", "string", "dispatch notes", roles=CASE_ROLES),
            Column("floor", "t.floor", "integer"),
            Column("reported_at", "t.reported_at", "date-time"),
            Column("resolved_at", "t.resolved_at", "date-time"),
            _grid_code(),
            _SYNTHETIC,
        ),
        where=f"t.category <> '{CARE_CATEGORY}'",
        joins=(_GRID_JOIN,),
        time_field="reported_at",
        scenes=("safety", "governance"),
        read_roles=STAFF_ROLES,
        editing=_INCIDENT_EDITING,
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

_PERSONAL = PERSONAL_ROLES
_DENSITY_MIN = 5  # counts below this are suppressed: too few people to stay anonymous

# Counts of active care subjects per building and per level-3 grid, with no personal
# field. Groups under the threshold are left out; a living-alone count under it is
# blanked. The view scopes its rows itself (a grid worker sees their grid's counts).
_CARE_DENSITY = f"""
WITH scope AS (
    SELECT nullif(current_setting('onemap.grid_id', true), '')::bigint AS grid_id
), subjects AS (
    SELECT s.building_id, s.grid_id, s.lives_alone FROM care_subjects s, scope
    WHERE s.active AND (scope.grid_id IS NULL OR s.grid_id = scope.grid_id)
)
SELECT 'building-' || b.code AS id, 'building' AS unit, b.code, g.code AS grid_code,
       c.registered, CASE WHEN c.alone >= {_DENSITY_MIN} OR c.alone = 0 THEN c.alone END AS living_alone,
       b.synthetic, b.geom
FROM (SELECT building_id, count(*) AS registered, count(*) FILTER (WHERE lives_alone) AS alone
      FROM subjects GROUP BY building_id HAVING count(*) >= {_DENSITY_MIN}) c
JOIN buildings b ON b.id = c.building_id
LEFT JOIN grids g ON g.id = b.grid_id
UNION ALL
SELECT 'grid-' || g.code, 'grid', g.code, g.code,
       c.registered, CASE WHEN c.alone >= {_DENSITY_MIN} OR c.alone = 0 THEN c.alone END,
       g.synthetic, g.geom
FROM (SELECT grid_id, count(*) AS registered, count(*) FILTER (WHERE lives_alone) AS alone
      FROM subjects GROUP BY grid_id HAVING count(*) >= {_DENSITY_MIN}) c
JOIN grids g ON g.id = c.grid_id
"""

LAYERS = LAYERS + (
    Layer(
        id="care_subjects",
        title="People under care",
        title_zh="关爱对象",
        description=(
            "Registered elders and people under home monitoring with their personal details. "
            "Restricted to administrators, commanders and grid workers (their own grid); every read is logged."
        ),
        table="care_subjects",
        geometry_type="Point",
        keywords=("elder care", "智慧养老"),
        columns=(
            Column("code", "t.code"),
            Column("kind", "t.kind"),
            Column("age_band", "t.age_band"),
            Column("lives_alone", "t.lives_alone", "boolean"),
            Column("care_level", "t.care_level", "integer"),
            Column("active", "t.active", "boolean"),
            Column("gender", "p.gender"),
            Column("building_code", "b.code"),
            _grid_code(),
            _SYNTHETIC,
        ),
        joins=(
            "LEFT JOIN care_subject_private p ON p.subject_id = t.id",
            "LEFT JOIN buildings b ON b.id = t.building_id",
            _GRID_JOIN,
        ),
        # opened per row after the read that logs them (gis.care.private); returned, not queryable
        sealed=Sealed(
            sql="p.sealed",
            columns=(
                Column("full_name", ""),
                Column("phone", ""),
                Column("unit", "", "integer"),
                Column("floor", "", "integer"),
                Column("room", ""),
            ),
            open=lambda record_id, blob: private_open(subject_id=record_id, sealed=blob),
        ),
        read_roles=_PERSONAL,
        personal=True,
        scenes=("services",),
    ),
    Layer(
        id="care_density",
        title="Care density",
        title_zh="关爱对象分布",
        description=(
            f"How many people under care live in each building and level-3 grid, and how many live alone; "
            f"no personal field, and groups of fewer than {_DENSITY_MIN} are left out."
        ),
        table="care_subjects",
        geometry_type="MultiPolygon",
        keywords=("elder care", "智慧养老", "aggregate"),
        columns=(
            Column("unit", "t.unit", "string", "building | grid"),
            Column("code", "t.code", "string", "building or grid code"),
            _grid_code("t"),
            Column("registered", "t.registered", "integer", "active people under care"),
            Column("living_alone", "t.living_alone", "integer", f"blank when between 1 and {_DENSITY_MIN - 1}"),
            _SYNTHETIC,
        ),
        view_body=_CARE_DENSITY,
        definer_view=True,
        read_roles=STAFF_ROLES,
        scenes=("services",),
    ),
)


# the cases filed in the last 30 days, per level-3 grid (the indicators of gis.cases.selectors)
_CASE_INDICATORS = """
SELECT 'grid-' || g.code AS id, g.code, g.name, k.filed, k.due, k.closed, k.on_time,
       round(k.closed::numeric / nullif(k.due, 0), 4) AS closure_rate,
       round(k.on_time::numeric / nullif(k.due, 0), 4) AS on_time_rate,
       round(k.reworked::numeric / nullif(k.closed, 0), 4) AS rework_rate,
       round(k.deferred::numeric / nullif(k.filed, 0), 4) AS deferral_rate,
       round(k.close_median_min::numeric, 1) AS close_median_min, g.synthetic, g.geom
FROM (""" + INDICATORS_SQL.format(start="now() - interval '30 days'", end="now()", key="i.grid_id") + """) k
JOIN grids g ON g.id = k.key
"""

LAYERS = LAYERS + (
    Layer(
        id="departments",
        title="Departments and their jurisdictions",
        title_zh="联动部门辖区",
        description=(
            "Units beyond the grids (police station, market supervision, the city enforcement squad …): the incident "
            "categories each handles and where. A case escalated above the subdistrict goes to the one that covers "
            "its place (docs/cases.md)."
        ),
        table="departments",
        geometry_type="MultiPolygon",
        keywords=("department", "jurisdiction", "联合执法"),
        columns=(
            Column("code", "t.code"),
            Column("name", "t.name"),
            Column("kind", "t.kind"),
            Column("categories", "array_to_string(t.categories, ',')", "string", "incident categories it handles"),
            Column("phone", "t.phone", "string", "the unit's duty number"),
            _SYNTHETIC,
        ),
        read_roles=STAFF_ROLES,
        scenes=("governance",),
    ),
    Layer(
        id="case_indicators",
        title="Case indicators (last 30 days)",
        title_zh="案件考核指标",
        description=(
            "The GB/T 30428 indicators of the cases filed in the last 30 days, per level-3 grid: filed, due, "
            "closed, closed on time, and the closure, on-time, rework and deferral rates (see docs/cases.md)."
        ),
        table="cases",
        geometry_type="MultiPolygon",
        keywords=("cases", "indicators", "考核", "aggregate"),
        columns=(
            Column("code", "t.code", "string", "level-3 grid (code)"),
            Column("name", "t.name"),
            Column("filed", "t.filed", "integer", "立案数"),
            Column("due", "t.due", "integer", "应结案数"),
            Column("closed", "t.closed", "integer", "结案数"),
            Column("on_time", "t.on_time", "integer", "按期结案数"),
            Column("closure_rate", "t.closure_rate", "number", "结案率"),
            Column("on_time_rate", "t.on_time_rate", "number", "按期结案率"),
            Column("rework_rate", "t.rework_rate", "number", "返工率"),
            Column("deferral_rate", "t.deferral_rate", "number", "延期率"),
            Column("close_median_min", "t.close_median_min", "number", "minutes from filing to closure (median)"),
            _SYNTHETIC,
        ),
        view_body=_CASE_INDICATORS,
        definer_view=True,
        read_roles=FIGURE_ROLES,
        scenes=("governance",),
    ),
)


def public_layers() -> tuple[Layer, ...]:
    """Layers anonymous visitors may read."""
    return tuple(layer for layer in LAYERS if layer.public)


def layer(layer_id: str) -> Layer:
    for candidate in LAYERS:
        if candidate.id == layer_id:
            return candidate
    raise KeyError(f"no layer {layer_id!r}; known: {', '.join(l.id for l in LAYERS)}")
