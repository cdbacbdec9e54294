"""Camera calibration: homographies between the image, the façade plane (metres) and the ground (lon/lat).

The JSON is the one in DESIGN.md. The façade frame has ``u`` metres along the
façade from its left ground corner ``origin`` toward ``azimuth_deg`` and ``v``
metres above ground; world positions are computed in EPSG:4547 (metres, the
demo's metric CRS) and returned in EPSG:4326.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METRIC_CRS = "EPSG:4547"
TOP_KEYS = {"image_size", "ground", "facade", "masks"}
# column_width_m and window_columns_m are optional extensions: the bay width, or the u of each
# window column's centre, so that a release point can be given a window column
FACADE_KEYS = {"building", "origin", "azimuth_deg", "floor_height_m", "ground_floor", "image_points",
               "facade_points", "column_width_m", "window_columns_m"}
FACADE_REQUIRED = {"origin", "azimuth_deg", "floor_height_m", "image_points", "facade_points"}
GROUND_KEYS = {"image_points", "world_points"}


class CalibrationError(ValueError):
    """The calibration JSON is unusable; the message says which key to fix."""


@dataclass(frozen=True)
class WorldPoint:
    lon: float
    lat: float
    floor: int | None
    u_m: float | None
    v_m: float | None


@dataclass(frozen=True)
class FacadeSpec:
    building: str | None
    origin_lonlat: tuple[float, float]
    azimuth_deg: float
    floor_height_m: float
    ground_floor: int
    column_width_m: float | None
    window_columns_m: tuple[float, ...]  # u of each window column's centre, left to right
    image_points: np.ndarray  # N×2 pixels
    facade_points: np.ndarray  # N×2 metres (u, v)


class Calibration:
    """One camera's calibration, validated; every mapping is a 3×3 homography."""

    def __init__(self, *, image_size: tuple[int, int], facade: FacadeSpec | None,
                 ground: tuple[np.ndarray, np.ndarray] | None, masks: tuple[np.ndarray, ...]):
        self.image_size = image_size
        self.facade = facade
        self.ground = ground
        self.masks = masks
        self._to_facade = self._from_facade = self._to_ground = None
        self._origin_xy = None
        if facade is not None:
            self._to_facade = _homography(facade.image_points, facade.facade_points, "facade")
            self._from_facade = np.linalg.inv(self._to_facade)
            self._origin_xy = _transformer("EPSG:4326", METRIC_CRS).transform(*facade.origin_lonlat)
        if ground is not None:
            # the ground homography is fitted in metres, not degrees
            metric = np.column_stack(_transformer("EPSG:4326", METRIC_CRS).transform(ground[1][:, 0], ground[1][:, 1]))
            self._ground_origin = metric.mean(axis=0)
            self._to_ground = _homography(ground[0], metric - self._ground_origin, "ground")

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        """Validate the calibration JSON of DESIGN.md; unknown keys are refused by name."""
        if not isinstance(data, dict):
            raise CalibrationError(f"calibration must be a JSON object, got {type(data).__name__}")
        _no_unknown(data, TOP_KEYS, "calibration")
        if "image_size" not in data:
            raise CalibrationError('calibration needs "image_size": [width, height]')
        size = data["image_size"]
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(_is_number(s) and s > 0 for s in size)):
            raise CalibrationError(f'"image_size" must be [width, height] in pixels, got {size!r}')
        facade = _facade(data["facade"]) if data.get("facade") is not None else None
        ground = _ground(data["ground"]) if data.get("ground") is not None else None
        masks = tuple(_points(m, f"masks[{i}]", minimum=3) for i, m in enumerate(data.get("masks") or []))
        return cls(image_size=(int(size[0]), int(size[1])), facade=facade, ground=ground, masks=masks)

    def scaled_to(self, width: int, height: int) -> "Calibration":
        """The same calibration for frames of another size with the same aspect ratio."""
        w0, h0 = self.image_size
        if (width, height) == (w0, h0):
            return self
        sx, sy = width / w0, height / h0
        if abs(sx - sy) > 0.01 * max(sx, sy):
            raise CalibrationError(
                f"the video is {width}×{height} but the calibration was made for {w0}×{h0}; "
                "calibrate the camera at this resolution (the aspect ratio differs)"
            )
        scale = np.array([sx, sy])
        facade = None
        if self.facade is not None:
            f = self.facade
            facade = FacadeSpec(f.building, f.origin_lonlat, f.azimuth_deg, f.floor_height_m, f.ground_floor,
                                f.column_width_m, f.window_columns_m, f.image_points * scale, f.facade_points)
        ground = (self.ground[0] * scale, self.ground[1]) if self.ground is not None else None
        return Calibration(image_size=(width, height), facade=facade, ground=ground,
                           masks=tuple(m * scale for m in self.masks))

    # -- mappings ---------------------------------------------------------------

    def image_to_facade(self, x: float, y: float) -> tuple[float, float]:
        """Façade metres (u along, v up) of an image pixel."""
        u, v = self.image_to_facade_many(np.array([[x, y]]))[0]
        return float(u), float(v)

    def image_to_facade_many(self, points: np.ndarray) -> np.ndarray:
        """Façade metres (N×2) of image pixels (N×2)."""
        return _apply(self._need_facade()._to_facade, points)

    def facade_to_image(self, u: float, v: float) -> tuple[float, float]:
        """The image pixel of a façade point in metres."""
        x, y = _apply(self._need_facade()._from_facade, np.array([[u, v]]))[0]
        return float(x), float(y)

    def facade_to_world(self, x: float, y: float) -> WorldPoint:
        """Lon/lat and floor of the façade point seen at image pixel (x, y)."""
        u, v = self.image_to_facade(x, y)
        return self.facade_point_to_world(u, v)

    def facade_point_to_world(self, u: float, v: float) -> WorldPoint:
        """Lon/lat and floor of a façade point given in metres."""
        f = self._need_facade().facade
        az = math.radians(f.azimuth_deg)
        ex, ey = self._origin_xy[0] + u * math.sin(az), self._origin_xy[1] + u * math.cos(az)
        lon, lat = _transformer(METRIC_CRS, "EPSG:4326").transform(ex, ey)
        return WorldPoint(lon=float(lon), lat=float(lat), floor=self.floor_at(v), u_m=float(u), v_m=float(v))

    def image_to_ground(self, x: float, y: float) -> tuple[float, float]:
        """Lon/lat of the ground point seen at image pixel (x, y)."""
        if self._to_ground is None:
            raise CalibrationError('this calibration has no "ground" block, so image points cannot be put on the ground')
        d = _apply(self._to_ground, np.array([[x, y]]))[0] + self._ground_origin
        lon, lat = _transformer(METRIC_CRS, "EPSG:4326").transform(d[0], d[1])
        return float(lon), float(lat)

    def ground_to_image_many(self, lonlat: np.ndarray) -> np.ndarray:
        """Image pixels (N×2) of ground points given in lon/lat (N×2); NaN for points behind the camera."""
        if self._to_ground is None:
            raise CalibrationError('this calibration has no "ground" block, so ground points cannot be put in the image')
        lonlat = np.atleast_2d(np.asarray(lonlat, dtype=float))
        x, y = _transformer("EPSG:4326", METRIC_CRS).transform(lonlat[:, 0], lonlat[:, 1])
        return self.metric_to_image_many(np.column_stack([x, y]))

    def metric_to_image_many(self, xy: np.ndarray) -> np.ndarray:
        """Image pixels (N×2) of ground points in EPSG:4547 metres (N×2); NaN for points behind the camera."""
        if self._to_ground is None:
            raise CalibrationError('this calibration has no "ground" block, so ground points cannot be put in the image')
        inverse = np.linalg.inv(self._to_ground)
        pts = np.atleast_2d(np.asarray(xy, dtype=float)) - self._ground_origin
        out = np.hstack([pts, np.ones((len(pts), 1))]) @ inverse.T
        # the calibration's own points fix which sign of the third coordinate lies in front of the camera
        ref = np.hstack([self.ground[0][:1], np.ones((1, 1))]) @ self._to_ground.T
        front = np.sign(ref[0, 2])
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = out[:, :2] / out[:, 2:3]
        pixels[np.sign(out[:, 2]) != front] = np.nan
        return pixels

    def image_to_metric_many(self, points: np.ndarray) -> np.ndarray:
        """EPSG:4547 metres (N×2) of the ground points seen at image pixels (N×2)."""
        if self._to_ground is None:
            raise CalibrationError('this calibration has no "ground" block, so image points cannot be put on the ground')
        return _apply(self._to_ground, points) + self._ground_origin

    def floor_at(self, v_m: float) -> int:
        """The floor at height v_m metres on the façade (ground_floor + whole floors below)."""
        f = self._need_facade().facade
        return f.ground_floor + int(math.floor(max(v_m, 0.0) / f.floor_height_m))

    def column_at(self, u_m: float) -> int | None:
        """The window column (1 = leftmost) at u_m metres along the façade, when the columns are known."""
        f = self._need_facade().facade
        if f.window_columns_m:
            return 1 + int(np.argmin([abs(u_m - c) for c in f.window_columns_m]))
        if f.column_width_m is None:
            return None
        return 1 + int(math.floor(max(u_m, 0.0) / f.column_width_m))

    # -- regions ---------------------------------------------------------------

    def facade_polygon(self) -> np.ndarray:
        """The façade's outline in the image (the calibration's image points, in order)."""
        return self._need_facade().facade.image_points

    def facade_extent_m(self) -> tuple[float, float, float, float]:
        """(u_min, u_max, v_min, v_max) of the calibrated façade points."""
        p = self._need_facade().facade.facade_points
        return float(p[:, 0].min()), float(p[:, 0].max()), float(p[:, 1].min()), float(p[:, 1].max())

    def _need_facade(self) -> "Calibration":
        if self._to_facade is None:
            raise CalibrationError('this calibration has no "facade" block; add one to locate façade points and floors')
        return self


# -- validation helpers ---------------------------------------------------------


def _facade(data) -> FacadeSpec:
    if not isinstance(data, dict):
        raise CalibrationError('"facade" must be an object')
    _no_unknown(data, FACADE_KEYS, "facade")
    missing = sorted(FACADE_REQUIRED - data.keys())
    if missing:
        raise CalibrationError(f"facade block is missing {', '.join(missing)}")
    image = _points(data["image_points"], "facade.image_points", minimum=4)
    facade = _points(data["facade_points"], "facade.facade_points", minimum=4)
    if len(image) != len(facade):
        raise CalibrationError(
            f"facade.image_points has {len(image)} points but facade.facade_points has {len(facade)}; pair them one to one"
        )
    origin = data["origin"]
    if not (isinstance(origin, (list, tuple)) and len(origin) == 2 and all(_is_number(c) for c in origin)
            and -180 <= origin[0] <= 180 and -90 <= origin[1] <= 90):
        raise CalibrationError(f"facade.origin must be [lon, lat] in EPSG:4326, got {origin!r}")
    if not _is_number(data["azimuth_deg"]):
        raise CalibrationError("facade.azimuth_deg must be a number of degrees clockwise from north")
    fh = data["floor_height_m"]
    if not (_is_number(fh) and 1.5 <= fh <= 10):
        raise CalibrationError(f"facade.floor_height_m must be 1.5–10 metres, got {fh!r}")
    gf = data.get("ground_floor", 1)
    if not isinstance(gf, int) or isinstance(gf, bool) or not -5 <= gf <= 5:
        raise CalibrationError(f"facade.ground_floor must be an integer from -5 to 5, got {gf!r}")
    cw = data.get("column_width_m")
    if cw is not None and not (_is_number(cw) and 0.5 <= cw <= 30):
        raise CalibrationError(f"facade.column_width_m must be 0.5–30 metres, got {cw!r}")
    columns = data.get("window_columns_m") or []
    if not (isinstance(columns, list) and all(_is_number(c) for c in columns)
            and all(a < b for a, b in zip(columns, columns[1:]))):
        raise CalibrationError("facade.window_columns_m must be a list of increasing u metres (column centres)")
    return FacadeSpec(
        building=data.get("building"), origin_lonlat=(float(origin[0]), float(origin[1])),
        azimuth_deg=float(data["azimuth_deg"]), floor_height_m=float(fh), ground_floor=gf,
        column_width_m=float(cw) if cw is not None else None,
        window_columns_m=tuple(float(c) for c in columns), image_points=image, facade_points=facade,
    )


def _ground(data) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, dict):
        raise CalibrationError('"ground" must be an object')
    _no_unknown(data, GROUND_KEYS, "ground")
    image = _points(data.get("image_points"), "ground.image_points", minimum=4)
    world = _points(data.get("world_points"), "ground.world_points", minimum=4)
    if len(image) != len(world):
        raise CalibrationError("ground.image_points and ground.world_points must pair one to one")
    return image, world


def _no_unknown(data: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise CalibrationError(
            f"unknown key(s) in {where}: {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )


def _points(value, where: str, *, minimum: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where} must be a list of [x, y] pairs") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < minimum or not np.isfinite(arr).all():
        raise CalibrationError(f"{where} must be at least {minimum} [x, y] pairs of finite numbers")
    return arr


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _homography(src: np.ndarray, dst: np.ndarray, what: str) -> np.ndarray:
    import cv2

    h, _ = cv2.findHomography(src.astype(np.float64), dst.astype(np.float64), 0)
    if h is None or not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-15:
        raise CalibrationError(
            f"the {what} points are degenerate (collinear or repeated); measure ≥4 points in general position"
        )
    return h


def _apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.atleast_2d(np.asarray(points, dtype=float))
    ones = np.ones((len(pts), 1))
    out = np.hstack([pts, ones]) @ h.T
    return out[:, :2] / out[:, 2:3]


_TRANSFORMERS: dict[tuple[str, str], object] = {}


def _transformer(src: str, dst: str):
    from pyproj import Transformer

    key = (src, dst)
    if key not in _TRANSFORMERS:
        _TRANSFORMERS[key] = Transformer.from_crs(src, dst, always_xy=True)
    return _TRANSFORMERS[key]
