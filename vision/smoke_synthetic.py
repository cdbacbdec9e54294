"""Smoke clips: synthetic plumes and the grey nuisance a smoke detector must ignore, rendered by the project.

``render_clip(kind, path)`` writes an MJPG clip of one of ``KINDS`` in front of a textured
building (a brick wall with windows over a paved yard), by day or at dusk:

- positives: ``light_smoke`` and ``dark_smoke`` (a plume from a window or from a point on the
  ground that billows — noise-textured, semi-transparent puffs that grow, rise and drift with the
  wind), and ``flame_smoke`` (a flame on the ground with its plume above it);
- nuisance, which must raise nothing: ``grey_car`` (grey cars and a lorry driving through),
  ``grey_people`` (people in grey and white clothes walking by), ``cloud_shadow`` (soft shadows of
  clouds drifting across and the daylight slowly changing), ``fog`` (haze thickening and thinning
  uniformly over the frame), ``steam`` (white puffs from a vent that vanish within about two
  seconds) and ``exposure`` (the camera's auto-exposure stepping up and down).

Nuisance recurs through a long clip (a car every few seconds, a puff every eight, ...), so a
clip of minutes is minutes of nuisance. ``frames(kind, ...)`` yields the same images without a
file. Plumes start at ``smoke_from`` seconds.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Iterator

import numpy as np

SMOKE_KINDS = ("light_smoke", "dark_smoke", "flame_smoke")
NUISANCE_KINDS = ("grey_car", "grey_people", "cloud_shadow", "fog", "steam", "exposure")
KINDS = SMOKE_KINDS + NUISANCE_KINDS
WIDTH, HEIGHT, FPS = 320, 240, 25.0
GROUND_Y = HEIGHT * 2 // 3  # where the wall meets the yard
_GRID = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)


def render_clip(kind: str, path: Path, *, seconds: float = 10.0, seed: int = 0, fps: float = FPS,
                smoke_from: float = 2.0, dusk: bool | None = None, source: str | None = None) -> Path:
    """Write a clip of ``kind`` (MJPG, ``WIDTH`` × ``HEIGHT``); returns the path.

    ``dusk`` and ``source`` ("window" or "ground") default to a choice made by the seed."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 92)
    for image in frames(kind, seconds=seconds, seed=seed, fps=fps, smoke_from=smoke_from, dusk=dusk, source=source):
        writer.write(image)
    writer.release()
    return Path(path)


def frames(kind: str, *, seconds: float = 10.0, seed: int = 0, fps: float = FPS, smoke_from: float = 2.0,
           dusk: bool | None = None, source: str | None = None) -> Iterator[np.ndarray]:
    """The clip's frames (BGR uint8), one per ``1 / fps`` seconds."""
    if kind not in KINDS:
        raise ValueError(f"unknown clip kind {kind!r}; choose one of {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    dusk = bool(rng.integers(2)) if dusk is None else dusk
    source = ("window", "ground")[int(rng.integers(2))] if source is None else source
    background = _building(rng, dusk)
    # the scene draws from its own generator, so a longer clip of the same seed begins with the same frames
    scene = _SCENES[kind](np.random.default_rng(int(rng.integers(1 << 31))), background, fps=fps, smoke_from=smoke_from, source=source, dusk=dusk,
                          horizon=seconds + 1.0)
    for k in range(int(seconds * fps)):
        frame = scene(k / fps)
        frame += rng.normal(0, 2.0, frame.shape).astype(np.float32)  # sensor noise
        yield np.clip(frame, 0, 255).astype(np.uint8)


# -- the scene -----------------------------------------------------------------------------------


def _building(rng, dusk: bool) -> np.ndarray:
    """A brick wall with a grid of windows over a paved yard, lit by day or at dusk."""
    import cv2

    img = np.empty((HEIGHT, WIDTH, 3), np.float32)
    img[:GROUND_Y] = (120, 135, 165)  # warm grey-red brick
    for row, y in enumerate(range(0, GROUND_Y, 8)):  # mortar courses and staggered joints
        img[y:y + 1, :] = (170, 175, 180)
        for x in range((row % 2) * 10, WIDTH, 20):
            img[y:y + 8, x:x + 1] = (170, 175, 180)
    for wy in (20, 90):
        for wx in range(20, WIDTH - 30, 60):
            img[wy:wy + 45, wx:wx + 32] = (70, 60, 55)  # glass
            img[wy + 21:wy + 24, wx:wx + 32] = (200, 200, 200)  # transom
            img[wy:wy + 45, wx + 15:wx + 17] = (200, 200, 200)  # mullion
            cv2.rectangle(img, (wx - 2, wy - 2), (wx + 33, wy + 46), (205, 205, 210), 2)
    img[GROUND_Y:] = (105, 110, 112)  # paving
    for x in range(0, WIDTH, 24):
        img[GROUND_Y:, x:x + 1] = (80, 84, 86)
    for y in range(GROUND_Y, HEIGHT, 12):
        img[y:y + 1] = (80, 84, 86)
    img += rng.normal(0, 5, (HEIGHT, WIDTH, 1)).astype(np.float32)
    if dusk:  # dimmer, bluer and flatter
        img = img * np.float32(0.55) * np.array((1.1, 0.95, 0.85), np.float32) + np.float32(10)
    return img


class _Plume:
    """Puffs born at a source that grow, rise, drift with the wind and fade, textured by moving noise."""

    def __init__(self, rng, *, x: float, y: float, start: float, stop: float = math.inf, rate: float = 10.0,
                 rise: float = 20.0, wind: float = 0.0, radius: float = 7.0, growth: float = 4.5,
                 life: float = 9.0, opacity: float = 0.5, ramp: float = 3.0, noise: np.ndarray | None = None):
        self.rng, self.x, self.y = rng, x, y
        self.noise = _noise(rng, HEIGHT * 3, WIDTH) if noise is None else noise  # drawn first: the same for any length
        self.rise, self.wind, self.radius, self.growth, self.life = rise, wind, radius, growth, life
        self.puffs = []  # (birth, dx, dy, opacity, radius scale)
        t, last = start, min(stop, start + 3600.0)
        while t < last:
            ramped = min(1.0, 0.25 + 0.75 * (t - start) / ramp) if ramp > 0 else 1.0
            self.puffs.append((t, rng.normal(0, 1.5), rng.normal(0, 1.0), opacity * ramped * rng.uniform(0.7, 1.1),
                               rng.uniform(0.8, 1.2)))
            t += rng.exponential(1.0 / rate)
        self.births = [p[0] for p in self.puffs]

    def alpha(self, t: float) -> np.ndarray:
        """Opacity (0–1) of the plume over the frame at ``t``."""
        density = np.zeros((HEIGHT, WIDTH), np.float32)
        yy, xx = _GRID
        first = bisect.bisect_left(self.births, t - self.life)
        for birth, dx, dy, opacity, scale in self.puffs[first:]:
            age = t - birth
            if age < 0:
                break
            if age > self.life:
                continue
            r = scale * (self.radius + self.growth * age)
            # buoyancy slows as the puff cools and mixes; the wind carries it more the higher it gets
            cy = self.y + dy - self.rise * age * (1.0 - 0.25 * age / self.life)
            cx = self.x + dx + self.wind * age + 2.0 * math.sin(1.7 * age + dx)
            x0, x1 = max(0, int(cx - 2.5 * r)), min(WIDTH, int(cx + 2.5 * r) + 1)
            y0, y1 = max(0, int(cy - 2.5 * r)), min(HEIGHT, int(cy + 2.5 * r) + 1)
            if x0 >= x1 or y0 >= y1:
                continue
            fade = opacity * (1.0 - age / self.life)
            d2 = (xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2
            density[y0:y1, x0:x1] += fade * np.exp(-d2 / (2 * r * r))
        density *= 0.3 + 1.4 * self.texture(t)
        return (1.0 - np.exp(-density)).astype(np.float32)

    def texture(self, t: float) -> np.ndarray:
        """The noise field (0–1) scrolled up with the smoke, so the billows move inside the plume."""
        shift = int(self.rise * 0.8 * t) % (HEIGHT * 2)
        return self.noise[shift:shift + HEIGHT]  # row r shows noise row r + shift: the billows move up


def _noise(rng, h: int, w: int) -> np.ndarray:
    """Fractal noise in 0–1: octaves of smoothly enlarged random grids."""
    import cv2

    out = np.zeros((h, w), np.float32)
    for cells, weight in ((4, 0.35), (8, 0.25), (16, 0.2), (32, 0.12), (64, 0.08)):
        grid = rng.random((max(2, h * cells // w), cells)).astype(np.float32)
        out += weight * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _smoke_source(rng, source: str) -> tuple[float, float]:
    if source == "window":
        wx = 20 + 60 * int(rng.integers(0, 5))
        return wx + 16.0, 90 + 40.0  # the bottom of a ground-floor window
    return float(rng.uniform(0.3, 0.7) * WIDTH), float(GROUND_Y + rng.uniform(10, 40))


def _smoke_scene(colour: tuple[float, float, float]):
    def build(rng, background, *, fps, smoke_from, source, dusk, horizon):
        x, y = _smoke_source(rng, source)
        plume = _Plume(rng, x=x, y=y, start=smoke_from, stop=horizon, rise=rng.uniform(15, 25), wind=rng.uniform(-6, 6),
                       opacity=rng.uniform(0.45, 0.7), rate=rng.uniform(8, 12))
        shade = np.array(colour, np.float32) * (0.6 if dusk else 1.0)

        def scene(t):
            a = plume.alpha(t)[..., None]
            texture = plume.texture(t)[..., None] * 40 - 20  # lighter and darker billows
            return background * (1 - a) + (shade + texture) * a

        return scene

    return build


def _flame_smoke(rng, background, *, fps, smoke_from, source, dusk, horizon):
    from vision import fire_synthetic

    x = float(rng.uniform(0.35, 0.65) * WIDTH)
    flame_rng = np.random.default_rng(rng.integers(1 << 30))
    plume = _Plume(rng, x=x, y=GROUND_Y - 40, start=smoke_from + 0.5, stop=horizon, rise=rng.uniform(15, 22),
                   wind=rng.uniform(-5, 5), opacity=0.6)
    shade = np.array((75, 75, 78), np.float32) * (0.6 if dusk else 1.0)

    def scene(t):
        frame = background.copy()
        fire_synthetic._flame(frame, t, flame_rng, x, smoke_from)
        a = plume.alpha(t)[..., None]
        return frame * (1 - a) + shade * a

    return scene


def _grey_car(rng, background, *, fps, smoke_from, source, dusk, horizon):
    import cv2

    passes = []  # (start time, direction, speed px/s, length, height, grey, lane y)
    t = rng.uniform(0.0, 2.0)
    while t < horizon:
        lorry = rng.random() < 0.3
        passes.append((t, int(rng.choice((-1, 1))), rng.uniform(40, 110) if not lorry else rng.uniform(30, 60),
                       rng.uniform(110, 150) if lorry else rng.uniform(60, 80), rng.uniform(55, 70) if lorry
                       else rng.uniform(28, 36), rng.uniform(120, 200), GROUND_Y + rng.uniform(15, 40)))
        t += rng.uniform(3.0, 9.0)

    def scene(t):
        frame = background.copy()
        for start, direction, speed, length, height, grey, lane in passes:
            if start > t:
                break
            travelled = (t - start) * speed
            if travelled > WIDTH + length:
                continue
            x0 = -length + travelled if direction > 0 else WIDTH - travelled
            x0, y1 = int(x0), int(lane)
            x1, y0 = int(x0 + length), int(lane - height)
            cv2.rectangle(frame, (x0, y0), (x1, y1), (grey, grey, grey + 3), -1)
            cv2.rectangle(frame, (x0 + 8, y0 + 4), (x0 + int(length * 0.4), y0 + int(height * 0.45)),
                          (grey * 0.45,) * 3, -1)  # windows
            for wx in (x0 + int(length * 0.2), x0 + int(length * 0.8)):
                cv2.circle(frame, (wx, y1), 7, (30, 30, 30), -1)
        return frame

    return scene


def _grey_people(rng, background, *, fps, smoke_from, source, dusk, horizon):
    walkers = []
    t = rng.uniform(0.0, 1.5)
    while t < horizon:
        walkers.append((t, int(rng.choice((-1, 1))), rng.uniform(20, 45), rng.uniform(130, 235),
                        GROUND_Y + rng.uniform(20, 60), rng.uniform(0.85, 1.15)))
        t += rng.uniform(1.5, 6.0)

    def scene(t):
        frame = background.copy()
        for start, direction, speed, grey, foot, size in walkers:
            if start > t:
                break
            travelled = (t - start) * speed
            if travelled > WIDTH + 40:
                continue
            x = int(-20 + travelled if direction > 0 else WIDTH + 20 - travelled)
            y = int(foot)
            h = int(60 * size)
            step = int(4 * math.sin(2 * math.pi * 1.8 * (t - start)))
            frame[y - h // 2:y, max(0, x - 5 + step):max(0, x + step)] = (grey * 0.5,) * 3  # legs, walking
            frame[y - h // 2:y, max(0, x - step):max(0, x + 5 - step)] = (grey * 0.5,) * 3
            frame[y - h + 12:y - h // 2, max(0, x - 9):max(0, x + 9)] = (grey, grey, grey)  # coat
            frame[y - h:y - h + 12, max(0, x - 5):max(0, x + 5)] = (120, 150, 200)  # head
        return frame

    return scene


def _cloud_shadow(rng, background, *, fps, smoke_from, source, dusk, horizon):
    import cv2

    clouds = []
    t = -rng.uniform(0, 20)
    while t < horizon:
        clouds.append((t, rng.uniform(4, 12) * rng.choice((-1, 1)), rng.uniform(80, 160), rng.uniform(0.55, 0.8),
                       rng.uniform(-40, HEIGHT + 40)))
        t += rng.uniform(15, 40)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)

    def scene(t):
        gain = np.full((HEIGHT, WIDTH), 1.0 + 0.12 * math.sin(2 * math.pi * t / 90.0), np.float32)  # daylight
        for start, speed, radius, depth, cy in clouds:
            if start > t:
                break
            travel = (t - start) * abs(speed)
            if travel > WIDTH + 4 * radius:
                continue
            cx = -2 * radius + travel if speed > 0 else WIDTH + 2 * radius - travel
            d2 = ((xx - cx) / 1.6) ** 2 + (yy - cy) ** 2
            gain *= 1.0 - (1.0 - depth) * np.exp(-d2 / (2 * radius * radius)) ** 0.5
        gain = cv2.GaussianBlur(gain, (0, 0), 3)
        return background * gain[..., None]

    return scene


def _fog(rng, background, *, fps, smoke_from, source, dusk, horizon):
    period = rng.uniform(20, 60)
    peak = rng.uniform(0.35, 0.6)
    colour = np.array((200, 200, 205), np.float32) * (0.6 if dusk else 1.0)
    ramp = np.linspace(0.85, 1.0, HEIGHT, dtype=np.float32)[:, None, None]  # a touch thicker near the ground

    def scene(t):
        a = peak * 0.5 * (1 - math.cos(2 * math.pi * (t + 2.0) / period)) * ramp
        return background * (1 - a) + colour * a

    return scene


def _steam(rng, background, *, fps, smoke_from, source, dusk, horizon):
    x, y = float(rng.uniform(0.25, 0.75) * WIDTH), float(rng.uniform(60, GROUND_Y))
    puffs, noise = [], _noise(rng, HEIGHT * 3, WIDTH)
    t = rng.uniform(0.5, 2.0)
    while t < horizon:
        puffs.append(_Plume(rng, x=x, y=y, start=t, stop=t + rng.uniform(0.4, 0.8), rate=20, rise=30, radius=5,
                            growth=10, life=rng.uniform(1.2, 1.6), opacity=0.7, ramp=0.0, noise=noise))
        t += rng.uniform(6.0, 10.0)
    colour = np.array((235, 235, 238), np.float32) * (0.7 if dusk else 1.0)

    def scene(t):
        frame = background.copy()
        for plume in puffs:
            if plume.puffs and plume.puffs[0][0] <= t <= plume.puffs[-1][0] + plume.life:
                a = plume.alpha(t)[..., None]
                frame = frame * (1 - a) + colour * a
        return frame

    return scene


def _exposure(rng, background, *, fps, smoke_from, source, dusk, horizon):
    steps = []
    t, gain = rng.uniform(1.0, 3.0), 1.0
    while t < horizon:
        new = float(np.clip(gain * rng.choice((0.7, 0.8, 1.25, 1.4)), 0.6, 1.6))
        steps.append((t, gain, new))
        gain = new
        t += rng.uniform(4.0, 12.0)

    def scene(t):
        g = 1.0
        for start, old, new in steps:
            if start > t:
                break
            g = old + (new - old) * min(1.0, (t - start) / 0.4)  # the camera settles in 0.4 s
        return background * g

    return scene


_SCENES = {"light_smoke": _smoke_scene((205, 205, 208)), "dark_smoke": _smoke_scene((60, 60, 62)),
           "flame_smoke": _flame_smoke, "grey_car": _grey_car, "grey_people": _grey_people,
           "cloud_shadow": _cloud_shadow, "fog": _fog, "steam": _steam, "exposure": _exposure}
