"""Who sees what: a grid worker attacks every route and nothing from another grid leaks; personal data is logged.

The same limits hold in PostgreSQL itself: raw SQL under a grid worker's role and
setting reads only that grid, and the spatial index still serves bbox queries under
the row-level-security policies.
"""

from __future__ import annotations

import json
import math

import psycopg
import pytest
import requests

from gis import models as m

GRID_LAYERS = ("buildings", "cameras", "parking_spots", "no_parking_zones", "incidents", "party_orgs",
               "service_points", "care_subjects")


def _get(url, auth, **params):
    return requests.get(url, params=params, auth=auth, timeout=30, allow_redirects=False)


def _all_pages(url, auth, **params):
    features, body = [], _get(url, auth, **params).json()
    while True:
        features += body["features"]
        nxt = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        if not nxt:
            return features, body
        body = requests.get(nxt, auth=auth, timeout=30).json()


@pytest.mark.parametrize("layer", GRID_LAYERS)
def test_items_and_counts_hold_only_the_workers_grid(live_server, worker, own_grid, layer):
    features, first = _all_pages(f"{live_server}/ogc/collections/{layer}/items", worker.auth, limit=7)
    assert features, layer
    assert {f["properties"]["grid_code"] for f in features} == {own_grid.code}
    model = {"buildings": m.Building, "cameras": m.Camera, "parking_spots": m.ParkingSpot,
             "no_parking_zones": m.NoParkingZone, "incidents": m.Incident, "party_orgs": m.PartyOrganization,
             "service_points": m.ServicePoint, "care_subjects": m.CareSubject}[layer]
    in_grid = model.objects.filter(grid=own_grid)
    if layer == "cameras":
        in_grid = in_grid.exclude(purpose="peephole")
    if layer == "incidents":
        in_grid = in_grid.exclude(category="elder_inactivity")
    assert len(features) == in_grid.count()


def test_grids_layer_is_the_workers_polygon(live_server, worker, own_grid):
    body = _get(f"{live_server}/ogc/collections/grids/items", worker.auth, limit=100).json()
    assert [f["properties"]["code"] for f in body["features"]] == [own_grid.code]
    assert body["numberMatched"] == 1


def test_guessed_ids_from_other_grids_are_not_found(live_server, worker, other_grid):
    for layer, model in (("buildings", m.Building), ("incidents", m.Incident), ("care_subjects", m.CareSubject),
                         ("parking_spots", m.ParkingSpot)):
        others = model.objects.filter(grid=other_grid).values_list("id", flat=True)[:5]
        assert others, layer
        for item_id in others:
            response = _get(f"{live_server}/ogc/collections/{layer}/items/{item_id}", worker.auth)
            assert response.status_code == 404, (layer, item_id)
    response = _get(f"{live_server}/ogc/collections/grids/items/{other_grid.id}", worker.auth)
    assert response.status_code == 404


def test_bbox_outside_the_grid_finds_nothing(live_server, worker, other_grid):
    minx, miny, maxx, maxy = other_grid.geom.point_on_surface.buffer(0.0003).extent
    body = _get(f"{live_server}/ogc/collections/buildings/items", worker.auth, bbox=f"{minx},{miny},{maxx},{maxy}").json()
    assert body["features"] == [] and body["numberMatched"] == 0
    assert m.Building.objects.filter(grid=other_grid).exists()


@pytest.mark.parametrize(
    "cql",
    [
        "grid_code = '{other}'",
        "grid_code <> '{own}'",
        "1 = 1 OR grid_code = '{other}'",
        "NOT (grid_code = '{own}')",
        "S_INTERSECTS(geometry, BBOX(-180, -90, 180, 90))",
        "floors > 0 OR TRUE",
        "grid_code LIKE '%'",
    ],
)
def test_filters_cannot_escape_the_grid(live_server, worker, own_grid, other_grid, cql):
    text = cql.format(own=own_grid.code, other=other_grid.code)
    response = _get(f"{live_server}/ogc/collections/buildings/items", worker.auth, filter=text, limit=1000)
    if response.status_code == 400:  # a filter the grammar refuses leaks nothing either
        return
    body = response.json()
    assert {f["properties"]["grid_code"] for f in body["features"]} <= {own_grid.code}


def test_sorting_and_paging_tricks_stay_inside(live_server, worker, own_grid):
    url = f"{live_server}/ogc/collections/buildings/items"
    for params in ({"sortby": "-grid_code"}, {"sortby": "grid_code", "offset": "0", "limit": "10000"},
                   {"offset": "1000000"}, {"properties": "code"}):
        body = _get(url, worker.auth, **params).json()
        codes = {f["properties"].get("grid_code", own_grid.code) for f in body["features"]}
        assert codes <= {own_grid.code}
        if "properties" in params:
            ids = [f["id"] for f in body["features"]]
            assert set(m.Building.objects.filter(id__in=ids).values_list("grid_id", flat=True)) == {own_grid.id}


def _tile_of(lon, lat, z):
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def test_tiles_from_other_grids_carry_nothing_of_theirs(live_server, worker, own_grid, other_grid):
    import mapbox_vector_tile

    for grid in (other_grid, own_grid):
        centre = grid.geom.point_on_surface
        for z in (14, 16):
            x, y = _tile_of(centre.x, centre.y, z)
            response = _get(f"{live_server}/ogc/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}", worker.auth)
            assert response.status_code in (200, 204)
            if response.status_code == 200:
                features = mapbox_vector_tile.decode(response.content)["buildings"]["features"]
                assert {f["properties"]["grid_code"] for f in features} <= {own_grid.code}
                assert "private" in response.headers["Cache-Control"]


def _incident_body(lon, lat, **properties):
    return json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                       "properties": {"category": "sanitation", **properties}})


def _write(method, url, auth, body):
    return requests.request(method, url, data=body, auth=auth, timeout=30,
                            headers={"Content-Type": "application/geo+json"})


def test_edits_stay_inside_the_grid(live_server, worker, own_grid, other_grid):
    url = f"{live_server}/ogc/collections/incidents/items"
    inside, outside = own_grid.geom.point_on_surface, other_grid.geom.point_on_surface
    before = m.Incident.objects.count()
    refused = _write("POST", url, worker.auth, _incident_body(outside.x, outside.y))
    assert refused.status_code == 403 and "outside your grid" in refused.json()["description"]
    assert m.Incident.objects.count() == before
    created = _write("POST", url, worker.auth, _incident_body(inside.x, inside.y, notes="门口堆物"))
    assert created.status_code == 201, created.text
    mine = created.headers["Location"]
    incident = m.Incident.objects.get(pk=int(mine.rsplit("/", 1)[1]))
    assert incident.grid_id == own_grid.id and incident.notes == "门口堆物"
    move_out = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [outside.x, outside.y]}, "properties": {}}
    assert _write("PATCH", mine, worker.auth, json.dumps(move_out)).status_code == 403
    incident.refresh_from_db()
    assert incident.grid_id == own_grid.id and incident.geom.equals_exact(inside, 1e-9)
    theirs = m.Incident.objects.filter(grid=other_grid).exclude(category="elder_inactivity").exclude(status="closed").first()
    patch = {"type": "Feature", "properties": {"status": "closed"}}
    assert _write("PATCH", f"{url}/{theirs.id}", worker.auth, json.dumps(patch)).status_code == 404
    assert _write("PUT", f"{url}/{theirs.id}", worker.auth, json.dumps(patch)).status_code == 404
    assert requests.delete(f"{url}/{theirs.id}", auth=worker.auth, timeout=30).status_code == 404  # hidden: 404 whatever the method
    theirs.refresh_from_db()
    assert theirs.status != "closed"
    assert _write("PATCH", mine, worker.auth, json.dumps(patch)).status_code == 204
    incident.delete()  # the demo stays as generated for the other tests


def test_care_subjects_only_for_roles_that_need_them_and_every_read_is_logged(live_server, accounts, worker, own_grid):
    url = f"{live_server}/ogc/collections/care_subjects/items"
    assert _get(url, accounts["analyst"].auth).status_code == 403
    assert _get(url, accounts["department"].auth).status_code == 403
    assert _get(url, None).status_code == 401
    logged = m.AccessLogEntry.objects.filter(username=worker.username)
    before = logged.count()
    body = _get(url, worker.auth, limit=4).json()
    assert body["numberReturned"] == 4 and body["features"][0]["properties"]["full_name"]
    assert logged.count() == before + 4 + 1  # each record, and the query with its count
    entry = logged.exclude(record_id=None).order_by("-id").first()
    assert entry.collection == "care_subjects" and entry.route == "/ogc/collections/care_subjects/items"
    assert entry.record_id in {str(f["id"]) for f in body["features"]} and entry.role == "grid_worker"
    one = body["features"][0]["id"]
    reads = logged.filter(record_id=str(one)).count()
    assert _get(f"{url}/{one}", worker.auth).status_code == 200
    assert logged.filter(record_id=str(one)).count() == reads + 1


def test_care_density_is_aggregate_and_suppresses_small_groups(live_server, accounts):
    body = _get(f"{live_server}/ogc/collections/care_density/items", accounts["analyst"].auth, limit=1000).json()
    assert body["features"]
    for feature in body["features"]:
        props = feature["properties"]
        assert set(props) == {"unit", "code", "grid_code", "registered", "living_alone", "synthetic"}
        assert props["registered"] >= 5
        assert props["living_alone"] is None or props["living_alone"] == 0 or props["living_alone"] >= 5
    by_grid = {f["properties"]["code"]: f["properties"]["registered"] for f in body["features"]
               if f["properties"]["unit"] == "grid"}
    for code, registered in by_grid.items():
        assert registered == m.CareSubject.objects.filter(grid__code=code, active=True).count()
    small = [b for b in m.Building.objects.all() if 0 < b.care_subjects.filter(active=True).count() < 5]
    codes = {f["properties"]["code"] for f in body["features"]}
    assert small and not codes & {b.code for b in small}


# ---------------------------------------------------------------- in PostgreSQL itself


def _as_worker(cursor, grid_id):
    cursor.execute("SELECT set_config('role', 'onemap_grid', true), set_config('onemap.grid_id', %s, true)",
                   [str(grid_id)])


def test_raw_sql_in_a_grid_workers_context_reads_only_that_grid(database_url, own_grid, other_grid):
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        _as_worker(cursor, own_grid.id)
        for table in ("buildings", "incidents", "cameras", "parking_spots", "care_subjects"):
            cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE grid_id <> %s) FROM {table}", [own_grid.id])
            total, foreign = cursor.fetchone()
            assert total > 0 and foreign == 0, table
        cursor.execute("SELECT count(*) FROM care_subject_private")
        assert cursor.fetchone()[0] == m.CareSubject.objects.filter(grid=own_grid).count()
        cursor.execute("SELECT count(*) FROM grids")
        assert cursor.fetchone()[0] == 1
        cursor.execute("UPDATE incidents SET status = 'closed' WHERE grid_id = %s", [other_grid.id])
        assert cursor.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cursor.execute("SELECT * FROM access_log")
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT set_config('role', 'onemap_grid', true)")  # the grid setting forgotten
        with pytest.raises(psycopg.Error):
            cursor.execute("SELECT count(*) FROM buildings")


def test_raw_sql_cannot_plant_a_row_in_another_grid(database_url, own_grid, other_grid):
    inside = other_grid.geom.point_on_surface
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        _as_worker(cursor, own_grid.id)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # row-level security refuses it
            cursor.execute(
                "INSERT INTO incidents (code, category, source, severity, status, title, description, notes, "
                "reported_at, evidence, grid_id, geom, synthetic, created_at, updated_at) VALUES "
                "('X-1', 'sanitation', 'staff', 2, 'new', '', '', '', now(), '{}', %s, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 4326), false, now(), now())",
                [own_grid.id, inside.x, inside.y],  # claims the own grid, lies in the other
            )


def test_analysts_cannot_read_personal_tables_even_in_sql(database_url):
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT set_config('role', 'onemap_analyst', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cursor.execute("SELECT sealed FROM care_subject_private")


@pytest.mark.parametrize("role", ["onemap_analyst", "onemap_staff", "onemap_public"])
def test_the_spatial_index_serves_bbox_queries_under_the_policies(database_url, role):
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # the demo is small; ask whether the index is usable at all
        cursor.execute("SELECT set_config('role', %s, true)", [role])
        cursor.execute(
            "EXPLAIN SELECT id FROM ogc_buildings t WHERE ST_Intersects(t.geom, "
            "ST_MakeEnvelope(113.65, 34.75, 113.651, 34.751, 4326))"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "buildings_geom" in plan and "Index" in plan, plan


def test_grid_worker_plan_uses_an_index_not_a_scan(database_url, own_grid):
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        _as_worker(cursor, own_grid.id)
        cursor.execute(
            "EXPLAIN SELECT id FROM ogc_buildings t WHERE ST_Intersects(t.geom, "
            "ST_MakeEnvelope(113.65, 34.75, 113.651, 34.751, 4326))"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index" in plan and "Seq Scan on buildings" not in plan, plan


def test_ogc_responses_carry_security_headers(live_server, worker):
    response = _get(f"{live_server}/ogc/collections/buildings/items", worker.auth, limit=1)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "no-store" in response.headers["Cache-Control"]


def test_wrong_tokens_are_refused_and_then_rate_limited(live_server):
    from gis.accounts.services import token_create, user_create

    user_create(username="test_guesser", role="analyst")
    _, token = token_create(username="test_guesser", name="never used before the block")
    url = f"{live_server}/ogc/collections/buildings/items"
    try:
        statuses = [_get(url, ("test_guesser", f"om_wrong{i}")).status_code for i in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[-1] == 429
        blocked = _get(url, ("test_guesser", token))  # right token, but too many failures
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    finally:
        m.LoginFailure.objects.all().delete()  # the other tests come from the same address
    assert _get(url, ("test_guesser", token)).status_code == 200


# ---------------------------------------------------------------- the one-round-trip reader


def test_scoped_reads_are_prepared_once_and_fall_back_when_they_cannot_be(demo_db, accounts):
    from api.auth import Identity
    from layers import access

    worker = Identity(role="grid_worker", username="x", grid_id=m.Grid.objects.get(code=accounts["worker"].grid_code).id)
    statement = "SELECT count(*), current_user, %s::int FROM buildings"
    first = access.scoped_fetchone(worker, statement, [7])
    again = access.scoped_fetchone(worker, statement, [8])
    in_grid = m.Building.objects.filter(grid_id=worker.grid_id).count()
    assert first == (in_grid, "onemap_grid", 7) and again == (in_grid, "onemap_grid", 8)
    assert any(statement in names for names in access._PREPARED.values())
    # unknown + unknown cannot be prepared (no operator is unique); it runs with its literals instead
    assert access.scoped_fetchone(worker, "SELECT %s + %s", [1, 2]) == (3,)
    assert "SELECT %s + %s" in access._INLINE
    with pytest.raises(psycopg.errors.DivisionByZero):
        access.scoped_fetchone(worker, "SELECT 1 / %s::int", [0])
    assert access.scoped_fetchone(worker, statement, [9]) == (in_grid, "onemap_grid", 9)  # the pool is fine


def test_a_read_asked_for_with_its_generic_plan_runs_with_it_and_nothing_else_does(demo_db, accounts):
    """Pages without a bbox or time range and single items skip re-planning (layers.features._plan_independent)."""
    from api.auth import Identity
    from layers import access
    from layers.catalogue import layer
    from layers.features import _plan_independent, parse_query

    worker = Identity(role="grid_worker", username="x", grid_id=m.Grid.objects.get(code=accounts["worker"].grid_code).id)
    statement = "SELECT current_setting('plan_cache_mode'), count(*) FROM buildings WHERE id > %s"
    assert access.scoped_fetchone(worker, statement, [0], generic_plan=True)[0] == "force_generic_plan"
    assert access.scoped_fetchone(worker, statement, [0])[0] == "auto"  # SET LOCAL: it ends with its transaction
    buildings = layer("buildings")
    for params, generic in (({"limit": "100"}, True), ({"filter": "floors=5"}, True), ({"floors": "5"}, True),
                            ({"bbox": "113.64,34.745,113.68,34.77"}, False)):
        assert _plan_independent(parse_query(params, layer=buildings, role="grid_worker")) is generic, params


def test_html_pages_hold_only_the_workers_grid_and_personal_reads_are_logged(live_server, worker, own_grid, other_grid):
    page = _get(f"{live_server}/ogc/collections/buildings/items", worker.auth, f="html", limit=500)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    own_codes = set(m.Building.objects.filter(grid=own_grid).values_list("code", flat=True))
    other_codes = set(m.Building.objects.filter(grid=other_grid).values_list("code", flat=True))
    assert any(code in page.text for code in own_codes)
    assert not any(code in page.text for code in other_codes)
    logged = m.AccessLogEntry.objects.filter(username=worker.username, route="/ogc/collections/care_subjects/items",
                                             remote_addr="127.0.0.1")
    before = logged.exclude(record_id=None).count()
    people = _get(f"{live_server}/ogc/collections/care_subjects/items", worker.auth, f="html", limit=3)
    assert people.status_code == 200
    assert logged.exclude(record_id=None).count() == before + 3


def test_html_pages_filter_with_cql2_too(live_server, worker, own_grid):
    tall = m.Building.objects.filter(grid=own_grid).order_by("-floors").first()
    page = _get(f"{live_server}/ogc/collections/buildings/items", worker.auth, f="html",
                filter=f"floors >= {tall.floors}")
    assert page.status_code == 200, page.text
    assert tall.code in page.text
    short = m.Building.objects.filter(grid=own_grid, floors__lt=tall.floors).first()
    assert short is None or short.code not in page.text


def test_care_density_for_a_grid_worker_is_their_grid(live_server, worker, own_grid):
    body = _get(f"{live_server}/ogc/collections/care_density/items", worker.auth, limit=1000).json()
    assert body["features"] and {f["properties"]["grid_code"] for f in body["features"]} == {own_grid.code}


def test_a_scoped_read_on_a_connection_the_server_ended_is_asked_again_on_a_fresh_one(demo_db, accounts):
    """A pooled connection whose backend is gone (a restart, an administrator's pg_terminate_backend)."""
    from django.db import connection

    from api.auth import Identity
    from layers import access
    from layers.db import pool

    analyst = Identity(role="analyst", username="x")
    assert access.scoped_fetchone(analyst, "SELECT %s::int + 1", [1]) == (2,)
    with pool().connection() as conn:  # the pool's idle connections (one of them just answered)
        backend = conn.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    for value in range(5):  # whichever connection the pool hands out, the answer comes
        assert access.scoped_fetchone(analyst, "SELECT %s::int + 1", [value]) == (value + 1,)
    with pytest.raises(psycopg.errors.UndefinedTable) as raised:
        access.scoped_fetchone(analyst, "SELECT count(*) FROM no_such_table WHERE %s", [True])
    assert 'relation "no_such_table" does not exist' in str(raised.value)


def test_request_threads_keep_one_connection_each_and_replace_one_the_server_ended(demo_db, accounts):
    """host.asgi's request threads read on a connection of their own (layers.db.read_connection); others borrow."""
    import threading

    from django.db import connection

    from api.auth import Identity
    from layers import access, db

    analyst = Identity(role="analyst", username="x")
    seen: dict[str, list] = {}

    def reads(name: str, count: int) -> None:
        pids = seen.setdefault(name, [])
        for value in range(count):
            row = access.scoped_fetchone(analyst, "SELECT %s::int, pg_backend_pid()", [value])
            assert row[0] == value
            pids.append(row[1])

    def in_thread(name: str, count: int) -> None:
        thread = threading.Thread(target=reads, args=(name, count), name=name)
        thread.start()
        thread.join()

    keeping = [f"{db.KEEPING_THREADS}_{i}" for i in range(db.MAX_SIZE)]
    threads = [threading.Thread(target=reads, args=(name, 3), name=name) for name in keeping]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(seen[name]) == 3 for name in keeping)
    import gc

    gc.collect()
    assert db._kept_count == 0  # the threads ended: what they kept went back to the pool
    # a kept connection whose backend the server ended is replaced at the next read
    results: list = []
    ready, go = threading.Event(), threading.Event()

    def owner() -> None:
        results.append(access.scoped_fetchone(analyst, "SELECT pg_backend_pid()", [])[0])
        ready.set()
        go.wait(10)
        results.append(access.scoped_fetchone(analyst, "SELECT pg_backend_pid()", [])[0])

    holder = threading.Thread(target=owner, name=f"{db.KEEPING_THREADS}_owner")
    holder.start()
    assert ready.wait(10)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [results[0]])
    assert db._kept_count == 1
    go.set()
    holder.join()
    assert len(results) == 2 and results[1] != results[0]
    in_thread("some-other-thread", 2)  # borrows and gives back: nothing kept for it
    assert len(seen["some-other-thread"]) == 2
