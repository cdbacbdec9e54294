"""Parking clips the project renders: a car park seen by a calibrated camera, with per-frame ground truth.

A scene is a camera (position, mounting height, heading, field of view, and the tilt that makes
its own ground calibration come out) and the spots and no-parking zones near it, all in metres
(EPSG:4547). :func:`scene_from_demo` takes them from the demo community's generator (no
database; ``data.parking_clips.demo_parking_cameras`` lists them); :func:`scene_for` from any
camera row and its layers. :func:`plan` writes a script
from a seed: cars already parked, cars arriving and leaving (each manoeuvre drives along the lane
past other spots), cars driving past, cars stopping in the fire lane (some longer than the limit,
some not), moving shadows (a building's shadow edge sweeping the spots, soft cloud shadows, each
car's own shadow), or night (low light and noise, street lamps, headlights sweeping the ground).
:func:`render_clip` writes it as an MJPG clip and returns its truth: per frame, which spots are
occupied (a car covers at least ``COVER_SHARE`` of the spot), and the illegal-parking stops.
Deterministic from the seed; no outside media.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.camera_model import PinholeCamera
from vision.calibration import METRIC_CRS, Calibration, _transformer
from vision.parking import ParkingLayout, Place

WIDTH, HEIGHT, FPS = 640, 360, 5.0
CAR_LEN, CAR_WIDTH = 4.4, 1.8
LANE_OFFSET_M = 5.25  # the demo's lane centre lies this far from the middle of its row of spots
COVER_SHARE = 0.4  # a spot is occupied while a car covers at least this share of it
PALETTE = ((235, 235, 235), (170, 172, 175), (35, 35, 38), (40, 40, 170), (150, 80, 30), (60, 110, 60),
           (110, 110, 115), (20, 120, 200), (200, 200, 190))  # BGR: white, silver, black, red, blue, ...


@dataclass(frozen=True)
class ParkingScene:
    camera: PinholeCamera  # at the render size
    calibration: dict  # the camera's own (any size of the same aspect ratio)
    layout: ParkingLayout
    spots: tuple  # ((code, shapely polygon in metres), ...)
    zones: tuple  # ((code, reason, polygon), ...)
    lane: tuple  # (point on the lane's centre line, unit direction) in metres
    fire_lane: object | None  # the zone polygon cars stop in for illegal parking


@dataclass
class Car:
    keys: list  # [(t, x, y)], the car's centre in metres; between keys it moves in a straight line
    colour: tuple
    lights: bool = False  # headlights on (at night every moving car)
    axis: tuple | None = None  # the direction it points (a parked car: its spot's long side); None: the lane's

    def at(self, t: float):
        """(x, y) at time t, or None when the car is not in the scene."""
        k = self.keys
        if t < k[0][0] or t > k[-1][0]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(k, k[1:]):
            if t0 <= t <= t1:
                f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
        return k[-1][1], k[-1][2]

    def moving(self, t: float) -> bool:
        for (t0, x0, y0), (t1, x1, y1) in zip(self.keys, self.keys[1:]):
            if t0 <= t < t1:
                return (x0, y0) != (x1, y1)
        return False


@dataclass
class Script:
    seconds: float
    fps: float
    night: bool
    shadows: bool
    seed: int = 0
    cars: list[Car] = field(default_factory=list)
    stops: list[dict] = field(default_factory=list)  # fire-lane stops: {zone, rest_t, leave_t, illegal}
    shadow_edge: tuple = (0.0, 0.0, 0.0)  # a building's shadow: (offset at t=0, speed m/s, angle)
    clouds: list = field(default_factory=list)  # (x0, y0, vx, vy, radius)


# -- scenes ------------------------------------------------------------------------------------


def scene_from_demo(camera: dict, *, width: int = WIDTH, height: int = HEIGHT) -> ParkingScene:
    """A scene for one of the demo's parking cameras as ``data.parking_clips.demo_parking_cameras`` lists them."""
    spots = tuple(Place(code=code, ring=ring) for code, ring in camera["spots"])
    zones = tuple(Place(code=code, ring=ring, reason=reason, name=name) for code, ring, reason, name in camera["zones"])
    return scene_for(camera_lonlat=camera["lonlat"], height_m=camera["height_m"], heading_deg=camera["heading_deg"],
                     fov_deg=camera["fov_deg"], calibration=camera["calibration"], spots=spots, zones=zones,
                     width=width, height=height)


def scene_for(*, camera_lonlat, height_m: float, heading_deg: float, fov_deg: float, calibration: dict,
              spots, zones, width: int = WIDTH, height: int = HEIGHT) -> ParkingScene:
    """A scene for a camera and its layers (``spots`` and ``zones``: :class:`vision.parking.Place`)."""
    to_metric = _transformer("EPSG:4326", METRIC_CRS)
    cx, cy = to_metric.transform(*camera_lonlat)
    tilt = _fit_tilt(cx, cy, height_m, heading_deg, fov_deg, calibration)
    camera = PinholeCamera(x=cx, y=cy, height=height_m, heading_deg=heading_deg, tilt_deg=tilt, hfov_deg=fov_deg,
                           width=width, height_px=height)
    metric = lambda place: _polygon(place.ring, to_metric)  # noqa: E731
    spot_polys = tuple((p.code, metric(p)) for p in spots)
    zone_polys = tuple((p.code, p.reason, metric(p)) for p in zones)
    lane, fire = _lane(camera, spot_polys, zone_polys)
    layout = ParkingLayout(spots=tuple(spots), zones=tuple(zones), camera_lonlat=tuple(camera_lonlat),
                           camera_height_m=height_m)
    return ParkingScene(camera=camera, calibration=calibration, layout=layout, spots=spot_polys, zones=zone_polys,
                        lane=lane, fire_lane=fire)


def _polygon(ring, to_metric):
    from shapely.geometry import Polygon

    ring = np.asarray(ring, dtype=float)
    x, y = to_metric.transform(ring[:, 0], ring[:, 1])
    return Polygon(np.column_stack([x, y]))


def _fit_tilt(cx, cy, height_m, heading_deg, fov_deg, calibration: dict) -> float:
    """The camera's tilt: the one whose projection of the calibration's ground points best meets its image points."""
    cal = Calibration.from_dict(calibration)
    if cal.ground is None:
        raise ValueError("the camera has no ground calibration to render it from")
    image, world = cal.ground
    x, y = _transformer("EPSG:4326", METRIC_CRS).transform(world[:, 0], world[:, 1])
    points = np.column_stack([x, y, np.zeros(len(x))])
    w, h = cal.image_size

    def error(tilt):
        cam = PinholeCamera(x=cx, y=cy, height=height_m, heading_deg=heading_deg, tilt_deg=tilt, hfov_deg=fov_deg,
                            width=w, height_px=h)
        err = np.linalg.norm(cam.project(points) - image, axis=1)
        return float(np.nanmean(err)) if np.isfinite(err).any() else 1e9

    lo, hi = -89.0, 0.0
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if error(a) < error(b):
            hi = b
        else:
            lo = a
    tilt = (lo + hi) / 2
    if error(tilt) > 0.01 * w:
        raise ValueError(f"the camera's position, height and heading do not reproduce its ground calibration "
                         f"(best tilt {tilt:.1f}° leaves {error(tilt):.0f} px)")
    return tilt


def spot_axis(poly) -> np.ndarray:
    """The unit direction of a spot's (or zone's) longer side."""
    coords = np.asarray(poly.minimum_rotated_rectangle.exterior.coords)[:4]
    sides = [coords[(k + 1) % 4] - coords[k] for k in range(2)]
    d = max(sides, key=lambda v: float(np.hypot(*v)))
    return d / np.hypot(*d)


def _lane(camera: PinholeCamera, spots, zones):
    """The lane the spots line: its centre line (between the spots and the fire lane across it)."""
    if not spots:
        return (np.array([camera.x, camera.y]), np.array([math.sin(math.radians(camera.heading_deg)),
                                                          math.cos(math.radians(camera.heading_deg))])), None
    here = np.array([camera.x, camera.y])
    view = camera.back_project(np.array([[camera.width / 2, camera.height_px * 0.6]]), np.zeros(3),
                               np.array([0, 0, 1.0]))[0, :2]  # the ground the view is centred on
    if not np.isfinite(view).all():
        view = here
    nearest = sorted(spots, key=lambda s: np.hypot(*(np.asarray(s[1].centroid.coords[0]) - view)))[0][1]
    d = spot_axis(nearest)
    if np.dot(d, [math.sin(math.radians(camera.heading_deg)), math.cos(math.radians(camera.heading_deg))]) < 0:
        d = -d  # pointing away from the camera
    n = np.array([-d[1], d[0]])
    row = np.asarray(nearest.centroid.coords[0])
    # the fire lane across the lane from these spots (the demo puts one 11.25 m off the spots' row, near
    # them); the lane of the opposite run lies on the same line further off
    across = [(abs(float(np.dot(np.asarray(p.centroid.coords[0]) - row, d))), p) for _, reason, p in zones
              if reason == "fire_lane" and 8 < abs(float(np.dot(np.asarray(p.centroid.coords[0]) - row, n))) < 15]
    fire = min(across, key=lambda a: a[0])[1] if across and min(a[0] for a in across) < 40 else None
    if fire is not None:
        sign = 1.0 if np.dot(np.asarray(fire.centroid.coords[0]) - row, n) > 0 else -1.0
    else:
        sign = 1.0 if np.dot(here - row, n) > 0 else -1.0
    return (row + sign * n * LANE_OFFSET_M, d), fire


# -- the script ---------------------------------------------------------------------------------


def plan(scene: ParkingScene, *, seconds: float, seed: int, night: bool = False, shadows: bool = True,
         fps: float = FPS, passing_every: float = 25.0, illegal: int = 1, short_stops: int = 1,
         limit_s: float = 60.0, occupied_share: float = 0.55, mean_stay: float = 240.0) -> Script:
    """A script from a seed: arrivals, departures, passers-by and fire-lane stops over ``seconds``."""
    rng = np.random.default_rng(seed)
    script = Script(seconds=seconds, fps=fps, night=night, shadows=shadows and not night, seed=seed)
    p0, d = scene.lane
    colour = lambda: PALETTE[int(rng.integers(0, len(PALETTE)))]  # noqa: E731
    along = lambda pt: float(np.dot(np.asarray(pt) - p0, d))  # noqa: E731
    lane_at = lambda s: p0 + d * s  # noqa: E731
    end = seconds + 30
    for code, poly in scene.spots:
        centre = np.asarray(poly.centroid.coords[0])
        way, axis = _spot_lane(scene, poly)  # the spot's own lane: way(s) is a point on it, s metres along
        t, car = 0.0, None
        if rng.random() < occupied_share:
            car = Car(keys=[(-60.0, *centre)], colour=colour(), axis=tuple(axis))  # parked before the clip began
        while True:
            if car is not None:  # occupied from t: it stays, then backs out into the lane and drives off
                leave = t + float(rng.uniform(0.4, 1.6) * mean_stay)
                if leave >= end:
                    car.keys.append((end + 60, *centre))
                    script.cars.append(car)
                    break
                car.keys += [(leave, *centre), (leave + 2.5, *way(4)), (leave + 8, *way(60))]
                script.cars.append(car)
                car, t = None, leave + 3
            else:  # free from t: a car drives in along the lane (past other spots) and turns into it
                arrive = t + float(rng.uniform(0.3, 1.2) * mean_stay)
                if arrive >= end:
                    break
                car = Car(keys=[(arrive - 7.5, *way(-45)), (arrive - 2.5, *way(1)), (arrive, *centre)],
                          colour=colour(), lights=night, axis=tuple(axis))
                t = arrive
    t = float(rng.uniform(3, passing_every))
    while t < seconds:  # cars driving past along the lane, either way
        speed = float(rng.uniform(5, 9))
        a, b = (lane_at(-30), lane_at(110)) if rng.random() < 0.5 else (lane_at(110), lane_at(-30))
        script.cars.append(Car(keys=[(t, *a), (t + 140 / speed, *b)], colour=colour(), lights=night))
        t += float(rng.uniform(0.5, 1.5) * passing_every)
    if scene.fire_lane is not None:
        script.stops = _fire_lane_stops(scene, script, rng, illegal=illegal, short=short_stops, limit_s=limit_s,
                                        colour=colour, lane_at=lane_at, along=along)
    if script.shadows:
        angle = float(rng.uniform(0, 2 * math.pi))
        script.shadow_edge = (float(rng.uniform(-25, -10)), float(rng.uniform(0.05, 0.12)), angle)
        script.clouds = [(float(scene.camera.x + rng.uniform(-60, 0)), float(scene.camera.y + rng.uniform(-60, 0)),
                          float(rng.uniform(1, 2.5)), float(rng.uniform(1, 2.5)), float(rng.uniform(6, 12)))
                         for _ in range(2)]
    return script


def _spot_lane(scene: ParkingScene, poly):
    """A function s -> the point s metres along the spot's own lane from beside it, and the spot's axis."""
    p0, d = scene.lane
    centre = np.asarray(poly.centroid.coords[0])
    axis = spot_axis(poly)
    if np.dot(axis, d) < 0:
        axis = -axis
    m = np.array([-axis[1], axis[0]])
    candidates = (centre + m * LANE_OFFSET_M, centre - m * LANE_OFFSET_M)
    if abs(float(np.dot(axis, d))) > 0.9:  # a spot of the main lane: its lane is the main one
        n = np.array([-d[1], d[0]])
        lane = min(candidates, key=lambda c: abs(float(np.dot(c - p0, n))))
    else:  # a spot of a crossing lane: take the side facing the camera
        lane = min(candidates, key=lambda c: math.hypot(c[0] - scene.camera.x, c[1] - scene.camera.y))
    return (lambda s: lane + axis * s), axis


def _fire_lane_stops(scene, script, rng, *, illegal, short, limit_s, colour, lane_at, along) -> list[dict]:
    zone = scene.fire_lane
    code = next(c for c, _, p in scene.zones if p is zone)
    centre = np.asarray(zone.centroid.coords[0])
    (_, d) = scene.lane
    kinds = [True] * illegal + [False] * short
    rng.shuffle(kinds)
    stops, t = [], float(rng.uniform(5, 15))
    for is_illegal in kinds:
        stay = limit_s + float(rng.uniform(20, 60)) if is_illegal else float(rng.uniform(0.25, 0.6) * limit_s)
        spot = centre + d * float(rng.uniform(-8, 8))
        s = along(spot)
        rest, leave = t + 6.0, t + 6.0 + stay
        script.cars.append(Car(keys=[(t, *lane_at(s - 45)), (rest - 2.5, *lane_at(s - 2)), (rest, *spot),
                                     (leave, *spot), (leave + 2.5, *lane_at(s + 4)), (leave + 8, *lane_at(s + 60))],
                               colour=colour(), lights=script.night))
        stops.append({"zone": code, "rest_t": rest, "leave_t": leave, "illegal": is_illegal})
        t = leave + float(rng.uniform(15, 30))
    return stops


# -- rendering ---------------------------------------------------------------------------------


@dataclass
class Truth:
    """What a rendered clip shows: per frame, the occupied spots; the fire-lane stops."""

    fps: float
    spots: tuple[str, ...]
    occupied: list[frozenset]  # per frame
    stops: list[dict]


def render_clip(scene: ParkingScene, script: Script, path: Path) -> Truth:
    """Write the script as an MJPG clip; returns its ground truth."""
    import cv2

    cam = scene.camera
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), script.fps, (cam.width, cam.height_px))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 92)
    truth = Truth(fps=script.fps, spots=tuple(c for c, _ in scene.spots), occupied=[], stops=script.stops)
    for image, occupied in frames(scene, script):
        writer.write(image)
        truth.occupied.append(occupied)
    writer.release()
    return truth


def frames(scene: ParkingScene, script: Script):
    """(BGR image, occupied spot codes) for every frame of the script."""
    import cv2

    cv2.setRNGSeed(script.seed)  # the noise, like the script, follows the seed
    cam = scene.camera
    ground, gx, gy = _ground(scene)
    noise = np.empty(ground.shape, np.float32)
    sigma = 4.0 if script.night else 2.5
    lamps = _lamps(scene, gx, gy) if script.night else None
    for k in range(int(round(script.seconds * script.fps))):
        t = k / script.fps
        image = ground.copy()
        light = np.ones(gx.shape, np.float32)
        if script.shadows:
            light *= _sun_shadow(script, gx, gy, t)
        present = [(car, car.at(t)) for car in script.cars]
        present = [(car, p) for car, p in present if p is not None]
        if script.shadows:
            for car, (x, y) in present:  # each car's own shadow, cast to one side
                _fill_ground(image, cam, _box_footprint(x + 0.6, y - 0.5, car.axis or scene.lane[1], CAR_LEN + 0.3,
                                                        CAR_WIDTH + 0.4), None, multiply=0.55)
        order = sorted(present, key=lambda cp: -math.hypot(cp[1][0] - cam.x, cp[1][1] - cam.y))
        for car, (x, y) in order:
            _draw_car(image, cam, x, y, np.asarray(car.axis or scene.lane[1]), car.colour)
        if script.night:
            light = light * 0.22 + lamps
            for car, (x, y) in present:
                if car.lights and car.moving(t):
                    light += _headlights(car, t, gx, gy, scene.lane[1])
        image *= light[..., None]
        cv2.randn(noise, 0, sigma)
        image += noise
        yield np.clip(image, 0, 255).astype(np.uint8), _occupied(scene, present)


def _occupied(scene: ParkingScene, present) -> frozenset:
    from shapely.geometry import Polygon

    out = set()
    for code, poly in scene.spots:
        c = np.asarray(poly.centroid.coords[0])
        for car, (x, y) in present:
            if math.hypot(x - c[0], y - c[1]) > 6:
                continue
            foot = Polygon(_box_footprint(x, y, car.axis or scene.lane[1], CAR_LEN, CAR_WIDTH))
            if foot.intersection(poly).area >= COVER_SHARE * poly.area:
                out.add(code)
                break
    return frozenset(out)


def _ground(scene: ParkingScene):
    """The static view (float BGR) and each pixel's ground coordinates (NaN above the horizon)."""
    import cv2

    cam = scene.camera
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:cam.height_px, 0:cam.width]
    hits = cam.back_project(np.column_stack([xs.ravel() + 0.5, ys.ravel() + 0.5]), np.zeros(3), np.array([0, 0, 1.0]))
    gx = hits[:, 0].reshape(ys.shape).astype(np.float32)
    gy = hits[:, 1].reshape(ys.shape).astype(np.float32)
    far = ~np.isfinite(gx) | (np.hypot(gx - cam.x, gy - cam.y) > 160)
    image = np.empty((cam.height_px, cam.width, 3), np.float32)
    image[:] = (98, 100, 102)  # asphalt
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (cam.height_px // 8, cam.width // 8)).astype(np.float32), (0, 0), 2)
    image += cv2.resize(blotch, (cam.width, cam.height_px))[..., None] * 10
    image += rng.normal(0, 5, image.shape[:2])[..., None].astype(np.float32)
    image[far] = (120, 128, 140)  # the buildings across the way
    rows = np.arange(cam.height_px)[:, None] % 24 < 10
    cols = np.arange(cam.width)[None, :] % 30 < 14
    windows = far & rows & cols
    image[windows] = (80, 75, 70)
    gx[far], gy[far] = np.nan, np.nan
    (p0, d) = scene.lane
    n = np.array([-d[1], d[0]])
    for _, poly in scene.spots:  # white spot lines
        coords = np.asarray(poly.exterior.coords)
        for a, b in zip(coords[:-1], coords[1:]):
            _fill_ground(image, cam, _segment(a, b, 0.12), (225, 225, 225))
    for _, reason, poly in scene.zones:  # yellow outline and hatching of fire lanes and entrances
        coords = np.asarray(poly.exterior.coords)
        for a, b in zip(coords[:-1], coords[1:]):
            _fill_ground(image, cam, _segment(a, b, 0.15), (40, 200, 230))
        if reason == "fire_lane":
            c, za = np.asarray(poly.centroid.coords[0]), spot_axis(poly)
            zn = np.array([-za[1], za[0]])
            for s in np.arange(-14, 15, 2.0):
                a = c + za * s - zn * 1.8
                _fill_ground(image, cam, _segment(a, a + za * 1.2 + zn * 3.6, 0.12), (40, 200, 230))
    for s in np.arange(-40, 150, 6.0):  # the lane's dashed centre line
        _fill_ground(image, cam, _segment(p0 + d * s, p0 + d * (s + 3), 0.12), (210, 210, 210))
    return image, gx, gy


def _fill_ground(image, cam: PinholeCamera, corners, colour, *, multiply: float | None = None) -> None:
    import cv2

    pts = np.column_stack([np.asarray(corners, float), np.zeros(len(corners))])
    px = cam.project(pts)
    if not np.isfinite(px).all() or np.abs(px).max() > 20000:
        return
    poly = np.round(px * 4).astype(np.int32)
    if multiply is None:
        cv2.fillConvexPoly(image, poly, colour, cv2.LINE_AA, shift=2)
        return
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, poly, 1, cv2.LINE_8, shift=2)
    image[mask.astype(bool)] *= multiply


def _segment(a, b, width: float):
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a) / max(np.hypot(*(b - a)), 1e-9)
    n = np.array([-d[1], d[0]]) * width / 2
    return [a - n, b - n, b + n, a + n]


def _box_footprint(x, y, d, length, width):
    d = np.asarray(d, float)
    n = np.array([-d[1], d[0]])
    c = np.array([x, y])
    hl, hw = d * length / 2, n * width / 2
    return [c - hl - hw, c + hl - hw, c + hl + hw, c - hl + hw]


def _draw_car(image, cam: PinholeCamera, x, y, d, colour) -> None:
    """A car as three boxes: the dark underside, the body, the cabin (glass sides, body-coloured roof)."""
    body = np.array(colour, np.float32)
    parts = (((x, y), CAR_LEN - 0.5, CAR_WIDTH - 0.2, 0.0, 0.3, (25, 25, 25), (25, 25, 25)),
             ((x, y), CAR_LEN, CAR_WIDTH, 0.3, 0.95, body, body * 1.05),
             ((x - d[0] * 0.2, y - d[1] * 0.2), CAR_LEN * 0.55, CAR_WIDTH - 0.25, 0.95, 1.45, (45, 48, 52), body))
    for (cx, cy), length, width, z0, z1, side, top in parts:
        _draw_box(image, cam, _box_footprint(cx, cy, d, length, width), z0, z1, np.asarray(side, np.float32),
                  np.asarray(top, np.float32))


def _draw_box(image, cam: PinholeCamera, foot, z0, z1, side, top) -> None:
    import cv2

    foot = np.asarray(foot)
    lower = np.column_stack([foot, np.full(4, z0)])
    upper = np.column_stack([foot, np.full(4, z1)])
    faces = [(upper, top * 1.0)] + [(np.array([lower[k], lower[(k + 1) % 4], upper[(k + 1) % 4], upper[k]]),
                                      side * (0.65 + 0.3 * (k % 2))) for k in range(4)]
    centre = np.array([cam.x, cam.y, cam.height])
    faces.sort(key=lambda f: -np.linalg.norm(f[0].mean(axis=0) - centre))
    for corners, shade in faces:
        px = cam.project(corners)
        if not np.isfinite(px).all() or np.abs(px).max() > 20000:
            return
        cv2.fillConvexPoly(image, np.round(px * 4).astype(np.int32), tuple(float(v) for v in np.clip(shade, 0, 255)),
                           cv2.LINE_AA, shift=2)


def _sun_shadow(script: Script, gx, gy, t: float) -> np.ndarray:
    """Light left by a building's shadow edge sweeping slowly across the ground, and by soft cloud shadows."""
    offset, speed, angle = script.shadow_edge
    with np.errstate(invalid="ignore"):
        u = np.nan_to_num((gx - np.nanmean(gx)) * math.cos(angle) + (gy - np.nanmean(gy)) * math.sin(angle))
        edge = np.clip((u - (offset + speed * t)) / 0.6 + 0.5, 0, 1)  # 0.6 m of penumbra
        light = 1.0 - 0.45 * (1.0 - edge)
        for x0, y0, vx, vy, radius in script.clouds:
            cx, cy = x0 + vx * t, y0 + vy * t
            d2 = np.nan_to_num((gx - cx) ** 2 + (gy - cy) ** 2, nan=1e9)
            light *= 1.0 - 0.3 * np.exp(-d2 / (2 * radius ** 2))
    return light.astype(np.float32)


def _lamps(scene: ParkingScene, gx, gy) -> np.ndarray:
    (p0, d) = scene.lane
    n = np.array([-d[1], d[0]])
    out = np.zeros(gx.shape, np.float32)
    for s in (10.0, 35.0, 60.0):
        c = p0 + d * s + n * 5.5
        d2 = np.nan_to_num((gx - c[0]) ** 2 + (gy - c[1]) ** 2, nan=1e9)
        out += (0.5 * np.exp(-d2 / (2 * 5.0 ** 2))).astype(np.float32)
    return out


def _headlights(car: Car, t: float, gx, gy, d) -> np.ndarray:
    """A bright cone on the ground ahead of a moving car."""
    here = car.at(t)
    later = car.at(min(t + 0.2, car.keys[-1][0]))
    if here is None or later is None or here == later:
        return np.zeros(gx.shape, np.float32)
    v = np.array(later) - np.array(here)
    v /= np.hypot(*v)
    rx, ry = np.nan_to_num(gx - here[0], nan=1e9), np.nan_to_num(gy - here[1], nan=1e9)
    ahead = rx * v[0] + ry * v[1]
    across = np.abs(-rx * v[1] + ry * v[0])
    # a beam fades at its edges: over a metre sideways, and in from 2 m ahead
    side = np.clip((1.0 + 0.25 * ahead - across) / 1.0, 0, 1)
    near = np.clip((ahead - 2.0) / 2.0, 0, 1)
    return (side * near * 1.2 * np.exp(-np.clip(ahead, 0, None) / 12) * (ahead < 30)).astype(np.float32)


# -- samples for the spot model --------------------------------------------------------------------


def spot_samples(scene: ParkingScene, script: Script, *, jpeg_quality: int = 92, behind: bool = False):
    """(features, label) of every judged spot in every frame of the script, for ``vision.parking_model``.

    Each frame goes through JPEG as the clips do; a spot's visible part is what the vehicles in the
    nearer spots that are *truly* occupied leave of it (the detector hides by its own judgement),
    labelled with the spot's true occupancy; spots seen less than the detector's ``min_visible_share``
    are left out. With ``behind``, each truly occupied nearer spot whose vehicle would hide the spot
    (leave less than that share of it) gives also the view the *other* vehicles leave of it -- what
    the detector sees of a spot behind a spot it has never seen (that nearer car, plus the spot's own
    car if any) -- labelled 1, "a vehicle in view", whatever the spot holds, so that such a view is
    not taken for empty road. Off by default: a model trained with them did worse on the benchmark's
    development and third seed sets (docs/vision-parking.md, "what it does not do yet").
    """
    import cv2

    from vision.parking import ParkingDetector

    detector, x, y = None, [], []
    for image, occupied in frames(scene, script):
        _, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        if detector is None:
            h, w = image.shape[:2]
            detector = ParkingDetector(calibration=Calibration.from_dict(scene.calibration).scaled_to(w, h), width=w,
                                       height=h, layout=scene.layout, fps=script.fps)
            config = detector.config
        gx, gy, r, g, _, log = detector._features(image)
        detector._grad = None
        truly = {k for k, c in enumerate(detector.cells) if not c.zone and c.place.code in occupied}
        for cell in detector.cells:
            if cell.zone:
                continue
            visible = detector.visible_mask(cell, truly)
            views = [(visible, cell.place.code in occupied)] if detector._enough(cell, visible) else []
            if behind:  # a vehicle in front that would hide the spot, not known of: the detector's view behind it
                for k in sorted({k for k, _ in cell.occluders} & truly):
                    if not detector._enough(cell, detector.visible_mask(cell, {k})):
                        view = detector.visible_mask(cell, truly - {k})
                        if detector._enough(cell, view):
                            views.append((view, True))
            for view, label in views:
                features = detector.appearance(cell, view, gx, gy, r, g, log)
                if features is not None:
                    x.append(features)
                    y.append(label)
    return np.array(x).reshape(-1, len(x[0]) if x else 0), np.array(y, bool)
