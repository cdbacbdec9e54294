"""Simulated façade trajectories of every class, as the detector would measure them, for training.

Each class has a motion model in façade metres (a fall with drag, a flapping or gliding
bird, a darting insect, a fluttering leaf, rain streaks, a flickering light); ``_observe``
turns a motion into what the detector measures. Draws come from
``SeedSequence([seed, TRAINING_STREAM])``, a seed space of its own: the rendered clips of
``data/falling_clips.py`` (the benchmark set) are never used for training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vision.classifier import TrackSample, track_features
from vision.physics import G

TRAINING_STREAM = 0x7E1A  # the simulator's own seed space, apart from any clip generator's seeds


def simulate_dataset(*, seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and class labels: ``per_class`` simulated tracks of each class (falling twice as many)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, TRAINING_STREAM]))
    makers = (_falling, _bird, _insect, _leaf, _rain, _flicker)
    rows, labels = [], []
    for label, make in enumerate(makers):
        count = per_class * 2 if label == 0 else per_class
        for _ in range(count):
            rows.append(track_features(_observe(rng, make(rng), rng.uniform(1 / 40, 1 / 8))))
            labels.append(label)
    return np.array(rows), np.array(labels)


@dataclass
class _Motion:
    t: np.ndarray
    u: np.ndarray
    v: np.ndarray
    size_px: np.ndarray  # the object's longest extent per frame
    streak_px: np.ndarray  # extra length along the motion (blur or streak)
    elongation: np.ndarray | float = 1.0  # longest ÷ shortest extent (a ball 1, a stick 5, a bird's wings 2-3)
    angle: np.ndarray | float = 0.0  # orientation of the longest extent, radians from the image's x axis


def _times(rng, frames: int) -> np.ndarray:
    fps = rng.choice([10.0, 15.0, 25.0, 25.0, 30.0])
    return np.arange(frames) / fps


def _falling(rng) -> _Motion:
    fps = rng.choice([10.0, 15.0, 25.0, 25.0, 30.0])
    height = rng.uniform(4, 60)
    vt = rng.uniform(8, 60)  # terminal speed: light to dense objects
    g_eff = G * rng.uniform(0.8, 1.2)  # perspective of objects off the façade plane
    up = rng.uniform(0, 3) if rng.random() < 0.3 else 0.0  # an upward throw first rises
    start = -up / g_eff + rng.uniform(0, 0.4)
    floor_v = rng.uniform(0, max(height - 3, 0.5))
    t = start + np.arange(400) / fps
    fall = np.where(t < 0, 0.5 * g_eff * t * t, (vt * vt / g_eff) * np.log(np.cosh(g_eff * np.maximum(t, 0) / vt)))
    v = height - fall
    keep = v >= floor_v
    keep[: 5] = True
    t, v = t[keep][:150], v[keep][:150]
    u = rng.uniform(0, 40) + rng.uniform(-3, 3) * (t - t[0])
    speed = np.abs(np.gradient(v, t)) if len(t) > 1 else np.zeros(len(t))
    # tumbling sticks, bottles and bags change their outline; low contrast breaks them into pieces
    spin = rng.uniform(0, 12)
    wobble = rng.uniform(0, 0.6) * np.abs(np.sin(spin * t + rng.uniform(0, 6.3)))
    pieces = np.exp(rng.normal(0, rng.uniform(0, 0.4), len(t)))
    size = rng.uniform(3, 40) * (1 - wobble) * pieces
    elongation = math.exp(rng.uniform(0, math.log(5)))  # a ball … a stick
    angle = rng.uniform(0, 2 * math.pi) + spin * (t - t[0])
    return _Motion(t - t[0], u, v, size, speed * rng.uniform(0, 1) / fps / rng.uniform(1 / 40, 1 / 8),
                   elongation, angle)


def _bird(rng) -> _Motion:
    t = _times(rng, int(rng.integers(5, 120)))
    vu = rng.choice([-1, 1]) * rng.uniform(2, 14)
    if rng.random() < 0.5:  # flapping flight: the body bobs with the wing beat
        f, amp = rng.uniform(2, 9), rng.uniform(0.05, 0.6)
        v = rng.uniform(5, 60) + rng.uniform(-2, 2) * t + amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
        size = rng.uniform(6, 60) * (1 + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * f * t))
    else:  # gliding or diving: smooth, at most a fraction of g
        v = rng.uniform(5, 60) + rng.uniform(-7, 1.5) * t - 0.5 * rng.uniform(0, 0.3) * G * t * t
        size = np.full(len(t), rng.uniform(6, 60))
        vu *= rng.uniform(0, 1)
    wings = rng.uniform(1.5, 3.5)  # spread wings: wide, and level give or take a tilt
    return _Motion(t, rng.uniform(0, 40) + vu * t, v, size, np.zeros(len(t)), wings,
                   rng.normal(0, 0.25, len(t)))


def _insect(rng) -> _Motion:
    t = _times(rng, int(rng.integers(5, 100)))
    vel = rng.normal(0, 3, 2)
    pos = np.empty((len(t), 2))
    p = np.array([rng.uniform(0, 40), rng.uniform(3, 60)])
    for k in range(len(t)):  # a darting random walk of the velocity
        pos[k] = p
        vel = 0.7 * vel + rng.normal(0, 2.5, 2)
        p = p + vel * (t[1] - t[0] if len(t) > 1 else 0.04)
    size = rng.uniform(8, 120) * (1 + 0.3 * rng.standard_normal(len(t)).clip(-2, 2))
    return _Motion(t, pos[:, 0], pos[:, 1], np.abs(size) + 2, np.zeros(len(t)), rng.uniform(1, 2.5),
                   rng.uniform(0, 2 * math.pi) + rng.normal(0, 0.5, len(t)))


def _leaf(rng) -> _Motion:
    t = _times(rng, int(rng.integers(5, 150)))
    vt = rng.uniform(0.4, 3.5)
    tau = vt / G
    v = rng.uniform(5, 60) - vt * (t - tau * (1 - np.exp(-t / tau)))
    f, amp = rng.uniform(0.3, 2.0), rng.uniform(0.1, 1.5)
    phase = rng.uniform(0, 6.3)
    u = rng.uniform(0, 40) + amp * np.sin(2 * np.pi * f * t + phase) + rng.uniform(-1, 1) * t
    v = v + 0.25 * amp * np.cos(4 * np.pi * f * t + phase)
    size = rng.uniform(4, 40) * (1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    return _Motion(t, u, v, np.abs(size) + 1, np.zeros(len(t)), rng.uniform(1, 3),
                   rng.uniform(0, 2 * math.pi) + rng.uniform(0, 6) * t)


def _rain(rng) -> _Motion:
    if rng.random() < 0.5:
        return _rain_chain(rng)
    t = _times(rng, int(rng.integers(5, 25)))
    vv = rng.uniform(4, 11)
    v = rng.uniform(3, 60) - vv * t
    u = rng.uniform(0, 40) + rng.uniform(-1.5, 1.5) * t
    size = np.full(len(t), rng.uniform(1, 4))
    return _Motion(t, u, v, size, np.full(len(t), rng.uniform(6, 40)))


def _rain_chain(rng) -> _Motion:
    """Streaks of different drops that a tracker strings together: downward on the whole, but ragged."""
    t = _times(rng, int(rng.integers(5, 14)))
    step = rng.uniform(0.3, 2.5)  # metres between consecutive picks
    v = rng.uniform(5, 60) - np.cumsum(np.abs(rng.normal(step, step * 0.8, len(t))))
    u = rng.uniform(0, 40) + np.cumsum(rng.normal(0, step * rng.uniform(0.2, 1.0), len(t)))
    size = rng.uniform(1, 6) * np.exp(rng.normal(0, 0.5, len(t)))
    return _Motion(t, u, v, size, np.abs(rng.normal(15, 8, len(t))))


def _flicker(rng) -> _Motion:
    t = _times(rng, int(rng.integers(5, 80)))
    u = np.full(len(t), rng.uniform(0, 40)) + rng.normal(0, 0.05, len(t))
    v = np.full(len(t), rng.uniform(3, 60)) + rng.normal(0, 0.05, len(t))
    size = rng.uniform(3, 60) * rng.uniform(0.3, 1.0, len(t))
    return _Motion(t, u, v, size, np.zeros(len(t)), rng.uniform(1, 4), rng.uniform(0, math.pi))


def _observe(rng, m: _Motion, m_per_px: float) -> TrackSample:
    """What the detector would measure: centroid noise, blob boxes and areas, partial views, missed frames.

    An elongated object's box follows its orientation; a streak (blur, rain) lengthens it
    downwards. Part of an object may be lost against a wall of its own colour: the blob is then
    smaller and its centroid off the object's centre.
    """
    n = len(m.t)
    keep = rng.random(n) > 0.05
    keep[:2] = keep[-2:] = True
    k = int(keep.sum())
    noise = (rng.uniform(0.3, 1.5) + rng.uniform(0, 0.2) * float(np.median(m.size_px))) * m_per_px
    size = np.maximum(m.size_px[keep], 1.0)
    streak = m.streak_px[keep]
    along = size
    across = size / (np.broadcast_to(m.elongation, (n,))[keep])
    angle = np.broadcast_to(m.angle, (n,))[keep]
    seen = np.ones(k)
    if rng.random() < 0.5:  # seen in pieces now and then
        part = rng.random(k) < rng.uniform(0, 0.5)
        seen[part] = rng.uniform(0.3, 1.0, int(part.sum()))
    along, across = along * seen, across * np.sqrt(seen)
    offset = rng.normal(0, 1, (2, k)) * (1 - seen) * size / 2 * m_per_px
    c, s = np.abs(np.cos(angle)), np.abs(np.sin(angle))
    w = np.maximum(np.round(along * c + across * s), 1)
    h = np.maximum(np.round(along * s + across * c + streak), 1)
    area = np.maximum(np.round((0.785 * along * across + streak * across) * rng.uniform(0.7, 1.1, k)), 1)
    return TrackSample(
        t=m.t[keep], u=m.u[keep] + rng.normal(0, noise, k) + offset[0],
        v=m.v[keep] + rng.normal(0, noise, k) + offset[1], area=area, w=w, h=h, m_per_px=m_per_px,
    )
