"""The demo community: a synthetic Pingdeng Street (平等街), Xidajie subdistrict, Zhengzhou.

``load_demo(seed=N)`` generates the whole community deterministically and upserts
it by natural key (``code``), so loading twice leaves the database as loading
once did. Everything it writes is marked ``synthetic``; the people are invented.

Grids are cut from one jittered vertex lattice: neighbouring cells share the very
same vertex coordinates, so each parent is exactly the union of its children.
That is checked in PostGIS after loading, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import shapely
import shapely.affinity
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.ops import unary_union

from core.vocabulary import CLOSED_STATUSES, PARKING_CATEGORY, SAFETY_CATEGORIES
from data import names
from core.camera_model import PinholeCamera
from data.summary import LoadSummary

DEFAULT_SEED = 20261126
CENTRE_LONLAT = (113.66, 34.757)
METRIC_CRS = "EPSG:4547"
TZ = ZoneInfo("Asia/Shanghai")
# A fixed "now" keeps the demo identical from one run (and day) to the next (`onemap demo` loads it for now).
DEMO_AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)
INCIDENT_WINDOW = timedelta(days=60)  # the demo's incidents lie in the last 60 days before its as-of moment
# the incidents of the as-of moment's own local day, so a fresh demo's "today" panels are never empty
TODAYS_INCIDENTS = SAFETY_CATEGORIES + (PARKING_CATEGORY,)
TODAY_SPREAD = timedelta(hours=6)  # ... reported within this long before it (and after local midnight)

LEVEL1_CODE = "410104003"  # Guancheng district (410104) + Xidajie subdistrict
LEVEL1_NAME = "西大街街道"
NX, NY = 4, 4  # level-3 cells west→east, south→north
CELL_W, CELL_H = 420.0, 320.0  # metres
ROTATION_DEG = 8.0
# Which community (level-2 grid) each cell belongs to; row 0 is the southern row.
COMMUNITY_OF_CELL = [
    "DDEC",
    "DEEC",
    "AABC",
    "AABB",
][::-1]
COMMUNITY_ORDER = "ABCDE"

EDGE_SETBACK_M = 14.0  # buildings keep this far from the streets on grid edges
LANE_SETBACK_M = 10.0  # ... and from the lanes through each cell
LANE_HALF_WIDTH_M = 4.0
SPOT_LEN_M, SPOT_WIDTH_M, SPOT_PITCH_M = 6.0, 2.5, 6.2

EXPECTED = {"grids_level1": 1, "grids_level2": 5, "grids_level3": 16, "care_subjects": 1024, "grid_workers": 65}


class DemoDataError(RuntimeError):
    """The generated community failed a check; nothing was written."""


# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------


def load_demo(*, seed: int = DEFAULT_SEED, progress: bool = False, as_of: datetime = DEMO_AS_OF) -> LoadSummary:
    """Generate the demo community and upsert it; stale synthetic rows are removed. All or nothing."""
    from django.db import transaction

    from gis.models import DataLoad

    started = time.monotonic()
    started_at = datetime.now(tz=TZ)
    say = _printer(progress)
    data = generate_demo(seed=seed, as_of=as_of)
    say(f"  generated {sum(len(v) for v in data.tables.values()):,} rows in {time.monotonic() - started:.1f} s; loading ...")
    summary = LoadSummary(scale="demo", seed=seed)
    with transaction.atomic():
        _clear_other_synthetic_data(say)
        _Loader(data, summary, say).run()
        _restore_access_profiles(say)
        problems = _check_grids()
        if problems:
            raise DemoDataError("generated grids do not tile exactly:\n" + "\n".join(problems))
        summary.checksum = demo_checksum()
        summary.total_seconds = time.monotonic() - started
        DataLoad.objects.create(
            kind="demo",
            parameters={"seed": seed, "as_of": as_of.isoformat()},
            counts=summary.counts,
            checksum=summary.checksum,
            started_at=started_at,
        )
    return summary


def demo_is_loaded() -> bool:
    """True when the last demo load is still in place (its grids are all there)."""
    from gis.models import DataLoad, Grid

    last = DataLoad.objects.filter(kind="demo").first()
    if last is None:
        return False
    return Grid.objects.filter(synthetic=True, code__startswith=LEVEL1_CODE).count() == last.counts.get("grids", -1)


def demo_loaded_as_of() -> datetime | None:
    """The as-of moment of the demo now loaded, or None when none is."""
    from gis.models import DataLoad

    if not demo_is_loaded():
        return None
    raw = DataLoad.objects.filter(kind="demo").first().parameters.get("as_of")
    return datetime.fromisoformat(raw) if raw else None


def demo_checksum() -> str:
    """SHA-256 over the content of every synthetic row the demo writes.

    Rows are identified by code and references by the code they point at, so equal
    content gives equal sums whatever surrogate ids the rows got.
    """
    from django.db import connection

    from gis.care.models import CareSubjectPrivate

    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        for model in _checksum_models():
            if model is CareSubjectPrivate:  # sealed afresh (a new nonce) at every load: the sum is of what it holds
                value = _private_checksum(cursor)
            else:
                cursor.execute(_checksum_sql(model).as_string(cursor.connection))
                value = cursor.fetchone()[0]
            digest.update(f"{model._meta.db_table}:{value};".encode())
    return digest.hexdigest()


def _private_checksum(cursor) -> str:
    """MD5 over the opened personal fields of the synthetic people, by their code."""
    from gis.care.private import private_open

    cursor.execute("SELECT s.code, p.subject_id, p.gender, p.sealed FROM care_subject_private p "
                   "JOIN care_subjects s ON s.id = p.subject_id WHERE s.synthetic")
    rows = sorted(json.dumps([code, gender, private_open(subject_id=subject_id, sealed=sealed)],
                             ensure_ascii=False, sort_keys=True)
                  for code, subject_id, gender, sealed in cursor.fetchall())
    return hashlib.md5("|".join(rows).encode()).hexdigest()


def _checksum_models():
    from gis import models as m

    return [m.Grid, m.StreetNode, m.Street, m.Building, m.Camera, m.ParkingSpot, m.NoParkingZone, m.CareSubject,
            m.CareSubjectPrivate, m.Sensor, m.SensorEvent, m.Incident, m.GridWorker, m.PartyOrganization,
            m.PartyActivity, m.ServicePoint]


def _checksum_sql(model):
    from psycopg import sql

    parts = []
    for f in model._meta.concrete_fields:
        if f.name in ("id", "created_at", "updated_at", "received_at"):
            continue
        if f.is_relation:
            target = f.related_model
            key = "code" if any(x.name == "code" for x in target._meta.fields) else target._meta.pk.column
            if key == "code":
                value = sql.SQL("(SELECT r.{} FROM {} r WHERE r.{} = t.{})").format(
                    sql.Identifier("code"), sql.Identifier(target._meta.db_table),
                    sql.Identifier(target._meta.pk.column), sql.Identifier(f.column))
            else:
                value = sql.SQL("t.{}").format(sql.Identifier(f.column))
        else:
            value = sql.SQL("t.{}").format(sql.Identifier(f.column))
        parts.append(sql.SQL("{}, {}").format(sql.Literal(f.name), value))
    row = sql.SQL("jsonb_build_object({})::text").format(sql.SQL(", ").join(parts))
    synthetic = "synthetic" in {f.name for f in model._meta.fields}
    return sql.SQL("SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM "
                   "(SELECT {} AS x FROM {} t {}) rows").format(
        row, sql.Identifier(model._meta.db_table), sql.SQL("WHERE t.synthetic" if synthetic else ""))


# ---------------------------------------------------------------------------
# generation (pure: no database)
# ---------------------------------------------------------------------------


@dataclass
class DemoData:
    """Rows per table; references between rows are by code, geometry is shapely in EPSG:4326."""

    seed: int
    as_of: datetime
    tables: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, table: str, row: dict) -> dict:
        self.tables.setdefault(table, []).append(row)
        return row


def generate_demo(*, seed: int = DEFAULT_SEED, as_of: datetime = DEMO_AS_OF) -> DemoData:
    """Build every row of the demo community from ``seed`` alone."""
    gen = _Generator(seed, as_of)
    gen.grids()
    gen.streets()
    gen.buildings()
    gen.care_subjects()
    gen.cameras()
    gen.parking()
    gen.sensors_and_events()
    gen.incidents()
    gen.grid_workers()
    gen.party()
    gen.service_points()
    return gen.data


class _Frame:
    """Local metres (EPSG:4547) around the demo centre, and the way back to lon/lat."""

    def __init__(self):
        self.to_metric = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
        self.to_lonlat = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
        self.cx, self.cy = self.to_metric.transform(*CENTRE_LONLAT)

    def lonlat(self, geom):
        """A metric shapely geometry in lon/lat, rounded to 1e-7° (about 1 cm)."""
        out = shapely.transform(geom, lambda xy: np.column_stack(self.to_lonlat.transform(xy[:, 0], xy[:, 1])))
        return shapely.set_precision(out, 1e-7) if not isinstance(out, Point) else Point(round(out.x, 7), round(out.y, 7))

    def point(self, x: float, y: float) -> Point:
        lon, lat = self.to_lonlat.transform(x, y)
        return Point(round(lon, 7), round(lat, 7))

    def lonlat_pair(self, x: float, y: float) -> list[float]:
        lon, lat = self.to_lonlat.transform(x, y)
        return [round(lon, 7), round(lat, 7)]


@dataclass
class _Cell:
    row: int
    col: int
    code: str
    name: str
    community: str  # level-2 code
    corners: np.ndarray  # 4×2 metric: SW, SE, NE, NW
    polygon_ll: Polygon
    buildings: list = field(default_factory=list)
    lane_runs: list = field(default_factory=list)

    def at(self, s: float, t: float) -> np.ndarray:
        """Bilinear position inside the cell: s west→east, t south→north, both 0..1."""
        sw, se, ne, nw = self.corners
        return (1 - s) * (1 - t) * sw + s * (1 - t) * se + s * t * ne + (1 - s) * t * nw

    @property
    def metric_polygon(self) -> Polygon:
        return Polygon(self.corners)


# the status of a generated incident by its age: the first row it is older than, shares by status
_STATUS_BY_AGE = (
    (timedelta(days=7), {"closed": 0.7, "resolved": 0.2, "false_alarm": 0.1}),
    (timedelta(days=2), {"resolved": 0.5, "in_progress": 0.3, "dispatched": 0.2}),
    (timedelta.min, {"new": 0.5, "dispatched": 0.3, "in_progress": 0.2}),
)


class _Generator:
    def __init__(self, seed: int, as_of: datetime):
        self.rng = np.random.default_rng(seed)
        self.as_of = as_of
        self.frame = _Frame()
        self.data = DemoData(seed=seed, as_of=as_of)
        self.cells: list[_Cell] = []
        self.building_rows: list[dict] = []
        self.subjects: list[dict] = []
        self.facade_cameras: list[dict] = []
        self.courtyard_cameras: list[dict] = []
        self.parking_cameras: list[dict] = []
        self.zones: list[dict] = []
        self.community_points: dict[str, Point] = {}

    # -- small helpers -------------------------------------------------------

    def _uniform(self, a, b):
        return float(self.rng.uniform(a, b))

    def _choice(self, seq, p=None):
        return seq[int(self.rng.choice(len(seq), p=p))]

    def _person_name(self, gender: str) -> str:
        given = names.GIVEN_F if gender == "F" else names.GIVEN_M
        n = 1 + int(self.rng.random() < 0.6)
        return self._choice(names.SURNAMES) + "".join(self._choice(given) for _ in range(n))

    def _phone(self) -> str:
        return "199" + "".join(str(int(d)) for d in self.rng.integers(0, 10, 8))

    def _time_before(self, days: float) -> datetime:
        return (self.as_of - timedelta(seconds=self._uniform(0, days * 86400))).replace(microsecond=0)

    # -- grids ---------------------------------------------------------------

    def _lattice(self) -> np.ndarray:
        """(NY+1)×(NX+1)×2 metric vertices, jittered; boundary vertices slide only along the boundary."""
        w, h = NX * CELL_W, NY * CELL_H
        verts = np.zeros((NY + 1, NX + 1, 2))
        rot = math.radians(ROTATION_DEG)
        for i in range(NY + 1):
            for j in range(NX + 1):
                u, v = j * CELL_W - w / 2, i * CELL_H - h / 2
                du = self._uniform(-0.12, 0.12) * CELL_W if 0 < j < NX else 0.0
                dv = self._uniform(-0.12, 0.12) * CELL_H if 0 < i < NY else 0.0
                u, v = u + du, v + dv
                verts[i, j] = (
                    self.frame.cx + u * math.cos(rot) - v * math.sin(rot),
                    self.frame.cy + u * math.sin(rot) + v * math.cos(rot),
                )
        return verts

    def grids(self) -> None:
        verts = self._lattice()
        lonlat = np.zeros_like(verts)
        lonlat[..., 0], lonlat[..., 1] = self.frame.to_lonlat.transform(verts[..., 0], verts[..., 1])
        lonlat = np.round(lonlat, 7)
        self.lattice_ll = lonlat
        communities = {c: f"{LEVEL1_CODE}{k + 1:03d}" for k, c in enumerate(COMMUNITY_ORDER)}
        seq = {c: 0 for c in COMMUNITY_ORDER}
        for i in range(NY):
            for j in range(NX):
                letter = COMMUNITY_OF_CELL[i][j]
                seq[letter] += 1
                community_name = names.COMMUNITIES[COMMUNITY_ORDER.index(letter)]
                ring = [lonlat[i, j], lonlat[i, j + 1], lonlat[i + 1, j + 1], lonlat[i + 1, j]]
                self.cells.append(
                    _Cell(
                        row=i, col=j,
                        code=f"{communities[letter]}{seq[letter]:03d}",
                        name=f"{community_name}第{seq[letter]}网格",
                        community=communities[letter],
                        corners=np.array([verts[i, j], verts[i, j + 1], verts[i + 1, j + 1], verts[i + 1, j]]),
                        polygon_ll=Polygon([tuple(p) for p in ring]),
                    )
                )
        populations = {c.code: int(self.rng.integers(1500, 3600)) for c in self.cells}
        level2 = []
        for k, letter in enumerate(COMMUNITY_ORDER):
            code = communities[letter]
            members = [c for c in self.cells if c.community == code]
            level2.append(
                {
                    "code": code, "level": 2, "parent_code": LEVEL1_CODE,
                    "name": names.COMMUNITIES[k], "responsible_unit": f"{names.COMMUNITIES[k]}居民委员会",
                    "population": sum(populations[c.code] for c in members),
                    "geom": _multi(unary_union([c.polygon_ll for c in members])),
                }
            )
        self.data.add(
            "grids",
            {
                "code": LEVEL1_CODE, "level": 1, "parent_code": None, "name": LEVEL1_NAME,
                "responsible_unit": "西大街街道办事处", "population": sum(populations.values()),
                "geom": _multi(unary_union([g["geom"] for g in level2])),
            },
        )
        for row in level2:
            self.data.add("grids", row)
        for cell in self.cells:
            self.data.add(
                "grids",
                {
                    "code": cell.code, "level": 3, "parent_code": cell.community, "name": cell.name,
                    "responsible_unit": f"{cell.name}工作站", "population": populations[cell.code],
                    "geom": _multi(cell.polygon_ll),
                },
            )

    # -- streets ---------------------------------------------------------------

    def streets(self) -> None:
        nodes: dict[tuple, str] = {}

        def node(key, xy) -> str:
            if key not in nodes:
                code = f"SN-{len(nodes) + 1:04d}"
                nodes[key] = code
                self.data.add("street_nodes", {"code": code, "geom": self.frame.point(*xy)})
            return nodes[key]

        def edge(name, kind, a_key, a_xy, b_key, b_xy):
            length = float(np.hypot(*(np.asarray(b_xy) - np.asarray(a_xy))))
            self.data.add(
                "streets",
                {
                    "code": f"ST-{len(self.data.tables.get('streets', [])) + 1:04d}",
                    "name": name, "kind": kind,
                    "source_code": node(a_key, a_xy), "target_code": node(b_key, b_xy),
                    "length_m": round(length, 2), "cost": round(length, 2), "reverse_cost": round(length, 2),
                    "geom": self.frame.lonlat(LineString([a_xy, b_xy])),
                },
            )

        corners = {}
        for cell in self.cells:
            corners[(cell.row, cell.col)] = cell.corners[0]
            corners[(cell.row, cell.col + 1)] = cell.corners[1]
            corners[(cell.row + 1, cell.col + 1)] = cell.corners[2]
            corners[(cell.row + 1, cell.col)] = cell.corners[3]
        for i in range(NY + 1):  # east-west streets along lattice rows
            for j in range(NX):
                a, b = corners[(i, j)], corners[(i, j + 1)]
                kind = "primary" if i in (0, NY) else "secondary"
                mid = (a + b) / 2
                edge(names.EW_STREETS[i], kind, ("v", i, j), a, ("h", i, j), mid)
                edge(names.EW_STREETS[i], kind, ("h", i, j), mid, ("v", i, j + 1), b)
        for j in range(NX + 1):  # north-south streets along lattice columns
            for i in range(NY):
                a, b = corners[(i, j)], corners[(i + 1, j)]
                kind = "primary" if j in (0, NX) else "secondary"
                mid = (a + b) / 2
                edge(names.NS_STREETS[j], kind, ("v", i, j), a, ("w", i, j), mid)
                edge(names.NS_STREETS[j], kind, ("w", i, j), mid, ("v", i + 1, j), b)
        for cell in self.cells:  # lanes: from the cell centre to each edge midpoint
            centre = cell.at(0.5, 0.5)
            ends = {
                ("h", cell.row, cell.col): cell.at(0.5, 0.0),
                ("h", cell.row + 1, cell.col): cell.at(0.5, 1.0),
                ("w", cell.row, cell.col): cell.at(0.0, 0.5),
                ("w", cell.row, cell.col + 1): cell.at(1.0, 0.5),
            }
            for key, end in ends.items():
                edge(f"{cell.name}内巷", "lane", ("c", cell.row, cell.col), centre, key, end)
                cell.lane_runs.append((centre, end))

    # -- buildings -----------------------------------------------------------

    def buildings(self) -> None:
        street_no = {name: 1 for name in names.EW_STREETS}
        kinds = [("low", 0.55), ("mid", 0.25), ("tower", 0.20)]
        for cell in self.cells:
            lanes = unary_union([LineString(run) for run in cell.lane_runs])
            buildable = cell.metric_polygon.buffer(-EDGE_SETBACK_M).difference(lanes.buffer(LANE_SETBACK_M))
            for qt in (0, 1):
                for qs in (0, 1):
                    compound = self._choice(names.COMPOUND_WORDS) + self._choice(names.COMPOUND_SUFFIX)
                    street = names.EW_STREETS[cell.row + qt]
                    number = street_no[street]
                    street_no[street] += 2
                    placed: list[Polygon] = []
                    for r in range(4):
                        for c in range(2):
                            if self.rng.random() < 0.08:  # open space
                                continue
                            s = qs * 0.5 + (c + 0.5) / 2 * 0.5 + self._uniform(-0.01, 0.01)
                            t = qt * 0.5 + (r + 0.5) / 4 * 0.5 + self._uniform(-0.01, 0.01)
                            kind = self._choice([k for k, _ in kinds], p=[p for _, p in kinds])
                            footprint = self._footprint(cell, s, t, kind)
                            for _ in range(2):
                                if footprint.within(buildable) and not any(footprint.intersects(p) for p in placed):
                                    break
                                footprint = shapely.affinity.scale(footprint, 0.8, 0.8)
                            else:
                                continue
                            placed.append(footprint)
                            self._add_building(cell, footprint, kind, compound, street, number, len(placed))

    def _footprint(self, cell: _Cell, s: float, t: float, kind: str) -> Polygon:
        centre = cell.at(s, t)
        along = cell.at(min(s + 0.01, 1), t) - cell.at(max(s - 0.01, 0), t)
        ex = along / np.linalg.norm(along)
        ey = np.array([-ex[1], ex[0]])
        length, depth = {"low": (50.0, 13.0), "mid": (56.0, 15.0), "tower": (24.0, 24.0)}[kind]
        length *= self._uniform(0.85, 1.05)
        hx, hy = ex * length / 2, ey * depth / 2
        return Polygon([centre - hx - hy, centre + hx - hy, centre + hx + hy, centre - hx + hy])

    def _add_building(self, cell, footprint, kind, compound, street, number, k) -> None:
        floors = {"low": (4, 7), "mid": (9, 18), "tower": (24, 33)}[kind]
        floors = int(self.rng.integers(floors[0], floors[1] + 1))
        storey = self._uniform(2.85, 3.1)
        edges = np.diff(np.asarray(footprint.exterior.coords), axis=0)
        length = float(np.max(np.hypot(edges[:, 0], edges[:, 1])))
        units = 2 if kind == "tower" else max(1, min(5, round(length / 16)))
        years = {"low": (1980, 2000), "mid": (1995, 2012), "tower": (2005, 2020)}[kind]
        row = self.data.add(
            "buildings",
            {
                "code": f"BLD-{len(self.building_rows) + 1:04d}",
                "name": f"{compound}{k}号楼",
                "address": f"郑州市管城回族区{street}{number}号院{k}号楼",
                "floors": floors,
                "height_m": round(floors * storey + 1.5, 1),
                "units": units,
                "households": units * floors * (4 if kind == "tower" else 2),
                "use": "mixed" if self.rng.random() < 0.05 else "residential",
                "built_year": int(self.rng.integers(years[0], years[1] + 1)),
                "geom": MultiPolygon([self.frame.lonlat(footprint)]),
                "_metric": footprint,
                "_kind": kind,
            },
        )
        self.building_rows.append(row)
        cell.buildings.append(row)

    # -- care subjects ---------------------------------------------------------

    def care_subjects(self) -> None:
        residential = [b for b in self.building_rows if b["use"] in ("residential", "mixed")]
        weights = np.array([b["households"] for b in residential], dtype=float)
        picks = self.rng.choice(len(residential), size=EXPECTED["care_subjects"], p=weights / weights.sum())
        bands = [(60, 69, 0.45), (70, 79, 0.33), (80, 89, 0.18), (90, 99, 0.04)]
        for n, idx in enumerate(picks, start=1):
            building = residential[int(idx)]
            lo, hi, _ = self._choice(bands, p=[b[2] for b in bands])
            age = int(self.rng.integers(lo, hi + 1))
            gender = "F" if self.rng.random() < 0.56 else "M"
            lives_alone = bool(self.rng.random() < 0.22)
            floor = int(self.rng.integers(1, building["floors"] + 1))
            unit = int(self.rng.integers(1, building["units"] + 1))
            birth = (self.as_of.date() - timedelta(days=int(age * 365.25 + self.rng.integers(0, 365))))
            subject = self.data.add(
                "care_subjects",
                {
                    "code": f"CS-{n:04d}",
                    "kind": "home_monitoring" if self.rng.random() < 0.03 else "elder",
                    "age_band": f"{age // 5 * 5}-{age // 5 * 5 + 4}",
                    "lives_alone": lives_alone,
                    "monitoring_rule": {"no_activity_hours": 48, "notify": "grid_worker"} if lives_alone else {},
                    "care_level": int(self._choice([1, 2, 3, 4], p=[0.6, 0.25, 0.1, 0.05])),
                    "active": True,
                    "building_code": building["code"],
                    "geom": building["geom"].representative_point(),
                    "_building": building,
                },
            )
            self.data.add(
                "care_subject_private",
                {
                    "subject_code": subject["code"],
                    "full_name": self._person_name(gender),
                    "gender": gender,
                    "birth_date": birth,
                    "phone": self._phone() if self.rng.random() < 0.8 else "",
                    "unit": unit,
                    "floor": floor,
                    "room": f"{floor}{int(self.rng.integers(1, 5)):02d}",
                    "contacts": [
                        {
                            "name": self._person_name(self._choice(["F", "M"])),
                            "relation": self._choice(names.RELATIONS),
                            "phone": self._phone(),
                        }
                        for _ in range(int(self.rng.integers(1, 3)))
                    ],
                    "health_notes": self._choice(names.HEALTH_NOTES),
                },
            )
            self.subjects.append(subject)

    # -- cameras -----------------------------------------------------------------

    def cameras(self) -> None:
        high = [b for b in self.building_rows if b["floors"] >= 9]
        order = self.rng.permutation(len(high))
        for n, idx in enumerate(order[:28], start=1):
            self._facade_camera(n, high[int(idx)])
        for n, cell in enumerate(self.cells + self.cells[::4], start=1):
            self._ground_camera("courtyard", n, cell, lane=int(self.rng.integers(0, 4)))
        for n, cell in enumerate(self.cells, start=1):
            self._ground_camera("parking", n, cell, lane=int(self.rng.integers(0, 4)))

    def _status(self) -> str:
        return self._choice(["online", "offline", "maintenance"], p=[0.93, 0.05, 0.02])

    def _facade_camera(self, n: int, building: dict) -> None:
        rect = np.asarray(building["_metric"].exterior.coords)[:4]
        sides = [(rect[k], rect[(k + 1) % 4]) for k in range(4)]
        long_sides = sorted(sides, key=lambda s: -np.hypot(*(s[1] - s[0])))[:2]
        a, b = long_sides[int(self.rng.integers(0, 2))]
        centroid = np.asarray(building["_metric"].centroid.coords[0])
        mid = (a + b) / 2
        normal = np.array([-(b - a)[1], (b - a)[0]]) / np.hypot(*(b - a))
        if np.dot(normal, mid - centroid) < 0:
            normal = -normal
        distance = self._uniform(30, 45)
        cam_xy = mid + normal * distance
        look = -normal
        heading = math.degrees(math.atan2(look[0], look[1])) % 360
        right = np.array([math.cos(math.radians(heading)), -math.sin(math.radians(heading))])
        origin, far = (a, b) if np.dot(a - mid, right) < 0 else (b, a)
        facade_len = float(np.hypot(*(far - origin)))
        height = building["height_m"]
        mount = round(self._uniform(3.5, 6.0), 1)
        tilt = min(50.0, math.degrees(math.atan2(height * 0.55 - mount, distance)))
        cam = PinholeCamera(x=cam_xy[0], y=cam_xy[1], height=mount, heading_deg=heading, tilt_deg=tilt, hfov_deg=80.0)
        along = (far - origin) / facade_len
        corners3d = np.array([
            [*origin, 0.0], [*(origin + along * facade_len), 0.0],
            [*(origin + along * facade_len), height], [*origin, height],
        ])
        image_quad = Polygon(cam.project(corners3d))
        visible = image_quad.intersection(box(0, 0, cam.width, cam.height_px))
        image_points = np.asarray(shapely.set_precision(visible, 0.1).exterior.coords)[:-1]
        hits = cam.back_project(image_points, np.array([*origin, 0.0]), np.array([*normal, 0.0]))
        facade_points = np.column_stack([(hits[:, :2] - origin) @ along, hits[:, 2]])
        calibration = {
            "image_size": [cam.width, cam.height_px],
            "facade": {
                "building": building["code"],
                "origin": self.frame.lonlat_pair(*origin),
                "azimuth_deg": round(math.degrees(math.atan2(along[0], along[1])) % 360, 3),
                "floor_height_m": round((height - 1.5) / building["floors"], 3),
                "ground_floor": 1,
                "image_points": np.round(image_points, 1).tolist(),
                "facade_points": np.round(facade_points, 3).tolist(),
            },
            "masks": [[[0, 1000], [1920, 1000], [1920, 1080], [0, 1080]]] if self.rng.random() < 0.5 else [],
        }
        row = self.data.add(
            "cameras",
            {
                "code": f"CAM-F-{n:03d}", "name": f"{building['name']}立面高空抛物监控",
                "purpose": "facade", "height_m": mount, "heading_deg": round(heading, 2), "fov_deg": 80.0,
                "calibration": calibration, "status": self._status(),
                "stream_url": f"rtsp://cameras.invalid/facade/{n:03d}",
                "building_code": building["code"], "geom": self.frame.point(*cam_xy),
                "_building": building, "_origin": origin, "_along": along, "_facade_len": facade_len,
                "_normal": normal,
            },
        )
        self.facade_cameras.append(row)

    def _ground_camera(self, purpose: str, n: int, cell: _Cell, lane: int) -> None:
        centre, end = cell.lane_runs[lane]
        direction = (end - centre) / np.linalg.norm(end - centre)
        side = np.array([-direction[1], direction[0]])
        pos = centre + direction * self._uniform(8, 20) + side * LANE_HALF_WIDTH_M * 1.5
        heading = (math.degrees(math.atan2(direction[0], direction[1])) + self._uniform(-15, 15)) % 360
        mount = round(self._uniform(5.5, 8.0), 1)
        cam = PinholeCamera(x=pos[0], y=pos[1], height=mount, heading_deg=heading,
                            tilt_deg=self._uniform(-35, -25), hfov_deg=70.0)
        fractions = np.array([[0.1, 0.55], [0.9, 0.55], [0.95, 0.95], [0.05, 0.95]])
        image_points = np.round(fractions * [cam.width, cam.height_px], 1)
        hits = cam.back_project(image_points, np.zeros(3), np.array([0.0, 0.0, 1.0]))
        world = [self.frame.lonlat_pair(x, y) for x, y, _ in hits]
        label = {"courtyard": ("C", "院落"), "parking": ("P", "停车")}[purpose]
        row = self.data.add(
            "cameras",
            {
                "code": f"CAM-{label[0]}-{n:03d}", "name": f"{cell.name}{label[1]}监控{n}",
                "purpose": purpose, "height_m": mount, "heading_deg": round(heading, 2), "fov_deg": 70.0,
                "calibration": {
                    "image_size": [cam.width, cam.height_px],
                    "ground": {"image_points": image_points.tolist(), "world_points": world},
                    "masks": [],
                },
                "status": self._status(), "stream_url": f"rtsp://cameras.invalid/{purpose}/{n:03d}",
                "building_code": None, "geom": self.frame.point(*pos), "_ground": hits,
            },
        )
        (self.courtyard_cameras if purpose == "courtyard" else self.parking_cameras).append(row)

    # -- parking -----------------------------------------------------------------

    def parking(self) -> None:
        spot_no = zone_no = 0
        for cell in self.cells:
            junction = cell.at(0.5, 0.5)
            zone_no += 1
            self.zones.append(self.data.add("no_parking_zones", {
                "code": f"NPZ-{zone_no:03d}", "name": f"{cell.name}中心路口", "reason": "entrance",
                "geom": self.frame.lonlat(Point(junction).buffer(8.0, quad_segs=4)),
            }))
            for centre, end in cell.lane_runs:
                direction = (end - centre) / np.linalg.norm(end - centre)
                normal = np.array([-direction[1], direction[0]])
                lane_len = float(np.linalg.norm(end - centre))
                side = 1 if self.rng.random() < 0.5 else -1
                offset = LANE_HALF_WIDTH_M + SPOT_WIDTH_M / 2
                count = min(int(self.rng.integers(6, 13)), int((lane_len - 40) // SPOT_PITCH_M))
                for k in range(count):
                    spot_no += 1
                    mid = centre + direction * (20 + SPOT_PITCH_M * k + SPOT_LEN_M / 2) + side * normal * offset
                    self.data.add("parking_spots", {
                        "code": f"PS-{spot_no:04d}",
                        "kind": self._choice(["residential", "public", "disabled", "ev"], p=[0.72, 0.2, 0.03, 0.05]),
                        "occupancy": self._choice(["free", "occupied", "unknown"], p=[0.35, 0.55, 0.10]),
                        "occupancy_updated_at": self._time_before(1),
                        "geom": self.frame.lonlat(_rectangle(mid, direction, SPOT_LEN_M, SPOT_WIDTH_M)),
                    })
                zone_no += 1
                fire_mid = centre + direction * 35 - side * normal * (LANE_HALF_WIDTH_M + 2)
                self.zones.append(self.data.add("no_parking_zones", {
                    "code": f"NPZ-{zone_no:03d}", "name": f"{cell.name}消防通道", "reason": "fire_lane",
                    "geom": self.frame.lonlat(_rectangle(fire_mid, direction, 30.0, 4.0)),
                }))

    # -- sensors and their recent messages -------------------------------------------

    def sensors_and_events(self) -> None:
        alone = [s for s in self.subjects if s["lives_alone"]]
        self.silent_subjects = []
        peephole_no = 0
        for n, subject in enumerate(alone, start=1):
            building = subject["_building"]
            door = self.data.add("sensors", {
                "code": f"SEN-D-{n:04d}", "kind": "door_magnet", "care_subject_code": subject["code"],
                "building_code": building["code"], "camera_code": None, "status": "online",
                "battery_pct": int(self.rng.integers(15, 101)), "geom": subject["geom"],
            })
            silent = self.rng.random() < 0.04
            self._door_events(door, silent)
            if silent:
                self.silent_subjects.append((subject, door))
            if self.rng.random() < 1 / 3:
                peephole_no += 1
                camera = self.data.add("cameras", {
                    "code": f"CAM-H-{peephole_no:03d}", "name": f"{building['name']}猫眼摄像头{peephole_no}",
                    "purpose": "peephole", "height_m": 1.5, "heading_deg": round(self._uniform(0, 359.9), 1),
                    "fov_deg": 120.0, "calibration": {"image_size": [1280, 720]}, "status": "online",
                    "stream_url": "", "building_code": building["code"], "geom": subject["geom"],
                })
                self.data.add("sensors", {
                    "code": f"SEN-H-{peephole_no:04d}", "kind": "peephole_camera",
                    "care_subject_code": subject["code"], "building_code": building["code"],
                    "camera_code": camera["code"], "status": "online", "battery_pct": None, "geom": subject["geom"],
                })

    def _door_events(self, sensor: dict, silent: bool) -> None:
        """Three days of door openings and hourly heartbeats (the rules call a sensor silent after 6 h);
        a silent door has no opening for 52 h."""
        start = self.as_of - timedelta(hours=72)
        events = [(start + timedelta(hours=h), "heartbeat", {}) for h in range(0, 72)]
        last_open = self.as_of - timedelta(hours=52) if silent else self.as_of
        t = start + timedelta(hours=self._uniform(6, 10))
        while t < last_open:
            events.append((t, "door_open", {}))
            events.append((t + timedelta(seconds=int(self.rng.integers(5, 40))), "door_close", {}))
            t += timedelta(hours=self._uniform(3, 9))
        events = sorted((e for e in events if e[0] <= self.as_of), key=lambda e: e[0])  # a door shut after as_of: not yet
        for seq, (ts, kind, payload) in enumerate(events, start=1):
            self.data.add("sensor_events", {
                "sensor_code": sensor["code"], "seq": seq, "ts": ts.replace(microsecond=0), "type": kind,
                "payload": payload,
            })
        sensor["last_seq"] = len(events)
        sensor["_last_door"] = max((e[0] for e in events if e[1] != "heartbeat"), default=start)
        sensor["last_seen_at"] = max(e[0] for e in events).replace(microsecond=0)

    # -- incidents -------------------------------------------------------------

    def incidents(self) -> None:
        plan = [
            ("falling_object", 24), ("fire_smoke", 14), ("illegal_parking", 90), ("resident_report", 70),
            ("sanitation", 40), ("facility_damage", 30), ("neighbour_dispute", 18), ("epidemic", 12),
        ]
        rows = []
        for category, count in plan:
            for _ in range(count):
                rows.append(self._incident(category))
        rows += self._todays_incidents()
        for subject, door in self.silent_subjects:
            rows.append({
                "category": "elder_inactivity", "source": "sensor", "severity": 3, "floor": None,
                "title": "独居老人48小时未开门", "sensor_code": door["code"],
                "building_code": subject["building_code"], "geom": subject["geom"],
                # the rule fires 48 hours after the door last moved
                "reported_at": (door["_last_door"] + timedelta(hours=48)).replace(microsecond=0),
                "status": "new",
            })
        rows.sort(key=lambda r: r["reported_at"])
        for n, row in enumerate(rows, start=1):
            row["code"] = f"INC-DEMO-{n:04d}"
            age = self.as_of - row["reported_at"]
            if "status" not in row:
                shares = next(shares for older_than, shares in _STATUS_BY_AGE if age > older_than)
                row["status"] = self._choice(list(shares), p=list(shares.values()))
            if row["status"] in CLOSED_STATUSES and row["status"] != "false_alarm":  # a false alarm has no resolution
                row["resolved_at"] = row["reported_at"] + timedelta(minutes=int(self.rng.integers(30, 2880)))
            self.data.add("incidents", row)

    def _todays_incidents(self) -> list[dict]:
        """A few incidents of the as-of moment's local day, all still open, drawn from a stream of their own
        (the rest of the demo draws what it would without them)."""
        main, self.rng = self.rng, np.random.default_rng([self.data.seed, 1])
        try:
            midnight = self.as_of.astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
            spread = min(TODAY_SPREAD, self.as_of - midnight).total_seconds()
            rows = []
            for category in TODAYS_INCIDENTS:
                row = self._incident(category)
                row["reported_at"] = (self.as_of - timedelta(seconds=self._uniform(0, spread))).replace(microsecond=0)
                shares = _STATUS_BY_AGE[-1][1]
                row["status"] = self._choice(list(shares), p=list(shares.values()))
                rows.append(row)
            return rows
        finally:
            self.rng = main

    def _incident(self, category: str) -> dict:
        when = self._time_before(INCIDENT_WINDOW.days)
        row = {"category": category, "reported_at": when, "floor": None, "severity": 2}
        if category == "falling_object":
            cam = self._choice(self.facade_cameras)
            building = cam["_building"]
            floor = int(self.rng.integers(3, building["floors"] + 1))
            # where it landed: at the foot of the façade, a few metres out
            spot = (cam["_origin"] + cam["_along"] * cam["_facade_len"] * self._uniform(0.1, 0.9)
                    + cam["_normal"] * self._uniform(1, 6))
            row.update(source="camera", severity=3, floor=floor, camera_code=cam["code"],
                       building_code=building["code"], title=f"高空抛物：{building['name']}约{floor}层",
                       geom=self.frame.point(*spot))
        elif category == "fire_smoke":
            cam = self._choice(self.courtyard_cameras)
            x, y, _ = cam["_ground"][int(self.rng.integers(0, 4))]
            row.update(source="camera", severity=4, camera_code=cam["code"], title="烟火告警：院落内明火或烟雾",
                       geom=self.frame.point(x, y))
        elif category == "illegal_parking":
            zone = self._choice(self.zones)
            row.update(source=self._choice(["camera", "staff", "resident"], p=[0.6, 0.25, 0.15]), severity=1,
                       title=f"违停：{zone['name']}", geom=zone["geom"].representative_point())
            if row["source"] == "camera":
                row["camera_code"] = self._choice(self.parking_cameras)["code"]
        else:
            cell = self._choice(self.cells)
            spot = cell.at(self._uniform(0.05, 0.95), self._uniform(0.05, 0.95))
            source = {"resident_report": "resident", "epidemic": "staff"}.get(
                category, self._choice(["resident", "staff"]))
            titles = {
                "resident_report": "居民上报：楼道杂物堆放", "sanitation": "垃圾满溢待清运",
                "facility_damage": "公共设施损坏", "neighbour_dispute": "邻里纠纷调解", "epidemic": "防疫巡查",
            }
            row.update(source=source, severity=int(self._choice([1, 2, 3], p=[0.4, 0.45, 0.15])),
                       title=titles[category], geom=self.frame.point(*spot))
        return row

    # -- people and places -----------------------------------------------------------

    def grid_workers(self) -> None:
        # When on-duty phones last reported comes from a stream of its own, so every other row of
        # the demo (drawn from self.rng, in the same order as before) stays as it was.
        reports = np.random.default_rng([self.data.seed, 800])
        n = 0
        roles = ["grid_leader", "full_time", "full_time", "part_time"]
        for cell in self.cells:
            for role in roles:
                n += 1
                gender = self._choice(["F", "M"])
                pos = cell.at(self._uniform(0.1, 0.9), self._uniform(0.1, 0.9))
                name, phone = self._person_name(gender), self._phone()
                # every grid keeps someone on call: its grid leader is on duty, the phone reporting
                on_call = role == "grid_leader"
                on_duty = bool(self.rng.random() < 0.6) or on_call
                off_duty_seen = timedelta(minutes=int(self.rng.integers(1, 600)))
                if on_call:
                    seen = timedelta(seconds=int(reports.integers(20, 480)))
                else:
                    seen = _on_duty_report_age(reports) if on_duty else off_duty_seen
                self.data.add("grid_workers", {
                    "code": f"GW-{n:03d}", "name": name, "role": role, "grid_code": cell.code,
                    "phone": phone, "on_duty": on_duty, "last_position": self.frame.point(*pos),
                    "last_seen_at": self.as_of - seen,
                })
        self.data.add("grid_workers", {
            "code": f"GW-{n + 1:03d}", "name": self._person_name("M"), "role": "grid_leader",
            "grid_code": LEVEL1_CODE, "phone": self._phone(), "on_duty": True, "last_position": None,
            "last_seen_at": None,
        })

    def party(self) -> None:
        orgs = []
        for k, community in enumerate(names.COMMUNITIES):
            code = f"{LEVEL1_CODE}{k + 1:03d}"
            cell = next(c for c in self.cells if c.community == code)
            point = self.frame.point(*cell.at(0.42, 0.42))
            self.community_points[code] = point
            orgs.append(self.data.add("party_orgs", {
                "code": f"PO-{len(orgs) + 1:03d}", "name": f"{community}党委", "kind": "party_committee",
                "parent_code": None, "members": int(self.rng.integers(80, 200)), "secretary": "社区党委书记",
                "geom": point, "_community": code,
            }))
        committees = {o["_community"]: o for o in orgs}
        for cell in self.cells:
            orgs.append(self.data.add("party_orgs", {
                "code": f"PO-{len(orgs) + 1:03d}", "name": f"{cell.name}党支部", "kind": "grid_branch",
                "parent_code": committees[cell.community]["code"], "members": int(self.rng.integers(15, 60)),
                "secretary": "网格党支部书记", "geom": self.frame.point(*cell.at(0.58, 0.42)),
            }))
        for company in names.PROPERTY_COMPANIES:
            cell = self._choice(self.cells)
            orgs.append(self.data.add("party_orgs", {
                "code": f"PO-{len(orgs) + 1:03d}", "name": f"{company}党支部", "kind": "property_branch",
                "parent_code": committees[cell.community]["code"], "members": int(self.rng.integers(5, 25)),
                "secretary": "物业党支部书记", "geom": self.frame.point(*cell.at(0.42, 0.58)),
            }))
        n = 0
        for org in orgs:
            for _ in range(3):
                n += 1
                start = self._time_before(60).replace(minute=0, second=0)
                self.data.add("party_activities", {
                    "code": f"PA-{n:03d}", "organization_code": org["code"],
                    "title": f"{org['name']}{self._choice(names.PARTY_ACTIVITIES)}",
                    "starts_at": start, "ends_at": start + timedelta(hours=2),
                    "participants": int(self.rng.integers(8, 41)), "geom": org["geom"],
                })

    def service_points(self) -> None:
        n = 0
        for code, point in self.community_points.items():
            n += 1
            self.data.add("service_points", {
                "code": f"SP-{n:03d}", "name": f"{names.COMMUNITIES[int(code[-3:]) - 1]}党群服务中心",
                "category": "service", "subcategory": "社区党群服务中心", "address": "",
                "opening_hours": "08:30-12:00,14:30-18:00", "phone": "", "geom": point,
            })
        categories = ["service", "commerce", "culture"]
        for cell in self.cells:
            for building in [cell.buildings[int(i)] for i in self.rng.choice(len(cell.buildings), 3, replace=False)]:
                n += 1
                category = self._choice(categories, p=[0.35, 0.45, 0.2])
                kind = self._choice(names.SERVICE_KINDS[category])
                self.data.add("service_points", {
                    "code": f"SP-{n:03d}", "name": f"{building['name'].split('号楼')[0][:-1]}{kind}",
                    "category": category, "subcategory": kind, "address": building["address"],
                    "opening_hours": "07:00-21:00" if category == "commerce" else "09:00-17:00",
                    "phone": "", "geom": building["geom"].representative_point(),
                })


def _on_duty_report_age(rng: np.random.Generator) -> timedelta:
    """How long ago an on-duty phone last sent its position: mostly within the last minutes, some silent."""
    if rng.random() < 0.1:  # no signal, battery flat: the dispatcher sees "position unknown"
        return timedelta(minutes=int(rng.integers(15, 120)))
    return timedelta(seconds=int(rng.integers(20, 480)))


def _multi(geom) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    raise DemoDataError(f"expected a polygon, got {geom.geom_type}")


def _rectangle(mid: np.ndarray, direction: np.ndarray, length: float, width: float) -> Polygon:
    normal = np.array([-direction[1], direction[0]])
    hx, hy = direction * length / 2, normal * width / 2
    return Polygon([mid - hx - hy, mid + hx - hy, mid + hx + hy, mid - hx + hy])


def _printer(progress: bool):
    return (lambda msg: print(msg, flush=True)) if progress else (lambda msg: None)


def _clear_other_synthetic_data(say) -> None:
    """Empty the feature tables at once when another generator's data (the city) fills them.

    Otherwise the upsert keeps ids stable and only stale rows are deleted; row by
    row that would take hours over a million city incidents. Real rows are never
    truncated: with any present, the slow path is taken.
    """
    from django.db import connection

    from data import reset
    from gis.models import Grid

    if not Grid.objects.filter(synthetic=True).exclude(code__startswith=LEVEL1_CODE).exists():
        return
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        tables = reset.synthetic_tables()
        if reset.tables_with_real_rows(cursor, tables):
            return
        say("  replacing another synthetic data set (the city): emptying the feature tables")
        reset.truncate(cursor, sorted(set(tables) | {"sensor_events", "care_subject_private"}))


def _restore_access_profiles(say) -> None:
    from django.db import connection

    from data import reset

    with connection.connection.cursor() as cursor:
        unbound = reset.restore_access_profiles(cursor)
    if unbound:
        say(f"  {unbound} grid worker(s) lost their role: their grid is not in the demo; bind them again with `onemap user add`")


def _check_grids() -> list[str]:
    """Problems with the stored grids: counts per level, exact tiling (0.01 m), parents as unions."""
    from django.db import connection

    from gis.spatial.topology import grid_tiling_problems

    problems = [p.message for p in grid_tiling_problems(tolerance_m=0.01)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT level, count(*) FROM grids WHERE code LIKE %s GROUP BY level ORDER BY level", [LEVEL1_CODE + "%"]
        )
        counts = dict(cursor.fetchall())
        for level in (1, 2, 3):
            if counts.get(level, 0) != EXPECTED[f"grids_level{level}"]:
                problems.append(f"expected {EXPECTED[f'grids_level{level}']} level-{level} grids, found {counts.get(level, 0)}")
        cursor.execute(
            """
            SELECT p.code FROM grids p JOIN grids c ON c.parent_id = p.id
            WHERE p.code LIKE %s GROUP BY p.id, p.code, p.geom
            HAVING NOT ST_Equals(p.geom, ST_Union(c.geom))
            """,
            [LEVEL1_CODE + "%"],
        )
        problems += [f"grid {code} is not exactly the union of its children" for (code,) in cursor.fetchall()]
    return problems


# ---------------------------------------------------------------------------
# loading: upsert by code, then remove synthetic rows the new data lacks
# ---------------------------------------------------------------------------


class _Loader:
    def __init__(self, data: DemoData, summary: LoadSummary, say):
        self.data = data
        self.summary = summary
        self.say = say
        self.ids: dict[str, dict[str, int]] = {}

    def run(self) -> None:
        from gis import models as m

        _care_rows_forget()
        t = self.data.tables
        grids = t["grids"]
        for level in (1, 2, 3):
            self._upsert(m.Grid, "grids", [g for g in grids if g["level"] == level], refs={"parent": "grids"},
                         count_as="grids", assign_grid=False)
        self._upsert(m.StreetNode, "street_nodes", t["street_nodes"], assign_grid=False)
        self._upsert(m.Street, "streets", t["streets"], refs={"source": "street_nodes", "target": "street_nodes"},
                     assign_grid=False)
        self._upsert(m.Building, "buildings", t["buildings"])
        self._upsert(m.Camera, "cameras", t["cameras"], refs={"building": "buildings"})
        self._upsert(m.ParkingSpot, "parking_spots", t["parking_spots"])
        self._upsert(m.NoParkingZone, "no_parking_zones", t["no_parking_zones"])
        self._upsert(m.CareSubject, "care_subjects", t["care_subjects"], refs={"building": "buildings"})
        self._private(m.CareSubjectPrivate, t["care_subject_private"])
        self._upsert(m.Sensor, "sensors", t["sensors"],
                     refs={"care_subject": "care_subjects", "building": "buildings", "camera": "cameras"},
                     assign_grid=False)
        self._events(m.SensorEvent, t["sensor_events"])
        self._upsert(m.Incident, "incidents", t["incidents"],
                     refs={"camera": "cameras", "sensor": "sensors", "building": "buildings"})
        self._upsert(m.GridWorker, "grid_workers", t["grid_workers"], refs={"grid": "grids"}, assign_grid=False)
        for top in (True, False):  # parents first: branches refer to their committee
            self._upsert(m.PartyOrganization, "party_orgs",
                         [o for o in t["party_orgs"] if (o["parent_code"] is None) == top], refs={"parent": "party_orgs"})
        self._upsert(m.PartyActivity, "party_activities", t["party_activities"],
                     refs={"organization": "party_orgs"}, assign_grid=False)
        self._upsert(m.ServicePoint, "service_points", t["service_points"])
        self._remove_stale()
        _care_state(self.data.as_of)

    def _upsert(self, model, table, rows, *, refs=None, count_as=None, assign_grid=True) -> None:
        from django.contrib.gis.geos import GEOSGeometry

        from gis.spatial.selectors import grid_ids_for_points

        started = time.monotonic()
        refs = refs or {}
        fields = {f.name: f for f in model._meta.concrete_fields}
        if assign_grid and "grid" in fields:
            points = [_representative(r["geom"]) for r in rows]
            grid_ids = grid_ids_for_points([(p.x, p.y) for p in points])
        objs = []
        for k, row in enumerate(rows):
            values = {"synthetic": True}
            for key, value in row.items():
                if key.startswith("_"):
                    continue
                if key.endswith("_code") and key[:-5] in refs:
                    ref = key[:-5]
                    values[f"{ref}_id"] = self.ids[refs[ref]][value] if value is not None else None
                elif isinstance(value, shapely.Geometry):
                    values[key] = GEOSGeometry(memoryview(shapely.to_wkb(value)), srid=4326)
                elif key in fields:
                    values[key] = value
            if assign_grid and "grid" in fields:
                values["grid_id"] = grid_ids[k]
            objs.append(model(**values))
        update_fields = [
            f.name for f in model._meta.concrete_fields
            if not f.primary_key and f.name not in ("code", "created_at")
        ]
        model.objects.bulk_create(objs, batch_size=500, update_conflicts=True, unique_fields=["code"],
                                  update_fields=update_fields)
        codes = [r["code"] for r in rows]
        found = dict(model.objects.filter(code__in=codes).values_list("code", "id"))
        self.ids.setdefault(table, {}).update(found)
        self._count(count_as or table, len(rows), time.monotonic() - started)

    def _private(self, model, rows) -> None:
        from gis.care.private import private_seal

        started = time.monotonic()
        objs = []
        for r in rows:  # sealed as care_private_set seals them (in bulk here: 1,024 people)
            subject_id = self.ids["care_subjects"][r["subject_code"]]
            fields = {k: v for k, v in r.items() if k not in ("subject_code", "gender")}
            objs.append(model(subject_id=subject_id, gender=r["gender"],
                              sealed=private_seal(subject_id=subject_id, fields=fields)))
        update_fields = [f.name for f in model._meta.concrete_fields if not f.primary_key]
        model.objects.bulk_create(objs, batch_size=500, update_conflicts=True, unique_fields=["subject"],
                                  update_fields=update_fields)
        self._count("care_subject_private", len(rows), time.monotonic() - started)

    def _events(self, model, rows) -> None:
        started = time.monotonic()
        model.objects.filter(sensor__synthetic=True).delete()
        objs = [
            model(sensor_id=self.ids["sensors"][r["sensor_code"]], seq=r["seq"], ts=r["ts"], type=r["type"],
                  payload=r["payload"])
            for r in rows
        ]
        model.objects.bulk_create(objs, batch_size=2000)
        self._count("sensor_events", len(rows), time.monotonic() - started)

    def _remove_stale(self) -> None:
        from gis import models as m

        # children before parents; only synthetic rows the new data does not have
        for model, table in [
            (m.ServicePoint, "service_points"), (m.PartyActivity, "party_activities"),
            (m.PartyOrganization, "party_orgs"), (m.GridWorker, "grid_workers"), (m.Incident, "incidents"),
            (m.Sensor, "sensors"), (m.CareSubject, "care_subjects"), (m.NoParkingZone, "no_parking_zones"),
            (m.ParkingSpot, "parking_spots"), (m.Camera, "cameras"), (m.Building, "buildings"),
            (m.Street, "streets"), (m.StreetNode, "street_nodes"),
        ]:
            model.objects.filter(synthetic=True).exclude(id__in=self.ids[table].values()).delete()
        stale_grids = m.Grid.objects.filter(synthetic=True).exclude(id__in=self.ids["grids"].values())
        for level in (3, 2, 1):
            stale_grids.filter(level=level).delete()

    def _count(self, table: str, rows: int, seconds: float) -> None:
        self.summary.counts[table] = self.summary.counts.get(table, 0) + rows
        self.summary.seconds[table] = self.summary.seconds.get(table, 0.0) + seconds


# -- the care rules' state, as ingest and the rules would have left it (docs/care.md) ---------------------


def _care_rows_forget() -> None:
    """The rules' rows about the synthetic people go before their people, cases and sensors are replaced."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("care_visits", "care_alerts", "care_rule_states", "care_periods"):
            cursor.execute(f"DELETE FROM {table} WHERE subject_id IN (SELECT id FROM care_subjects WHERE synthetic)")
        cursor.execute("DELETE FROM care_faults WHERE sensor_id IN (SELECT id FROM sensors WHERE synthetic)"
                       " OR gateway_id IN (SELECT id FROM gateways WHERE synthetic)")


def _care_state(as_of: datetime) -> None:
    """The sensors' and people's latest columns from the generated messages (what ingest keeps), a peephole
    camera heard from at ``as_of``, and the generated alert incidents recorded as the rules' alerts of their
    silence (with the warning before), so the first sweep raises none of them again."""
    from django.db import connection

    from core.vocabulary import CARE_CATEGORY

    with connection.cursor() as cursor:
        cursor.execute("""
            UPDATE sensors s SET last_heartbeat_at = coalesce(e.heartbeat, %(as_of)s),
                                 last_seen_at = coalesce(e.seen, s.last_seen_at)
            FROM (SELECT se.id, max(ev.ts) FILTER (WHERE ev.type = 'heartbeat') AS heartbeat, max(ev.ts) AS seen
                  FROM sensors se LEFT JOIN sensor_events ev ON ev.sensor_id = se.id
                  WHERE se.synthetic GROUP BY se.id) e
            WHERE e.id = s.id
        """, {"as_of": as_of})
        cursor.execute("""
            UPDATE care_subjects cs SET last_activity_at = a.at
            FROM (SELECT se.care_subject_id AS id, max(ev.ts) AS at FROM sensor_events ev
                  JOIN sensors se ON se.id = ev.sensor_id
                  WHERE se.synthetic AND ev.type IN ('door_open', 'door_close', 'motion', 'sighting') GROUP BY 1) a
            WHERE a.id = cs.id
        """)
        cursor.execute("""
            INSERT INTO care_alerts (subject_id, kind, basis_at, raised_at, grid_id, incident_id)
            SELECT cs.id, k.kind, cs.last_activity_at,
                   CASE k.kind WHEN 'warning' THEN cs.last_activity_at + interval '24 hours' ELSE i.reported_at END,
                   cs.grid_id, CASE k.kind WHEN 'alert' THEN i.id END
            FROM incidents i JOIN sensors se ON se.id = i.sensor_id JOIN care_subjects cs ON cs.id = se.care_subject_id
            CROSS JOIN (VALUES ('warning'), ('alert')) AS k(kind)
            WHERE i.synthetic AND i.category = %(care)s AND cs.last_activity_at IS NOT NULL
            ON CONFLICT (subject_id, kind, basis_at) DO NOTHING
        """, {"care": CARE_CATEGORY})


def _representative(geom) -> Point:
    return geom if isinstance(geom, Point) else geom.representative_point()
