"""CQL2 filters (layers.cql): text and JSON select the same rows as an independent reading of the demo data."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
import shapely
from psycopg import sql
from psycopg.rows import dict_row
from pyproj import Transformer
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point, Polygon, box, mapping

from layers.catalogue import layer
from layers.cql import CONFORMANCE, FilterError, Queryable, filter_sql, parse_filter

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
VIEWS = {"buildings": "ogc_buildings", "incidents": "ogc_incidents"}


def queryables(layer_id: str) -> dict[str, Queryable]:
    """The layer's published columns as queryables over its view, plus the geometry as ``geom``."""
    found = {c.name: Queryable(c.name, sql.Identifier(c.name), c.type) for c in layer(layer_id).columns}
    found["geom"] = Queryable("geom", sql.Identifier("geom"), "geometry")
    return found


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def conn(database_url, demo_db):
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def rows(conn) -> dict[str, list[dict]]:
    """Every row of the two views, with the geometry as a shapely shape."""
    out = {}
    for layer_id, view in VIEWS.items():
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.SQL("SELECT *, ST_AsBinary(geom) AS wkb FROM {} ORDER BY id").format(sql.Identifier(view)))
            found = cur.fetchall()
        for row in found:
            row["shape"] = shapely.from_wkb(bytes(row.pop("wkb")))
        out[layer_id] = found
    return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def ctx(rows) -> dict:
    """Places and times taken from the demo data, so the filters below select part of it."""
    buildings, incidents = rows["buildings"], rows["incidents"]
    west, south, east, north = shapely.GeometryCollection([r["shape"] for r in buildings]).bounds
    dx, dy = east - west, north - south
    c: dict = {"W": west, "S": south, "E": east, "N": north}
    c["box"] = (west + 0.3 * dx, south + 0.3 * dy, west + 0.6 * dx, south + 0.6 * dy)
    c["box2"] = (west + 0.7 * dx, south + 0.05 * dy, west + 0.9 * dx, south + 0.2 * dy)
    c["tri"] = [(west + 0.1 * dx, south + 0.1 * dy), (west + 0.8 * dx, south + 0.2 * dy), (west + 0.5 * dx, south + 0.9 * dy)]
    c["tri"].append(c["tri"][0])
    c["line"] = [(west, south + 0.5 * dy), (east, south + 0.45 * dy)]
    c["line2"] = [(west + 0.2 * dx, south), (west + 0.25 * dx, north)]
    b0, b1 = buildings[len(buildings) // 2], buildings[len(buildings) // 3]
    c["b0"] = b0
    c["p"] = b0["shape"].point_on_surface().coords[0]
    c["q"] = b1["shape"].point_on_surface().coords[0]
    c["vertex"] = b0["shape"].geoms[0].exterior.coords[0]
    c["grid"] = b0["grid_code"]
    times = sorted(r["reported_at"] for r in incidents)
    for name, share in (("q1", 0.25), ("mid", 0.5), ("q3", 0.75)):
        moment = times[int(len(times) * share)].replace(microsecond=0)
        c[name], c[name + "_dt"] = _iso(moment), moment
    c["day"] = c["mid_dt"].astimezone(timezone.utc).date().isoformat()
    c["day_dt"] = datetime.fromisoformat(c["day"]).replace(tzinfo=timezone.utc)
    exact = next(r for r in incidents if r["resolved_at"] is not None)
    c["exact"], c["exact_dt"] = _iso(exact["reported_at"]), exact["reported_at"]
    return c


def _ids(conn, layer_id: str, where: sql.Composable) -> set[int]:
    query = sql.SQL("SELECT id FROM {} WHERE {}").format(sql.Identifier(VIEWS[layer_id]), where)
    return {row[0] for row in conn.execute(query)}


def _run(conn, layer_id: str, value, *, lang: str = "cql2-text", crs: str | None = None) -> set[int]:
    expression = parse_filter(value, lang=lang)
    return _ids(conn, layer_id, filter_sql(expression, queryables=queryables(layer_id), filter_crs=crs))


# ---------------------------------------------------------------- text, JSON and the rows they select


def P(name: str) -> dict:
    return {"property": name}


def op(name: str, *args) -> dict:
    return {"op": name, "args": list(args)}


def wkt_ring(points) -> str:
    return ", ".join(f"{x!r} {y!r}" for x, y in points)


def bbox_text(b) -> str:
    return "BBOX({!r}, {!r}, {!r}, {!r})".format(*b)


def geojson(shape) -> dict:
    return json.loads(json.dumps(mapping(shape)))


def T(value: str) -> dict:
    return {"timestamp": value}


@dataclass(frozen=True)
class Case:
    id: str
    layer: str
    text: Callable[[dict], str]
    json: Callable[[dict], dict]
    expect: Callable[[dict, dict], bool]  # (row, ctx) -> selected?
    trivial: bool = False  # selects nothing or everything by design


CASES = [
    # basic comparison and logic
    Case("gt", "buildings", lambda c: "floors > 10", lambda c: op(">", P("floors"), 10), lambda r, c: r["floors"] > 10),
    Case(
        "range-and",
        "buildings",
        lambda c: "floors >= 6 AND floors <= 7",
        lambda c: op("and", op(">=", P("floors"), 6), op("<=", P("floors"), 7)),
        lambda r, c: 6 <= r["floors"] <= 7,
    ),
    Case("eq-string", "buildings", lambda c: "use = 'mixed'", lambda c: op("=", P("use"), "mixed"), lambda r, c: r["use"] == "mixed"),
    Case(
        "ne-or",
        "buildings",
        lambda c: "use <> 'mixed' AND (floors = 33 OR height_m > 90)",
        lambda c: op("and", op("<>", P("use"), "mixed"), op("or", op("=", P("floors"), 33), op(">", P("height_m"), 90))),
        lambda r, c: r["use"] != "mixed" and (r["floors"] == 33 or r["height_m"] > 90),
    ),
    Case(
        "not-group",
        "buildings",
        lambda c: "NOT (floors < 10 OR height_m > 80)",
        lambda c: op("not", op("or", op("<", P("floors"), 10), op(">", P("height_m"), 80))),
        lambda r, c: not (r["floors"] < 10 or r["height_m"] > 80),
    ),
    Case(
        "precedence",
        "buildings",
        lambda c: "floors = 6 OR floors = 7 AND use = 'mixed'",
        lambda c: op("or", op("=", P("floors"), 6), op("and", op("=", P("floors"), 7), op("=", P("use"), "mixed"))),
        lambda r, c: r["floors"] == 6 or (r["floors"] == 7 and r["use"] == "mixed"),
    ),
    Case("literal-left", "buildings", lambda c: "8 > floors", lambda c: op(">", 8, P("floors")), lambda r, c: 8 > r["floors"]),
    Case(
        "property-property",
        "buildings",
        lambda c: "height_m < floors",
        lambda c: op("<", P("height_m"), P("floors")),
        lambda r, c: r["height_m"] < r["floors"],
        trivial=True,
    ),
    Case(
        "property-property-2",
        "buildings",
        lambda c: "households > floors AND units >= 3",
        lambda c: op("and", op(">", P("households"), P("floors")), op(">=", P("units"), 3)),
        lambda r, c: r["households"] > r["floors"] and r["units"] >= 3,
    ),
    Case("quoted-int", "buildings", lambda c: "floors = '7'", lambda c: op("=", P("floors"), "7"), lambda r, c: r["floors"] == 7),
    Case(
        "number",
        "buildings",
        lambda c: "height_m >= 2.05e1",
        lambda c: op(">=", P("height_m"), 20.5),
        lambda r, c: r["height_m"] >= 20.5,
    ),
    Case(
        "grid",
        "buildings",
        lambda c: f"grid_code = '{c['grid']}'",
        lambda c: op("=", P("grid_code"), c["grid"]),
        lambda r, c: r["grid_code"] == c["grid"],
    ),
    Case("bool-true", "buildings", lambda c: "synthetic = TRUE", lambda c: op("=", P("synthetic"), True), lambda r, c: r["synthetic"], trivial=True),
    Case("bool-false", "buildings", lambda c: "synthetic = false", lambda c: op("=", P("synthetic"), False), lambda r, c: not r["synthetic"], trivial=True),
    Case("true", "buildings", lambda c: "TRUE", lambda c: True, lambda r, c: True, trivial=True),
    Case("false", "buildings", lambda c: "false AND floors > 1", lambda c: op("and", False, op(">", P("floors"), 1)), lambda r, c: False, trivial=True),
    Case(
        "double-quoted-property",
        "buildings",
        lambda c: '"floors" > 12',
        lambda c: op(">", P("floors"), 12),
        lambda r, c: r["floors"] > 12,
    ),
    # advanced comparison: LIKE, IN, BETWEEN, NULL
    Case("like-suffix", "buildings", lambda c: "name LIKE '%1号楼'", lambda c: op("like", P("name"), "%1号楼"), lambda r, c: r["name"].endswith("1号楼")),
    Case(
        "like-underscore",
        "buildings",
        lambda c: "name LIKE '_原%'",
        lambda c: op("like", P("name"), "_原%"),
        lambda r, c: re.fullmatch(r".原.*", r["name"], re.S) is not None,
    ),
    Case(
        "not-like",
        "buildings",
        lambda c: "name NOT LIKE '%区_号楼'",
        lambda c: op("not", op("like", P("name"), "%区_号楼")),
        lambda r, c: re.fullmatch(r".*区.号楼", r["name"], re.S) is None,
    ),
    Case(
        "like-is-case-sensitive",
        "buildings",
        lambda c: "use LIKE 'Mix%' OR code LIKE 'BLD-000_'",
        lambda c: op("or", op("like", P("use"), "Mix%"), op("like", P("code"), "BLD-000_")),
        lambda r, c: r["use"].startswith("Mix") or re.fullmatch(r"BLD-000.", r["code"]) is not None,
    ),
    Case("in", "buildings", lambda c: "floors IN (6, 7, 33)", lambda c: op("in", P("floors"), [6, 7, 33]), lambda r, c: r["floors"] in (6, 7, 33)),
    Case(
        "not-in",
        "buildings",
        lambda c: "use NOT IN ('residential', 'office')",
        lambda c: op("not", op("in", P("use"), ["residential", "office"])),
        lambda r, c: r["use"] not in ("residential", "office"),
    ),
    Case(
        "between",
        "buildings",
        lambda c: "floors BETWEEN 6 AND 9",
        lambda c: op("between", P("floors"), 6, 9),
        lambda r, c: 6 <= r["floors"] <= 9,
    ),
    Case(
        "not-between",
        "buildings",
        lambda c: "height_m NOT BETWEEN 20 AND 80.5",
        lambda c: op("not", op("between", P("height_m"), 20, 80.5)),
        lambda r, c: not 20 <= r["height_m"] <= 80.5,
    ),
    Case("is-null", "incidents", lambda c: "floor IS NULL", lambda c: op("isNull", P("floor")), lambda r, c: r["floor"] is None),
    Case(
        "is-not-null",
        "incidents",
        lambda c: "floor IS NOT NULL AND floor > 3",
        lambda c: op("and", op("not", op("isNull", P("floor"))), op(">", P("floor"), 3)),
        lambda r, c: r["floor"] is not None and r["floor"] > 3,
    ),
    Case(
        "incident-attrs",
        "incidents",
        lambda c: "severity >= 3 AND status <> 'closed' OR category IN ('fire_smoke', 'falling_object') AND source = 'camera'",
        lambda c: op(
            "or",
            op("and", op(">=", P("severity"), 3), op("<>", P("status"), "closed")),
            op("and", op("in", P("category"), ["fire_smoke", "falling_object"]), op("=", P("source"), "camera")),
        ),
        lambda r, c: (r["severity"] >= 3 and r["status"] != "closed")
        or (r["category"] in ("fire_smoke", "falling_object") and r["source"] == "camera"),
    ),
    # case-insensitive comparison
    Case(
        "casei-eq",
        "buildings",
        lambda c: "CASEI(use) = casei('MiXeD')",
        lambda c: op("=", op("casei", P("use")), op("casei", "MiXeD")),
        lambda r, c: r["use"].lower() == "mixed",
    ),
    Case(
        "casei-in",
        "buildings",
        lambda c: "CASEI(use) IN (CASEI('Mixed'), CASEI('OFFICE'))",
        lambda c: op("in", op("casei", P("use")), [op("casei", "Mixed"), op("casei", "OFFICE")]),
        lambda r, c: r["use"].lower() in ("mixed", "office"),
    ),
    Case(
        "casei-like",
        "buildings",
        lambda c: "CASEI(code) LIKE CASEI('bld-00_1')",
        lambda c: op("like", op("casei", P("code")), op("casei", "bld-00_1")),
        lambda r, c: re.fullmatch(r"bld-00.1", r["code"].lower()) is not None,
    ),
    # spatial functions
    Case(
        "s-intersects-bbox",
        "buildings",
        lambda c: f"S_INTERSECTS(geom, {bbox_text(c['box'])})",
        lambda c: op("s_intersects", P("geom"), {"bbox": list(c["box"])}),
        lambda r, c: r["shape"].intersects(box(*c["box"])),
    ),
    Case(
        "s-intersects-bbox-first",
        "buildings",
        lambda c: f"s_intersects({bbox_text(c['box'])}, geom)",
        lambda c: op("s_intersects", {"bbox": list(c["box"])}, P("geom")),
        lambda r, c: r["shape"].intersects(box(*c["box"])),
    ),
    Case(
        "s-intersects-polygon",
        "buildings",
        lambda c: f"S_INTERSECTS(geom, POLYGON(({wkt_ring(c['tri'])})))",
        lambda c: op("s_intersects", P("geom"), geojson(Polygon(c["tri"]))),
        lambda r, c: r["shape"].intersects(Polygon(c["tri"])),
    ),
    Case(
        "s-within",
        "buildings",
        lambda c: f"S_WITHIN(geom, {bbox_text(c['box'])})",
        lambda c: op("s_within", P("geom"), {"bbox": list(c["box"])}),
        lambda r, c: r["shape"].within(box(*c["box"])),
    ),
    Case(
        "s-disjoint",
        "buildings",
        lambda c: f"S_DISJOINT(geom, {bbox_text(c['box'])})",
        lambda c: op("s_disjoint", P("geom"), {"bbox": list(c["box"])}),
        lambda r, c: r["shape"].disjoint(box(*c["box"])),
    ),
    Case(
        "s-contains-point",
        "buildings",
        lambda c: "S_CONTAINS(geom, POINT({!r} {!r}))".format(*c["p"]),
        lambda c: op("s_contains", P("geom"), geojson(Point(c["p"]))),
        lambda r, c: r["shape"].contains(Point(c["p"])),
    ),
    Case(
        "s-intersects-line",
        "buildings",
        lambda c: f"S_INTERSECTS(geom, LINESTRING({wkt_ring(c['line'])}))",
        lambda c: op("s_intersects", P("geom"), geojson(LineString(c["line"]))),
        lambda r, c: r["shape"].intersects(LineString(c["line"])),
    ),
    Case(
        "s-crosses",
        "buildings",
        lambda c: f"S_CROSSES(geom, LINESTRING({wkt_ring(c['line'])}))",
        lambda c: op("s_crosses", P("geom"), geojson(LineString(c["line"]))),
        lambda r, c: r["shape"].crosses(LineString(c["line"])),
    ),
    Case(
        "s-overlaps",
        "buildings",
        lambda c: f"S_OVERLAPS(geom, {bbox_text(c['box'])})",
        lambda c: op("s_overlaps", P("geom"), {"bbox": list(c["box"])}),
        lambda r, c: r["shape"].overlaps(box(*c["box"])),
    ),
    Case(
        "s-touches",
        "buildings",
        lambda c: "S_TOUCHES(geom, POINT({!r} {!r}))".format(*c["vertex"]),
        lambda c: op("s_touches", P("geom"), geojson(Point(c["vertex"]))),
        lambda r, c: r["shape"].touches(Point(c["vertex"])),
    ),
    Case(
        "s-equals",
        "buildings",
        lambda c: "S_EQUALS(geom, {})".format(shapely.to_wkt(c["b0"]["shape"], rounding_precision=-1)),
        lambda c: op("s_equals", P("geom"), geojson(c["b0"]["shape"])),
        lambda r, c: r["shape"].equals(c["b0"]["shape"]),
    ),
    Case(
        "s-multipoint",
        "buildings",
        lambda c: "S_INTERSECTS(geom, MULTIPOINT(({!r} {!r}), ({!r} {!r})))".format(*c["p"], *c["q"]),
        lambda c: op("s_intersects", P("geom"), geojson(MultiPoint([c["p"], c["q"]]))),
        lambda r, c: r["shape"].intersects(MultiPoint([c["p"], c["q"]])),
    ),
    Case(
        "s-multilinestring",
        "buildings",
        lambda c: f"S_INTERSECTS(geom, MULTILINESTRING(({wkt_ring(c['line'])}), ({wkt_ring(c['line2'])})))",
        lambda c: op("s_intersects", P("geom"), geojson(MultiLineString([c["line"], c["line2"]]))),
        lambda r, c: r["shape"].intersects(MultiLineString([c["line"], c["line2"]])),
    ),
    Case(
        "s-multipolygon",
        "buildings",
        lambda c: "S_INTERSECTS(geom, MULTIPOLYGON((({})), (({}))))".format(
            wkt_ring(c["tri"]), wkt_ring(box(*c["box2"]).exterior.coords)
        ),
        lambda c: op("s_intersects", P("geom"), geojson(shapely.MultiPolygon([Polygon(c["tri"]), box(*c["box2"])]))),
        lambda r, c: r["shape"].intersects(Polygon(c["tri"])) or r["shape"].intersects(box(*c["box2"])),
    ),
    Case(
        "s-collection",
        "buildings",
        lambda c: "S_INTERSECTS(geom, GEOMETRYCOLLECTION(POINT({!r} {!r}), LINESTRING({})))".format(*c["q"], wkt_ring(c["line2"])),
        lambda c: op(
            "s_intersects",
            P("geom"),
            {"type": "GeometryCollection", "geometries": [geojson(Point(c["q"])), geojson(LineString(c["line2"]))]},
        ),
        lambda r, c: r["shape"].intersects(Point(c["q"])) or r["shape"].intersects(LineString(c["line2"])),
    ),
    Case(
        "spatial-and-attributes",
        "buildings",
        lambda c: f"floors > 6 AND S_INTERSECTS(geom, {bbox_text(c['box'])}) AND NOT use = 'mixed'",
        lambda c: op(
            "and",
            op(">", P("floors"), 6),
            op("s_intersects", P("geom"), {"bbox": list(c["box"])}),
            op("not", op("=", P("use"), "mixed")),
        ),
        lambda r, c: r["floors"] > 6 and r["shape"].intersects(box(*c["box"])) and r["use"] != "mixed",
    ),
    Case(
        "incidents-in-triangle",
        "incidents",
        lambda c: f"S_WITHIN(geom, POLYGON(({wkt_ring(c['tri'])})))",
        lambda c: op("s_within", P("geom"), geojson(Polygon(c["tri"]))),
        lambda r, c: r["shape"].within(Polygon(c["tri"])),
    ),
    # arithmetic
    Case(
        "arith-paren",
        "buildings",
        lambda c: "(floors + 1) * 2 > 20",
        lambda c: op(">", op("*", op("+", P("floors"), 1), 2), 20),
        lambda r, c: (r["floors"] + 1) * 2 > 20,
    ),
    Case(
        "arith-divide",
        "buildings",
        lambda c: "households / floors > 4.5",
        lambda c: op(">", op("/", P("households"), P("floors")), 4.5),
        lambda r, c: r["households"] / r["floors"] > 4.5,
    ),
    Case(
        "arith-mod-div",
        "buildings",
        lambda c: "floors % 2 = 1 AND floors div 3 = 2",
        lambda c: op("and", op("=", op("%", P("floors"), 2), 1), op("=", op("div", P("floors"), 3), 2)),
        lambda r, c: r["floors"] % 2 == 1 and r["floors"] // 3 == 2,
    ),
    Case(
        "arith-mixed",
        "buildings",
        lambda c: "height_m - floors * 3 >= 2 ^ 2",
        lambda c: op(">=", op("-", P("height_m"), op("*", P("floors"), 3)), op("^", 2, 2)),
        lambda r, c: r["height_m"] - r["floors"] * 3 >= 4,
    ),
    Case(
        "arith-between",
        "buildings",
        lambda c: "floors BETWEEN units * 2 AND units * 3",
        lambda c: op("between", P("floors"), op("*", P("units"), 2), op("*", P("units"), 3)),
        lambda r, c: r["units"] * 2 <= r["floors"] <= r["units"] * 3,
    ),
    # timestamps, dates and temporal functions
    Case(
        "ts-gt",
        "incidents",
        lambda c: f"reported_at > TIMESTAMP('{c['mid']}')",
        lambda c: op(">", P("reported_at"), T(c["mid"])),
        lambda r, c: r["reported_at"] > c["mid_dt"],
    ),
    Case(
        "ts-range",
        "incidents",
        lambda c: f"reported_at <= TIMESTAMP('{c['mid']}') AND reported_at >= TIMESTAMP('{c['q1']}')",
        lambda c: op("and", op("<=", P("reported_at"), T(c["mid"])), op(">=", P("reported_at"), T(c["q1"]))),
        lambda r, c: c["q1_dt"] <= r["reported_at"] <= c["mid_dt"],
    ),
    Case(
        "date-lt",
        "incidents",
        lambda c: f"reported_at < DATE('{c['day']}')",
        lambda c: op("<", P("reported_at"), {"date": c["day"]}),
        lambda r, c: r["reported_at"] < c["day_dt"],
    ),
    Case(
        "ts-between",
        "incidents",
        lambda c: f"reported_at BETWEEN TIMESTAMP('{c['q1']}') AND TIMESTAMP('{c['q3']}')",
        lambda c: op("between", P("reported_at"), T(c["q1"]), T(c["q3"])),
        lambda r, c: c["q1_dt"] <= r["reported_at"] <= c["q3_dt"],
    ),
    Case(
        "ts-property-property",
        "incidents",
        lambda c: "resolved_at > reported_at",
        lambda c: op(">", P("resolved_at"), P("reported_at")),
        lambda r, c: r["resolved_at"] is not None and r["resolved_at"] > r["reported_at"],
    ),
    Case(
        "t-before",
        "incidents",
        lambda c: f"T_BEFORE(reported_at, TIMESTAMP('{c['mid']}'))",
        lambda c: op("t_before", P("reported_at"), T(c["mid"])),
        lambda r, c: r["reported_at"] < c["mid_dt"],
    ),
    Case(
        "t-after",
        "incidents",
        lambda c: f"T_AFTER(reported_at, TIMESTAMP('{c['mid']}'))",
        lambda c: op("t_after", P("reported_at"), T(c["mid"])),
        lambda r, c: r["reported_at"] > c["mid_dt"],
    ),
    Case(
        "t-intersects-interval",
        "incidents",
        lambda c: f"T_INTERSECTS(reported_at, INTERVAL('{c['q1']}', '{c['q3']}'))",
        lambda c: op("t_intersects", P("reported_at"), {"interval": [c["q1"], c["q3"]]}),
        lambda r, c: c["q1_dt"] <= r["reported_at"] <= c["q3_dt"],
    ),
    Case(
        "t-during",
        "incidents",
        lambda c: f"T_DURING(reported_at, INTERVAL('{c['q1']}', '{c['q3']}'))",
        lambda c: op("t_during", P("reported_at"), {"interval": [c["q1"], c["q3"]]}),
        lambda r, c: c["q1_dt"] < r["reported_at"] < c["q3_dt"],
    ),
    Case(
        "t-open-start",
        "incidents",
        lambda c: f"T_INTERSECTS(reported_at, INTERVAL('..', '{c['mid']}'))",
        lambda c: op("t_intersects", P("reported_at"), {"interval": ["..", c["mid"]]}),
        lambda r, c: r["reported_at"] <= c["mid_dt"],
    ),
    Case(
        "t-date-interval",
        "incidents",
        lambda c: f"T_INTERSECTS(reported_at, INTERVAL('{c['day']}', '..'))",
        lambda c: op("t_intersects", P("reported_at"), {"interval": [c["day"], ".."]}),
        lambda r, c: r["reported_at"] >= c["day_dt"],
    ),
    Case(
        "t-open-at",
        "incidents",
        lambda c: f"T_INTERSECTS(INTERVAL(reported_at, resolved_at), TIMESTAMP('{c['mid']}'))",
        lambda c: op("t_intersects", {"interval": [P("reported_at"), P("resolved_at")]}, T(c["mid"])),
        lambda r, c: r["reported_at"] <= c["mid_dt"] <= (r["resolved_at"] or FOREVER),
    ),
    Case(
        "t-equals",
        "incidents",
        lambda c: f"T_EQUALS(reported_at, TIMESTAMP('{c['exact']}'))",
        lambda c: op("t_equals", P("reported_at"), T(c["exact"])),
        lambda r, c: r["reported_at"] == c["exact_dt"],
    ),
    Case(
        "t-disjoint",
        "incidents",
        lambda c: f"T_DISJOINT(reported_at, INTERVAL('{c['q1']}', '{c['q3']}'))",
        lambda c: op("t_disjoint", P("reported_at"), {"interval": [c["q1"], c["q3"]]}),
        lambda r, c: not c["q1_dt"] <= r["reported_at"] <= c["q3_dt"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_text_and_json_select_the_expected_rows(conn, rows, ctx, case):
    expected = {r["id"] for r in rows[case.layer] if case.expect(r, ctx)}
    if not case.trivial:
        assert 0 < len(expected) < len(rows[case.layer]), "the case must select part of the layer to prove anything"
    text, document = case.text(ctx), case.json(ctx)
    assert parse_filter(text) == parse_filter(json.dumps(document), lang="cql2-json")
    assert _run(conn, case.layer, text) == expected
    assert _run(conn, case.layer, json.dumps(document), lang="cql2-json") == expected


def test_json_as_dict_or_text_is_the_same(conn):
    document = {"op": "and", "args": [{"op": ">", "args": [{"property": "floors"}, 9]}, {"op": "<", "args": [{"property": "floors"}, 20]}]}
    assert _run(conn, "buildings", document, lang="cql2-json") == _run(conn, "buildings", json.dumps(document), lang="cql2-json")


# Each temporal function on a = [reported_at, resolved_at] and b, as the CQL2 standard defines it.
TEMPORAL = {
    "t_after": lambda a0, a1, b0, b1: a0 > b1,
    "t_before": lambda a0, a1, b0, b1: a1 < b0,
    "t_contains": lambda a0, a1, b0, b1: a0 < b0 and a1 > b1,
    "t_disjoint": lambda a0, a1, b0, b1: a1 < b0 or a0 > b1,
    "t_during": lambda a0, a1, b0, b1: a0 > b0 and a1 < b1,
    "t_equals": lambda a0, a1, b0, b1: a0 == b0 and a1 == b1,
    "t_finishedby": lambda a0, a1, b0, b1: a0 < b0 and a1 == b1,
    "t_finishes": lambda a0, a1, b0, b1: a0 > b0 and a1 == b1,
    "t_intersects": lambda a0, a1, b0, b1: a0 <= b1 and a1 >= b0,
    "t_meets": lambda a0, a1, b0, b1: a1 == b0,
    "t_metby": lambda a0, a1, b0, b1: a0 == b1,
    "t_overlappedby": lambda a0, a1, b0, b1: b0 < a0 < b1 < a1,
    "t_overlaps": lambda a0, a1, b0, b1: a0 < b0 < a1 < b1,
    "t_startedby": lambda a0, a1, b0, b1: a0 == b0 and a1 > b1,
    "t_starts": lambda a0, a1, b0, b1: a0 == b0 and a1 < b1,
}
FOREVER = datetime.max.replace(tzinfo=timezone.utc)  # an unresolved incident's interval is open-ended


def _probe_intervals(rows, ctx) -> list[tuple[datetime, datetime]]:
    """Intervals b that start or end on, inside or around one resolved incident's interval."""
    target = next(r for r in rows["incidents"] if r["reported_at"] == ctx["exact_dt"] and r["resolved_at"])
    start, end = target["reported_at"], target["resolved_at"]
    step, day = (end - start) / 4, timedelta(days=1)
    return [
        (ctx["mid_dt"], ctx["q3_dt"]),
        (start, end),
        (start, end + day),
        (start - day, end),
        (start + step, end - step),
        (start + step, end),
        (start, end - step),
        (end, end + day),
        (start - day, start),
        (start - step, start + step),
        (end - step, end + step),
    ]


def _temporal_expected(rows, function, start, end) -> set[int]:
    rule = TEMPORAL[function]
    return {r["id"] for r in rows["incidents"] if rule(r["reported_at"], r["resolved_at"] or FOREVER, start, end)}


@pytest.mark.parametrize("function", sorted(TEMPORAL))
def test_temporal_functions_on_intervals(conn, rows, ctx, function):
    for start, end in _probe_intervals(rows, ctx):
        s, e = _iso(start), _iso(end)
        text = f"{function.upper()}(INTERVAL(reported_at, resolved_at), INTERVAL('{s}', '{e}'))"
        document = op(function, {"interval": [P("reported_at"), P("resolved_at")]}, {"interval": [s, e]})
        expected = _temporal_expected(rows, function, start, end)
        assert _run(conn, "incidents", text) == expected, (function, s, e)
        assert _run(conn, "incidents", json.dumps(document), lang="cql2-json") == expected


def test_every_temporal_function_is_tried_where_it_selects_something(rows, ctx):
    """Guard for the test above: each function selects some rows for one of the probe intervals."""
    quiet = [f for f in TEMPORAL if not any(_temporal_expected(rows, f, s, e) for s, e in _probe_intervals(rows, ctx))]
    assert quiet == []


# Filters written the way QGIS's CQL2 text compiler writes them (quoted names, no spaces after commas,
# parentheses round every operation, unary minus, milliseconds in timestamps).
QGIS_FORMS = [
    ("buildings", lambda c: '("floors" > 5)', lambda r, c: r["floors"] > 5),
    ("buildings", lambda c: '(NOT ("use" = \'mixed\'))', lambda r, c: r["use"] != "mixed"),
    ("buildings", lambda c: '"floors" IN (6,7,33)', lambda r, c: r["floors"] in (6, 7, 33)),
    ("buildings", lambda c: '"floors" NOT BETWEEN 6 AND 9', lambda r, c: not 6 <= r["floors"] <= 9),
    ("buildings", lambda c: "(CASEI(\"use\") LIKE CASEI('MIX%'))", lambda r, c: r["use"].lower().startswith("mix")),
    ("buildings", lambda c: "(\"name\" NOT LIKE '%1号楼')", lambda r, c: not r["name"].endswith("1号楼")),
    ("buildings", lambda c: '(( - ("floors")) < -10)', lambda r, c: -r["floors"] < -10),
    ("buildings", lambda c: "S_INTERSECTS(geom,BBOX({!r},{!r},{!r},{!r}))".format(*c["box"]), lambda r, c: r["shape"].intersects(box(*c["box"]))),
    ("buildings", lambda c: "S_INTERSECTS(geom,POINT({!r} {!r}))".format(*c["p"]), lambda r, c: r["shape"].intersects(Point(c["p"]))),
    ("incidents", lambda c: '("floor" IS NULL)', lambda r, c: r["floor"] is None),
    ("incidents", lambda c: '("floor" IS NOT NULL)', lambda r, c: r["floor"] is not None),
    (
        "incidents",
        lambda c: "(\"reported_at\" >= TIMESTAMP('{}.000Z'))".format(c["mid"].removesuffix("Z")),
        lambda r, c: r["reported_at"] >= c["mid_dt"],
    ),
    ("incidents", lambda c: "((\"severity\" >= 3) AND (\"source\" = 'camera'))", lambda r, c: r["severity"] >= 3 and r["source"] == "camera"),
]


@pytest.mark.parametrize("layer_id, text, expect", QGIS_FORMS, ids=[str(i) for i in range(len(QGIS_FORMS))])
def test_filters_as_qgis_writes_them(conn, rows, ctx, layer_id, text, expect):
    expected = {r["id"] for r in rows[layer_id] if expect(r, ctx)}
    assert 0 < len(expected) < len(rows[layer_id])
    assert _run(conn, layer_id, text(ctx)) == expected


def test_string_escapes():
    # '' and \' are a quote; \\ is one backslash (QGIS doubles them); \% stays for LIKE
    expression = parse_filter(r"name = 'it''s \'x\' a\\b \%'")
    assert expression.right.value == "it's 'x' a\\b \\%"


def test_invalid_polygon_literals_are_repaired_not_fatal(conn, rows, ctx):
    w, s, e, n = ctx["box"]
    bowtie = [(w, s), (e, n), (e, s), (w, n), (w, s)]  # a ring that crosses itself
    repaired = shapely.make_valid(Polygon(bowtie))
    expected = {r["id"] for r in rows["buildings"] if r["shape"].intersects(repaired)}
    assert expected
    assert _run(conn, "buildings", f"S_INTERSECTS(geom, POLYGON(({wkt_ring(bowtie)})))") == expected
    document = op("s_intersects", P("geom"), {"type": "Polygon", "coordinates": [[list(p) for p in bowtie]]})
    assert _run(conn, "buildings", document, lang="cql2-json") == expected


def test_division_by_zero_matches_nothing(conn):
    assert _run(conn, "buildings", "floors / (units - units) > 0") == set()


# ---------------------------------------------------------------- filter-crs and axis order


def test_epsg4326_reads_latitude_first_like_crs84_reads_longitude_first(conn, ctx):
    w, s, e, n = ctx["box"]
    lonlat = _run(conn, "buildings", f"S_INTERSECTS(geom, BBOX({w!r}, {s!r}, {e!r}, {n!r}))")
    assert lonlat
    for srid in (4326, 4490):
        latlon = f"S_INTERSECTS(geom, BBOX({s!r}, {w!r}, {n!r}, {e!r}))"
        assert _run(conn, "buildings", latlon, crs=EPSG.format(srid)) == lonlat
    ring_lonlat = wkt_ring(ctx["tri"])
    ring_latlon = ", ".join(f"{y!r} {x!r}" for x, y in ctx["tri"])
    by_lonlat = _run(conn, "buildings", f"S_INTERSECTS(geom, POLYGON(({ring_lonlat})))", crs=CRS84)
    by_latlon = _run(conn, "buildings", f"S_INTERSECTS(geom, POLYGON(({ring_latlon})))", crs="EPSG:4326")
    assert by_lonlat and by_lonlat == by_latlon
    document = op("s_intersects", P("geom"), {"bbox": [s, w, n, e]})
    assert _run(conn, "buildings", document, lang="cql2-json", crs=EPSG.format(4326)) == lonlat


def test_lon_lat_sent_as_epsg4326_is_refused_with_the_axis_order(conn, ctx):
    w, s, e, n = ctx["box"]
    with pytest.raises(FilterError, match="latitude, longitude"):
        _run(conn, "buildings", f"S_INTERSECTS(geom, BBOX({w!r}, {s!r}, {e!r}, {n!r}))", crs=EPSG.format(4326))


def test_projected_filter_crs(conn, rows, ctx):
    w, s, e, n = ctx["box"]
    lonlat = _run(conn, "buildings", f"S_INTERSECTS(geom, BBOX({w!r}, {s!r}, {e!r}, {n!r}))")
    to_mercator = Transformer.from_crs(4326, 3857, always_xy=True)
    (x0, x1), (y0, y1) = to_mercator.transform([w, e], [s, n])
    # a Web Mercator rectangle is a longitude/latitude rectangle
    assert _run(conn, "buildings", f"S_INTERSECTS(geom, BBOX({x0!r}, {y0!r}, {x1!r}, {y1!r}))", crs=EPSG.format(3857)) == lonlat

    # EPSG:4547 (CGCS2000 Gauss-Kruger 114E) is northing first
    easting, northing = Transformer.from_crs(4326, 4547, always_xy=True).transform(*ctx["p"])
    expected = {r["id"] for r in rows["buildings"] if r["shape"].intersects(Point(ctx["p"]))}
    assert expected
    assert _run(conn, "buildings", f"S_INTERSECTS(geom, POINT({northing!r} {easting!r}))", crs=EPSG.format(4547)) == expected
    assert _run(conn, "buildings", f"S_INTERSECTS(geom, POINT({easting!r} {northing!r}))", crs=EPSG.format(4547)) == set()


# ---------------------------------------------------------------- injection attempts


@pytest.mark.parametrize(
    "text",
    [
        "name = 'x'' OR 1=1 --'",
        "name = 'x\\' OR 1=1 --'",
        "name LIKE '%'' OR ''1''=''1'",
        "code = 'BLD-0001''; DROP TABLE buildings; --'",
        "name IN ('a'') OR (''1''=''1')",
    ],
)
def test_quotes_in_values_stay_values(conn, text):
    before = conn.execute("SELECT count(*) FROM buildings").fetchone()[0]
    assert _run(conn, "buildings", text) == set()
    assert conn.execute("SELECT count(*) FROM buildings").fetchone()[0] == before


@pytest.mark.parametrize(
    "value, lang",
    [
        ('"name"" OR 1=1 --" = \'x\'', "cql2-text"),
        ('"; DROP TABLE buildings; --" = 1', "cql2-text"),
        ("\"floors) OR (1=1\" = 1", "cql2-text"),
        ({"op": "=", "args": [{"property": 'name" OR "1"="1'}, "x"]}, "cql2-json"),
        ({"op": "isNull", "args": [{"property": "geom); DROP TABLE buildings; --"}]}, "cql2-json"),
    ],
)
def test_property_names_come_only_from_the_queryables(conn, value, lang):
    with pytest.raises(FilterError, match="unknown property"):
        _run(conn, "buildings", value, lang=lang)
    assert conn.execute("SELECT count(*) FROM buildings").fetchone()[0] > 0


def test_a_literal_string_round_trips_exactly(conn, rows):
    name = rows["buildings"][0]["name"]
    tricky = name + "'\\%"
    assert _run(conn, "buildings", f"name = '{name}'") == {rows["buildings"][0]["id"]}
    assert _run(conn, "buildings", "name = '{}'".format(tricky.replace("'", "''"))) == set()
    assert _run(conn, "buildings", op("=", P("name"), name), lang="cql2-json") == {rows["buildings"][0]["id"]}


# ---------------------------------------------------------------- errors say what to change


@pytest.mark.parametrize(
    "value, lang, crs, fragments",
    [
        ("hieght = 5", "cql2-text", None, ["unknown property 'hieght'", "did you mean 'height_m'", "queryable properties are: address, built_year, code, floors"]),
        ({"op": "=", "args": [{"property": "color"}, 1]}, "cql2-json", None, ["unknown property 'color'", "floors, geom"]),
        ("floors = 'abc'", "cql2-text", None, ["'floors' is an integer", "'abc'", "without quotes"]),
        ("name = 5", "cql2-text", None, ["'name' is text", "single quotes"]),
        ("synthetic = 'yes'", "cql2-text", None, ["true or false"]),
        ("floors =", "cql2-text", None, ["at position 9", "expected a value after '='", "found end of text"]),
        ("floors > 3 AND", "cql2-text", None, ["at position 15", "end of text"]),
        ("floors 3", "cql2-text", None, ["at position 8", "LIKE, BETWEEN, IN or IS NULL"]),
        ("(floors > 3", "cql2-text", None, ["to close the '(' at position 1"]),
        ("floors > 3)", "cql2-text", None, ["at position 11", "expected AND, OR or the end"]),
        ("name = 'abc", "cql2-text", None, ["at position 8", "never closed"]),
        ("floors ; 3", "cql2-text", None, ["unexpected character ';'"]),
        ("floors != 3", "cql2-text", None, ["write <>"]),
        ("floors BETWEEN 1 OR 3", "cql2-text", None, ["expected AND between the two bounds"]),
        ("name IN 'a'", "cql2-text", None, ["after IN"]),
        ("floors IS 3", "cql2-text", None, ["NULL after IS"]),
        ("floors = 3 AND AND", "cql2-text", None, ['"AND" in double quotes']),
        ("FOO(floors) = 1", "cql2-text", None, ["unknown function FOO()"]),
        ("ACCENTI(name) = 'a'", "cql2-text", None, ["ACCENTI() is not supported"]),
        ("reported_at > TIMESTAMP('yesterday')", "cql2-text", None, ["not a valid timestamp", "TIMESTAMP('2026-08-23T00:00:00Z')"]),
        ("floors LIKE '1%'", "cql2-text", None, ["LIKE works on text", "'floors' is an integer"]),
        ("geom = 'x'", "cql2-text", None, ["use S_EQUALS"]),
        ("S_INTERSECTS(floors, POINT(1 2))", "cql2-text", None, ["S_INTERSECTS needs geometries", "'floors' is an integer", "geometry property is geom"]),
        ("T_BEFORE(name, TIMESTAMP('2026-01-01T00:00:00Z'))", "cql2-text", None, ["T_BEFORE needs times"]),
        ("S_INTERSECTS(geom, POLYGON((0 0, 1 0, 1 1)))", "cql2-text", None, ["at least 4 positions"]),
        ("S_INTERSECTS(geom, POLYGON((0 0, 1 0, 1 1, 0 1)))", "cql2-text", None, ["must end where it starts"]),
        ("S_INTERSECTS(geom, POINT(1))", "cql2-text", None, ["2 to 4 numbers"]),
        ("S_INTERSECTS(geom, BBOX(1, 2, 3))", "cql2-text", None, ["BBOX takes 4 numbers"]),
        ("S_INTERSECTS(geom, BBOX(3, 2, 1, 4))", "cql2-text", None, ["lower corner first"]),
        ("S_INTERSECTS(geom, POINT EMPTY)", "cql2-text", None, ["empty geometries"]),
        ("S_INTERSECTS(geom, POINT(113.6 34.7))", "cql2-text", "EPSG:9999", ["filter-crs", "unsupported CRS", "CRS84"]),
        ("S_INTERSECTS(geom, POINT(34.7 200))", "cql2-text", None, ["outside", "longitude, latitude"]),
        ("floors", "cql2-text", None, ["expected a comparison"]),
        ("(floors + 1)", "cql2-text", None, ["at position 13", "expected a comparison", "after the arithmetic '+'"]),
        ("(floors AND floors = 1)", "cql2-text", None, ["at position 9", "after property 'floors'"]),
        ("floors + 'a' = 1", "cql2-text", None, ["arithmetic '+' works on numbers", "'a'"]),
        ("name * 2 = 1", "cql2-text", None, ["arithmetic '*' works on numbers", "property 'name' is text"]),
        ("floors = 1e999", "cql2-text", None, ["out of range"]),
        ({"op": "+", "args": [1, 2]}, "cql2-json", None, ["gives a value, not a predicate"]),
        ({"op": "s_intersects", "args": [{"property": "geom"}, {"bbox": [1, 2, float("nan"), 4]}]}, "cql2-json", None, ["finite"]),
        ("", "cql2-text", None, ["empty"]),
        ("floors = 1", "cql-text", None, ["unsupported filter-lang 'cql-text'", "cql2-text or cql2-json"]),
        ({"op": "=", "args": [1, 1]}, "cql2-text", None, ["cql2-text filter must be text"]),
        ("{'op': '='}", "cql2-json", None, ["not valid JSON"]),
        ({"op": "eq", "args": []}, "cql2-json", None, ["unknown op 'eq'", "isNull"]),
        ({"op": "=", "args": [{"property": "floors"}]}, "cql2-json", None, ["'=' takes 2 arguments, got 1"]),
        ({"op": "and", "args": [True]}, "cql2-json", None, ["at least 2 predicates"]),
        ({"op": "in", "args": [{"property": "floors"}, []]}, "cql2-json", None, ["non-empty list"]),
        ({"op": "=", "args": [{"property": "floors"}, None]}, "cql2-json", None, ["isNull"]),
        ({"op": "=", "args": [{"property": "floors"}, {"unit": "m"}]}, "cql2-json", None, ["unrecognised value"]),
        ({"op": "s_intersects", "args": [{"property": "geom"}, {"type": "Circle", "coordinates": [1, 2]}]}, "cql2-json", None, ["unknown geometry type 'Circle'"]),
        ({"op": "s_intersects", "args": [{"property": "geom"}, {"type": "Point", "coordinates": ["a", 2]}]}, "cql2-json", None, ["2 to 4 finite numbers"]),
        ({"property": "floors"}, "cql2-json", None, ["expected a predicate object"]),
        ({"op": "casei", "args": [{"property": "name"}]}, "cql2-json", None, ["gives a value, not a predicate"]),
        ("floors = 1 OR " * 1500 + "floors = 2", "cql2-text", None, ["characters long; the limit is 20000"]),
        ("(" * 60 + "floors = 1" + ")" * 60, "cql2-text", None, ["nested deeper than 50"]),
        ("NOT " * 60 + "floors = 1", "cql2-text", None, ["nested deeper than 50"]),
        ('{"op": "not", "args": [' * 60 + "true" + "]}" * 60, "cql2-json", None, ["nested deeper than 50"]),
        ("[" * 19000, "cql2-json", None, ["nested deeper than 50"]),
    ],
)
def test_errors_say_what_to_change(value, lang, crs, fragments):
    with pytest.raises(FilterError) as caught:
        filter_sql(parse_filter(value, lang=lang), queryables=queryables("buildings"), filter_crs=crs)
    message = str(caught.value)
    assert message.startswith("filter")
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_property_lists_every_queryable():
    with pytest.raises(FilterError) as caught:
        filter_sql(parse_filter("colour = 'red'"), queryables=queryables("incidents"))
    for name in queryables("incidents"):
        assert name in str(caught.value)


# ---------------------------------------------------------------- index use, speed, conformance


@pytest.mark.parametrize(
    "crs, corners",
    [
        (None, lambda b: b),
        (EPSG.format(4326), lambda b: (b[1], b[0], b[3], b[2])),
        (EPSG.format(3857), lambda b: tuple(Transformer.from_crs(4326, 3857, always_xy=True).transform(b[0], b[1]))
            + tuple(Transformer.from_crs(4326, 3857, always_xy=True).transform(b[2], b[3]))),
    ],
    ids=["crs84", "epsg4326", "epsg3857"],
)
@pytest.mark.parametrize("function", ["S_INTERSECTS", "S_WITHIN", "S_CONTAINS"])
def test_spatial_filters_can_use_the_gist_index(conn, ctx, crs, corners, function):
    (index,) = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'buildings' AND indexdef ILIKE '%USING gist (geom)%'"
    ).fetchone()
    px, py = ctx["p"]
    small = corners((px - 1e-4, py - 1e-4, px + 1e-4, py + 1e-4))
    where = filter_sql(
        parse_filter("{}(geom, BBOX({!r}, {!r}, {!r}, {!r}))".format(function, *small)),
        queryables=queryables("buildings"),
        filter_crs=crs,
    )
    with conn.transaction():
        # the demo table is small enough for the planner to prefer a sequential scan;
        # switching that off asks whether the index can be used at all
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(sql.SQL("EXPLAIN SELECT id FROM ogc_buildings WHERE {}").format(where)))
    assert index in plan, plan


def test_parsing_is_fast_and_cached():
    template = "floors > {} AND name LIKE 'Bldg%' AND S_INTERSECTS(geom, BBOX(113.6, 34.7, 113.7, 34.8)) AND use <> 'x'"
    texts = [template.format(i) for i in range(500)]
    assert 90 <= len(texts[0]) <= 110
    started = time.perf_counter()
    for text in texts:
        parse_filter(text)
    per_parse = (time.perf_counter() - started) / len(texts)
    assert per_parse < 1e-3, f"{per_parse * 1e3:.3f} ms per parse"
    assert parse_filter(texts[0]) is parse_filter(texts[0])


def test_conformance_classes():
    base = "http://www.opengis.net/spec/cql2/1.0/conf/"
    required = {
        "basic-cql2",
        "cql2-text",
        "cql2-json",
        "basic-spatial-functions",
        "basic-spatial-functions-plus-points",
        "spatial-functions",
        "advanced-comparison-operators",
    }
    assert {base + name for name in required} <= set(CONFORMANCE)
    assert len(set(CONFORMANCE)) == len(CONFORMANCE)
    assert all(uri.startswith(base) for uri in CONFORMANCE)
    assert base + "accent-insensitive-comparison" not in CONFORMANCE
    assert base + "functions" not in CONFORMANCE  # needs a /functions resource
    assert base + "array-functions" not in CONFORMANCE


def test_dates_compare_as_midnight_utc(conn, rows, ctx):
    day = date.fromisoformat(ctx["day"])
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    expected = {r["id"] for r in rows["incidents"] if r["reported_at"] >= midnight}
    assert 0 < len(expected) < len(rows["incidents"])
    assert _run(conn, "incidents", f"reported_at >= DATE('{ctx['day']}')") == expected
    assert _run(conn, "incidents", f"reported_at >= '{ctx['day']}T00:00:00Z'") == expected
