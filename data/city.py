"""The ``city`` scale: a Zhengzhou-sized synthetic data set for benchmarks.

``load_city`` replaces every synthetic row of the feature tables with a city of
about 2,100 level-3 grids, 200,000 buildings, 20,000 cameras, 100,000 people
under care and 1,000,000 incidents over one year, on a 15 × 13 km area centred
on Zhengzhou. Rows are made with numpy in bulk and streamed to PostgreSQL with
COPY; the same seed gives the same rows and the same checksum.

Geometry is planned in EPSG:4547 metres on one jittered vertex lattice whose
vertices are transformed to EPSG:4326 once, so neighbouring grids share
bit-identical edges and every parent is exactly the union of its children.
Everything else sits in the *inner rectangle* of its level-3 cell, which the
jitter of the cell's corners can never reach, so it lies in its grid by
construction. Every row is ``synthetic``; names and phone numbers are made up
(phones start with ``100`` or ``0371-0``, which no real number does).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Callable, Iterable, Iterator

import numpy as np

from core.vocabulary import SOURCES, STATUS_CODES
from data import reset
from data.summary import LoadSummary

log = logging.getLogger(__name__)

DEFAULT_SEED = 20261126
CENTRE_LON, CENTRE_LAT = 113.65, 34.75
METRIC_SRID = 4547  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
CITY_PREFIX = "410100"  # grid codes: 6-digit division + 3 digits per level (GB/T 30428 style)

_BEIJING = timezone(timedelta(hours=8))
# the incident year ends at a fixed instant so that a seed always gives the same rows
YEAR_END = int(datetime(2026, 11, 1, tzinfo=_BEIJING).timestamp())
YEAR_START = YEAR_END - 365 * 86400
_REFERENCE_DAY = np.datetime64("2026-11-01")  # ages and age bands hold on this day

# the full city (factor 1.0); every count scales linearly with the factor
_FULL = {
    "buildings": 200_000,
    "cameras": 20_000,
    "parking_spots": 8_000,
    "no_parking_zones": 3_000,
    "care_subjects": 100_000,
    "incidents": 1_000_000,
    "service_points": 12_000,
}
_FULL_COLUMNS, _FULL_ROWS = 50, 42  # level-3 cells: 50 × 42 = 2,100
CELL_W, CELL_H = 300.0, 310.0  # metres; 50 × 300 m by 42 × 310 m ≈ 15 × 13 km

# cell layout, metres
_JITTER = 24.0  # each lattice vertex moves at most this far in x and in y
_MARGIN = _JITTER + 6.0  # inner rectangle: out of reach of the jittered edges, off the street
_PARK_DEPTH = 5.3  # parking strip along the inner rectangle's south side
_PARK_PITCH = 2.6
_FIRE_STRIP = (6.0, 0.5)  # fire-lane strip: from 6 m to 0.5 m below the inner rectangle's north side
_ZONE_SLOTS = 6  # no-parking zone slots along the fire-lane strip
_BUILD_INSET = 8.0  # building area starts 8 m inside the inner rectangle (north and south)
_SLOT_GAP = 1.0  # a building keeps this distance from its slot's edges, so none touch

_INCIDENT_CHUNK = 100_000
_BUILDING_CHUNK = 50_000


class CityLoadRefused(RuntimeError):
    """The database holds rows that are not synthetic; the city load would destroy them."""


@dataclass(frozen=True)
class CitySize:
    """How many of each thing a city of a given ``factor`` holds (1.0: the full city)."""

    factor: float
    columns: int  # level-3 cells west → east
    rows: int  # level-3 cells south → north
    buildings: int
    cameras: int
    parking_spots: int
    no_parking_zones: int
    care_subjects: int
    incidents: int
    service_points: int

    @classmethod
    def for_factor(cls, factor: float = 1.0) -> "CitySize":
        if not 0 < factor <= 10:
            raise ValueError(f"factor must be in (0, 10], got {factor}")
        side = math.sqrt(factor)
        counts = {name: max(1, round(full * factor)) for name, full in _FULL.items()}
        return cls(
            factor=factor,
            columns=max(6, round(_FULL_COLUMNS * side)),
            rows=max(4, round(_FULL_ROWS * side)),
            **counts,
        )

    @property
    def grids_level3(self) -> int:
        return self.columns * self.rows


def load_city(
    *, seed: int = DEFAULT_SEED, progress: bool = False, factor: float = 1.0, using: str = "default"
) -> LoadSummary:
    """Replace the synthetic feature tables of database ``using`` with a generated city; return what was loaded.

    All or nothing, in one transaction. ``factor`` scales every count (0.01 makes a small city
    for tests). ``seconds`` in the summary covers, per table, generating its rows, COPY, and
    rebuilding its indexes and foreign keys and ANALYZE. Raises :class:`CityLoadRefused` when
    any feature table holds a row that is not synthetic.
    """
    from django.db import connections, transaction
    from django.utils import timezone as dj_timezone

    from gis.models import DataLoad

    size = CitySize.for_factor(factor)
    started_at = dj_timezone.now()
    started = time.perf_counter()
    summary = LoadSummary(scale="city", seed=seed)
    connection = connections[using]
    with transaction.atomic(using=using):
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            loader = _Loader(cursor, progress=progress)
            synthetic_tables = reset.synthetic_tables()
            loader.refuse_real_data(synthetic_tables)
            loader.truncate(sorted(set(_LOADED_TABLES + _EMPTIED_TABLES + synthetic_tables)))
            loader.drop_secondary_indexes_and_foreign_keys(_LOADED_TABLES)
            plan = _plan_city(size, seed)
            for table, columns, total, chunks in _table_rows(plan, seed):
                loader.load(table, columns, total, chunks)
            unbound = reset.restore_access_profiles(cursor)
            if unbound:
                log.warning("%s grid worker(s) lost their role: their grid is not in the city data", unbound)
            summary.counts = dict(loader.counts)
            summary.seconds = dict(loader.seconds)
            summary.checksum = loader.hasher.hexdigest()
        DataLoad.objects.using(using).create(
            kind="city",
            parameters={"seed": seed, "factor": factor, "columns": size.columns, "rows": size.rows},
            counts=summary.counts,
            checksum=summary.checksum,
            started_at=started_at,
        )
    summary.total_seconds = time.perf_counter() - started
    log.info("city loaded: %s rows in %.1f s", sum(summary.counts.values()), summary.total_seconds)
    return summary


@dataclass(frozen=True)
class IncidentSample:
    """Incident rows as the city load sends them, for benchmarks that compare ways of loading."""

    columns: tuple[str, ...]
    values: list[list[str]]  # one list per column, COPY text format ("\\N" is NULL)

    def copy_payload(self) -> bytes:
        return _copy_text(self.values)

    def rows(self) -> list[tuple[str | None, ...]]:
        """The same rows as parameter tuples (``None`` for NULL), for INSERT."""
        columns = [[None if v == _NULL else v for v in column] for column in self.values]
        return list(zip(*columns))


def incident_sample(*, seed: int = DEFAULT_SEED, rows: int = 20_000) -> IncidentSample:
    """``rows`` incidents of a small city (factor 0.01), made by the same generator as the full load."""
    plan = _plan_city(CitySize.for_factor(0.01), seed)
    values = _incident_chunk(plan, seed, 0, 0, rows)
    return IncidentSample(_INCIDENT_COLUMNS, values)


# -- the load: refuse, truncate, COPY, rebuild ---------------------------------------------------

# load order: every table after the tables its foreign keys point at
_LOADED_TABLES = [
    "grids", "street_nodes", "streets", "buildings", "care_subjects", "care_subject_private", "cameras",
    "sensors", "parking_spots", "no_parking_zones", "grid_workers", "party_orgs", "party_activities",
    "service_points", "incidents",
]
_EMPTIED_TABLES = ["sensor_events"]
# per-row announcements to the live feed (migration 0006), skipped while a table is bulk-copied
_ANNOUNCING_TRIGGERS = {"incidents": ("live_incidents_insert",)}
_NULL = "\\N"


class _Loader:
    """One transaction's worth of bulk loading on a raw psycopg cursor, timed per table."""

    def __init__(self, cursor, *, progress: bool):
        self.cursor = cursor
        self.progress = progress
        self.hasher = hashlib.sha256()
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self._indexes: dict[str, list[str]] = {}
        self._foreign_keys: dict[str, list[tuple[str, str, str]]] = {}

    def refuse_real_data(self, tables: list[str]) -> None:
        real = reset.tables_with_real_rows(self.cursor, tables)
        if real:
            raise CityLoadRefused(
                f"refusing to load the city: it replaces every row of the feature tables, but "
                f"{', '.join(real)} {'has' if len(real) == 1 else 'have'} rows that are not synthetic. "
                f"Load the city into a separate database instead: create one and point ONEMAP_DATABASE_URL "
                f"at it, e.g. ONEMAP_DATABASE_URL=postgresql://user@host:port/onemap_city onemap load-demo --scale city"
            )

    def truncate(self, tables: list[str]) -> None:
        reset.truncate(self.cursor, tables)

    def drop_secondary_indexes_and_foreign_keys(self, tables: list[str]) -> None:
        """Drop what COPY would otherwise maintain row by row; :meth:`load` rebuilds it per table."""
        from psycopg import sql

        for table, schema, name, definition in self.cursor.execute(_SECONDARY_INDEXES_SQL, [tables]).fetchall():
            self._indexes.setdefault(table, []).append(definition)
            self.cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
        for table, schema, name, definition in self.cursor.execute(_FOREIGN_KEYS_SQL, [tables, tables]).fetchall():
            self._foreign_keys.setdefault(table, []).append((schema, name, definition))
            self.cursor.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(schema, table), sql.Identifier(name))
            )

    @contextlib.contextmanager
    def _announcements_off(self, table: str):
        """No per-row live-feed trigger during a table's COPY: its truncation already told screens to reload.

        The trigger would keep every copied row for its transition table (a third slower on a
        million incidents). Disabled and enabled again inside the load's transaction.
        """
        from psycopg import sql

        triggers = _ANNOUNCING_TRIGGERS.get(table, ())
        for trigger in triggers:
            self.cursor.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
                sql.Identifier(table), sql.Identifier(trigger)))
        yield
        if triggers:  # ALTER TABLE refuses while checks of keys left in place (to auth_user) are queued
            self.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            self.cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for trigger in triggers:
            self.cursor.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(
                sql.Identifier(table), sql.Identifier(trigger)))

    def load(self, table: str, columns: tuple[str, ...], total: int, chunks: Iterable[list[list[str]]]) -> None:
        """COPY ``chunks`` into ``table``, then rebuild its indexes and foreign keys and ANALYZE it."""
        from psycopg import sql
        from psycopg.copy import QueuedLibpqWriter
        from tqdm import tqdm

        started = time.perf_counter()
        # a table with personal fields is hashed as generated (the same seed, the same sum) and stored sealed
        stored, seal = _SEALED_TABLES.get(table, (columns, None))
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, stored))
        )
        self.hasher.update(f"{table}({','.join(columns)})\n".encode())
        rows = 0
        with tqdm(total=total, desc=f"{table:<22}", unit=" rows", disable=not self.progress, leave=True) as bar:
            # a writer thread sends one chunk while numpy makes the next
            with (self._announcements_off(table),
                  self.cursor.copy(statement, writer=QueuedLibpqWriter(self.cursor)) as copy):
                for chunk in chunks:
                    payload = _copy_text(chunk)
                    self.hasher.update(payload)
                    copy.write(payload if seal is None else _copy_text(seal(chunk)))
                    rows += len(chunk[0])
                    bar.update(len(chunk[0]))
            copied = time.perf_counter()
            bar.set_postfix_str("indexes, keys, analyze")
            self._rebuild(table, has_id="id" in columns)
        if rows != total:
            raise RuntimeError(f"{table}: planned {total} rows, generated {rows}")
        self.counts[table] = rows
        self.seconds[table] = time.perf_counter() - started
        log.info(
            "%s: %d rows; generate + COPY %.2f s, indexes + keys + ANALYZE %.2f s",
            table, rows, copied - started, self.seconds[table] - (copied - started),
        )

    def _rebuild(self, table: str, *, has_id: bool) -> None:
        from psycopg import sql

        # keys left in place (e.g. to auth_user) queued checks, and CREATE INDEX refuses to run
        # with pending trigger events: run them now, as Django's check_constraints() does
        self.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self.cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for definition in self._indexes.pop(table, []):
            _replay_catalog_ddl_verbatim(self.cursor, sql.SQL(""), definition)
        for schema, name, definition in self._foreign_keys.pop(table, []):
            prefix = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                sql.Identifier(schema, table), sql.Identifier(name)
            )
            _replay_catalog_ddl_verbatim(self.cursor, prefix, definition)
        if has_id:  # ids were given explicitly; the identity continues after them
            restart = sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), coalesce(max(id), 0) + 1, false) FROM {}"
            )
            self.cursor.execute(restart.format(sql.Identifier(table)), [table])
        self.cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def _replay_catalog_ddl_verbatim(cursor, prefix, definition: str) -> None:
    """Run DDL text that PostgreSQL itself produced (pg_get_indexdef / pg_get_constraintdef) a moment ago."""
    from psycopg import sql

    cursor.execute(prefix + sql.SQL(definition))


_SECONDARY_INDEXES_SQL = """
SELECT t.relname, n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = ANY (%s::regclass[])
  AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY t.relname, c.relname
"""

# only keys between the loaded tables: dropping a key to e.g. auth_user would lock that table too
_FOREIGN_KEYS_SQL = """
SELECT t.relname, n.nspname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE k.contype = 'f' AND k.conrelid = ANY (%s::regclass[]) AND k.confrelid = ANY (%s::regclass[])
ORDER BY t.relname, k.conname
"""


def _copy_text(columns: list[list[str]]) -> bytes:
    """COPY text format. Generated values never hold a tab, newline or backslash (see ``_words``)."""
    return ("\n".join(map("\t".join, zip(*columns))) + "\n").encode()


# -- the plan: lattice, grids and the things later tables point at -------------------------------


@dataclass
class _Lattice:
    columns: int
    rows: int
    x0: float  # south-west corner of the unjittered lattice, EPSG:4547
    y0: float
    lon: np.ndarray  # (rows + 1, columns + 1) vertex longitudes, shared by every grid
    lat: np.ndarray
    x: np.ndarray  # the same vertices in metres
    y: np.ndarray

    def inner(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per cell (row-major from the south-west): the inner rectangle x0, y0, x1, y1 in metres."""
        j, i = np.divmod(np.arange(self.columns * self.rows), self.columns)
        x0 = self.x0 + i * CELL_W + _MARGIN
        y0 = self.y0 + j * CELL_H + _MARGIN
        return x0, y0, x0 + CELL_W - 2 * _MARGIN, y0 + CELL_H - 2 * _MARGIN


@dataclass
class _Grids:
    blocks1: list[tuple[int, int, int, int]]  # level-1 cell blocks i0, i1, j0, j1
    blocks2: list[tuple[int, int, int, int]]
    codes1: list[str]
    names1: list[str]
    codes2: list[str]
    names2: list[str]
    parent2: np.ndarray  # level-1 index of each level-2 grid
    cell_l2: np.ndarray  # level-2 index of each cell
    cell_code: list[str]
    cell_name: list[str]

    @property
    def id_base2(self) -> int:
        return len(self.codes1) + 1

    @property
    def id_base3(self) -> int:
        return len(self.codes1) + len(self.codes2) + 1


@dataclass
class _Buildings:
    cell: np.ndarray
    slot: np.ndarray  # (n, 4) slot rectangle x0, y0, x1, y1 (metres)
    box: np.ndarray  # (n, 4) footprint rectangle
    lon: np.ndarray  # footprint centre
    lat: np.ndarray
    floors: np.ndarray
    units: np.ndarray
    households: np.ndarray  # 0 for non-residential buildings
    residential: np.ndarray
    number: np.ndarray  # 1-based within its cell (the "N号楼")


@dataclass
class _Care:
    building: np.ndarray
    lives_alone: np.ndarray
    monitored: np.ndarray  # under home monitoring rather than an elder
    age_low: np.ndarray  # lower end of the five-year age band
    unit: np.ndarray
    floor: np.ndarray


@dataclass
class _Cameras:
    purpose: np.ndarray  # index into _PURPOSES
    cell: np.ndarray
    anchor: np.ndarray  # building whose slot the camera watches
    building: np.ndarray  # -1: none
    x: np.ndarray
    y: np.ndarray
    height: np.ndarray
    heading: np.ndarray
    subject: np.ndarray  # peephole cameras: the care subject at whose door it hangs (-1: none)


@dataclass
class _Sensors:
    subject: np.ndarray
    camera: np.ndarray  # -1: not a peephole camera
    door_magnets: int  # the first ``door_magnets`` sensors are door magnets


@dataclass
class _City:
    size: CitySize
    lattice: _Lattice
    grids: _Grids
    inner: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    density: np.ndarray  # per cell, relative
    buildings: _Buildings
    care: _Care
    cameras: _Cameras
    sensors: _Sensors


def _rng(seed: int, stream: int, chunk: int = 0) -> np.random.Generator:
    """An independent generator per table (and chunk), so chunking never changes the rows."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, chunk]))


def _plan_city(size: CitySize, seed: int) -> _City:
    lattice = _plan_lattice(size, _rng(seed, 1))
    grids = _plan_grids(size, _rng(seed, 2))
    inner = lattice.inner()
    density = _cell_density(size, _rng(seed, 3))
    buildings = _plan_buildings(size, inner, density, _slot_layout(size), _rng(seed, 4))
    care = _plan_care(size, buildings, _rng(seed, 5))
    cameras = _plan_cameras(size, inner, buildings, care, _rng(seed, 6))
    sensors = _plan_sensors(care, cameras)
    return _City(size, lattice, grids, inner, density, buildings, care, cameras, sensors)


def _plan_lattice(size: CitySize, rng: np.random.Generator) -> _Lattice:
    cx, cy = _to_metres(np.array([CENTRE_LON]), np.array([CENTRE_LAT]))
    x0 = float(cx[0]) - size.columns * CELL_W / 2
    y0 = float(cy[0]) - size.rows * CELL_H / 2
    jj, ii = np.mgrid[0 : size.rows + 1, 0 : size.columns + 1]
    x = x0 + ii * CELL_W + rng.uniform(-_JITTER, _JITTER, ii.shape)
    y = y0 + jj * CELL_H + rng.uniform(-_JITTER, _JITTER, jj.shape)
    lon, lat = _to_lonlat(x, y)
    return _Lattice(size.columns, size.rows, x0, y0, lon, lat, x, y)


def _plan_grids(size: CitySize, rng: np.random.Generator) -> _Grids:
    """Subdistricts (level 1) of ~12 × 14 cells, communities (level 2) of ~4 × 4, one grid per cell."""
    cols1 = _split(size.columns, max(2, round(size.columns / 12.5)), rng)
    rows1 = _split(size.rows, max(1, round(size.rows / 14)), rng)
    blocks1, codes1, names1 = [], [], []
    blocks2, codes2, names2, parent2 = [], [], [], []
    cell_l2 = np.empty(size.grids_level3, dtype=np.int64)
    cell_code = [""] * size.grids_level3
    cell_name = [""] * size.grids_level3
    for bj in range(len(rows1) - 1):
        for bi in range(len(cols1) - 1):
            k = len(blocks1)
            i0, i1, j0, j1 = cols1[bi], cols1[bi + 1], rows1[bj], rows1[bj + 1]
            blocks1.append((i0, i1, j0, j1))
            codes1.append(f"{CITY_PREFIX}{k + 1:03d}")
            names1.append(_subdistrict_name(k))
            w, h = i1 - i0, j1 - j0
            parts_x, parts_y = max(1, round(w / 4)), max(1, round(h / 4))
            if parts_x * parts_y == 1:  # every subdistrict has at least two communities where it can
                parts_x, parts_y = (2, 1) if w >= 2 else (1, min(2, h))
            cols2 = i0 + _split(w, parts_x, rng)
            rows2 = j0 + _split(h, parts_y, rng)
            m = 0
            for cj in range(len(rows2) - 1):
                for ci in range(len(cols2) - 1):
                    m += 1
                    l2 = len(blocks2)
                    block = (cols2[ci], cols2[ci + 1], rows2[cj], rows2[cj + 1])
                    blocks2.append(block)
                    codes2.append(f"{codes1[k]}{m:03d}")
                    names2.append(f"{names1[k][:-2]}{_chinese_number(m)}社区")
                    parent2.append(k)
                    seq = 0
                    for j in range(block[2], block[3]):
                        for i in range(block[0], block[1]):
                            seq += 1
                            cell = j * size.columns + i
                            cell_l2[cell] = l2
                            cell_code[cell] = f"{codes2[-1]}{seq:03d}"
                            cell_name[cell] = f"{names2[-1]}第{seq}网格"
    return _Grids(
        blocks1=blocks1, blocks2=blocks2, codes1=codes1, names1=names1, codes2=codes2, names2=names2,
        parent2=np.array(parent2), cell_l2=cell_l2, cell_code=cell_code, cell_name=cell_name,
    )


def _split(n: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """Cut ``range(n)`` into ``parts`` bands of unequal but similar width, each at least one wide."""
    parts = max(1, min(parts, n))
    cuts = np.round(np.linspace(0, n, parts + 1) + np.r_[0, rng.uniform(-0.2, 0.2, parts - 1) * n / parts, 0])
    cuts = cuts.astype(np.int64)
    for k in range(1, parts):
        cuts[k] = max(cuts[k], cuts[k - 1] + 1)
    for k in range(parts - 1, 0, -1):
        cuts[k] = min(cuts[k], cuts[k + 1] - 1)
    return cuts


def _cell_density(size: CitySize, rng: np.random.Generator) -> np.ndarray:
    """Denser towards the centre, with some cells (parks, campuses) much emptier."""
    j, i = np.divmod(np.arange(size.grids_level3), size.columns)
    r = np.hypot((i + 0.5) / size.columns - 0.5, (j + 0.5) / size.rows - 0.5) / math.hypot(0.5, 0.5)
    return np.clip(1.3 - 0.8 * r, 0.3, None) * rng.uniform(0.7, 1.3, size.grids_level3)


def _slot_layout(size: CitySize) -> tuple[int, int, float, float, float]:
    """Building slots per cell (columns, rows, width, height, y offset): room to spare for the average cell."""
    width = CELL_W - 2 * _MARGIN
    height = CELL_H - 2 * _MARGIN - 2 * _BUILD_INSET
    needed = math.ceil(size.buildings / size.grids_level3 * 1.2) + 1
    nx = max(1, math.ceil(math.sqrt(needed * width / height)))
    ny = max(1, math.ceil(needed / nx))
    return nx, ny, width / nx, height / ny, _BUILD_INSET


def _plan_buildings(size, inner, density, slots, rng: np.random.Generator) -> _Buildings:
    nx, ny, sw, sh, inset = slots
    per_cell = nx * ny
    # weighted sampling without replacement (Efraimidis–Spirakis): the n largest u^(1/w)
    weights = np.repeat(density, per_cell)
    keys = np.log(rng.random(weights.size)) / weights
    n = size.buildings
    chosen = np.sort(np.argpartition(-keys, n - 1)[:n])
    cell, slot = np.divmod(chosen, per_cell)
    sy, sx = np.divmod(slot, nx)
    x0 = inner[0][cell] + sx * sw
    y0 = inner[1][cell] + inset + sy * sh
    room_x, room_y = sw - 2 * _SLOT_GAP, sh - 2 * _SLOT_GAP
    bw = room_x * rng.uniform(0.5, 0.9, n)
    bh = room_y * rng.uniform(0.5, 0.9, n)
    bx0 = x0 + _SLOT_GAP + rng.random(n) * (room_x - bw)
    by0 = y0 + _SLOT_GAP + rng.random(n) * (room_y - bh)
    lon, lat = _to_lonlat(bx0 + bw / 2, by0 + bh / 2)
    floors = rng.choice(_FLOORS, n, p=_FLOOR_WEIGHTS)
    units = 1 + (bw > 0.75 * room_x) + ((floors <= 7) & (rng.random(n) < 0.5))
    residential = rng.random(n) < 0.85
    households = np.where(residential, floors * units * rng.choice([2, 3, 4], n, p=[0.6, 0.3, 0.1]), 0)
    number = np.arange(n) - np.searchsorted(cell, cell, side="left") + 1
    return _Buildings(
        cell=cell, slot=np.column_stack([x0, y0, x0 + sw, y0 + sh]),
        box=np.column_stack([bx0, by0, bx0 + bw, by0 + bh]), lon=lon, lat=lat, floors=floors, units=units,
        households=households, residential=residential, number=number,
    )


def _plan_care(size: CitySize, buildings: _Buildings, rng: np.random.Generator) -> _Care:
    homes = np.flatnonzero(buildings.residential)
    weight = buildings.households[homes].astype(float)
    building = np.sort(rng.choice(homes, size.care_subjects, p=weight / weight.sum()))
    n = building.size
    lives_alone = rng.random(n) < 0.3
    monitored = ~lives_alone & (rng.random(n) < 0.08)
    elder = rng.choice(np.arange(60, 100, 5), n, p=[0.22, 0.22, 0.2, 0.16, 0.11, 0.06, 0.02, 0.01])
    return _Care(
        building=building,
        lives_alone=lives_alone,
        monitored=monitored,
        age_low=np.where(monitored, rng.choice(np.arange(20, 60, 5), n), elder),
        unit=rng.integers(1, buildings.units[building] + 1),
        floor=rng.integers(1, buildings.floors[building] + 1),
    )


def _plan_cameras(size, inner, buildings: _Buildings, care: _Care, rng: np.random.Generator) -> _Cameras:
    n = size.cameras
    alone = np.flatnonzero(care.lives_alone)
    counts = {"facade": round(0.30 * n), "parking": round(0.20 * n), "peephole": min(round(0.15 * n), alone.size)}
    counts["courtyard"] = n - sum(counts.values())
    parts = []
    for p, purpose in enumerate(_PURPOSES):
        k = counts[purpose]
        if purpose == "peephole":
            subject = np.sort(rng.choice(alone, k, replace=False))
            anchor = care.building[subject]
        else:
            subject = np.full(k, -1)
            tall = buildings.floors.astype(float) if purpose == "facade" else np.ones(buildings.floors.size)
            anchor = rng.choice(buildings.floors.size, k, p=tall / tall.sum())
        cell = buildings.cell[anchor]
        slot, box = buildings.slot[anchor], buildings.box[anchor]
        if purpose == "parking":  # between the parking strip and the buildings, looking south at the spots
            x = inner[0][cell] + rng.random(k) * (inner[2][cell] - inner[0][cell])
            y = inner[1][cell] + (_PARK_DEPTH + _BUILD_INSET) / 2
            heading = 180 + rng.uniform(-20, 20, k)
            height = rng.uniform(3, 5, k)
        elif purpose == "peephole":  # at the subject's door
            x, y = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
            heading = rng.uniform(0, 360, k)
            height = (care.floor[subject] - 1) * 3.0 + 1.5
        else:  # on the slot's south edge, outside the footprint
            x = slot[:, 0] + rng.random(k) * (slot[:, 2] - slot[:, 0])
            y = slot[:, 1] + _SLOT_GAP / 2
            if purpose == "facade":
                heading = np.degrees(np.arctan2((box[:, 0] + box[:, 2]) / 2 - x, (box[:, 1] + box[:, 3]) / 2 - y))
                height = rng.uniform(6, 15, k)
            else:
                heading = rng.uniform(0, 360, k)
                height = rng.uniform(3, 6, k)
        building = anchor if purpose in ("facade", "peephole") else np.full(k, -1)
        parts.append((np.full(k, p), cell, anchor, building, np.broadcast_to(x, k), np.broadcast_to(y, k),
                      np.broadcast_to(height, k), np.round(np.mod(heading, 360), 1) % 360, subject))
    fields = [np.concatenate(column) for column in zip(*parts)]
    return _Cameras(*fields)


def _plan_sensors(care: _Care, cameras: _Cameras) -> _Sensors:
    """A door magnet for everyone living alone; a peephole-camera sensor where a peephole camera hangs."""
    magnets = np.flatnonzero(care.lives_alone)
    peepholes = np.flatnonzero(cameras.subject >= 0)
    return _Sensors(
        subject=np.concatenate([magnets, cameras.subject[peepholes]]),
        camera=np.concatenate([np.full(magnets.size, -1), peepholes]),
        door_magnets=magnets.size,
    )


# -- rows per table -------------------------------------------------------------------------------

Chunks = Iterator[list[list[str]]]


def _table_rows(city: _City, seed: int) -> Iterator[tuple[str, tuple[str, ...], int, Chunks]]:
    """(table, columns, row count, lazy chunks of column values) in load order."""
    size = city.size
    n_grids = len(city.grids.codes1) + len(city.grids.codes2) + size.grids_level3
    n_nodes = (size.rows + 1) * (size.columns + 1)
    n_streets = size.columns * (size.rows + 1) + (size.columns + 1) * size.rows
    n_buildings = size.buildings
    n_care = city.care.building.size
    n_workers, workers = _grid_worker_rows(city, _rng(seed, 20))
    n_orgs, orgs, org_points = _party_org_rows(city, _rng(seed, 21))
    n_activities, activities = _party_activity_rows(n_orgs, org_points, _rng(seed, 22))
    # chunks are generators, made only when the loader asks, so its timing covers generation
    # (the three small tables above are made first: their row counts come out of generating them)
    return iter([
        ("grids", _GRID_COLUMNS, n_grids, _once(_grid_rows, city)),
        ("street_nodes", _NODE_COLUMNS, n_nodes, _once(_street_node_rows, city)),
        ("streets", _STREET_COLUMNS, n_streets, _once(_street_rows, city, _rng(seed, 10))),
        ("buildings", _BUILDING_COLUMNS, n_buildings, _building_chunks(city, seed)),
        ("care_subjects", _CARE_COLUMNS, n_care, _once(_care_rows, city, _rng(seed, 11))),
        ("care_subject_private", _PRIVATE_COLUMNS, n_care, _once(_private_rows, city, _rng(seed, 12))),
        ("cameras", _CAMERA_COLUMNS, size.cameras, _once(_camera_rows, city, _rng(seed, 13))),
        ("sensors", _SENSOR_COLUMNS, city.sensors.subject.size, _once(_sensor_rows, city, _rng(seed, 14))),
        ("parking_spots", _PARKING_COLUMNS, size.parking_spots, _once(_parking_rows, city, _rng(seed, 15))),
        ("no_parking_zones", _ZONE_COLUMNS, size.no_parking_zones, _once(_zone_rows, city, _rng(seed, 16))),
        ("grid_workers", _WORKER_COLUMNS, n_workers, iter([workers])),
        ("party_orgs", _ORG_COLUMNS, n_orgs, iter([orgs])),
        ("party_activities", _ACTIVITY_COLUMNS, n_activities, iter([activities])),
        ("service_points", _SERVICE_COLUMNS, size.service_points, _once(_service_rows, city, _rng(seed, 17))),
        ("incidents", _INCIDENT_COLUMNS, size.incidents, _incident_chunks(city, seed)),
    ])


def _once(make: Callable[..., list[list[str]]], *args) -> Chunks:
    yield make(*args)


_GRID_COLUMNS = ("id", "code", "synthetic", "level", "parent_id", "name", "responsible_unit", "population", "geom")


def _grid_rows(city: _City) -> list[list[str]]:
    g, lat = city.grids, city.lattice
    n1, n2, n3 = len(g.codes1), len(g.codes2), city.size.grids_level3
    b = city.buildings
    people = np.round(np.bincount(b.cell, weights=b.households, minlength=n3) * 2.6).astype(np.int64)
    people2 = np.bincount(g.cell_l2, weights=people, minlength=n2).astype(np.int64)
    people1 = np.bincount(g.parent2, weights=people2, minlength=n1).astype(np.int64)
    outlines = [_block_outline(lat, block) for block in g.blocks1 + g.blocks2]
    j, i = np.divmod(np.arange(n3), city.size.columns)
    corners = [(j, i), (j, i + 1), (j + 1, i + 1), (j + 1, i), (j, i)]
    cells = np.stack([np.column_stack([lat.lon[a, c], lat.lat[a, c]]) for a, c in corners], axis=1)
    geoms = _multipolygons_hex(list(map(np.asarray, outlines)) + list(cells))
    return [
        _ids(1, n1 + n2 + n3),
        g.codes1 + g.codes2 + g.cell_code,
        _const("t", n1 + n2 + n3),
        _const("1", n1) + _const("2", n2) + _const("3", n3),
        _const(_NULL, n1) + _ints(g.parent2 + 1) + _ints(g.cell_l2 + g.id_base2),
        g.names1 + g.names2 + g.cell_name,
        [f"{name}办事处" for name in g.names1] + [f"{name}居民委员会" for name in g.names2]
        + [f"{g.names2[l2]}网格工作站" for l2 in g.cell_l2.tolist()],
        _ints(people1) + _ints(people2) + _ints(people),
        geoms,
    ]


def _block_outline(lattice: _Lattice, block: tuple[int, int, int, int]) -> np.ndarray:
    """The ring around cells [i0, i1) × [j0, j1), through every lattice vertex on its edge (counter-clockwise)."""
    i0, i1, j0, j1 = block
    path = (
        [(j0, i) for i in range(i0, i1 + 1)]
        + [(j, i1) for j in range(j0 + 1, j1 + 1)]
        + [(j1, i) for i in range(i1 - 1, i0 - 1, -1)]
        + [(j, i0) for j in range(j1 - 1, j0 - 1, -1)]
    )
    rows, cols = np.array(path).T
    return np.column_stack([lattice.lon[rows, cols], lattice.lat[rows, cols]])


_NODE_COLUMNS = ("id", "code", "synthetic", "geom")


def _street_node_rows(city: _City) -> list[list[str]]:
    lat = city.lattice
    n = lat.lon.size
    return [_ids(1, n), _codes("SN", n), _const("t", n), _points_hex(lat.lon.ravel(), lat.lat.ravel())]


_STREET_COLUMNS = (
    "id", "code", "synthetic", "name", "kind", "source", "target", "length_m", "cost", "reverse_cost", "geom"
)


def _street_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    """One street per lattice edge: primary between subdistricts, secondary between communities."""
    size, lat, g = city.size, city.lattice, city.grids
    cols = size.columns + 1
    node = np.arange(lat.lon.size).reshape(lat.lon.shape)
    l2 = g.cell_l2.reshape(size.rows, size.columns)
    l1 = g.parent2[l2]
    # east-west edges: between the cell below (j-1) and above (j); -1 outside the city
    below2 = np.vstack([np.full((1, size.columns), -1), l2])
    above2 = np.vstack([l2, np.full((1, size.columns), -1)])
    below1 = np.vstack([np.full((1, size.columns), -1), l1])
    above1 = np.vstack([l1, np.full((1, size.columns), -1)])
    left2 = np.hstack([np.full((size.rows, 1), -1), l2])
    right2 = np.hstack([l2, np.full((size.rows, 1), -1)])
    left1 = np.hstack([np.full((size.rows, 1), -1), l1])
    right1 = np.hstack([l1, np.full((size.rows, 1), -1)])
    ew_src, ew_dst = node[:, :-1].ravel(), node[:, 1:].ravel()
    ns_src, ns_dst = node[:-1, :].ravel(), node[1:, :].ravel()
    kind = np.concatenate([
        np.where(below1 != above1, 0, np.where(below2 != above2, 1, 2)).ravel(),
        np.where(left1 != right1, 0, np.where(left2 != right2, 1, 2)).ravel(),
    ])
    ew_row = np.repeat(np.arange(size.rows + 1), size.columns)
    ns_col = np.tile(np.arange(cols), size.rows)
    names = [f"纬{r + 1}路" for r in ew_row.tolist()] + [f"经{c + 1}路" for c in ns_col.tolist()]
    src, dst = np.concatenate([ew_src, ns_src]), np.concatenate([ew_dst, ns_dst])
    xs, ys = lat.x.ravel(), lat.y.ravel()
    length = np.hypot(xs[dst] - xs[src], ys[dst] - ys[src])
    one_way = (kind == 2) & (rng.random(src.size) < 0.05)
    lons, lats = lat.lon.ravel(), lat.lat.ravel()
    lines = np.stack([np.column_stack([lons[src], lats[src]]), np.column_stack([lons[dst], lats[dst]])], axis=1)
    n = src.size
    return [
        _ids(1, n), _codes("ST", n), _const("t", n), names,
        np.array(["primary", "secondary", "lane"])[kind].tolist(),
        _ints(src + 1), _ints(dst + 1), _floats(length), _floats(length), _floats(np.where(one_way, -1.0, length)),
        _linestrings_hex(lines),
    ]


_BUILDING_COLUMNS = (
    "id", "code", "synthetic", "name", "address", "floors", "height_m", "units", "households", "use",
    "built_year", "grid_id", "geom",
)


def _building_chunks(city: _City, seed: int) -> Chunks:
    b, g = city.buildings, city.grids
    cell_l1 = g.parent2[g.cell_l2]
    for chunk, start in enumerate(range(0, b.cell.size, _BUILDING_CHUNK)):
        rng = _rng(seed, 30, chunk)
        sl = slice(start, min(start + _BUILDING_CHUNK, b.cell.size))
        n = sl.stop - sl.start
        cell, floors, number = b.cell[sl], b.floors[sl], b.number[sl]
        j, i = np.divmod(cell, city.size.columns)
        address = [
            f"郑州市{g.names1[l1]}纬{jj + 1}路{2 * ii + 1}号院{k}号楼"
            for l1, jj, ii, k in zip(cell_l1[cell].tolist(), j.tolist(), i.tolist(), number.tolist())
        ]
        use = np.where(b.residential[sl], 0, rng.choice([1, 2, 3], n, p=[0.55, 0.3, 0.15]))
        yield [
            _ids(sl.start + 1, n), _codes("BD", n, sl.start), _const("t", n),
            [f"{k}号楼" for k in number.tolist()], address, _ints(floors),
            _floats(floors * 3.0 + rng.uniform(0.5, 3.0, n), 1), _ints(b.units[sl]),
            _nullable(_ints(b.households[sl]), b.residential[sl]),
            np.array(["residential", "commercial", "office", "public"])[use].tolist(),
            _ints(rng.integers(1985, 2025, n)), _ints(cell + g.id_base3),
            _rectangles_hex(b.box[sl], multi=True),
        ]


_CARE_COLUMNS = (
    "id", "code", "synthetic", "kind", "age_band", "lives_alone", "monitoring_rule", "care_level", "active",
    "building_id", "grid_id", "geom",
)


def _care_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    care, b = city.care, city.buildings
    n = care.building.size
    monitored = care.monitored
    rule = np.where(
        care.lives_alone, '{"no_activity_hours": 48}', np.where(monitored, '{"no_activity_hours": 24}', "{}")
    )
    return [
        _ids(1, n), _codes("CS", n), _const("t", n),
        np.where(monitored, "home_monitoring", "elder").tolist(), [f"{a}-{a + 4}" for a in care.age_low.tolist()],
        _bools(care.lives_alone), rule.tolist(),
        _ints(rng.choice([1, 2, 3, 4], n, p=[0.55, 0.25, 0.14, 0.06])), _bools(rng.random(n) < 0.97),
        _ints(care.building + 1), _ints(b.cell[care.building] + city.grids.id_base3),
        _points_hex(b.lon[care.building], b.lat[care.building]),
    ]


_PRIVATE_COLUMNS = (
    "subject_id", "full_name", "gender", "birth_date", "phone", "unit", "floor", "room", "contacts", "health_notes"
)


def _private_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    """Made-up names and phones; the birth date falls in the subject's age band on the reference day."""
    care = city.care
    n = care.building.size
    age_days = (care.age_low + rng.random(n) * 5) * 365.25
    birth = (_REFERENCE_DAY - age_days.astype("timedelta64[D]")).astype(str).tolist()
    gender = np.where(rng.random(n) < 0.55, "F", "M")
    names = _person_names(rng, n)
    relatives = _person_names(rng, n)
    relation = np.array(["子女", "配偶", "亲属", "邻居"])[rng.choice(4, n, p=[0.6, 0.15, 0.15, 0.1])].tolist()
    contacts = [
        json.dumps([{"name": who, "relation": rel, "phone": _fake_mobile(50_000_000 + k)}], ensure_ascii=False)
        for k, (who, rel) in enumerate(zip(relatives, relation))
    ]
    door = rng.integers(1, 5, n)
    notes = np.array(["", "", "", "高血压", "糖尿病", "行动不便", "听力下降"])[rng.integers(0, 7, n)].tolist()
    return [
        _ids(1, n), names, gender.tolist(), birth, [_fake_mobile(k) for k in range(n)],
        _ints(care.unit), _ints(care.floor), [f"{f}{d:02d}" for f, d in zip(care.floor.tolist(), door.tolist())],
        contacts, notes,
    ]


def _seal_private(chunk: list[list[str]]) -> list[list[str]]:
    """The generated private rows as stored: subject, gender in clear, the rest one sealed blob (bytea, hex)."""
    from gis.care.private import private_seal

    ids, names, genders, births, phones, units, floors, rooms, contacts, notes = chunk
    sealed = [
        "\\\\x" + private_seal(subject_id=int(i), fields={
            "full_name": n, "birth_date": b, "phone": p, "unit": int(u), "floor": int(f), "room": r,
            "contacts": json.loads(c), "health_notes": h,
        }).hex()
        for i, n, b, p, u, f, r, c, h in zip(ids, names, births, phones, units, floors, rooms, contacts, notes)
    ]
    return [ids, genders, sealed]


_SEALED_TABLES = {"care_subject_private": (("subject_id", "gender", "sealed"), _seal_private)}


_CAMERA_COLUMNS = (
    "id", "code", "synthetic", "name", "purpose", "height_m", "heading_deg", "fov_deg", "calibration", "status",
    "stream_url", "building_id", "grid_id", "geom",
)


def _camera_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    cam = city.cameras
    n = cam.purpose.size
    fov_low = np.array([50.0, 70.0, 80.0, 120.0])[cam.purpose]
    codes = _codes("CM", n)
    image = np.where(cam.purpose == 3, '{"image_size": [1280, 720]}', '{"image_size": [1920, 1080]}')
    lon, lat = _to_lonlat(cam.x, cam.y)
    return [
        _ids(1, n), codes, _const("t", n),
        [f"{_PURPOSE_NAMES[p]}摄像头{c[2:]}" for p, c in zip(cam.purpose.tolist(), codes)],
        np.array(_PURPOSES)[cam.purpose].tolist(), _floats(cam.height, 1), _floats(cam.heading, 1),
        _floats(fov_low + rng.uniform(0, 40, n), 1), image.tolist(),
        np.array(["online", "offline", "maintenance"])[rng.choice(3, n, p=[0.92, 0.05, 0.03])].tolist(),
        [f"rtsp://cameras.invalid/{c}" for c in codes],
        _nullable(_ints(cam.building + 1), cam.building >= 0), _ints(cam.cell + city.grids.id_base3),
        _points_hex(lon, lat),
    ]


_SENSOR_COLUMNS = (
    "id", "code", "synthetic", "kind", "care_subject_id", "building_id", "camera_id", "status", "battery_pct",
    "last_seen_at", "last_seq", "geom",
)


def _sensor_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    s, care, b = city.sensors, city.care, city.buildings
    n = s.subject.size
    building = care.building[s.subject]
    magnet = s.camera < 0
    return [
        _ids(1, n), _codes("SR", n), _const("t", n),
        np.where(magnet, "door_magnet", "peephole_camera").tolist(), _ints(s.subject + 1), _ints(building + 1),
        _nullable(_ints(s.camera + 1), ~magnet),
        np.where(rng.random(n) < 0.95, "online", "offline").tolist(),
        _nullable(_ints(rng.integers(5, 101, n)), magnet),
        _timestamps(YEAR_END - rng.integers(0, 6 * 3600, n)), _ints(rng.integers(1_000, 500_000, n)),
        _points_hex(b.lon[building], b.lat[building]),
    ]


_PARKING_COLUMNS = ("id", "code", "synthetic", "kind", "occupancy", "occupancy_updated_at", "grid_id", "geom")


def _parking_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    """Spots 2.4 × 5.3 m side by side in each cell's parking strip."""
    x0, y0, _, _ = city.inner
    per_cell = int((CELL_W - 2 * _MARGIN) // _PARK_PITCH)
    n = city.size.parking_spots
    cell, k = np.divmod(np.sort(rng.choice(city.size.grids_level3 * per_cell, n, replace=False)), per_cell)
    sx = x0[cell] + k * _PARK_PITCH + 0.1
    boxes = np.column_stack([sx, y0[cell], sx + 2.4, y0[cell] + _PARK_DEPTH])
    occupancy = rng.choice(3, n, p=[0.45, 0.45, 0.10])
    return [
        _ids(1, n), _codes("PK", n), _const("t", n),
        np.array(["residential", "public", "disabled", "ev"])[rng.choice(4, n, p=[0.6, 0.3, 0.05, 0.05])].tolist(),
        np.array(["free", "occupied", "unknown"])[occupancy].tolist(),
        _nullable(_timestamps(YEAR_END - rng.integers(0, 3600, n)), occupancy < 2),
        _ints(cell + city.grids.id_base3), _rectangles_hex(boxes),
    ]


_ZONE_COLUMNS = ("id", "code", "synthetic", "name", "reason", "grid_id", "geom")


def _zone_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    """Zones in the fire-lane strip along each cell's north side, at most one per slot."""
    x0, _, _, y1 = city.inner
    n = city.size.no_parking_zones
    cell, k = np.divmod(np.sort(rng.choice(city.size.grids_level3 * _ZONE_SLOTS, n, replace=False)), _ZONE_SLOTS)
    slot_w = (CELL_W - 2 * _MARGIN) / _ZONE_SLOTS
    length = rng.uniform(10, slot_w - 4, n)
    zx = x0[cell] + k * slot_w + 2 + rng.random(n) * (slot_w - 4 - length)
    top = y1[cell] - _FIRE_STRIP[1]
    boxes = np.column_stack([zx, top - rng.uniform(3, _FIRE_STRIP[0] - _FIRE_STRIP[1], n), zx + length, top])
    reason = rng.choice(4, n, p=[0.55, 0.15, 0.2, 0.1])
    return [
        _ids(1, n), _codes("NP", n), _const("t", n),
        np.array(["消防通道禁停区", "消火栓禁停区", "出入口禁停区", "禁停区"])[reason].tolist(),
        np.array(["fire_lane", "hydrant", "entrance", "other"])[reason].tolist(),
        _ints(cell + city.grids.id_base3), _rectangles_hex(boxes),
    ]


_WORKER_COLUMNS = (
    "id", "code", "synthetic", "name", "role", "grid_id", "phone", "on_duty", "last_position", "last_seen_at"
)


def _grid_worker_rows(city: _City, rng: np.random.Generator) -> tuple[int, list[list[str]]]:
    """Three to five workers per level-3 grid (four on average), the first its grid leader."""
    per_cell = rng.choice([3, 4, 5], city.size.grids_level3, p=[0.25, 0.5, 0.25])
    cell = np.repeat(np.arange(per_cell.size), per_cell)
    n = cell.size
    first = np.r_[True, cell[1:] != cell[:-1]]
    role = np.where(first, 0, rng.choice([1, 2], n, p=[0.7, 0.3]))
    on_duty = rng.random(n) < 0.6
    seen = on_duty | (rng.random(n) < 0.7)
    x, y = _points_in(city.inner, cell, rng)
    lon, lat = _to_lonlat(x, y)
    last_seen = YEAR_END - np.where(on_duty, rng.integers(0, 8 * 3600, n), rng.integers(8 * 3600, 72 * 3600, n))
    return n, [
        _ids(1, n), _codes("GW", n), _const("t", n), _person_names(rng, n),
        np.array(["grid_leader", "full_time", "part_time"])[role].tolist(), _ints(cell + city.grids.id_base3),
        [_fake_mobile(90_000_000 + k) for k in range(n)], _bools(on_duty),
        _nullable(_points_hex(lon, lat), seen), _nullable(_timestamps(last_seen), seen),
    ]


_ORG_COLUMNS = ("id", "code", "synthetic", "name", "kind", "parent_id", "members", "secretary", "grid_id", "geom")


def _party_org_rows(city: _City, rng: np.random.Generator):
    """A committee per community; under it a branch per grid, property and enterprise branches."""
    g = city.grids
    n2, n3 = len(g.codes2), city.size.grids_level3
    cells = np.arange(n3)
    property_cells = np.sort(rng.choice(n3, max(1, n3 // 3), replace=False))
    enterprise_cells = np.sort(rng.choice(n3, max(1, n3 // 8), replace=False))
    # committees sit in one cell of their community
    committee_cell = np.array([rng.choice(np.flatnonzero(g.cell_l2 == l2)) for l2 in range(n2)])
    cell = np.concatenate([committee_cell, cells, property_cells, enterprise_cells])
    kind = np.repeat([0, 1, 2, 3], [n2, n3, property_cells.size, enterprise_cells.size])
    n = cell.size
    l2 = g.cell_l2[cell]
    x, y = _points_in(city.inner, cell, rng)
    lon, lat = _to_lonlat(x, y)
    names = [
        (f"{g.names2[c2]}党委", f"{g.cell_name[c]}党支部", f"{g.cell_name[c]}物业党支部", f"{g.cell_name[c]}企业联合党支部")[k]
        for k, c, c2 in zip(kind.tolist(), cell.tolist(), l2.tolist())
    ]
    members = np.where(kind == 0, rng.integers(50, 300, n), rng.integers(5, 60, n))
    grid = np.where(kind == 0, l2 + g.id_base2, cell + g.id_base3)
    values = [
        _ids(1, n), _codes("PO", n), _const("t", n), names,
        np.array(["party_committee", "grid_branch", "property_branch", "enterprise_branch"])[kind].tolist(),
        _nullable(_ints(l2 + 1), kind > 0), _ints(members),
        np.where(kind == 0, "党委书记", "支部书记").tolist(), _ints(grid), _points_hex(lon, lat),
    ]
    return n, values, (lon, lat)


_ACTIVITY_COLUMNS = (
    "id", "code", "synthetic", "organization_id", "title", "starts_at", "ends_at", "participants", "geom"
)


def _party_activity_rows(n_orgs: int, points, rng: np.random.Generator) -> tuple[int, list[list[str]]]:
    per_org = rng.integers(0, 6, n_orgs)
    org = np.repeat(np.arange(n_orgs), per_org)
    n = org.size
    # YEAR_START is a Beijing midnight, so this is 9:00-16:00 local time
    starts = YEAR_START + rng.integers(0, 365, n) * 86400 + rng.integers(9, 17, n) * 3600
    ends = starts + rng.integers(1, 4, n) * 3600
    titles = np.array(["主题党日活动", "志愿服务", "政策宣讲", "走访慰问独居老人", "环境整治", "消防安全宣传"])
    return n, [
        _ids(1, n), _codes("PA", n), _const("t", n), _ints(org + 1), titles[rng.integers(0, titles.size, n)].tolist(),
        _timestamps(starts), _timestamps(ends), _ints(rng.integers(5, 81, n)),
        _points_hex(points[0][org], points[1][org]),
    ]


_SERVICE_COLUMNS = (
    "id", "code", "synthetic", "name", "category", "subcategory", "address", "opening_hours", "phone", "grid_id", "geom"
)


def _service_rows(city: _City, rng: np.random.Generator) -> list[list[str]]:
    n = city.size.service_points
    cell = np.sort(rng.choice(city.size.grids_level3, n, p=city.density / city.density.sum()))
    category = rng.choice(3, n, p=[0.4, 0.45, 0.15])
    pick = rng.integers(0, 1 << 30, n)
    sub = [_SERVICE_KINDS[c][k % len(_SERVICE_KINDS[c])] for c, k in zip(category.tolist(), pick.tolist())]
    j, i = np.divmod(cell, city.size.columns)
    x, y = _points_in(city.inner, cell, rng)
    lon, lat = _to_lonlat(x, y)
    l1 = city.grids.parent2[city.grids.cell_l2[cell]]
    hours = np.array(["08:30-17:30", "07:00-22:00", "09:00-21:00"])[category]
    hours = np.where((category == 1) & (rng.random(n) < 0.15), "24小时", hours)
    return [
        _ids(1, n), _codes("SP", n), _const("t", n),
        [f"{s}（纬{r + 1}路店）" for s, r in zip(sub, j.tolist())],
        np.array(["service", "commerce", "culture"])[category].tolist(), sub,
        [f"郑州市{city.grids.names1[a]}纬{r + 1}路{2 * c + 2}号" for a, r, c in zip(l1.tolist(), j.tolist(), i.tolist())],
        hours.tolist(), [f"0371-0{k:07d}" for k in range(n)], _ints(cell + city.grids.id_base3), _points_hex(lon, lat),
    ]


_INCIDENT_COLUMNS = (
    "id", "code", "synthetic", "created_at", "updated_at", "category", "source", "severity", "status", "title",
    "description", "notes", "floor", "reported_at", "resolved_at", "evidence", "camera_id", "sensor_id",
    "building_id", "grid_id", "geom",
)


def _incident_chunks(city: _City, seed: int) -> Chunks:
    for chunk, start in enumerate(range(0, city.size.incidents, _INCIDENT_CHUNK)):
        yield _incident_chunk(city, seed, chunk, start, min(_INCIDENT_CHUNK, city.size.incidents - start))


def _incident_chunk(city: _City, seed: int, chunk: int, start: int, n: int) -> list[list[str]]:
    """``n`` incidents: camera ones near their camera, sensor ones at the sensor's home, others near a building."""
    rng = _rng(seed, 100, chunk)
    b, cam, sen = city.buildings, city.cameras, city.sensors
    category = rng.choice(len(_CATEGORIES), n, p=_CATEGORY_SHARES)
    source = (rng.random(n)[:, None] > np.cumsum(_SOURCE_SHARES, axis=1)[category]).sum(axis=1)
    camera = np.full(n, -1)
    sensor = np.full(n, -1)
    weight = (b.households + 2 * b.floors) / (b.households + 2 * b.floors).sum()  # shops and offices too
    anchor = rng.choice(b.cell.size, n, p=weight)
    for c, purposes in _CAMERA_CATEGORIES.items():
        pool = np.flatnonzero(np.isin(cam.purpose, purposes))
        mask = (category == c) & (source == _CAMERA)
        if pool.size == 0:
            source[mask] = _STAFF
            continue
        camera[mask] = pool[rng.integers(0, pool.size, mask.sum())]
    has_camera = camera >= 0
    anchor[has_camera] = cam.anchor[camera[has_camera]]
    mask = source == _SENSOR
    if sen.door_magnets:
        sensor[mask] = rng.integers(0, sen.door_magnets, mask.sum())
        anchor[mask] = city.care.building[sen.subject[sensor[mask]]]
    else:
        source[mask] = _STAFF
    cell = b.cell[anchor]
    # where: in the anchor building's slot, or in the cell's parking strip for illegal parking
    slot = b.slot[anchor]
    x = slot[:, 0] + rng.random(n) * (slot[:, 2] - slot[:, 0])
    y = slot[:, 1] + rng.random(n) * (slot[:, 3] - slot[:, 1])
    parking = category == _CATEGORY_INDEX["illegal_parking"]
    x0, y0, x1, _ = city.inner
    x[parking] = x0[cell[parking]] + rng.random(parking.sum()) * (x1 - x0)[cell[parking]]
    y[parking] = y0[cell[parking]] + rng.random(parking.sum()) * _PARK_DEPTH
    lon, lat = _to_lonlat(x, y)
    # which floor, where it is known
    floors = b.floors[anchor]
    floor = np.full(n, -1)
    thrown = category == _CATEGORY_INDEX["falling_object"]
    floor[thrown] = rng.integers(2, floors[thrown] + 1)
    fire = (category == _CATEGORY_INDEX["fire_smoke"]) & (rng.random(n) < 0.5)
    floor[fire] = rng.integers(1, floors[fire] + 1)
    by_sensor = sensor >= 0
    floor[by_sensor] = city.care.floor[sen.subject[sensor[by_sensor]]]
    with_building = np.isin(category, _BUILDING_CATEGORIES) | (rng.random(n) < 0.2)
    # when: a year of days, busier by day
    reported = YEAR_START + rng.integers(0, 365, n) * 86400 + rng.choice(24, n, p=_HOURLY) * 3600
    reported += rng.integers(0, 3600, n)
    age = YEAR_END - reported
    recent = age < 2 * 86400
    # the last two days are still being worked on; older ones are finished
    status = np.where(
        recent, rng.choice([0, 1, 2], n, p=[0.4, 0.3, 0.3]), rng.choice([3, 4, 5], n, p=[0.3, 0.62, 0.08])
    )
    closed = status >= 3
    resolved = reported + np.minimum(600 + rng.exponential(8 * 3600, n).astype(np.int64), age - 1)
    severity = np.clip(_SEVERITY[category] + (rng.random(n) < 0.2), 1, 4)
    ids = np.arange(start + 1, start + n + 1)
    codes = _codes("IN", n, start)
    evidence = _evidence(codes, has_camera, rng)
    reported_text = _timestamps(reported)
    resolved_text = _nullable(_timestamps(resolved), closed)
    title = _TITLES[category]
    return [
        _ints(ids), codes, _const("t", n), reported_text,
        np.where(closed, np.array(resolved_text, dtype=object), np.array(reported_text, dtype=object)).tolist(),
        np.array(_CATEGORIES)[category].tolist(), np.array(_SOURCES)[source].tolist(), _ints(severity),
        np.array(_STATUSES)[status].tolist(), title.tolist(),
        np.where(source == _RESIDENT, np.char.add("居民反映：", title), "").tolist(), _const("", n),
        _nullable(_ints(floor), floor >= 0), reported_text, resolved_text, evidence,
        _nullable(_ints(camera + 1), has_camera), _nullable(_ints(sensor + 1), by_sensor),
        _nullable(_ints(anchor + 1), with_building), _ints(cell + city.grids.id_base3), _points_hex(lon, lat),
    ]


def _evidence(codes: list[str], present: np.ndarray, rng: np.random.Generator) -> list[str]:
    digests = rng.integers(0, 256, (len(codes), 32), dtype=np.uint8).tobytes().hex()
    return [
        f'{{"clip": "evidence/{c}.mp4", "keyframe": "evidence/{c}.jpg", "sha256": "{digests[64 * k:64 * k + 64]}"}}'
        if p else "{}"
        for k, (c, p) in enumerate(zip(codes, present.tolist()))
    ]


# -- vocabularies ---------------------------------------------------------------------------------


def _words(*words: str) -> tuple[str, ...]:
    """A fixed vocabulary; checked once so COPY text needs no escaping."""
    for word in words:
        if any(ch in word for ch in "\t\n\r\\"):
            raise ValueError(f"vocabulary word {word!r} would need COPY escaping")
    return words


_PURPOSES = _words("facade", "courtyard", "parking", "peephole")
_PURPOSE_NAMES = _words("立面", "庭院", "停车", "猫眼")
_SOURCES = _words(*SOURCES)
_CAMERA, _SENSOR, _RESIDENT, _STAFF = range(4)
_STATUSES = _words(*STATUS_CODES)
# category, share, title, base severity, source shares (camera, sensor, resident, staff), at a building
_CATEGORY_TABLE = [
    ("illegal_parking", 0.22, "违章停车", 1, (0.6, 0.0, 0.3, 0.1), False),
    ("sanitation", 0.16, "环境卫生问题", 1, (0.0, 0.0, 0.6, 0.4), False),
    ("resident_report", 0.16, "居民上报事项", 2, (0.0, 0.0, 1.0, 0.0), False),
    ("facility_damage", 0.12, "公共设施损坏", 2, (0.0, 0.0, 0.5, 0.5), False),
    ("falling_object", 0.07, "高空抛物", 3, (0.85, 0.0, 0.15, 0.0), True),
    ("neighbour_dispute", 0.08, "邻里纠纷", 2, (0.0, 0.0, 0.8, 0.2), True),
    ("elder_inactivity", 0.06, "独居老人48小时无活动", 3, (0.0, 1.0, 0.0, 0.0), True),
    ("epidemic", 0.06, "疫情防控", 2, (0.0, 0.0, 0.3, 0.7), False),
    ("fire_smoke", 0.07, "明火烟雾", 4, (0.7, 0.0, 0.2, 0.1), True),
]
_CATEGORIES = _words(*(row[0] for row in _CATEGORY_TABLE))
_CATEGORY_INDEX = {name: k for k, name in enumerate(_CATEGORIES)}
_CATEGORY_SHARES = np.array([row[1] for row in _CATEGORY_TABLE])
_TITLES = np.array(_words(*(row[2] for row in _CATEGORY_TABLE)))
_SEVERITY = np.array([row[3] for row in _CATEGORY_TABLE])
_SOURCE_SHARES = np.array([row[4] for row in _CATEGORY_TABLE])
_CAMERA_CATEGORIES = {  # which cameras see which incidents
    _CATEGORY_INDEX["illegal_parking"]: [2],
    _CATEGORY_INDEX["falling_object"]: [0],
    _CATEGORY_INDEX["fire_smoke"]: [0, 1],
}
_BUILDING_CATEGORIES = [k for k, row in enumerate(_CATEGORY_TABLE) if row[5]]
_HOURLY = np.array([2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 8, 8, 9, 9, 9, 9, 8, 7, 6, 5, 4, 3], dtype=float)
_HOURLY /= _HOURLY.sum()
_FLOORS = np.arange(4, 34)
_FLOOR_WEIGHTS = np.array(
    [4, 6, 18, 10] + [3] * 4 + [2] * 7 + [1.2] * 15, dtype=float
)
_FLOOR_WEIGHTS /= _FLOOR_WEIGHTS.sum()
_SERVICE_KINDS = (
    _words("社区服务中心", "养老服务站", "社区卫生服务站", "便民服务点", "日间照料中心", "快递驿站"),
    _words("便利店", "超市", "菜市场", "药店", "餐馆", "理发店", "银行网点"),
    _words("文化活动室", "社区图书室", "健身广场", "老年大学教学点"),
)
_SUBDISTRICT_WORDS = _words(
    "东明", "长兴", "和平", "永安", "福寿", "兴华", "同乐", "康宁", "瑞丰", "嘉禾", "安泰", "润泽",
    "青山", "临河", "新苑", "春晖", "玉泉", "锦程", "明德", "广惠", "文昌", "秀水", "景和", "宏远",
)
_SURNAMES = _words(
    *"王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN = _words(*"秀英桂兰淑珍玉梅凤芝建国华强志明德福永安春生金花素云振海雪松文军丽娟红霞国庆宏伟立新宝山翠萍")


def _subdistrict_name(k: int) -> str:
    word = _SUBDISTRICT_WORDS[k % len(_SUBDISTRICT_WORDS)]
    return f"{word}{_chinese_number(k // len(_SUBDISTRICT_WORDS) + 1) if k >= len(_SUBDISTRICT_WORDS) else ''}街道"


def _chinese_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return f"{digits[tens] if tens > 1 else ''}十{digits[ones] if ones else ''}" if n < 100 else str(n)


def _person_names(rng: np.random.Generator, n: int) -> list[str]:
    surname = np.array(_SURNAMES)[rng.integers(0, len(_SURNAMES), n)]
    given = np.array(_GIVEN)
    first = given[rng.integers(0, given.size, n)]
    second = np.where(rng.random(n) < 0.7, given[rng.integers(0, given.size, n)], "")
    return np.char.add(np.char.add(surname, first), second).tolist()


def _fake_mobile(k: int) -> str:
    """No Chinese mobile number starts with 100 (subjects use 0…, contacts 5…, grid workers 9… after it)."""
    return f"100{k:08d}"


# -- column formatting (COPY text) and geometry ---------------------------------------------------


def _ids(first: int, n: int) -> list[str]:
    return list(map(str, range(first, first + n)))


def _codes(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{k:07d}" for k in range(start + 1, start + n + 1)]


def _const(value: str, n: int) -> list[str]:
    return [value] * n


def _ints(values) -> list[str]:
    return list(map(str, np.asarray(values).tolist()))


def _floats(values, digits: int = 2) -> list[str]:
    return list(map(repr, np.round(np.asarray(values, dtype=float), digits).tolist()))


def _bools(values) -> list[str]:
    return np.where(values, "t", "f").tolist()


def _nullable(texts: list[str], present: np.ndarray) -> list[str]:
    return np.where(present, np.asarray(texts, dtype=object), _NULL).tolist()


def _timestamps(epoch_seconds) -> list[str]:
    stamps = np.asarray(epoch_seconds, dtype=np.int64).astype("datetime64[s]")
    return np.datetime_as_string(stamps, unit="s", timezone="UTC").tolist()


def _points_in(inner, cell: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = inner
    return (x0[cell] + rng.random(cell.size) * (x1 - x0)[cell], y0[cell] + rng.random(cell.size) * (y1 - y0)[cell])


@lru_cache(maxsize=None)
def _transformers():
    from pyproj import Transformer

    return (
        Transformer.from_crs(METRIC_SRID, 4326, always_xy=True),
        Transformer.from_crs(4326, METRIC_SRID, always_xy=True),
    )


def _to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    return _transformers()[0].transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def _to_metres(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    return _transformers()[1].transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


def _hex(geoms) -> list[str]:
    import shapely

    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True).tolist()


def _points_hex(lon, lat) -> list[str]:
    import shapely

    return _hex(shapely.points(np.asarray(lon), np.asarray(lat)))


def _linestrings_hex(coords: np.ndarray) -> list[str]:
    import shapely

    return _hex(shapely.linestrings(coords))


def _rectangles_hex(boxes: np.ndarray, *, multi: bool = False) -> list[str]:
    """Metre rectangles (x0, y0, x1, y1) as EPSG:4326 (multi)polygons; corners are transformed, not the box."""
    import shapely

    x0, y0, x1, y1 = boxes.T
    xs = np.stack([x0, x1, x1, x0, x0], axis=1)
    ys = np.stack([y0, y0, y1, y1, y0], axis=1)
    lon, lat = _to_lonlat(xs.ravel(), ys.ravel())
    polygons = shapely.polygons(np.stack([lon, lat], axis=1).reshape(-1, 5, 2))
    if multi:
        polygons = shapely.multipolygons(polygons, indices=np.arange(len(polygons)))
    return _hex(polygons)


def _multipolygons_hex(rings: list[np.ndarray]) -> list[str]:
    import shapely

    polygons = np.array([shapely.polygons(ring) for ring in rings], dtype=object)
    return _hex(shapely.multipolygons(polygons, indices=np.arange(len(rings))))
