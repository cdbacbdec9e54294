"""Import and export of feature layers: GeoPackage, GeoJSON and Shapefile.

An import is all or nothing: every feature is checked (fields, ranges, geometry
type and validity, references by ``code``), the rows are upserted by ``code``
inside one transaction, grid imports are checked for tiling there too, and any
problem rolls everything back. Every problem is collected and reported with its
feature number and field, so a file can be fixed in one pass.

Field rules come from the models in :mod:`gis.models` (types, nullability,
defaults, choices, lengths and the simple range constraints), so the importer and
the database agree without a second list to keep in step.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import time
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.gis.db import models as gis_models
from django.db import DatabaseError, connection, transaction
from django.db.models import F, ForeignKey, Q
from django.utils import timezone

STORAGE_CRS = "EPSG:4326"
DEFAULT_TOLERANCE_M = 0.5
READ_SUFFIXES = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
SHAPEFILE_NAME_LEN = 10
SHAPEFILE_TEXT_LEN = 254
GEOMETRY_FIELD = "geometry"  # how problems name the geometry, whatever the file calls its column
# columns the database manages itself; present in our own exports, ignored silently on import
MANAGED_COLUMNS = {"id", "fid", "ogc_fid", "created_at", "updated_at"}
# a re-imported geometry this close (degrees, ~0.1 mm) to the stored one is not a change
GEOMETRY_SAME_DEG = 1e-9


# -- results and errors --------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One reason to reject a file: feature number (1-based; None for the file), field, reason."""

    row: int | None
    field: str | None
    reason: str

    def describe(self) -> str:
        """``row 3, field floors: reason`` (``file: reason`` for file-level problems)."""
        where = "file" if self.row is None else f"row {self.row}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.reason}"


class ImportRejected(Exception):
    """A file was rejected; ``problems`` lists every reason and nothing was written."""

    def __init__(self, problems: list[Problem], *, layer: str = "", path: str | Path = ""):
        self.problems = sorted(problems, key=lambda p: (p.row is not None, p.row or 0))
        self.layer = layer
        self.path = str(path)
        super().__init__(self.describe())

    def describe(self) -> str:
        """A header line, then every problem on its own line."""
        target = f" into {self.layer}" if self.layer else ""
        source = f" from {self.path}" if self.path else ""
        head = f"import{target}{source} rejected: {len(self.problems)} problem(s); nothing was written"
        return "\n".join([head, *(p.describe() for p in self.problems)])


class ExportError(ValueError):
    """A layer cannot be exported as asked (unknown or sensitive layer, unknown format or CRS)."""


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would have done)."""

    layer: str
    path: str
    source_layer: str
    source_crs: str
    features: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    located: int = 0  # features given their level-3 grid by location
    unlocated: int = 0  # ... of which lie in no level-3 grid
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    def describe(self) -> str:
        """A few lines for the CLI."""
        verb = "checked (dry run, nothing written)" if self.dry_run else "imported"
        lines = [
            f"{verb} {self.features} feature(s) of {self.layer} from {self.path} "
            f"(layer {self.source_layer}, {self.source_crs} → {STORAGE_CRS}) in {self.seconds:.1f} s",
            f"  {self.inserted} new, {self.updated} updated, {self.unchanged} unchanged",
        ]
        if self.located:
            lines.append(f"  {self.located} given their level-3 grid by location ({self.unlocated} outside every grid)")
        if self.ignored_columns:
            lines.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        return "\n".join(lines)


@dataclass
class ExportReport:
    """What an export wrote."""

    layer: str
    path: str
    driver: str
    crs: str
    features: int
    fields: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the CLI."""
        lines = [
            f"exported {self.features} feature(s) of {self.layer} to {self.path} ({self.driver}, {self.crs})",
            f"  fields: {', '.join(self.fields)}",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# -- public entry points -----------------------------------------------------------


def import_layer(
    layer: str,
    path: str | Path,
    *,
    crs: str | None = None,
    source_layer: str | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    dry_run: bool = False,
) -> ImportReport:
    """Import a GeoPackage, GeoJSON or Shapefile into ``layer``: all features or none."""
    started_at, clock = timezone.now(), time.monotonic()
    spec = _import_spec(layer, path)
    source = _read_source(path, crs=crs, source_layer=source_layer, layer=layer)
    rows, rejected, problems = _check_features(spec, source)
    report = ImportReport(
        layer=layer, path=str(path), source_layer=source.layer_name, source_crs=source.crs_name,
        features=len(source.frame), ignored_columns=source.ignored_columns(spec), dry_run=dry_run,
    )
    try:
        with transaction.atomic():
            problems += _write_rows(spec, rows, rejected, report)
            if spec.name == "grids":
                problems += _grid_problems(rows, tolerance_m=tolerance_m, partial=bool(problems))
            if problems:
                raise ImportRejected(problems, layer=layer, path=path)
            report.seconds = time.monotonic() - clock
            if dry_run:
                raise _RollBack
            _record_load(spec, source, report, started_at=started_at, tolerance_m=tolerance_m, crs=crs)
    except _RollBack:
        pass
    return report


def export_layer(layer: str, path: str | Path, *, crs: str | None = None) -> ExportReport:
    """Write every feature of ``layer`` to ``path`` (format by extension), optionally reprojected."""
    spec = _export_spec(layer)
    path = Path(path)
    driver = _driver_for_export(path)
    target = _parse_crs(crs or STORAGE_CRS, error=ExportError)
    frame = _layer_frame(spec)
    if not _is_storage_crs(target):
        frame = frame.to_crs(target)
    frame, notes = _fit_to_driver(frame, driver)
    _write_frame(frame, path, driver=driver, layer=layer, geometry_type=spec.geom_type)
    return ExportReport(
        layer=layer, path=str(path), driver=driver, crs=_crs_name(target), features=len(frame),
        fields=[c for c in frame.columns if c != "geometry"], warnings=notes,
    )


def importable_layers() -> list[str]:
    """Names of the layers :func:`import_layer` accepts."""
    return [name for name, layer in _LAYERS.items() if layer.importable]


def exportable_layers() -> list[str]:
    """Names of the layers :func:`export_layer` accepts."""
    return [name for name, layer in _LAYERS.items() if layer.exportable]


class _RollBack(Exception):
    """Leaves a dry run's transaction without committing."""


# -- layers and their fields, derived from the models -------------------------------


@dataclass(frozen=True)
class _Layer:
    model_name: str
    importable: bool = True
    exportable: bool = True
    why_not: str = ""
    hidden: frozenset[str] = frozenset()  # fields never exported


_LAYERS: dict[str, _Layer] = {
    "grids": _Layer("Grid"),
    "buildings": _Layer("Building"),
    # a stream URL may carry the camera's credentials
    "cameras": _Layer("Camera", hidden=frozenset({"stream_url"})),
    "parking_spots": _Layer("ParkingSpot"),
    "no_parking_zones": _Layer("NoParkingZone"),
    "service_points": _Layer("ServicePoint"),
    "party_orgs": _Layer("PartyOrganization"),
    "incidents": _Layer("Incident"),
    "streets": _Layer("Street", importable=False, why_not="streets need street nodes, which cannot be imported yet"),
    "care_subjects": _Layer(
        "CareSubject", importable=False, exportable=False,
        why_not="care subjects are sensitive personal information and are never imported or exported as files",
    ),
}


@dataclass(frozen=True)
class _Field:
    """How one model field is read from a file and checked."""

    name: str
    kind: str  # str | int | float | bool | json | datetime | date
    required: bool
    nullable: bool
    default: Any
    max_length: int | None = None
    choices: tuple | None = None
    low: tuple[float, bool] | None = None  # (bound, inclusive)
    high: tuple[float, bool] | None = None
    regex: str | None = None

    def fallback(self) -> Any:
        """The value of a field the file leaves empty."""
        return None if self.nullable else self.default


@dataclass(frozen=True)
class _Fk:
    """A foreign key, given in files by the related feature's ``code``."""

    name: str  # model field, e.g. grid
    attname: str  # column, e.g. grid_id
    column: str  # file column, e.g. grid_code
    table: str  # related table
    self_ref: bool
    locate: bool  # when no code is given: the level-3 grid holding the feature


@dataclass(frozen=True)
class _Spec:
    name: str
    model: type
    table: str
    fields: tuple[_Field, ...]
    fks: tuple[_Fk, ...]
    geom_type: str  # Point | LineString | Polygon | MultiPolygon ...
    constraint_fields: dict  # constraint name -> field it checks
    hidden: frozenset[str]


def _import_spec(layer: str, path) -> _Spec:
    entry = _LAYERS.get(layer)
    if entry is None or not entry.importable:
        reason = entry.why_not if entry else f"unknown layer {layer!r}"
        problem = Problem(None, None, f"{reason}; importable layers: {', '.join(importable_layers())}")
        raise ImportRejected([problem], layer=layer, path=path)
    return _spec(layer)


def _export_spec(layer: str) -> _Spec:
    entry = _LAYERS.get(layer)
    if entry is None or not entry.exportable:
        reason = entry.why_not if entry else f"unknown layer {layer!r}"
        raise ExportError(f"{reason}; exportable layers: {', '.join(exportable_layers())}")
    return _spec(layer)


@lru_cache(maxsize=None)
def _spec(layer: str) -> _Spec:
    entry = _LAYERS[layer]
    # by name from Django's registry: the layers above are of every domain, not only the spatial core
    model = apps.get_model("onemap", entry.model_name)
    meta = model._meta
    rules = _constraint_rules(model)
    fields, fks = [], []
    for f in meta.concrete_fields:
        if isinstance(f, ForeignKey):
            if not any(x.name == "code" for x in f.related_model._meta.fields):
                continue  # a link to what has no code to exchange it by (who entered an incident: a user) stays here
            fks.append(_fk_spec(model, f))
        elif not (f.primary_key or isinstance(f, gis_models.GeometryField) or _db_managed(f)):
            fields.append(_field_spec(f, rules.get(f.name, {})))
    geom = meta.get_field("geom")
    return _Spec(
        name=layer, model=model, table=meta.db_table, fields=tuple(fields), fks=tuple(fks),
        geom_type=_GEOM_TYPES[geom.geom_type], constraint_fields=_constraint_fields(model), hidden=entry.hidden,
    )


_GEOM_TYPES = {
    "POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon",
    "MULTIPOINT": "MultiPoint", "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon",
}


def _db_managed(f) -> bool:
    return bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))


def _field_spec(f, rule: dict) -> _Field:
    kind = _field_kind(f)
    low, high = rule.get("low"), rule.get("high")
    if kind == "int":
        # the column type's own range (smallint, integer, positive ...) bounds what constraints leave open
        db_low, db_high = connection.ops.integer_field_range(f.get_internal_type())
        if db_low is not None and (low is None or low[0] < db_low):
            low = (db_low, True)
        if db_high is not None and (high is None or high[0] > db_high):
            high = (db_high, True)
    choices = tuple(value for value, _ in f.flatchoices) if f.choices else rule.get("in")
    return _Field(
        name=f.name, kind=kind, required=not f.null and not f.has_default(), nullable=f.null,
        default=f.get_default() if f.has_default() else None, max_length=getattr(f, "max_length", None),
        choices=choices, low=low, high=high, regex=rule.get("regex"),
    )


def _field_kind(f) -> str:
    from django.db import models

    for cls, kind in (
        (models.BooleanField, "bool"), (models.DateTimeField, "datetime"), (models.DateField, "date"),
        (models.IntegerField, "int"), (models.FloatField, "float"), (models.JSONField, "json"),
    ):
        if isinstance(f, cls):
            return kind
    return "str"


def _fk_spec(model, f) -> _Fk:
    related = f.related_model
    self_ref = related is model
    return _Fk(
        name=f.name, attname=f.attname, column=f"{f.name}_code", table=related._meta.db_table, self_ref=self_ref,
        locate=related._meta.db_table == "grids" and not self_ref,
    )


def _constraint_rules(model) -> dict[str, dict]:
    """Per field: bounds, allowed values and patterns read from the model's simple check constraints."""
    rules: dict[str, dict] = {}
    for constraint in model._meta.constraints:
        condition = getattr(constraint, "condition", None)
        if not isinstance(condition, Q) or condition.negated or condition.connector != Q.AND:
            continue  # OR-ed and negated conditions stay with the database
        for child in condition.children:
            if isinstance(child, tuple):
                _add_rule(rules, *child)
    return rules


def _add_rule(rules: dict, lookup: str, value) -> None:
    name, _, op = lookup.partition("__")
    rule = rules.setdefault(name, {})
    if op in {"gte", "gt"} and isinstance(value, (int, float)):
        rule["low"] = (value, op == "gte")
    elif op in {"lte", "lt"} and isinstance(value, (int, float)):
        rule["high"] = (value, op == "lte")
    elif op == "in" and isinstance(value, (list, tuple)):
        rule["in"] = tuple(value)
    elif op == "regex" and isinstance(value, str):
        rule["regex"] = value


def _constraint_fields(model) -> dict[str, str]:
    """Constraint name → the field it checks, to name the field of a database error."""
    names = {}
    for constraint in model._meta.constraints:
        condition = getattr(constraint, "condition", None)
        if isinstance(condition, Q):
            fields = sorted(condition.referenced_base_fields)
        elif condition is not None:
            fields = [e.name for e in condition.flatten() if isinstance(e, F)]
        else:
            fields = list(getattr(constraint, "fields", ()))
        if fields:
            names[constraint.name] = GEOMETRY_FIELD if fields[0] == "geom" else fields[0]
    return names


# -- reading a file -------------------------------------------------------------------


@dataclass
class _Source:
    frame: Any  # GeoDataFrame in EPSG:4326
    layer_name: str
    crs_name: str
    files: list[Path]

    def column_for(self, name: str) -> str | None:
        """The file's column for a field: exact, any case, or cut to a shapefile's 10 characters."""
        columns = {str(c).lower(): c for c in self.frame.columns if c != self.frame.geometry.name}
        for candidate in (name, name[:SHAPEFILE_NAME_LEN]):
            if candidate.lower() in columns:
                return columns[candidate.lower()]
        return None

    def ignored_columns(self, spec: _Spec) -> list[str]:
        used = {self.column_for(f.name) for f in spec.fields} | {self.column_for(k.column) for k in spec.fks}
        return [
            str(c) for c in self.frame.columns
            if c != self.frame.geometry.name and c not in used and str(c).lower() not in MANAGED_COLUMNS
        ]


def _read_source(path, *, crs: str | None, source_layer: str | None, layer: str) -> _Source:
    """Open the file, pick its layer, read it and bring it to EPSG:4326; file-level problems reject."""
    path = Path(path)
    problems: list[Problem] = []
    given_crs = _parse_crs(crs, problems=problems) if crs else None
    problems += _file_problems(path)
    frame, layer_name, crs_name = None, "", ""
    if not problems:
        layer_name = _pick_layer(path, source_layer=source_layer, layer=layer, problems=problems)
    if not problems:
        frame = _read_frame(path, layer_name, problems)
    if frame is not None:
        frame, crs_name = _to_storage_crs(frame, given_crs, crs, problems)
    if problems:
        raise ImportRejected(problems, layer=layer, path=path)
    return _Source(frame=frame, layer_name=layer_name, crs_name=crs_name, files=_files_of(path))


def _file_problems(path: Path) -> list[Problem]:
    if not path.exists():
        return [Problem(None, None, f"no such file: {path}")]
    if path.is_dir() or path.suffix.lower() not in READ_SUFFIXES:
        return [Problem(None, None, f"cannot import {path.name}: use a .gpkg, .geojson/.json or .shp file")]
    if path.suffix.lower() == ".shp":
        return _shapefile_problems(path)
    return []


def _shapefile_problems(path: Path) -> list[Problem]:
    """Missing sidecars and a .shp shorter than its header says (GDAL would read it as empty geometries)."""
    problems = [
        Problem(None, None, f"the shapefile's {suffix} file is missing (expected {path.with_suffix(suffix).name})")
        for suffix in (".shx", ".dbf")
        if _sidecar(path, suffix) is None
    ]
    with open(path, "rb") as fh:
        header = fh.read(100)
    size = path.stat().st_size
    if len(header) < 100 or struct.unpack(">i", header[0:4])[0] != 9994:
        problems.append(Problem(None, None, f"{path.name} is not a shapefile (bad header)"))
    elif struct.unpack(">i", header[24:28])[0] * 2 != size:
        declared = struct.unpack(">i", header[24:28])[0] * 2
        reason = f"{path.name} is truncated or corrupt: {size} bytes, its header says {declared}"
        problems.append(Problem(None, None, reason))
    return problems


def _sidecar(path: Path, suffix: str) -> Path | None:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def _files_of(path: Path) -> list[Path]:
    if path.suffix.lower() != ".shp":
        return [path]
    return [path, *(s for s in (_sidecar(path, x) for x in SHAPEFILE_SIDECARS) if s is not None)]


def _pick_layer(path: Path, *, source_layer: str | None, layer: str, problems: list[Problem]) -> str:
    import pyogrio

    try:
        names = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # any GDAL failure here means the file cannot be read at all
        problems.append(Problem(None, None, f"cannot read {path.name}: {_gdal_message(exc)}"))
        return ""
    if source_layer is not None:
        if source_layer not in names:
            reason = f"no layer {source_layer!r} in {path.name}; it has: {', '.join(names)}"
            problems.append(Problem(None, None, reason))
        return source_layer
    if len(names) == 1:
        return names[0]
    if layer in names:
        return layer
    problems.append(Problem(None, None, f"{path.name} has {len(names)} layers ({', '.join(names) or 'none'}); "
                                        "choose one with --source-layer"))
    return ""


def _read_frame(path: Path, layer_name: str, problems: list[Problem]):
    import pyogrio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL's notes on field types; values are checked below
            return pyogrio.read_dataframe(path, layer=layer_name, datetime_as_string=True)
    except Exception as exc:  # a corrupt or truncated file fails in many GDAL-specific ways
        problems.append(Problem(None, None, f"cannot read {path.name}: {_gdal_message(exc)}"))
        return None


def _gdal_message(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _to_storage_crs(frame, given, given_text: str | None, problems: list[Problem]):
    """The frame in EPSG:4326 and the name of the CRS it came in."""
    declared = frame.crs
    if declared is None and given is None:
        if given_text is None:
            reason = "the file declares no CRS; say which with --crs (e.g. --crs EPSG:4547)"
            problems.append(Problem(None, None, reason))
        return frame, ""
    if declared is not None and given is not None and not _same_crs(declared, given):
        reason = f"the file declares {_crs_name(declared)} but --crs says {_crs_name(given)}; drop --crs or fix the file"
        problems.append(Problem(None, None, reason))
        return frame, ""
    source = declared if declared is not None else given
    if declared is None:
        frame = frame.set_crs(source)
    if _is_storage_crs(source):
        return frame, _crs_name(source)
    try:
        return frame.to_crs(STORAGE_CRS), _crs_name(source)
    except Exception as exc:  # pyproj raises several types for impossible transformations
        problems.append(Problem(None, None, f"cannot transform from {_crs_name(source)} to {STORAGE_CRS}: {exc}"))
        return frame, ""


def _parse_crs(text: str, *, problems: list[Problem] | None = None, error: type[Exception] | None = None):
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        message = f"unknown CRS {text!r} ({_gdal_message(exc)})"
    if error is not None:
        raise error(message)
    problems.append(Problem(None, None, message))
    return None


def _same_crs(a, b) -> bool:
    """Equal CRSs, whichever way round their axes are declared (OGC:CRS84 is EPSG:4326 here)."""
    return a.equals(b, ignore_axis_order=True) or (a.to_epsg() is not None and a.to_epsg() == b.to_epsg())


def _crs_name(crs) -> str:
    authority = crs.to_authority()
    return ":".join(authority) if authority else crs.name


def _is_storage_crs(crs) -> bool:
    return crs.to_epsg() == 4326 or crs.equals("OGC:CRS84")


# -- checking features ------------------------------------------------------------------


@dataclass
class _Row:
    """One feature, checked and converted, ready to write."""

    number: int
    code: str
    values: dict[str, Any]  # field name -> value
    fk_codes: dict[str, str | None]  # fk name -> code (None: empty)
    geom: Any  # shapely, EPSG:4326, of the model's geometry type
    located: dict[str, int | None] = field(default_factory=dict)  # fk attname -> grid id found by location


def _check_features(spec: _Spec, source: _Source) -> tuple[list[_Row], dict[str, int], list[Problem]]:
    """The good rows, the codes of rejected ones (with their row), and every problem found."""
    columns = {f.name: source.column_for(f.name) for f in spec.fields}
    fk_columns = {k.name: source.column_for(k.column) for k in spec.fks}
    records = source.frame.drop(columns=source.frame.geometry.name).to_dict("records")
    rows, rejected, problems = [], {}, []
    for number, (record, geom) in enumerate(zip(records, source.frame.geometry.values), start=1):
        row, found = _check_feature(spec, number, record, geom, columns, fk_columns)
        problems += found
        if not found:
            rows.append(row)
        elif row.code:
            rejected.setdefault(row.code, number)
    duplicates = _duplicate_codes(records, columns["code"])
    duplicate_rows = {p.row for p in duplicates}
    return [r for r in rows if r.number not in duplicate_rows], rejected, problems + duplicates


def _check_feature(spec, number, record, geom, columns, fk_columns) -> tuple[_Row, list[Problem]]:
    problems, values = [], {}
    for f in spec.fields:
        column = columns[f.name]
        if column is None:
            if f.required:
                problems.append(Problem(number, f.name, "required field is missing (the file has no such column)"))
            continue
        value, reason = _convert(f, record[column])
        if reason:
            problems.append(Problem(number, f.name, reason))
        values[f.name] = value
    fk_codes = {}
    for k in spec.fks:
        column = fk_columns[k.name]
        if column is not None:
            code, reason = _convert(_CODE_REF, record[column])
            fk_codes[k.name] = code
            if reason:
                problems.append(Problem(number, k.column, reason))
    shape, reason = _check_geometry(geom, spec.geom_type)
    if reason:
        problems.append(Problem(number, GEOMETRY_FIELD, reason))
    row = _Row(number=number, code=values.get("code") or "", values=values, fk_codes=fk_codes, geom=shape)
    if spec.name == "grids" and not problems:
        problems += _grid_row_problems(row, has_parent_column=fk_columns.get("parent") is not None)
    return row, problems


_CODE_REF = _Field(name="code", kind="str", required=False, nullable=True, default=None, max_length=40)


def _duplicate_codes(records: list[dict], column: str | None) -> list[Problem]:
    if column is None:
        return []
    first: dict[str, int] = {}
    problems = []
    for number, record in enumerate(records, start=1):
        code, _ = _convert(_CODE_REF, record[column])
        if code is None:
            continue
        if code in first:
            problems.append(Problem(number, "code", f"code {code!r} is already used by row {first[code]}"))
        else:
            first[code] = number
    return problems


def _grid_row_problems(row: _Row, *, has_parent_column: bool) -> list[Problem]:
    """The hierarchy rules a single grid row can break on its own (the database checks them again)."""
    level, parent = row.values.get("level"), row.fk_codes.get("parent")
    if level == 1 and parent:
        return [Problem(row.number, "parent_code", "a level-1 grid has no parent; leave parent_code empty")]
    if level is not None and level > 1 and not parent:
        hint = "" if has_parent_column else " (the file has no parent_code column)"
        return [Problem(row.number, "parent_code", f"a level-{level} grid needs the code of its parent{hint}")]
    if parent and not (row.code.startswith(parent) and len(row.code) > len(parent)):
        return [Problem(row.number, "code", f"code {row.code} must extend its parent's code {parent}")]
    return []


# -- values ---------------------------------------------------------------------------------


def _convert(f: _Field, raw) -> tuple[Any, str | None]:
    """The value of field ``f`` for a raw file value, or the reason it cannot be one."""
    if _is_missing(raw, f):
        if f.required:
            return None, "required field is empty"
        return f.fallback(), None
    try:
        value = _CONVERTERS[f.kind](raw)
    except (TypeError, ValueError, OverflowError) as exc:
        detail = f" ({exc})" if isinstance(exc, _ReasonError) else ""
        return None, f"{_show(raw)} is not {_KIND_NAMES[f.kind]}{detail}"
    return value, _check_value(f, value)


def _is_missing(raw, f: _Field) -> bool:
    import pandas as pd

    if raw is None:
        return True
    if isinstance(raw, (list, dict)):
        return False
    if isinstance(raw, str):
        # an empty string is a value for optional free text, and "nothing" for everything else
        return raw.strip() == "" and (f.kind != "str" or f.required or f.nullable or f.choices is not None)
    try:
        return bool(pd.isna(raw))
    except (TypeError, ValueError):
        return False


def _check_value(f: _Field, value) -> str | None:
    """Why a converted value breaks the field's rules (length, choices, range, pattern), or None."""
    if f.kind == "str" and f.max_length is not None and len(value) > f.max_length:
        return f"{len(value)} characters long; at most {f.max_length} allowed"
    if f.choices is not None and value not in f.choices:
        return f"{_show(value)} is not one of: {', '.join(str(c) for c in f.choices)}"
    if f.low is not None:
        bound, inclusive = f.low
        if value < bound or (value == bound and not inclusive):
            rule = f"is below the minimum {bound}" if inclusive else f"must be greater than {bound}"
            return f"{_show(value)} {rule}"
    if f.high is not None:
        bound, inclusive = f.high
        if value > bound or (value == bound and not inclusive):
            rule = f"is above the maximum {bound}" if inclusive else f"must be less than {bound}"
            return f"{_show(value)} {rule}"
    if f.regex is not None and not re.search(f.regex, value):
        return f"{_show(value)} does not match the pattern {f.regex}"
    return None


def _show(value) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 60 else text[:57] + "..."


class _ReasonError(ValueError):
    """A conversion failure whose message is worth showing."""


def _to_str(raw) -> str:
    if hasattr(raw, "item"):
        raw = raw.item()
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # codes read as numbers: 410104003.0 -> "410104003"
    if isinstance(raw, (dict, list)):
        return json.dumps(raw, ensure_ascii=False)
    return str(raw).strip()


def _to_int(raw) -> int:
    if hasattr(raw, "item"):
        raw = raw.item()
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int):
        return raw
    number = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
    if not number.is_integer():
        raise ValueError(raw)
    return int(number)


def _to_float(raw) -> float:
    if hasattr(raw, "item"):
        raw = raw.item()
    if isinstance(raw, bool):
        raise ValueError(raw)
    number = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
    if not math.isfinite(number):
        raise ValueError(raw)
    return number


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _to_bool(raw) -> bool:
    if hasattr(raw, "item"):
        raw = raw.item()
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(raw)


def _to_datetime(raw) -> datetime:
    import pandas as pd

    if isinstance(raw, pd.Timestamp):
        value = raw.to_pydatetime()
    elif isinstance(raw, datetime):
        value = raw
    else:
        text = str(raw).strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = pd.Timestamp(text).to_pydatetime()  # GDAL's "2024/05/01 10:00:00+08" and friends
    if timezone.is_naive(value):
        value = timezone.make_aware(value)  # no offset in the file: the project's time zone
    return value


def _to_date(raw) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    return date.fromisoformat(str(raw).strip()[:10])


def _to_json(raw):
    if isinstance(raw, (dict, list)):
        return raw
    try:
        return json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise _ReasonError(exc.msg) from None


_CONVERTERS = {
    "str": _to_str, "int": _to_int, "float": _to_float, "bool": _to_bool,
    "datetime": _to_datetime, "date": _to_date, "json": _to_json,
}
_KIND_NAMES = {
    "str": "text", "int": "a whole number", "float": "a finite number", "bool": "true or false",
    "datetime": "a date and time (ISO 8601)", "date": "a date (YYYY-MM-DD)", "json": "JSON",
}


# -- geometry ---------------------------------------------------------------------------------


def _check_geometry(geom, geom_type: str) -> tuple[Any, str | None]:
    """The geometry as the model stores it (2D, Multi where needed), or why it cannot be stored."""
    import numpy as np
    import shapely
    from shapely.validation import explain_validity

    if geom is None:
        return None, "the feature has no geometry"
    if geom.is_empty:
        return None, "the geometry is empty"
    geom = shapely.force_2d(geom)
    shape = _as_type(geom, geom_type)
    if shape is None:
        return None, f"expected a {geom_type}, got a {geom.geom_type}"
    coords = shapely.get_coordinates(shape)
    if not np.isfinite(coords).all():
        return None, "coordinates could not be transformed to EPSG:4326 (is the CRS right?)"
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        return None, "coordinates fall outside longitude/latitude range after transformation (is the CRS right?)"
    if not shape.is_valid:
        return None, f"invalid geometry: {explain_validity(shape)}"
    return shape, None


def _as_type(geom, geom_type: str):
    """``geom`` as ``geom_type``: a single part promoted to Multi, a one-part Multi taken apart; else None."""
    from shapely.geometry import MultiLineString, MultiPoint, MultiPolygon

    multi = {"MultiPolygon": MultiPolygon, "MultiPoint": MultiPoint, "MultiLineString": MultiLineString}
    if geom.geom_type == geom_type:
        return geom
    if geom_type in multi and geom.geom_type == geom_type[len("Multi"):]:
        return multi[geom_type]([geom])
    if geom.geom_type == f"Multi{geom_type}" and len(geom.geoms) == 1:
        return geom.geoms[0]
    return None


# -- writing ------------------------------------------------------------------------------------


@dataclass
class _WriteState:
    """Ids by code per referenced table, and what became of each row."""

    ids: dict[str, dict[str, int]]
    rejected: dict[str, int]  # code -> row number, of rows not written
    problems: list[Problem] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def _write_rows(spec: _Spec, rows: list[_Row], rejected: dict[str, int], report: ImportReport) -> list[Problem]:
    """Upsert the rows by code; the problems references and the database find are returned."""
    given_fks = {k.name for k in spec.fks if any(k.name in r.fk_codes for r in rows)}
    report.located, report.unlocated = _locate(spec, rows)
    given_fks |= {k.name for k in spec.fks if any(k.attname in r.located for r in rows)}
    ordered, problems = _parents_first(spec, rows)
    statement = _upsert_statement(spec, rows, given_fks)
    try:
        with transaction.atomic():  # the quick way: one savepoint for all rows
            state = _upsert(spec, ordered, statement, given_fks, rejected, isolate=False)
    except DatabaseError:
        # a row broke a database rule: again with one savepoint per row, to name every such row
        state = _upsert(spec, ordered, statement, given_fks, rejected, isolate=True)
    report.inserted, report.updated, report.unchanged = state.inserted, state.updated, state.unchanged
    return problems + state.problems


def _locate(spec: _Spec, rows: list[_Row]) -> tuple[int, int]:
    """Give rows without a grid code the level-3 grid holding them; (located, outside every grid)."""
    from gis.spatial.selectors import grid_ids_for_points

    fk = next((k for k in spec.fks if k.locate), None)
    todo = [r for r in rows if fk is not None and not r.fk_codes.get(fk.name)]
    if not todo:
        return 0, 0
    points = [r.geom.representative_point() for r in todo]
    ids = grid_ids_for_points([(p.x, p.y) for p in points])
    for row, grid_id in zip(todo, ids):
        row.located[fk.attname] = grid_id
    return len(todo), sum(1 for i in ids if i is None)


def _parents_first(spec: _Spec, rows: list[_Row]) -> tuple[list[_Row], list[Problem]]:
    """Rows ordered so a parent in the same file is written before its children; cycles are problems."""
    fk = next((k for k in spec.fks if k.self_ref), None)
    if fk is None:
        return list(rows), []
    waiting = {r.code for r in rows}
    ordered: list[_Row] = []
    remaining = list(rows)
    while remaining:
        ready = [r for r in remaining if (r.fk_codes.get(fk.name) or "") not in waiting]
        if not ready:
            break
        ordered += ready
        waiting -= {r.code for r in ready}
        remaining = [r for r in remaining if r.code in waiting]
    cycle = "is part of a cycle of parents"
    problems = [Problem(r.number, fk.column, f"{r.fk_codes[fk.name]!r} {cycle}") for r in remaining]
    return ordered, problems


def _upsert(spec, rows, statement, given_fks, rejected, *, isolate: bool) -> _WriteState:
    state = _WriteState(ids=_known_ids(spec, rows), rejected=dict(rejected))
    for row in rows:
        fk_ids, problems = _resolve(spec, row, state, given_fks)
        if not problems:
            try:
                if isolate:
                    with transaction.atomic():
                        result = _execute(statement, _params(spec, row, fk_ids))
                else:
                    result = _execute(statement, _params(spec, row, fk_ids))
            except DatabaseError as exc:
                if not isolate:
                    raise
                problems = [_database_problem(spec, row, exc)]
        if problems:
            state.problems += problems
            state.rejected[row.code] = row.number
        else:
            _count(state, spec, row, result)
    return state


def _known_ids(spec: _Spec, rows: list[_Row]) -> dict[str, dict[str, int]]:
    """Ids of every code the rows name, per table, in one query per table."""
    wanted: dict[str, set[str]] = {spec.table: {r.code for r in rows}}
    for k in spec.fks:
        wanted.setdefault(k.table, set()).update(r.fk_codes[k.name] for r in rows if r.fk_codes.get(k.name))
    return {table: _ids_by_code(table, codes) for table, codes in wanted.items()}


def _ids_by_code(table: str, codes: set[str]) -> dict[str, int]:
    from psycopg import sql

    if not codes:
        return {}
    query = sql.SQL("SELECT code, id FROM {} WHERE code = ANY(%s)").format(sql.Identifier(table))
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), [sorted(codes)])
        return dict(cursor.fetchall())


def _resolve(spec: _Spec, row: _Row, state: _WriteState, given_fks: set[str]) -> tuple[dict, list[Problem]]:
    """Foreign-key ids of the row, from the codes it names (or the grid found by location)."""
    ids, problems = {}, []
    for k in spec.fks:
        if k.name not in given_fks:
            continue
        code = row.fk_codes.get(k.name)
        if k.attname in row.located:
            ids[k.attname] = row.located[k.attname]
        elif not code:
            ids[k.attname] = None
        elif code in state.ids.get(k.table, {}):
            ids[k.attname] = state.ids[k.table][code]
        elif k.self_ref and code in state.rejected:
            reason = f"its parent {code} (row {state.rejected[code]}) was rejected"
            problems.append(Problem(row.number, k.column, reason))
        else:
            problems.append(Problem(row.number, k.column, f"no {k.table} feature has code {code!r}"))
    return ids, problems


def _upsert_statement(spec: _Spec, rows: list[_Row], given_fks: set[str]) -> str:
    """INSERT ... ON CONFLICT (code) DO UPDATE of what the file gives, only where something changed."""
    from psycopg import sql

    ident = sql.Identifier
    given = {name for r in rows for name in r.values} - {"code"}
    fk_columns = [k.attname for k in spec.fks if k.name in given_fks]
    insert = [f.name for f in spec.fields] + fk_columns + ["geom"]
    update = [f.name for f in spec.fields if f.name in given] + fk_columns
    values = [_placeholder(f.kind) for f in spec.fields] + [sql.Placeholder()] * len(fk_columns)
    values.append(sql.SQL("ST_GeomFromWKB({}, 4326)").format(sql.Placeholder()))
    statement = sql.SQL(
        "INSERT INTO {table} AS t ({insert}) VALUES ({values}) "
        "ON CONFLICT (code) DO UPDATE SET {sets}, updated_at = now() "
        "WHERE {changed} "
        # the same vertices within GEOMETRY_SAME_DEG (text formats round the last digits) is no change
        "OR ST_NPoints(t.geom) <> ST_NPoints(EXCLUDED.geom) "
        "OR ST_HausdorffDistance(t.geom, EXCLUDED.geom) > {same} "
        "RETURNING id, (xmax = 0) AS inserted"
    ).format(
        table=ident(spec.table),
        insert=sql.SQL(", ").join(map(ident, insert)),
        values=sql.SQL(", ").join(values),
        sets=sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(ident(c), ident(c)) for c in [*update, "geom"]),
        changed=_row_changed(update, datetimes={f.name for f in spec.fields if f.kind == "datetime"}),
        same=sql.Placeholder(),
    )
    connection.ensure_connection()
    return statement.as_string(connection.connection)


def _placeholder(kind: str):
    from psycopg import sql

    return sql.SQL("{}::jsonb").format(sql.Placeholder()) if kind == "json" else sql.Placeholder()


def _row_changed(columns: list[str], *, datetimes: set[str] = frozenset()):
    """``ROW(t.a, ...) IS DISTINCT FROM ROW(EXCLUDED.a, ...)``; FALSE with no columns.

    Dates and times in ``datetimes`` are compared to the millisecond: GeoPackage and
    GeoJSON (GDAL's date-time field) keep milliseconds, so a time stored to the
    microsecond (a camera's or a sensor's) comes back from its own export a little
    shorter, and that is no change.
    """
    from psycopg import sql

    if not columns:
        return sql.SQL("FALSE")
    ident = sql.Identifier

    def side(table: str, column: str):
        value = sql.SQL("{}.{}").format(sql.SQL(table), ident(column))
        return sql.SQL("date_trunc('milliseconds', {})").format(value) if column in datetimes else value

    return sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(
        sql.SQL(", ").join(side("t", c) for c in columns),
        sql.SQL(", ").join(side("EXCLUDED", c) for c in columns),
    )


def _params(spec: _Spec, row: _Row, fk_ids: dict) -> list:
    params = []
    for f in spec.fields:
        value = row.values[f.name] if f.name in row.values else f.fallback()
        params.append(json.dumps(value, ensure_ascii=False) if f.kind == "json" and value is not None else value)
    params += [fk_ids[k.attname] for k in spec.fks if k.attname in fk_ids]
    params.append(row.geom.wkb)
    params.append(GEOMETRY_SAME_DEG)
    return params


def _execute(statement: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


def _count(state: _WriteState, spec: _Spec, row: _Row, result) -> None:
    if result is None:
        state.unchanged += 1
        return
    row_id, inserted = result
    state.ids.setdefault(spec.table, {})[row.code] = row_id
    if inserted:
        state.inserted += 1
    else:
        state.updated += 1


def _database_problem(spec: _Spec, row: _Row, exc: DatabaseError) -> Problem:
    """A database error (constraint, trigger) as a problem of the row that caused it."""
    diag = getattr(exc.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    message = getattr(diag, "message_primary", None) or _gdal_message(exc)
    field_name = spec.constraint_fields.get(constraint)
    return Problem(row.number, field_name, f"rejected by the database: {message}")


# -- grid topology --------------------------------------------------------------------------------


def _grid_problems(rows: list[_Row], *, tolerance_m: float, partial: bool) -> list[Problem]:
    """Tiling problems (inside parent, no overlaps, no gaps) that involve the imported grids.

    With ``partial`` (some rows were not written) gaps are left out: they may be the missing rows.
    """
    from gis.spatial.topology import grid_tiling_problems

    numbers = {r.code: r.number for r in rows}
    parents = {r.fk_codes.get("parent") for r in rows} - {None}
    try:
        with transaction.atomic():
            found = grid_tiling_problems(tolerance_m=tolerance_m)
    except DatabaseError as exc:
        return [Problem(None, GEOMETRY_FIELD, f"grid tiling could not be checked: {_gdal_message(exc)}")]
    problems = []
    for p in found:
        if partial and p.kind == "gap":
            continue
        if p.grid in numbers or p.other in numbers or (p.kind == "gap" and p.grid in parents):
            row = numbers.get(p.grid) or numbers.get(p.other)
            problems.append(Problem(row, GEOMETRY_FIELD, p.message))
    return problems


# -- recording ------------------------------------------------------------------------------------


def _record_load(spec: _Spec, source: _Source, report: ImportReport, *, started_at, tolerance_m, crs) -> None:
    from gis.spatial.models import DataLoad

    DataLoad.objects.create(
        kind="import",
        layer=spec.name,
        parameters={
            "path": str(Path(report.path).resolve()), "source_layer": source.layer_name, "source_crs": source.crs_name,
            "crs": crs, "tolerance_m": tolerance_m,
        },
        counts={
            "features": report.features, "inserted": report.inserted, "updated": report.updated,
            "unchanged": report.unchanged, "located": report.located,
        },
        checksum=_file_checksum(source.files),
        started_at=started_at,
    )


def _file_checksum(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.suffix.lower().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# -- export ---------------------------------------------------------------------------------------


_WRITE_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


def _driver_for_export(path: Path) -> str:
    driver = _WRITE_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise ExportError(f"cannot tell the format of {path.name}: use .gpkg, .geojson/.json or .shp")
    if not path.parent.is_dir():
        raise ExportError(f"directory {path.parent} does not exist")
    return driver


def _layer_frame(spec: _Spec):
    """Every feature of the layer as a GeoDataFrame in EPSG:4326, ordered by code, foreign keys as codes."""
    import geopandas as gpd
    import pandas as pd
    import shapely
    from django.contrib.gis.db.models.functions import AsWKB

    fields = [f for f in spec.fields if f.name not in spec.hidden]
    codes = {k.column: F(f"{k.name}__code") for k in spec.fks}
    query = spec.model.objects.order_by("code").values(*[f.name for f in fields], **codes, geom_wkb=AsWKB("geom"))
    records = list(query)
    geometry = shapely.from_wkb([bytes(r.pop("geom_wkb")) for r in records]) if records else []
    columns = {f.name: _column(f, [r[f.name] for r in records]) for f in fields}
    columns |= {c: pd.Series([r[c] for r in records], dtype="object") for c in codes}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometry, crs=STORAGE_CRS), crs=STORAGE_CRS)


def _column(f: _Field, values: list):
    import pandas as pd

    if f.kind == "json":
        return pd.Series([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], dtype="object")
    if f.kind == "int":
        return pd.Series(values, dtype="Int64")
    if f.kind == "float":
        return pd.Series(values, dtype="float64")
    if f.kind == "bool":
        return pd.Series(values, dtype="boolean")
    if f.kind == "datetime":
        return pd.to_datetime(pd.Series(values, dtype="object"), utc=True)
    return pd.Series(values, dtype="object")


def _fit_to_driver(frame, driver: str):
    """Shapefiles: names cut to 10 characters, dates as ISO text, columns too long left out, with notes."""
    if driver != "ESRI Shapefile":
        return frame, []
    notes, frame = [], frame.copy()
    for column in [c for c in frame.columns if c != "geometry"]:
        series = frame[column]
        if str(series.dtype).startswith("datetime64"):
            frame[column] = series.map(lambda v: None if v is None or v != v else v.isoformat()).astype("object")
        elif series.dtype == "object":
            long = int(series.map(lambda v: isinstance(v, str) and len(v.encode()) > SHAPEFILE_TEXT_LEN).sum())
            if long:
                # a cut value is a wrong value; an absent column leaves the stored one alone on re-import
                frame = frame.drop(columns=column)
                notes.append(f"{column} left out: {long} value(s) are longer than the {SHAPEFILE_TEXT_LEN} bytes "
                             "a shapefile field holds (use GeoPackage to keep them)")
    renamed = {c: c[:SHAPEFILE_NAME_LEN] for c in frame.columns if c != "geometry" and len(c) > SHAPEFILE_NAME_LEN}
    if renamed:
        notes.append("field names cut to 10 characters: " + ", ".join(f"{a} → {b}" for a, b in renamed.items()))
    return frame.rename(columns=renamed), notes


def _write_frame(frame, path: Path, *, driver: str, layer: str, geometry_type: str) -> None:
    import pyogrio

    options: dict[str, Any] = {"layer": layer} if driver == "GPKG" else {}
    if driver == "ESRI Shapefile":
        options["encoding"] = "UTF-8"
    if driver == "GeoJSON":
        options["layer_options"] = {"SIGNIFICANT_FIGURES": 17}  # doubles survive the text round trip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the shapefile limits are reported in the export notes
        pyogrio.write_dataframe(frame, path, driver=driver, geometry_type=geometry_type, **options)
