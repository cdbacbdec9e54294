"""vision.physics: the gravity gate accepts falls and turns down birds, horizontal movers and upward throws."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vision.config import DetectorConfig
from vision.physics import G, gravity_gate

FPS = 25.0
CONFIG = DetectorConfig()


def _noisy(rng, *arrays, sigma=0.03):
    return [a + rng.normal(0, sigma, len(a)) for a in arrays]


def _fall(n=30, v0=40.0, drag_terminal=None, vz0=0.0, u_speed=0.5, seed=1):
    t = np.arange(n) / FPS
    if drag_terminal:
        vt = drag_terminal
        v = v0 - (vt * vt / G) * np.log(np.cosh(G * t / vt))
    else:
        v = v0 + vz0 * t - 0.5 * G * t * t
    u = 10 + u_speed * t
    return (t, *_noisy(np.random.default_rng(seed), u, v))


def _flapping_bird(seed=2):
    t = np.arange(50) / FPS
    u = 5 + 8 * t
    v = 30 - 1.5 * t + 0.4 * np.sin(2 * np.pi * 5 * t)
    return (t, *_noisy(np.random.default_rng(seed), u, v))


def _gliding_bird(seed=3):
    t = np.arange(40) / FPS
    return (t, *_noisy(np.random.default_rng(seed), 5 + 9 * t, 35 - 4 * t))


def _horizontal(seed=4):
    t = np.arange(40) / FPS
    return (t, *_noisy(np.random.default_rng(seed), 2 + 6 * t, np.full(len(t), 20.0)))


def _upward_throw(seed=5):
    """Thrown up hard and out of view before it comes down."""
    t = np.arange(20) / FPS
    return (t, *_noisy(np.random.default_rng(seed), np.full(len(t), 12.0), 20 + 12 * t - 0.5 * G * t * t))


def _leaf(seed=6):
    t = np.arange(60) / FPS
    u = 8 + 0.8 * np.sin(2 * np.pi * 0.8 * t)
    v = 25 - 1.2 * t + 0.2 * np.cos(2 * np.pi * 1.6 * t)
    return (t, *_noisy(np.random.default_rng(seed), u, v))


def _held_then_dropped(seed=7):
    """Held out of the window for half a second, then let go."""
    t = np.arange(45) / FPS
    fall = np.clip(t - 0.5, 0, None)
    return (t, *_noisy(np.random.default_rng(seed), np.full(len(t), 6.0), 30 - 0.5 * G * fall ** 2))


def _sits_then_jumps(seed=8):
    """A blob that flickers in place, then shows up 1.6 m lower once (a hand, a branch)."""
    t = np.append(np.arange(11), 16) / FPS
    v = np.append(np.full(11, 25.6), 23.9)
    return (t, *_noisy(np.random.default_rng(seed), np.full(len(t), 20.0), v, sigma=0.04))


@pytest.mark.parametrize(
    "track",
    [
        _held_then_dropped(),
        _fall(),
        _fall(n=60, drag_terminal=25.0),  # drag
        _fall(n=15),
        _fall(vz0=2.0, n=40),  # a small upward toss first
    ],
    ids=["held-then-dropped", "free-fall", "with-drag", "short", "tossed-up"],
)
def test_falling_tracks_pass(track):
    result = gravity_gate(*track, config=CONFIG)
    assert result.passed, result.reason
    assert -1.3 * G < result.fit.accel < -0.5 * G


@pytest.mark.parametrize(
    "track, reason",
    [
        (_flapping_bird(), r"erratic|not monotonic|not gravity"),
        (_gliding_bird(), "not gravity"),
        (_horizontal(), "descends"),
        (_upward_throw(), "never falls"),
        (_leaf(), r"not gravity|not monotonic|erratic"),
        (_fall(n=4), "only 4 frames"),
        (_sits_then_jumps(), r"never falls|only|descends"),
    ],
    ids=["flapping-bird", "gliding-bird", "horizontal", "upward-throw", "leaf", "four-frames", "sits-then-jumps"],
)
def test_non_falling_tracks_are_turned_down(track, reason):
    result = gravity_gate(*track, config=CONFIG)
    assert not result.passed
    assert result.reason
    assert re.search(reason, result.reason), result.reason


def test_release_time_of_a_drop_is_found_by_back_extrapolation():
    t, u, v = _fall(n=40, v0=30.0, seed=9)
    late = slice(10, None)  # seen only from 0.4 s after release
    result = gravity_gate(t[late], u[late], v[late], config=CONFIG)
    assert result.passed
    released = result.fit.release_time(earliest=t[10] - 1.5)
    assert released == pytest.approx(0.0, abs=0.08)
    assert result.fit.v_at(released) == pytest.approx(30.0, abs=0.3)
