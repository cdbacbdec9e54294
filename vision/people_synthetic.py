"""Peephole clips the project renders: a fish-eye view of the corridor in front of an elder's door, with truth.

``render_clip(kind, path, seed=...)`` writes an MJPG clip and returns its :class:`Clip`, whose
``passes`` are the ground truth: one :class:`TruthPass` per person who comes into view (``t_in``
to ``t_out``, while at least half of them is in the picture), whatever they do there. Kinds:

- ``pass``: one person crossing the corridor, left to right or back;
- ``two_passes``: two people one after the other, 1–4 s apart, either direction;
- ``crossing``: two people crossing each other in opposite directions (one hides the other);
- ``stand``: someone walks up, stands 3–6 s facing the door, and leaves (one pass);
- ``door`` (nuisance): the neighbour's door opposite opens and closes again;
- ``light`` (nuisance): the corridor light goes out and comes back, and dims slowly;
- ``pet`` (nuisance): a cat- or small-dog-sized animal walks across.

Every clip varies with its seed: the people's height (1.5–1.9 m), distance from the door
(1.4–2.4 m), speed (0.7–1.6 m/s), clothing colours, a bag or none; the wall colours and the light
(gain 0.55–1.15, a colour cast, sensor noise). Everything is drawn with OpenCV primitives; no
outside media. The camera is a pinhole at 1.5 m (170 px focal length, 480×360) bent by a barrel
distortion with a dark rim, as a door viewer's lens is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("pass", "two_passes", "crossing", "stand", "door", "light", "pet")
PERSON_KINDS = KINDS[:4]
NUISANCE_KINDS = KINDS[4:]
WIDTH, HEIGHT, FPS = 480, 360, 12.0
FOCAL_PX = 170.0
HORIZON_Y = 150.0
CAMERA_HEIGHT_M = 1.5
WALL_DISTANCE_M = 2.7  # the opposite wall
BARREL_K = 0.22

SHIRTS = [(40, 40, 40), (200, 200, 205), (40, 40, 170), (150, 70, 30), (60, 120, 60), (30, 90, 200),
          (120, 120, 130), (90, 50, 110), (210, 180, 150), (20, 20, 90)]
TROUSERS = [(30, 30, 35), (110, 70, 40), (60, 60, 65), (150, 140, 130), (40, 40, 90), (90, 100, 110)]
SKIN = [(120, 150, 200), (90, 120, 170), (70, 95, 140), (140, 170, 215)]
HAIR = [(20, 20, 25), (40, 50, 70), (170, 170, 175), (30, 60, 110), (200, 200, 205)]


@dataclass(frozen=True)
class TruthPass:
    t_in: float
    t_out: float


@dataclass
class Clip:
    path: Path
    kind: str
    seed: int
    seconds: float
    fps: float
    passes: list[TruthPass] = field(default_factory=list)


@dataclass
class _Walker:
    """A person: where they are at time t (metres along the corridor, distance from the door) and how they look."""

    height_m: float
    depth_m: float
    keyframes: list  # (t, x metres) — straight moves between them; standing where x repeats
    shirt: tuple
    trousers: tuple
    skin: tuple
    hair: tuple
    bag: bool
    facing: float = 0.0  # seconds of each keyframe span facing the camera (standing)

    def x_at(self, t: float) -> float | None:
        ks = self.keyframes
        if t < ks[0][0] or t > ks[-1][0]:
            return None
        for (t0, x0), (t1, x1) in zip(ks, ks[1:]):
            if t0 <= t <= t1:
                return x0 + (x1 - x0) * (t - t0) / max(t1 - t0, 1e-9)
        return ks[-1][1]

    def moving_at(self, t: float) -> float:
        """Speed sign: -1, 0 (standing) or 1."""
        ks = self.keyframes
        for (t0, x0), (t1, x1) in zip(ks, ks[1:]):
            if t0 <= t <= t1:
                return float(np.sign(x1 - x0))
        return 0.0


def render_clip(kind: str, path: Path, *, seed: int = 0, fps: float = FPS) -> Clip:
    """Write a clip of ``kind`` (deterministic from ``seed``) and return it with its ground truth."""
    import cv2

    if kind not in KINDS:
        raise ValueError(f"unknown clip kind {kind!r}; choose one of {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    walkers, seconds = _people(kind, rng)
    passes = [_visible_span(w, fps) for w in walkers]
    scene = _Scene(rng)
    lens = _Lens()
    light = _Light(kind, rng, seconds)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 90)
    pet = _Pet(rng) if kind == "pet" else None
    door = (rng.uniform(1.5, 3.0), rng.uniform(3.0, 6.0)) if kind == "door" else None
    for k in range(int(seconds * fps)):
        t = k / fps
        frame = scene.render(door_open=_door_open(door, t))
        # the farther one first, so the nearer hides them
        for w in sorted(walkers, key=lambda w: -w.depth_m):
            x = w.x_at(t)
            if x is not None:
                _draw_person(frame, w, x, t)
        if pet is not None:
            pet.draw(frame, t)
        frame = frame * light.gain(t) + rng.normal(0, 2.5, frame.shape)
        writer.write(lens.apply(np.clip(frame, 0, 255).astype(np.uint8)))
    writer.release()
    return Clip(path=Path(path), kind=kind, seed=seed, seconds=seconds, fps=fps,
                passes=[p for p in passes if p is not None])


# -- people and their timing ------------------------------------------------------------


def _people(kind: str, rng) -> tuple[list[_Walker], float]:
    if kind in NUISANCE_KINDS:
        return [], float(rng.uniform(10.0, 14.0))
    first = rng.uniform(1.5, 3.0)
    if kind == "pass":
        walkers = [_crossing(rng, first, int(rng.choice([-1, 1])))]
    elif kind == "two_passes":
        a = _crossing(rng, first, int(rng.choice([-1, 1])))
        b = _crossing(rng, a.keyframes[-1][0] - rng.uniform(0.0, 2.0) + rng.uniform(1.0, 4.0),
                      int(rng.choice([-1, 1])))
        walkers = [a, b]
    elif kind == "crossing":
        a = _crossing(rng, first, 1)
        b = _crossing(rng, first + rng.uniform(-0.5, 0.5), -1)
        if abs(a.depth_m - b.depth_m) < 0.4:
            b.depth_m = a.depth_m + 0.5 if a.depth_m < 1.9 else a.depth_m - 0.5
        walkers = [a, b]
    else:
        walkers = [_stander(rng, first)]
    end = max(w.keyframes[-1][0] for w in walkers)
    return walkers, float(end + rng.uniform(2.0, 3.0))


def _half_view_m(depth: float) -> float:
    """Half the corridor width in view at this depth (metres)."""
    return (WIDTH / 2) * depth / FOCAL_PX


def _look(rng, height: float, depth: float, keyframes: list) -> _Walker:
    return _Walker(height_m=height, depth_m=depth, keyframes=keyframes,
                   shirt=tuple(SHIRTS[rng.integers(len(SHIRTS))]),
                   trousers=tuple(TROUSERS[rng.integers(len(TROUSERS))]),
                   skin=tuple(SKIN[rng.integers(len(SKIN))]), hair=tuple(HAIR[rng.integers(len(HAIR))]),
                   bag=bool(rng.random() < 0.4))


def _crossing(rng, t0: float, direction: int) -> _Walker:
    height, depth, speed = rng.uniform(1.5, 1.9), rng.uniform(1.4, 2.4), rng.uniform(0.7, 1.6)
    edge = _half_view_m(depth) + 0.5  # start and end wholly out of view
    x0, x1 = -direction * edge, direction * edge
    return _look(rng, height, depth, [(t0, x0), (t0 + abs(x1 - x0) / speed, x1)])


def _stander(rng, t0: float) -> _Walker:
    height, depth, speed = rng.uniform(1.5, 1.9), rng.uniform(1.4, 2.0), rng.uniform(0.7, 1.2)
    edge = _half_view_m(depth) + 0.5
    side = int(rng.choice([-1, 1]))
    stop = rng.uniform(-0.3, 0.3)
    leave = side if rng.random() < 0.5 else -side  # back the way they came, or on
    t1 = t0 + abs(stop + side * edge) / speed
    t2 = t1 + rng.uniform(3.0, 6.0)
    t3 = t2 + abs(leave * edge - stop) / speed
    return _look(rng, height, depth, [(t0, -side * edge), (t1, stop), (t2, stop), (t3, leave * edge)])


def _visible_span(w: _Walker, fps: float) -> TruthPass | None:
    """When at least half of the person is in the picture (their centre inside it)."""
    times = [k / fps for k in range(int(w.keyframes[0][0] * fps), int(w.keyframes[-1][0] * fps) + 2)]
    inside = [t for t in times
              if (x := w.x_at(t)) is not None and abs(_to_image_x(x, w.depth_m) - WIDTH / 2) < WIDTH / 2]
    return TruthPass(round(inside[0], 3), round(inside[-1], 3)) if inside else None


def _to_image_x(x_m: float, depth: float) -> float:
    return WIDTH / 2 + FOCAL_PX * x_m / depth


def _draw_person(frame: np.ndarray, w: _Walker, x_m: float, t: float) -> None:
    import cv2

    s = FOCAL_PX / w.depth_m  # pixels per metre at their depth
    cx = _to_image_x(x_m, w.depth_m)
    feet = HORIZON_Y + CAMERA_HEIGHT_M * s
    H = w.height_m * s
    moving = w.moving_at(t)
    phase = math.sin(2 * math.pi * 0.9 * t) if moving else 0.0
    side = 0.75 if moving else 1.0  # seen from the side while walking, from the front while standing
    lw = lambda k: max(1, int(round(k * H)))  # noqa: E731 - line widths scale with the person
    hip_y, shoulder_y = feet - 0.48 * H, feet - 0.82 * H
    # legs: swinging from the hips
    for sign in (-1, 1):
        foot_x = cx + sign * (0.05 * H * side) + sign * phase * 0.16 * H * (1 if moving else 0)
        cv2.line(frame, (int(cx + sign * 0.045 * H * side), int(hip_y)), (int(foot_x), int(feet - 0.03 * H)),
                 w.trousers, lw(0.075), cv2.LINE_AA)
        cv2.ellipse(frame, (int(foot_x + 0.02 * H * moving), int(feet - 0.015 * H)),
                    (max(1, int(0.05 * H)), max(1, int(0.02 * H))), 0, 0, 360, (25, 25, 30), -1, cv2.LINE_AA)
    # torso
    half_sh, half_hip = 0.12 * H * side, 0.095 * H * side
    torso = np.array([[cx - half_sh, shoulder_y], [cx + half_sh, shoulder_y], [cx + half_hip, hip_y + 0.04 * H],
                      [cx - half_hip, hip_y + 0.04 * H]], np.int32)
    cv2.fillPoly(frame, [torso], w.shirt, cv2.LINE_AA)
    # arms, swinging against the legs
    for sign in (-1, 1):
        hand = (int(cx + sign * 0.13 * H * side - sign * phase * 0.12 * H), int(feet - 0.5 * H))
        cv2.line(frame, (int(cx + sign * 0.11 * H * side), int(shoulder_y + 0.03 * H)), hand, w.shirt, lw(0.055),
                 cv2.LINE_AA)
        cv2.circle(frame, hand, lw(0.025), w.skin, -1, cv2.LINE_AA)
        if w.bag and sign == 1:
            cv2.rectangle(frame, (hand[0] - lw(0.05), hand[1]), (hand[0] + lw(0.05), hand[1] + lw(0.12)),
                          (40, 60, 90), -1)
    # neck and head
    cv2.line(frame, (int(cx), int(shoulder_y)), (int(cx), int(shoulder_y - 0.05 * H)), w.skin, lw(0.04))
    head = (int(cx), int(feet - 0.93 * H))
    cv2.ellipse(frame, head, (max(1, int(0.055 * H)), max(1, int(0.07 * H))), 0, 0, 360, w.skin, -1, cv2.LINE_AA)
    cv2.ellipse(frame, (head[0], head[1] - lw(0.025)), (max(1, int(0.058 * H)), max(1, int(0.05 * H))), 0, 180, 360,
                w.hair, -1, cv2.LINE_AA)


# -- the corridor, the light, the lens, the nuisance --------------------------------------


class _Scene:
    """The corridor seen from the door: the opposite wall with the neighbour's door, the floor, the ceiling."""

    def __init__(self, rng):
        wall = np.array([rng.uniform(150, 210), rng.uniform(160, 215), rng.uniform(170, 225)])
        floor = np.array([rng.uniform(90, 140)] * 3) + rng.normal(0, 8, 3)
        img = np.empty((HEIGHT, WIDTH, 3), np.float32)
        wall_bottom = int(HORIZON_Y + CAMERA_HEIGHT_M * FOCAL_PX / WALL_DISTANCE_M)
        wall_top = int(HORIZON_Y - (2.6 - CAMERA_HEIGHT_M) * FOCAL_PX / WALL_DISTANCE_M)
        img[:wall_top] = wall * 1.08
        img[wall_top:wall_bottom] = wall
        img[wall_bottom:] = floor
        for y in range(wall_bottom, HEIGHT, 18):  # floor tiles
            img[y:y + 1] *= 0.85
        img[wall_bottom - 4:wall_bottom] *= 0.7  # skirting
        img += rng.normal(0, 4, (HEIGHT, WIDTH, 1))
        self.base = img
        s = FOCAL_PX / WALL_DISTANCE_M
        self.door_x = int(WIDTH / 2 + rng.uniform(-0.8, 0.8) * s)
        self.door_w, self.door_top, self.door_bottom = int(0.9 * s), int(HORIZON_Y - 0.6 * s), wall_bottom
        self.door_colour = np.array([rng.uniform(90, 210), rng.uniform(90, 200), rng.uniform(80, 190)], np.float32)
        self._closed = self._with_door(0.0)

    def render(self, door_open: float = 0.0) -> np.ndarray:
        return self._closed.copy() if door_open <= 0 else self._with_door(door_open)

    def _with_door(self, opened: float) -> np.ndarray:
        import cv2

        img = self.base.copy()
        x0, x1 = self.door_x - self.door_w // 2, self.door_x + self.door_w // 2
        cv2.rectangle(img, (x0 - 3, self.door_top - 3), (x1 + 3, self.door_bottom), (90, 90, 95), -1)
        img[self.door_top:self.door_bottom, x0:x1] = (35, 35, 40) if opened > 0 else self.door_colour
        if opened > 0:  # the panel swings towards the corridor: a narrowing, slightly taller trapezoid
            edge = x0 + (x1 - x0) * math.cos(opened * math.pi / 2)
            grow = 0.15 * (self.door_bottom - self.door_top) * math.sin(opened * math.pi / 2)
            panel = np.array([[x0, self.door_top], [edge, self.door_top - grow * 0.3],
                              [edge, self.door_bottom + grow * 0.3], [x0, self.door_bottom]], np.int32)
            cv2.fillPoly(img, [panel], tuple(float(v) for v in self.door_colour))
        return img


def _door_open(door, t: float) -> float:
    if door is None:
        return 0.0
    start, hold = door
    ramp = 1.5
    if t < start or t > start + 2 * ramp + hold:
        return 0.0
    if t < start + ramp:
        return (t - start) / ramp
    if t < start + ramp + hold:
        return 1.0
    return 1.0 - (t - start - ramp - hold) / ramp


class _Light:
    def __init__(self, kind: str, rng, seconds: float):
        self.base = rng.uniform(0.55, 1.15)
        self.cast = np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.9, 1.1)], np.float32)
        self.off = (rng.uniform(2.0, 4.0), rng.uniform(2.0, 3.5)) if kind == "light" else None
        self.dim = kind == "light"
        self.seconds = seconds

    def gain(self, t: float) -> np.ndarray:
        g = self.base
        if self.dim:
            g *= 1.0 - 0.25 * t / self.seconds
        if self.off is not None and self.off[0] <= t < self.off[0] + self.off[1]:
            g *= 0.35
        return self.cast * g


class _Lens:
    """Barrel distortion and a dark rim: a door viewer's fish-eye, made with one remap."""

    def __init__(self):
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
        cx, cy = WIDTH / 2, HEIGHT / 2
        nx, ny = (xs - cx) / cx, (ys - cy) / cx
        r2 = nx * nx + ny * ny
        self.map_x = (cx + nx * (1 + BARREL_K * r2) * cx).astype(np.float32)
        self.map_y = (cy + ny * (1 + BARREL_K * r2) * cx).astype(np.float32)
        self.rim = np.clip(1.25 - 0.55 * r2, 0.0, 1.0)[..., None].astype(np.float32)

    def apply(self, img: np.ndarray) -> np.ndarray:
        import cv2

        out = cv2.remap(img, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return (out * self.rim).astype(np.uint8)


class _Pet:
    """A cat or small dog trotting across the floor."""

    def __init__(self, rng):
        self.depth = rng.uniform(1.3, 2.4)
        self.length = rng.uniform(0.3, 0.5)
        self.speed = rng.uniform(0.5, 1.2) * int(rng.choice([-1, 1]))
        self.start = rng.uniform(1.5, 3.0)
        self.colour = tuple(float(v) for v in (SHIRTS + HAIR)[rng.integers(len(SHIRTS) + len(HAIR))])

    def draw(self, frame: np.ndarray, t: float) -> None:
        import cv2

        edge = _half_view_m(self.depth) + 0.5
        x = -np.sign(self.speed) * edge + self.speed * (t - self.start)
        if t < self.start or abs(x) > edge:
            return
        s = FOCAL_PX / self.depth
        cx, ground = _to_image_x(x, self.depth), HORIZON_Y + CAMERA_HEIGHT_M * s
        body_h, body_l = 0.16 * s, self.length * s
        cy = ground - 0.12 * s - body_h / 2
        cv2.ellipse(frame, (int(cx), int(cy)), (max(1, int(body_l / 2)), max(1, int(body_h / 2))), 0, 0, 360,
                    self.colour, -1, cv2.LINE_AA)
        head_x = cx + np.sign(self.speed) * body_l / 2
        cv2.circle(frame, (int(head_x), int(cy - body_h / 2)), max(1, int(0.06 * s)), self.colour, -1, cv2.LINE_AA)
        step = math.sin(2 * math.pi * 2.5 * t) * 0.04 * s
        for dx in (-body_l / 3, body_l / 3):
            cv2.line(frame, (int(cx + dx), int(cy)), (int(cx + dx + step), int(ground)), self.colour,
                     max(1, int(0.03 * s)), cv2.LINE_AA)
