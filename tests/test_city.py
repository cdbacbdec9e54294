"""The ``city`` scale (data/city.py), loaded small into its own database.

The city load truncates every feature table, so these tests never touch the shared
test database: they create ``<test database>_city`` on the same server, reach it
through an extra Django alias, and drop it at the end.
"""

from __future__ import annotations

import os

import pytest
from psycopg import sql

from core.settings import with_database_name
from data.city import CityLoadRefused, CitySize, load_city

pytestmark = pytest.mark.slow

ALIAS = "city"
CITY_DB = os.environ.get("ONEMAP_TEST_DATABASE", "onemap_test") + "_city"
SEED = 7
FACTOR = 0.01


@pytest.fixture(scope="module")
def city_alias(migrated_db):
    """A migrated database of its own, reachable as ``connections['city']``."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from host.embedded_db import recreate_database

    recreate_database(migrated_db, CITY_DB)
    config = {**connections.settings["default"], "NAME": CITY_DB}
    settings.DATABASES[ALIAS] = config
    connections.settings[ALIAS] = config
    call_command("migrate", database=ALIAS, verbosity=0, interactive=False)
    yield ALIAS
    connections[ALIAS].close()
    del connections[ALIAS]
    connections.settings.pop(ALIAS, None)  # often the same dict as settings.DATABASES
    settings.DATABASES.pop(ALIAS, None)
    _drop_database(with_database_name(migrated_db, "postgres"))


def _drop_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [CITY_DB],
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(CITY_DB)))


@pytest.fixture(scope="module")
def small_city(city_alias):
    return load_city(seed=SEED, factor=FACTOR, using=city_alias)


def _scalar(query, params=None):
    from django.db import connections

    with connections[ALIAS].cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0]


def test_full_city_meets_the_targets():
    size = CitySize.for_factor(1.0)
    assert size.grids_level3 >= 2_000
    assert size.buildings >= 200_000
    assert size.cameras >= 20_000
    assert size.care_subjects >= 100_000
    assert size.incidents >= 1_000_000
    assert size.columns * 300 == pytest.approx(15_000, rel=0.05)


@pytest.mark.parametrize("factor", [0.01, 0.1, 1.0, 2.0])
def test_counts_scale_with_the_factor(factor):
    size, full = CitySize.for_factor(factor), CitySize.for_factor(1.0)
    for name in ("buildings", "cameras", "care_subjects", "incidents", "service_points"):
        assert getattr(size, name) == round(getattr(full, name) * factor)
    assert size.grids_level3 == pytest.approx(full.grids_level3 * factor, rel=0.25)


def test_loaded_counts_are_the_planned_sizes(small_city):
    size = CitySize.for_factor(FACTOR)
    planned = {
        "buildings": size.buildings, "cameras": size.cameras, "care_subjects": size.care_subjects,
        "care_subject_private": size.care_subjects, "incidents": size.incidents,
        "parking_spots": size.parking_spots, "no_parking_zones": size.no_parking_zones,
        "service_points": size.service_points,
    }
    for table, rows in planned.items():
        assert small_city.counts[table] == rows
        assert _scalar(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))) == rows
    assert _scalar("SELECT count(*) FROM grids WHERE level = 3") == size.grids_level3
    assert _scalar("SELECT count(*) FROM grid_workers") == pytest.approx(4 * size.grids_level3, rel=0.25)
    assert small_city.scale == "city" and small_city.seed == SEED and small_city.total_seconds > 0


def test_grids_tile_exactly(small_city):
    from gis.spatial.topology import grid_tiling_problems

    assert grid_tiling_problems(tolerance_m=0.01, using=ALIAS) == []
    assert _scalar("SELECT count(*) FROM grids WHERE level = 1") >= 2
    # a parent is exactly the union of its children
    assert _scalar(
        """SELECT count(*) FROM grids p
           JOIN (SELECT parent_id, ST_Union(geom) AS u FROM grids GROUP BY parent_id) c ON c.parent_id = p.id
           WHERE NOT ST_Equals(p.geom, c.u)"""
    ) == 0


def test_every_incident_lies_in_its_level3_grid(small_city):
    assert _scalar("SELECT count(*) FROM incidents WHERE grid_id IS NULL") == 0
    assert _scalar(
        """SELECT count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id
           WHERE g.level <> 3 OR NOT ST_Contains(g.geom, i.geom)"""
    ) == 0


def test_buildings_do_not_overlap_and_lie_in_their_grid(small_city):
    assert _scalar(
        """SELECT count(*) FROM (SELECT id, geom FROM buildings ORDER BY id LIMIT 1000) a
           JOIN buildings b ON b.id <> a.id AND ST_Intersects(a.geom, b.geom)"""
    ) == 0
    assert _scalar(
        "SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE NOT ST_Within(b.geom, g.geom)"
    ) == 0
    assert _scalar("SELECT min(floors) >= 4 AND max(floors) <= 33 FROM buildings") is True


def test_things_carry_what_the_brief_promises(small_city):
    assert _scalar("SELECT array_agg(DISTINCT purpose ORDER BY purpose) FROM cameras") == [
        "courtyard", "facade", "parking", "peephole",
    ]
    assert _scalar("SELECT bool_and(calibration ? 'image_size') FROM cameras") is True
    # every care subject living alone has a door magnet
    assert _scalar(
        """SELECT count(*) FROM care_subjects c WHERE c.lives_alone AND NOT EXISTS
           (SELECT 1 FROM sensors s WHERE s.care_subject_id = c.id AND s.kind = 'door_magnet')"""
    ) == 0
    assert _scalar("SELECT max(reported_at) - min(reported_at) > interval '360 days' FROM incidents") is True
    for table in ("grids", "buildings", "cameras", "care_subjects", "incidents", "grid_workers", "service_points"):
        assert _scalar(sql.SQL("SELECT bool_and(synthetic) FROM {}").format(sql.Identifier(table))) is True


def test_identities_continue_after_the_loaded_ids(small_city):
    from django.db import transaction

    from gis.models import StreetNode

    with transaction.atomic(using=ALIAS):
        node = StreetNode.objects.using(ALIAS).create(
            code="new-node", synthetic=True, geom="SRID=4326;POINT(113.65 34.75)"
        )
        assert node.id == small_city.counts["street_nodes"] + 1
        transaction.set_rollback(True, using=ALIAS)


def test_the_load_is_recorded(small_city):
    from gis.models import DataLoad

    record = DataLoad.objects.using(ALIAS).filter(kind="city").first()
    assert record.checksum == small_city.checksum
    assert record.parameters["seed"] == SEED
    # the shared test database was never touched
    assert not DataLoad.objects.filter(kind="city").exists()


def test_same_seed_same_checksum_other_seed_differs(small_city):
    other = load_city(seed=SEED + 1, factor=FACTOR, using=ALIAS)
    again = load_city(seed=SEED, factor=FACTOR, using=ALIAS)  # last, so the city is as before for other tests
    assert other.checksum != small_city.checksum
    assert again.checksum == small_city.checksum
    assert again.counts == small_city.counts


def test_refuses_when_a_row_is_not_synthetic(small_city):
    from django.db import connections

    with connections[ALIAS].cursor() as cursor:
        cursor.execute("UPDATE buildings SET synthetic = false WHERE id = 1")
    try:
        with pytest.raises(CityLoadRefused, match="buildings.*ONEMAP_DATABASE_URL"):
            load_city(seed=SEED, factor=FACTOR, using=ALIAS)
        assert _scalar("SELECT count(*) FROM buildings") == small_city.counts["buildings"]
    finally:
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("UPDATE buildings SET synthetic = true WHERE id = 1")


def test_a_load_tells_screens_to_reload_once_and_leaves_the_live_trigger_on(small_city):
    from django.db import connections, transaction

    before = _scalar("SELECT coalesce(max(id), 0) FROM live_events")
    load_city(seed=SEED, factor=FACTOR, using=ALIAS)
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT kind, op FROM live_events WHERE id > %s ORDER BY id", [before])
        assert cursor.fetchall() == [("reset", "truncate")]  # not one event per copied incident
        cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'live_incidents_insert'")
        assert cursor.fetchone()[0] == "O"  # enabled again
    with transaction.atomic(using=ALIAS):
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("UPDATE incidents SET severity = 4 WHERE id = 1")
            assert _scalar("SELECT count(*) FROM live_events WHERE id > %s AND kind = 'incident'", [before]) == 1
        transaction.set_rollback(True, using=ALIAS)
