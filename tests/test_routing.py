"""recommend_workers: walking metres over the streets agree with a brute-force shortest path; the ranking rules hold.

The brute force is networkx over the same ``streets`` rows (directed: cost one way,
reverse_cost the other, negative skipped). Each place is put on its nearest open
street exactly as the SQL does (the planar fraction of ``ST_LineLocatePoint``, the
geodesic leg to the street), splitting that street at the places on it.
"""

from __future__ import annotations

import math
from datetime import timedelta
from itertools import pairwise

import networkx as nx
import numpy as np
import pytest
from django.contrib.gis import geos
from django.db import connection
from pyproj import Geod
from shapely import wkb
from shapely.geometry import Point
from test_cli import onemap  # the command in a subprocess, as test_cli runs it

from data.demo import DEMO_AS_OF
from gis import models as m
from gis.spatial.routing import KNN_CANDIDATES, recommend_workers
from gis.spatial.selectors import grid_for_point

GEOD = Geod(ellps="WGS84")
TOLERANCE_M = 1.0
STALE_AFTER = timedelta(minutes=10)


# -- the brute force ---------------------------------------------------------------------------


class BruteForce:
    """Shortest walks over the streets as read now, by networkx."""

    def __init__(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, source, target, cost, reverse_cost, ST_AsBinary(geom) FROM streets")
            self.edges = [(i, s, t, c, r, wkb.loads(bytes(g))) for i, s, t, c, r, g in cursor.fetchall()]
        self.open_edges = [e for e in self.edges if e[3] >= 0 or e[4] >= 0]
        self.ends = {e[0]: (e[1], e[2]) for e in self.edges}

    def snap(self, lon: float, lat: float) -> tuple[int, float, float]:
        """(edge id, fraction, metres to the street) of the nearest open street."""
        point = Point(lon, lat)
        best = None
        for edge_id, _, _, _, _, line in self.open_edges:
            fraction = line.project(point, normalized=True)
            on_line = line.interpolate(fraction, normalized=True)
            metres = GEOD.inv(lon, lat, on_line.x, on_line.y)[2]
            if best is None or (metres, edge_id) < (best[2], best[0]):
                best = (edge_id, fraction, metres)
        return best

    def walks(self, start: tuple[float, float], ends: dict[int, tuple[float, float]]) -> dict[int, float]:
        """Walking metres from ``start`` to each end that can be reached (street legs included)."""
        places = {"start": self.snap(*start), **{key: self.snap(*end) for key, end in ends.items()}}
        graph = self._graph(places)
        lengths = nx.single_source_dijkstra_path_length(graph, self._node(places["start"]), weight="w")
        found = {}
        for key in ends:
            node = self._node(places[key])
            if node in lengths:
                found[key] = places["start"][2] + lengths[node] + places[key][2]
        return found

    def _node(self, snap):
        """A place at a street's end is that vertex (the SQL's rule); any other is a point on the street."""
        edge_id, fraction, _ = snap
        if fraction <= 0:
            return self.ends[edge_id][0]
        return self.ends[edge_id][1] if fraction >= 1 else ("p", edge_id, fraction)

    def _graph(self, places) -> nx.DiGraph:
        on_edge: dict[int, set[float]] = {}
        for edge_id, fraction, _ in places.values():
            on_edge.setdefault(edge_id, set()).add(fraction)
        graph = nx.DiGraph()

        def add(a, b, w):
            if w >= 0 and (not graph.has_edge(a, b) or graph[a][b]["w"] > w):
                graph.add_edge(a, b, w=w)

        for edge_id, source, target, cost, reverse_cost, _ in self.edges:
            inner = sorted(f for f in on_edge.get(edge_id, ()) if 0 < f < 1)
            stops = [(0.0, source), *[(f, ("p", edge_id, f)) for f in inner], (1.0, target)]
            for (f0, a), (f1, b) in pairwise(stops):
                if cost >= 0:
                    add(a, b, cost * (f1 - f0))
                if reverse_cost >= 0:
                    add(b, a, reverse_cost * (f1 - f0))
        return graph


def _expected_candidates(lon, lat, now, k=KNN_CANDIDATES):
    """(fresh, unknown) on-duty workers the rule puts in scope: of each, the k nearest in degrees (no position last)."""
    home = grid_for_point(lon=lon, lat=lat)
    grid = m.Grid.objects.get(pk=home.level3.id)
    shape = wkb.loads(bytes(grid.geom.wkb))
    scope = [
        g.id for g in m.Grid.objects.filter(level=3, parent_id=grid.parent_id)
        if wkb.loads(bytes(g.geom.wkb)).intersects(shape)
    ]
    fresh, unknown = [], []
    for w in m.GridWorker.objects.filter(on_duty=True, grid_id__in=scope):
        where = w.last_position
        degrees = math.hypot(where.x - lon, where.y - lat) if where is not None else math.inf
        known = where is not None and w.last_seen_at is not None and now - w.last_seen_at <= STALE_AFTER
        (fresh if known else unknown).append((degrees, w.id, w))
    return [[w for _, _, w in sorted(group, key=lambda t: t[:2])[:k]] for group in (fresh, unknown)]


def _random_points(n: int, seed: int) -> list[tuple[float, float]]:
    level1 = wkb.loads(bytes(m.Grid.objects.get(level=1).geom.wkb))
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = level1.bounds
    points = []
    while len(points) < n:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if level1.contains(Point(x, y)):
            points.append((x, y))
    return points


def _one_way_streets(seed: int) -> None:
    """Make some streets one-way (either way) and close a few, inside the test's transaction."""
    ids = list(m.Street.objects.order_by("id").values_list("id", flat=True))
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, len(ids), p=[0.4, 0.25, 0.25, 0.1])
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE streets s SET cost = CASE WHEN k.kind IN (2, 3) THEN -1 ELSE s.cost END,
                                    reverse_cost = CASE WHEN k.kind IN (1, 3) THEN -1 ELSE s.reverse_cost END
               FROM unnest(%s::bigint[], %s::int[]) AS k(id, kind) WHERE s.id = k.id""",
            [ids, [int(k) for k in kind]],
        )


# -- (1) correctness against the brute force ---------------------------------------------------


@pytest.mark.parametrize("one_way", [False, True], ids=["two-way", "one-way-and-closed"])
def test_walking_metres_and_ranking_match_a_brute_force(rollback, one_way):
    if one_way:
        _one_way_streets(seed=11)
    brute = BruteForce()
    unreachable = 0
    for lon, lat in _random_points(200, seed=5):
        got = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF, limit=100)
        assert got.routed
        fresh, unknown = _expected_candidates(lon, lat, DEMO_AS_OF)
        assert {c.worker_id for c in got.candidates} == {w.id for w in fresh + unknown}
        ends = {w.id: (w.last_position.x, w.last_position.y) for w in fresh + unknown if w.last_position}
        walks = brute.walks((lon, lat), ends)
        for c in got.candidates:
            if c.worker_id in walks:
                assert c.walk_m == pytest.approx(walks[c.worker_id], abs=TOLERANCE_M), (lon, lat, c.code)
            else:
                assert c.walk_m is None and c.reachable is False, (lon, lat, c.code)
        unreachable += sum(1 for c in got.candidates if c.position_known and c.reachable is False)
        # fresh and reachable first, by walking metres; then fresh but unreachable; then unknown
        fresh_ids = {w.id for w in fresh}
        tiers = [0 if c.worker_id in fresh_ids and c.worker_id in walks else 1 if c.worker_id in fresh_ids else 2
                 for c in got.candidates]
        assert tiers == sorted(tiers)
        reachable = [walks[c.worker_id] for c, tier in zip(got.candidates, tiers) if tier == 0]
        assert all(a <= b + TOLERANCE_M for a, b in pairwise(reachable))
        if tiers and tiers[0] == 0:
            assert walks[got.candidates[0].worker_id] == pytest.approx(min(reachable), abs=TOLERANCE_M)
            assert got.recommended == got.candidates[0]
    if one_way:  # the closures do cut some workers off, so that branch was checked too
        assert unreachable > 0


def test_the_demo_has_fresh_on_duty_positions_in_every_grid(demo_db):
    for grid in m.Grid.objects.filter(level=3):
        fresh = m.GridWorker.objects.filter(
            grid=grid, on_duty=True, last_position__isnull=False, last_seen_at__gte=DEMO_AS_OF - STALE_AFTER
        )
        assert fresh.exists(), grid.code


# -- (2) a barrier: nearest in a straight line, far by street ----------------------------------

# Two parallel streets 40 m apart (a railway between them), joined only 300 m up: A-B, B-C, C-D.
BASE = (113.70, 34.76)  # ~2.5 km east of the demo, so no demo street is nearer
M_LON = 1 / (111_320 * math.cos(math.radians(BASE[1])))
M_LAT = 1 / 110_574


def _at(x: float, y: float) -> tuple[float, float]:
    return (BASE[0] + x * M_LON, BASE[1] + y * M_LAT)


@pytest.fixture
def railway(rollback):
    """The two streets and a grid to put test workers in (every other worker of that grid is off duty)."""
    corners = {"A": (0, 0), "B": (0, 300), "C": (40, 300), "D": (40, 0)}
    nodes = {k: m.StreetNode.objects.create(code=f"TEST-RW-{k}", geom=geos.Point(*_at(*xy), srid=4326))
             for k, xy in corners.items()}
    for a, b in ("AB", "BC", "CD"):
        length = math.dist(corners[a], corners[b])
        m.Street.objects.create(
            code=f"TEST-RW-{a}{b}", name="test", source=nodes[a], target=nodes[b], length_m=length, cost=length,
            reverse_cost=length, geom=geos.LineString(_at(*corners[a]), _at(*corners[b]), srid=4326),
        )
    grid = m.Grid.objects.filter(level=3).order_by("code").first()
    m.GridWorker.objects.filter(grid=grid).update(on_duty=False)
    return grid


def _worker(grid, code: str, xy: tuple[float, float] | None, *, age=timedelta(minutes=1), on_duty=True):
    position = geos.Point(*_at(*xy), srid=4326) if xy is not None else None
    return m.GridWorker.objects.create(code=code, name=code, grid=grid, on_duty=on_duty, last_position=position,
                                       last_seen_at=DEMO_AS_OF - age if xy is not None else None)


def test_the_nearest_in_a_straight_line_is_not_first_when_far_by_street(railway):
    across = _worker(railway, "TEST-ACROSS", (45, 20))  # 48 m away, but ~600 m round by the far end
    along = _worker(railway, "TEST-ALONG", (-4, 230))  # 210 m away, on the same street
    lon, lat = _at(-3, 20)
    got = recommend_workers(lon=lon, lat=lat, grid_id=railway.id, now=DEMO_AS_OF)
    first, second = got.candidates[:2]
    assert (first.worker_id, second.worker_id) == (along.id, across.id)
    assert first.straight_m > second.straight_m
    assert first.walk_m == pytest.approx(3 + 210 + 4, abs=TOLERANCE_M)
    assert second.walk_m == pytest.approx(3 + 280 + 40 + 280 + 5, abs=TOLERANCE_M)
    record = got.as_json()
    assert record["recommended"] == along.id
    assert "by street" in record["candidates"][0]["why"] and "min on foot" in record["candidates"][0]["why"]


def test_routes_stay_within_the_search_margin(railway):
    """The streets read are those near the places: a detour farther out than the margin is not found."""
    across = _worker(railway, "TEST-ACROSS", (45, 20))
    lon, lat = _at(-3, 20)
    wide = recommend_workers(lon=lon, lat=lat, grid_id=railway.id, now=DEMO_AS_OF, search_margin_m=300)
    assert wide.candidates[0].worker_id == across.id and wide.candidates[0].reachable
    narrow = recommend_workers(lon=lon, lat=lat, grid_id=railway.id, now=DEMO_AS_OF, search_margin_m=200)
    assert narrow.candidates[0].reachable is False and "search margin" in narrow.candidates[0].reason


def test_the_knn_prefilter_keeps_the_nearest_fresh_positions(demo_db):
    for lon, lat in _random_points(20, seed=21):
        got = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF, knn=3, limit=100)
        fresh, unknown = _expected_candidates(lon, lat, DEMO_AS_OF, k=3)
        assert {c.worker_id for c in got.candidates if c.position_known} == {w.id for w in fresh}
        assert {c.worker_id for c in got.candidates if not c.position_known} == {w.id for w in unknown}


def test_a_worker_on_another_street_network_is_unreachable_and_last(railway):
    near = _worker(railway, "TEST-NEAR", (-2, 100))
    demo_street = m.Street.objects.exclude(code__startswith="TEST-").order_by("code").first()
    cut_off = m.GridWorker.objects.create(
        code="TEST-CUT-OFF", name="x", grid=railway, on_duty=True, last_seen_at=DEMO_AS_OF,
        last_position=demo_street.geom.interpolate_normalized(0.5),
    )
    lon, lat = _at(-3, 20)
    got = recommend_workers(lon=lon, lat=lat, grid_id=railway.id, now=DEMO_AS_OF)
    assert [c.worker_id for c in got.candidates] == [near.id, cut_off.id]
    last = got.candidates[-1]
    assert last.reachable is False and last.walk_m is None and "not reachable" in last.reason
    assert last.position_known


def test_workers_at_the_same_node_and_at_the_incident(railway):
    at_b1 = _worker(railway, "TEST-B1", (0, 300))
    at_b2 = _worker(railway, "TEST-B2", (0, 300))
    at_a = _worker(railway, "TEST-A", (0, 0))
    on_c = _worker(railway, "TEST-C", (40, 300))
    lon, lat = _at(0, 0)  # exactly at the street's end: routed from the vertex itself
    got = recommend_workers(lon=lon, lat=lat, grid_id=railway.id, now=DEMO_AS_OF)
    walks = {c.worker_id: c.walk_m for c in got.candidates}
    assert walks[at_a.id] == pytest.approx(0, abs=0.01)
    assert walks[at_b1.id] == walks[at_b2.id] == pytest.approx(300, abs=TOLERANCE_M)
    assert walks[on_c.id] == pytest.approx(340, abs=TOLERANCE_M)
    assert [c.worker_id for c in got.candidates] == [at_a.id, at_b1.id, at_b2.id, on_c.id]


def test_a_place_far_from_every_street_is_ranked_by_straight_line(railway):
    near = _worker(railway, "TEST-NEAR", (0, 100))
    far = _worker(railway, "TEST-FAR", (0, 290))
    lon, lat = _at(-900, 150)  # 900 m west of the nearest street
    got = recommend_workers(lon=lon, lat=lat, grid_id=railway.id, now=DEMO_AS_OF)
    assert not got.routed and "not routed" in got.note
    assert [c.worker_id for c in got.candidates] == [near.id, far.id]
    assert all(c.walk_m is None and c.reachable is None for c in got.candidates)
    assert got.recommended.worker_id == near.id


# -- (3) stale positions, (4) off duty ---------------------------------------------------------


def test_stale_and_missing_positions_rank_after_every_known_one(rollback):
    lon, lat = _random_points(1, seed=9)[0]
    before = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF, limit=100)
    best, second = before.candidates[:2]
    m.GridWorker.objects.filter(pk=best.worker_id).update(last_seen_at=DEMO_AS_OF - timedelta(minutes=30))
    m.GridWorker.objects.filter(pk=second.worker_id).update(last_position=None, last_seen_at=None)
    after = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF, limit=100)
    known = [c.position_known for c in after.candidates]
    assert known == sorted(known, reverse=True)
    stale = next(c for c in after.candidates if c.worker_id == best.worker_id)
    missing = next(c for c in after.candidates if c.worker_id == second.worker_id)
    assert not stale.position_known and "30 min old" in stale.reason
    assert not missing.position_known and missing.reason == "position unknown: no position reported"
    assert after.candidates.index(missing) == len(after.candidates) - 1  # no position at all: last
    assert after.recommended.worker_id not in (best.worker_id, second.worker_id)
    record = after.as_json()["candidates"]
    assert record[-1]["position_age_s"] is None and record[-1]["walk_m"] is None


def test_a_position_just_inside_the_window_is_known(rollback):
    lon, lat = _random_points(1, seed=9)[0]
    best = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF).candidates[0]
    m.GridWorker.objects.filter(pk=best.worker_id).update(last_seen_at=DEMO_AS_OF - STALE_AFTER)
    again = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF).candidates[0]
    assert again.worker_id == best.worker_id and again.position_known
    m.GridWorker.objects.filter(pk=best.worker_id).update(last_seen_at=DEMO_AS_OF + timedelta(seconds=30))
    ahead = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF).candidates[0]  # a clock slightly ahead
    assert ahead.worker_id == best.worker_id and ahead.position_age == timedelta(0)


def test_off_duty_workers_are_never_recommended(rollback):
    for lon, lat in _random_points(5, seed=13):
        best = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF).candidates[0]
        m.GridWorker.objects.filter(pk=best.worker_id).update(on_duty=False)
        again = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF, limit=100)
        assert best.worker_id not in {c.worker_id for c in again.candidates}
        on_duty = set(m.GridWorker.objects.filter(on_duty=True).values_list("id", flat=True))
        assert {c.worker_id for c in again.candidates} <= on_duty


def test_grid_id_restricts_the_scope(rollback):
    lon, lat = _random_points(1, seed=17)[0]
    community = m.Grid.objects.filter(level=2).exclude(pk=grid_for_point(lon=lon, lat=lat).level2.id).first()
    got = recommend_workers(lon=lon, lat=lat, grid_id=community.id, now=DEMO_AS_OF, limit=100)
    assert set(got.scope) == {community.code, *community.children.values_list("code", flat=True)}
    assert got.candidates and {c.grid_code for c in got.candidates} <= set(got.scope)
    assert got.rule == "the given grid and every grid under it"


@pytest.mark.parametrize("kwargs", [{"lon": 200, "lat": 34.7}, {"lon": 113.6, "lat": float("nan")},
                                    {"lon": 113.6, "lat": 34.7, "limit": 0},
                                    {"lon": 113.6, "lat": 34.7, "now": DEMO_AS_OF.replace(tzinfo=None)}])
def test_bad_arguments_are_refused(demo_db, kwargs):
    with pytest.raises(ValueError):
        recommend_workers(**kwargs)


# -- (5) the command ---------------------------------------------------------------------------


def test_worker_position_command_moves_a_worker(rollback, capsys):
    from host.cli import main

    worker = m.GridWorker.objects.filter(on_duty=True, grid__level=3).order_by("code").first()
    lon, lat = worker.grid.geom.point_on_surface.coords
    assert main(["worker-position", worker.code, str(lon), str(lat), "--at", "2026-11-20T12:05:00"]) == 0
    assert f"{worker.code} {worker.name} ({worker.grid.code})" in capsys.readouterr().out
    worker.refresh_from_db()
    assert worker.last_position.coords == pytest.approx((lon, lat))
    assert worker.last_seen_at == DEMO_AS_OF + timedelta(minutes=5)  # no offset: Asia/Shanghai time
    got = recommend_workers(lon=lon, lat=lat, now=DEMO_AS_OF + timedelta(minutes=5))
    assert got.candidates[0].worker_id == worker.id and got.candidates[0].walk_m < 200


def test_worker_position_by_username_and_off_duty_note(rollback, accounts, capsys):
    from django.contrib.auth import get_user_model

    from host.cli import main

    worker = m.GridWorker.objects.filter(on_duty=False).order_by("code").first()
    worker.user = get_user_model().objects.get(username=accounts["worker"].username)
    worker.save()
    assert main(["worker-position", accounts["worker"].username, "113.66", "34.757"]) == 0
    out = capsys.readouterr().out
    assert worker.code in out and "off duty" in out
    worker.refresh_from_db()
    assert worker.last_position.coords == pytest.approx((113.66, 34.757))


@pytest.mark.parametrize("args, message", [
    (["GW-001", "east", "34.7"], "LON must be a number"),
    (["GW-001", "113.6", "95"], "latitude must be from -90 to 90"),
    (["GW-001", "113.6", "nan"], "LAT must be a finite number"),
    (["GW-NOBODY", "113.6", "34.7"], "no grid worker with the code or username 'GW-NOBODY'"),
    (["GW-001", "113.6", "34.7", "--at", "yesterday"], "--at must be an ISO 8601 time"),
    (["GW-001", "113.6", "34.7", "--at", "2026-01-01T00:00:00+08:00"], "already has a newer position"),
    (["GW-001", "113.6", "34.7", "--at", "2099-01-01T00:00:00+08:00"], "is in the future"),
])
def test_worker_position_command_refuses_bad_input(demo_db, database_url, args, message):
    before = m.GridWorker.objects.get(code="GW-001")
    result = onemap("worker-position", *args, database_url=database_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    after = m.GridWorker.objects.get(code="GW-001")
    assert (after.last_position, after.last_seen_at) == (before.last_position, before.last_seen_at)


def test_worker_position_service_checks_its_values(rollback):
    from gis.services import ServiceError
    from gis.spatial.services import worker_position_set

    worker = m.GridWorker.objects.order_by("code").first()
    for lon, lat in ((181, 0), (0, -91), (True, 0), ("1", 0), (float("inf"), 0)):
        with pytest.raises(ServiceError):
            worker_position_set(worker_id=worker.id, lon=lon, lat=lat)
    with pytest.raises(ServiceError, match="no time zone"):
        worker_position_set(worker_id=worker.id, lon=113.6, lat=34.7, at=DEMO_AS_OF.replace(tzinfo=None))
    with pytest.raises(ServiceError, match="no grid worker"):
        worker_position_set(worker_id=-1, lon=113.6, lat=34.7)
