"""Import and export of layers (gis.spatial.io) against the demo community on a real PostGIS.

Imports that must succeed run inside the ``rollback`` fixture; imports that must be
rejected run without it, so "nothing was written" is checked against committed
tables: row counts and a checksum of every row, before and after.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from django.db import connection
from psycopg import sql
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Point, Polygon

from gis.spatial.io import ExportError, ImportRejected, Problem, export_layer, import_layer

ROOT = Path(__file__).resolve().parent.parent
# files without a CRS are written on purpose
pytestmark = pytest.mark.filterwarnings("ignore:'crs' was not provided")
DEMO_LEVEL1 = "410104003"
COPY_LEVEL1 = "410104077"  # a second subdistrict: the demo hierarchy, moved east and renumbered
COPY_SHIFT_DEG = 0.05  # ~4.6 km east: clear of the demo subdistrict
COORD_TOL_DEG = 1e-7
BOWTIE = Polygon([(113.6600, 34.7500), (113.6601, 34.7501), (113.6601, 34.7500), (113.6600, 34.7501)])


# -- helpers -------------------------------------------------------------------------


def table_state(*tables: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row (all columns) of each table."""
    state = {}
    with connection.cursor() as cursor:
        for table in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(to_jsonb(t)::text, '|' ORDER BY t.id), '')) FROM {} t"
            ).format(sql.Identifier(table))
            cursor.execute(query.as_string(cursor.connection))
            state[table] = cursor.fetchone()
    return state


def demo_frame(layer: str, tmp_path: Path) -> gpd.GeoDataFrame:
    """The demo features of a layer as a GeoDataFrame (EPSG:4326), by way of our own export."""
    path = tmp_path / f"demo_{layer}.gpkg"
    export_layer(layer, path)
    return gpd.read_file(path)


def new_buildings(tmp_path: Path, n: int = 5) -> gpd.GeoDataFrame:
    """``n`` demo buildings under new codes (IMP-0001 ...), as a file would bring them."""
    frame = demo_frame("buildings", tmp_path).head(n).copy()
    frame["code"] = [f"IMP-{i:04d}" for i in range(1, n + 1)]
    frame["synthetic"] = True
    return frame.reset_index(drop=True)


def copied_grids(tmp_path: Path) -> gpd.GeoDataFrame:
    """The demo grid hierarchy moved east and renumbered under a new level-1 code."""
    frame = demo_frame("grids", tmp_path).copy()
    frame["code"] = frame["code"].str.replace(DEMO_LEVEL1, COPY_LEVEL1, n=1)
    frame["parent_code"] = frame["parent_code"].str.replace(DEMO_LEVEL1, COPY_LEVEL1, n=1)
    frame["geometry"] = frame.geometry.map(lambda g: translate(g, xoff=COPY_SHIFT_DEG))
    frame["synthetic"] = True
    return frame


def write(frame: gpd.GeoDataFrame, path: Path, *, crs: str | None = None) -> Path:
    if crs is not None:
        frame = frame.to_crs(crs)
    frame.to_file(path, engine="pyogrio")
    return path


def stored_geoms(table: str, codes: list[str]) -> dict[str, shapely.Geometry]:
    query = sql.SQL("SELECT code, ST_AsBinary(geom) FROM {} WHERE code = ANY(%s)").format(sql.Identifier(table))
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), [codes])
        return {code: shapely.from_wkb(bytes(wkb)) for code, wkb in cursor.fetchall()}


def max_coordinate_error(a, b) -> float:
    ca = shapely.get_coordinates(shapely.orient_polygons(a))
    cb = shapely.get_coordinates(shapely.orient_polygons(b))
    assert ca.shape == cb.shape
    return float(np.abs(ca - cb).max())


def rejected(layer: str, path: Path, *tables: str, **options) -> ImportRejected:
    """Import that must be rejected; asserts the tables (and the load log) did not change at all."""
    watched = (*tables, "data_loads")
    before = table_state(*watched)
    with pytest.raises(ImportRejected) as info:
        import_layer(layer, path, **options)
    assert table_state(*watched) == before
    return info.value


def has(problems: list[Problem], row, field, fragment: str) -> bool:
    return any(p.row == row and p.field == field and fragment in p.reason for p in problems)


# -- the EPSG:4547 acceptance case ------------------------------------------------------------


def test_buildings_gpkg_in_epsg4547_import_and_round_trip_coordinates(tmp_path, rollback):
    frame = new_buildings(tmp_path, n=12)
    path = write(frame, tmp_path / "buildings_4547.gpkg", crs="EPSG:4547")

    report = import_layer("buildings", path)

    assert (report.inserted, report.updated, report.unchanged) == (12, 0, 0)
    assert report.source_crs == "EPSG:4547"
    stored = stored_geoms("buildings", list(frame["code"]))
    assert len(stored) == 12
    for code, original in zip(frame["code"], frame.geometry):
        assert max_coordinate_error(stored[code], original) < COORD_TOL_DEG
    # --crs naming the CRS the file declares is fine; the second import changes nothing
    again = import_layer("buildings", path, crs="EPSG:4547")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 12)


def test_grid_hierarchy_gpkg_in_epsg4547_imports_and_tiles(tmp_path, rollback):
    from gis.spatial.selectors import grid_for_point

    frame = copied_grids(tmp_path)
    path = write(frame, tmp_path / "grids_4547.gpkg", crs="EPSG:4547")

    report = import_layer("grids", path, tolerance_m=0.01)

    assert report.inserted == len(frame) == 22
    stored = stored_geoms("grids", list(frame["code"]))
    for code, original in zip(frame["code"], frame.geometry):
        assert max_coordinate_error(stored[code], original) < COORD_TOL_DEG
    level3 = frame[frame["level"] == 3].iloc[0]
    inside = level3.geometry.representative_point()
    path_found = grid_for_point(lon=inside.x, lat=inside.y)
    assert path_found.level3.code == level3["code"]
    assert path_found.level1.code == COPY_LEVEL1


# -- broken inputs: every problem, per feature, nothing written ------------------------------------


def _bowtie(frame):
    frame.loc[1, "geometry"] = BOWTIE


def _drop_floors(frame):
    return frame.drop(columns="floors")


def _empty_floors(frame):
    frame["floors"] = frame["floors"].astype("float64")
    frame.loc[2, "floors"] = np.nan


def _zero_floors(frame):
    frame.loc[1, "floors"] = 0


def _text_height(frame):
    frame["height_m"] = frame["height_m"].astype("object")
    frame.loc[1, "height_m"] = "tall"


def _unknown_grid(frame):
    frame.loc[0, "grid_code"] = "999999999"


def _point_geometry(frame):
    frame["geometry"] = [g if i != 1 else Point(113.66, 34.757) for i, g in enumerate(frame.geometry)]


def _duplicate_code(frame):
    frame.loc[2, "code"] = frame.loc[0, "code"]


def _too_long_address(frame):
    frame.loc[3, "address"] = "x" * 201


BROKEN_BUILDINGS = [
    # (case, change to a 5-building file, (row, field, reason fragment) expected)
    ("bow-tie polygon", _bowtie, (2, "geometry", "invalid geometry: Self-intersection")),
    ("required column missing", _drop_floors, (1, "floors", "required field is missing")),
    ("required value empty", _empty_floors, (3, "floors", "required field is empty")),
    ("below the range", _zero_floors, (2, "floors", "below the minimum 1")),
    ("not a number", _text_height, (2, "height_m", "is not a finite number")),
    ("unknown grid code", _unknown_grid, (1, "grid_code", "no grids feature has code '999999999'")),
    ("wrong geometry type", _point_geometry, (2, "geometry", "expected a MultiPolygon, got a Point")),
    ("duplicate code", _duplicate_code, (3, "code", "already used by row 1")),
    ("text too long", _too_long_address, (4, "address", "at most 200 allowed")),
]


@pytest.mark.parametrize("case, change, expected", BROKEN_BUILDINGS, ids=[c[0] for c in BROKEN_BUILDINGS])
def test_broken_buildings_are_rejected_per_feature_and_nothing_is_written(tmp_path, demo_db, case, change, expected):
    frame = new_buildings(tmp_path)
    changed = change(frame)
    frame = frame if changed is None else changed
    path = write(frame, tmp_path / "broken.gpkg")

    error = rejected("buildings", path, "buildings")

    assert has(error.problems, *expected), error.describe()


def test_missing_required_column_is_reported_for_every_feature(tmp_path, demo_db):
    path = write(new_buildings(tmp_path).drop(columns=["floors", "address"]), tmp_path / "no_floors.gpkg")

    error = rejected("buildings", path, "buildings")

    assert sorted((p.row, p.field) for p in error.problems) == sorted(
        (row, field) for row in range(1, 6) for field in ("floors", "address")
    )


def test_all_problems_are_collected_before_rejecting(tmp_path, demo_db):
    frame = new_buildings(tmp_path)
    frame.loc[1, "geometry"] = BOWTIE
    frame.loc[2, "floors"] = 0
    frame.loc[3, "height_m"] = -5.0
    frame.loc[4, "grid_code"] = "999999999"
    path = write(frame, tmp_path / "many.gpkg")

    error = rejected("buildings", path, "buildings")

    assert [(p.row, p.field) for p in error.problems] == [
        (2, "geometry"), (3, "floors"), (4, "height_m"), (5, "grid_code"),
    ]
    lines = error.describe().splitlines()
    assert "4 problem(s)" in lines[0]
    assert lines[1].startswith("row 2, field geometry: invalid geometry: Self-intersection")
    assert lines[2] == "row 3, field floors: 0 is below the minimum 1"


def test_problem_describe_format():
    problem = Problem(3, "floors", "0 is below the minimum 1")
    assert problem.describe() == "row 3, field floors: 0 is below the minimum 1"
    assert Problem(None, None, "no such file: x.gpkg").describe() == "file: no such file: x.gpkg"
    assert Problem(7, None, "rejected by the database: boom").describe() == "row 7: rejected by the database: boom"


def test_unknown_crs_is_a_clear_file_level_error(tmp_path, demo_db):
    path = write(new_buildings(tmp_path).set_crs(None, allow_override=True), tmp_path / "no_crs.gpkg")

    error = rejected("buildings", path, "buildings", crs="EPSG:999999")

    assert len(error.problems) == 1
    assert error.problems[0].row is None
    assert "unknown CRS 'EPSG:999999'" in error.problems[0].reason


def test_file_without_crs_needs_crs_option(tmp_path, demo_db):
    frame = new_buildings(tmp_path).to_crs("EPSG:4547").set_crs(None, allow_override=True)
    path = write(frame, tmp_path / "no_crs.gpkg")

    error = rejected("buildings", path, "buildings")

    assert [p.describe() for p in error.problems] == [
        "file: the file declares no CRS; say which with --crs (e.g. --crs EPSG:4547)"
    ]


def test_file_without_crs_imports_with_crs_option(tmp_path, rollback):
    frame = new_buildings(tmp_path)
    path = write(frame.to_crs("EPSG:4547").set_crs(None, allow_override=True), tmp_path / "no_crs.gpkg")

    report = import_layer("buildings", path, crs="EPSG:4547")

    assert report.inserted == 5 and report.source_crs == "EPSG:4547"
    stored = stored_geoms("buildings", list(frame["code"]))
    for code, original in zip(frame["code"], frame.geometry):
        assert max_coordinate_error(stored[code], original) < COORD_TOL_DEG


def test_crs_option_contradicting_the_file_is_rejected(tmp_path, demo_db):
    path = write(new_buildings(tmp_path), tmp_path / "b.gpkg", crs="EPSG:4547")

    error = rejected("buildings", path, "buildings", crs="EPSG:4490")

    assert "declares EPSG:4547 but --crs says EPSG:4490" in error.describe()


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp"])
def test_truncated_file_is_a_file_level_error(tmp_path, demo_db, suffix):
    frame = demo_frame("buildings", tmp_path).copy()
    frame["code"] = [f"CUT-{i:04d}" for i in range(len(frame))]
    path = write(frame, tmp_path / f"cut{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    error = rejected("buildings", path, "buildings")

    assert [p.row for p in error.problems] == [None]
    assert f"cut{suffix}" in error.problems[0].reason


@pytest.mark.parametrize(
    "layer, name, reason",
    [
        ("buildings", "missing.gpkg", "no such file"),
        ("buildings", "notes.csv", "use a .gpkg, .geojson/.json or .shp file"),
        ("care_subjects", "b.gpkg", "sensitive personal information"),
        ("streets", "b.gpkg", "street nodes"),
        ("towers", "b.gpkg", "unknown layer 'towers'"),
    ],
)
def test_unusable_requests_are_rejected_clearly(tmp_path, demo_db, layer, name, reason):
    write(new_buildings(tmp_path), tmp_path / "b.gpkg")
    (tmp_path / "notes.csv").write_text("code\nx\n")

    error = rejected(layer, tmp_path / name, "buildings")

    assert [p.row for p in error.problems] == [None]
    assert reason in error.describe()


def test_multi_layer_gpkg_needs_source_layer(tmp_path, rollback):
    frame = new_buildings(tmp_path)
    path = tmp_path / "two.gpkg"
    frame.head(2).to_file(path, layer="north", engine="pyogrio")
    frame.tail(3).to_file(path, layer="south", engine="pyogrio")

    with pytest.raises(ImportRejected, match="choose one with --source-layer"):
        import_layer("buildings", path)
    with pytest.raises(ImportRejected, match="no layer 'east'"):
        import_layer("buildings", path, source_layer="east")
    report = import_layer("buildings", path, source_layer="south")

    assert report.inserted == 3 and report.source_layer == "south"


# -- grids: hierarchy and tiling -----------------------------------------------------------------


def _buffer_first_cell(frame, distance_deg: float):
    """Grow (or, negative, shrink) the first level-3 grid; its index."""
    i = frame.index[frame["level"] == 3][0]
    cell = frame.loc[i, "geometry"].geoms[0]
    frame.loc[i, "geometry"] = MultiPolygon([shapely.buffer(cell, distance_deg, join_style="mitre")])
    return i


def _enlarge_cell(frame):
    return frame.loc[_buffer_first_cell(frame, 0.0003), "code"]


def _shrink_cell(frame):
    return frame.loc[_buffer_first_cell(frame, -0.0003), "parent_code"]


@pytest.mark.parametrize(
    "change, kinds",
    [(_enlarge_cell, ["overlaps sibling", "outside its parent"]), (_shrink_cell, ["gap"])],
    ids=["overlap", "gap"],
)
def test_grid_tiling_problems_reject_the_file(tmp_path, demo_db, change, kinds):
    frame = copied_grids(tmp_path)
    culprit = change(frame)
    path = write(frame, tmp_path / "grids.gpkg", crs="EPSG:4547")

    error = rejected("grids", path, "grids")

    for kind in kinds:
        assert any(kind in p.reason and culprit in p.reason and p.field == "geometry" for p in error.problems), kind
    assert all(p.row is not None for p in error.problems)


def test_new_grid_overlapping_its_demo_siblings_is_rejected(tmp_path, demo_db):
    demo = demo_frame("grids", tmp_path)
    sibling = demo[demo["level"] == 3].iloc[0]
    parent = sibling["parent_code"]
    intruder = gpd.GeoDataFrame(
        {"code": [parent + "999"], "level": [3], "name": ["新网格"], "parent_code": [parent]},
        geometry=[sibling.geometry], crs="EPSG:4326",
    )
    path = write(intruder, tmp_path / "intruder.geojson")

    error = rejected("grids", path, "grids")

    assert has(error.problems, 1, "geometry", "overlaps sibling"), error.describe()
    assert intruder.loc[0, "code"] in error.describe()


def test_grid_tolerance_lets_slivers_through(tmp_path, rollback):
    frame = copied_grids(tmp_path)
    _buffer_first_cell(frame, 5e-7)  # a 5 cm sliver of overlap: beyond 0.01 m, within 0.5 m
    path = write(frame, tmp_path / "grids.gpkg")

    with pytest.raises(ImportRejected, match="overlaps sibling"):
        import_layer("grids", path, tolerance_m=0.01)
    report = import_layer("grids", path, tolerance_m=0.5)

    assert report.inserted == 22


def _level2_without_parent(frame):
    frame.loc[frame.index[frame["level"] == 2][0], "parent_code"] = None
    return 2, "parent_code", "a level-2 grid needs the code of its parent"


def _level1_with_parent(frame):
    frame.loc[frame.index[frame["level"] == 1][0], "parent_code"] = DEMO_LEVEL1
    return 1, "parent_code", "a level-1 grid has no parent"


def _code_not_extending_parent(frame):
    i = frame.index[frame["level"] == 3][0]
    frame.loc[i, "code"] = "999999999999999"
    return 3, "code", "must extend its parent's code"


def _unknown_parent(frame):
    i = frame.index[frame["level"] == 3][0]
    frame.loc[i, "parent_code"] = COPY_LEVEL1 + "999"
    frame.loc[i, "code"] = COPY_LEVEL1 + "999001"
    return 3, "parent_code", "no grids feature has code"


def _rejected_parent(frame):
    i = frame.index[frame["level"] == 2][0]
    frame.loc[i, "name"] = None
    return 3, "parent_code", "was rejected"


@pytest.mark.parametrize(
    "change",
    [_level2_without_parent, _level1_with_parent, _code_not_extending_parent, _unknown_parent, _rejected_parent],
)
def test_grid_hierarchy_problems(tmp_path, demo_db, change):
    frame = copied_grids(tmp_path)
    level, field, fragment = change(frame)
    path = write(frame, tmp_path / "grids.gpkg")
    rows_of_level = {i + 1 for i, lv in enumerate(frame["level"]) if lv == level}

    error = rejected("grids", path, "grids")

    found = [p for p in error.problems if p.row in rows_of_level and p.field == field and fragment in p.reason]
    assert found, error.describe()


def test_database_rule_violations_become_problems_of_their_rows(tmp_path, demo_db):
    frame = copied_grids(tmp_path)
    level3 = list(frame.index[frame["level"] == 3][:2])
    # code still extends the parent's, so only the database trigger sees level 3 under a level-1 parent
    frame.loc[level3, "parent_code"] = COPY_LEVEL1
    path = write(frame, tmp_path / "grids.gpkg")

    error = rejected("grids", path, "grids")

    for i in level3:
        assert has(error.problems, i + 1, None, "rejected by the database: grid"), error.describe()
        assert has(error.problems, i + 1, None, "level 3 cannot sit under a level-1 parent")


# -- success paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, suffix",
    [
        ("buildings", ".gpkg"), ("buildings", ".geojson"), ("buildings", ".shp"),
        ("grids", ".shp"), ("cameras", ".gpkg"), ("cameras", ".shp"), ("incidents", ".geojson"),
        ("parking_spots", ".shp"), ("party_orgs", ".json"), ("service_points", ".gpkg"), ("no_parking_zones", ".gpkg"),
    ],
)
def test_export_then_import_changes_nothing(tmp_path, rollback, layer, suffix):
    table = layer
    before = table_state(table)
    path = tmp_path / f"{layer}{suffix}"

    exported = export_layer(layer, path)
    report = import_layer(layer, path)

    assert report.features == exported.features == before[table][0]
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, exported.features)
    assert table_state(table) == before


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_a_time_to_the_microsecond_comes_back_from_its_own_export_unchanged(tmp_path, rollback, suffix):
    """GDAL's date-time fields hold milliseconds; incidents written live (cameras, sensors) carry microseconds."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE incidents SET reported_at = reported_at + interval '0.759987 seconds' "
                       "WHERE id IN (SELECT id FROM incidents ORDER BY id LIMIT 3)")
    before = table_state("incidents")
    path = tmp_path / f"incidents{suffix}"
    exported = export_layer("incidents", path)
    report = import_layer("incidents", path)
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, exported.features)
    assert table_state("incidents") == before


def test_reimport_is_idempotent(tmp_path, rollback):
    path = write(new_buildings(tmp_path), tmp_path / "new.geojson")

    first = import_layer("buildings", path)
    after_first = table_state("buildings")
    second = import_layer("buildings", path)

    assert (first.inserted, first.updated, first.unchanged) == (5, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 5)
    assert table_state("buildings") == after_first


def test_import_updates_changed_rows_only(tmp_path, rollback):
    frame = demo_frame("buildings", tmp_path).head(4).copy()
    frame.loc[0, "floors"] = 31
    path = write(frame, tmp_path / "edit.gpkg")

    report = import_layer("buildings", path)

    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 3)
    from gis.models import Building

    assert Building.objects.get(code=frame.loc[0, "code"]).floors == 31


def test_dry_run_checks_everything_and_writes_nothing(tmp_path, rollback):
    path = write(new_buildings(tmp_path), tmp_path / "new.gpkg", crs="EPSG:4547")
    before = table_state("buildings", "data_loads")

    report = import_layer("buildings", path, dry_run=True)

    assert report.dry_run and report.inserted == 5
    assert "dry run" in report.describe()
    assert table_state("buildings", "data_loads") == before


def test_shapefile_import(tmp_path, rollback):
    from gis.models import Building

    frame = new_buildings(tmp_path)
    frame["address"] = "平等街" + frame["code"]
    path = write(frame, tmp_path / "new.shp", crs="EPSG:4547")
    assert {p.suffix for p in tmp_path.glob("new.*")} >= {".shp", ".shx", ".dbf", ".prj"}

    report = import_layer("buildings", path)

    assert report.inserted == 5
    stored = Building.objects.get(code="IMP-0003")
    assert stored.address == "平等街IMP-0003"
    assert max_coordinate_error(shapely.from_wkb(bytes(stored.geom.wkb)), frame.geometry[2]) < COORD_TOL_DEG


def test_features_without_grid_code_get_their_grid_by_location(tmp_path, rollback):
    from gis.models import Building
    from gis.spatial.selectors import grid_for_point

    frame = new_buildings(tmp_path).drop(columns="grid_code")
    path = write(frame, tmp_path / "no_grid.gpkg")

    report = import_layer("buildings", path)

    assert report.located == 5 and report.unlocated == 0
    for code, geom in zip(frame["code"], frame.geometry):
        inside = geom.representative_point()
        assert Building.objects.get(code=code).grid.code == grid_for_point(lon=inside.x, lat=inside.y).level3.code


def test_polygon_is_promoted_to_multipolygon(tmp_path, rollback):
    frame = new_buildings(tmp_path)
    frame["geometry"] = [g.geoms[0] for g in frame.geometry]
    path = write(frame, tmp_path / "polygons.gpkg")

    import_layer("buildings", path)

    stored = stored_geoms("buildings", list(frame["code"]))
    assert {g.geom_type for g in stored.values()} == {"MultiPolygon"}


def test_successful_import_is_logged(tmp_path, rollback):
    from gis.models import DataLoad

    path = write(new_buildings(tmp_path), tmp_path / "new.gpkg")

    import_layer("buildings", path)

    load = DataLoad.objects.filter(kind="import").order_by("-id").first()
    assert load.layer == "buildings"
    assert load.counts["inserted"] == 5
    assert load.checksum == hashlib.sha256(b".gpkg" + path.read_bytes()).hexdigest()


# -- export ---------------------------------------------------------------------------------


def test_export_reprojects_and_names_foreign_keys_by_code(tmp_path, demo_db):
    path = tmp_path / "buildings.gpkg"

    report = export_layer("buildings", path, crs="EPSG:4547")
    frame = gpd.read_file(path)

    assert report.crs == "EPSG:4547" and frame.crs.to_epsg() == 4547
    assert "grid_code" in frame.columns and "grid_id" not in frame.columns and "id" not in frame.columns
    back = frame.to_crs("EPSG:4326")
    stored = stored_geoms("buildings", list(frame["code"][:10]))
    for code, geom in zip(back["code"][:10], back.geometry[:10]):
        assert max_coordinate_error(stored[code], geom) < COORD_TOL_DEG


def test_export_leaves_out_camera_stream_urls(tmp_path, demo_db):
    path = tmp_path / "cameras.geojson"

    export_layer("cameras", path)

    assert "stream_url" not in gpd.read_file(path).columns


@pytest.mark.parametrize(
    "layer, name, crs, message",
    [
        ("care_subjects", "c.gpkg", None, "sensitive personal information"),
        ("towers", "t.gpkg", None, "unknown layer 'towers'"),
        ("buildings", "b.csv", None, "cannot tell the format"),
        ("buildings", "b.gpkg", "EPSG:999999", "unknown CRS 'EPSG:999999'"),
    ],
)
def test_export_refuses_clearly(tmp_path, demo_db, layer, name, crs, message):
    with pytest.raises(ExportError, match=message):
        export_layer(layer, tmp_path / name, crs=crs)
    assert not (tmp_path / name).exists()


def test_export_adds_layers_to_one_geopackage(tmp_path, demo_db):
    import pyogrio

    path = tmp_path / "community.gpkg"
    export_layer("grids", path)
    export_layer("buildings", path)

    assert sorted(name for name, _ in pyogrio.list_layers(path)) == ["buildings", "grids"]


# -- the command line --------------------------------------------------------------------------


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ONEMAP_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "host.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_import_prints_every_reason_and_exits_1(tmp_path, demo_db, database_url):
    frame = new_buildings(tmp_path)
    frame.loc[1, "geometry"] = BOWTIE
    frame.loc[3, "floors"] = 0
    path = write(frame, tmp_path / "broken.gpkg", crs="EPSG:4547")
    before = table_state("buildings", "data_loads")

    result = run_cli(database_url, "import", "buildings", str(path))

    assert result.returncode == 1, result.stderr
    assert "row 2, field geometry: invalid geometry: Self-intersection" in result.stderr
    assert "row 4, field floors: 0 is below the minimum 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert table_state("buildings", "data_loads") == before


def test_cli_dry_run_succeeds_and_writes_nothing(tmp_path, demo_db, database_url):
    path = write(new_buildings(tmp_path), tmp_path / "new.gpkg")
    before = table_state("buildings", "data_loads")

    result = run_cli(database_url, "import", "buildings", str(path), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout and "5 new" in result.stdout
    assert table_state("buildings", "data_loads") == before
