"""The gravity gate: in façade metres, a thrown object descends monotonically while accelerating at about g.

Drag lowers the acceleration and perspective (an object falling in front of the
façade plane) scales it, so a band around g is accepted rather than g itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.config import DetectorConfig

G = 9.81
HELD_M = 0.2  # metres a track may wander before it counts as having started to fall
MIN_WATCHED_DESCENT = 0.3  # share of a fall's descent that must lie between detections close in time
MAX_LEAP_SHARE = 0.4  # ... unless it was seen in bursts all the way down: no one gap holds more than this share
SIZE_WANDER = 0.15  # share of an object's size its centroid may wander from the ballistic path
EARLY_FRAMES = 25  # the part of a long fall judged on its own, before drag dominates
OUTLIER_MIN_POINTS = 7  # a fit of this many points or more leaves out one point far off the rest
OUTLIER_SIGMAS = 4.0  # ... this many RMS residuals of the others away
OUTLIER_MIN_M = 0.05  # ... and at least this far
MAX_STEP_SHARE = 0.5  # largest share of a fall's descent one step between detections may make
HELD_FRAMES = 10  # a track that stays this long within its wander of one height was held (or is not falling)


@dataclass(frozen=True)
class BallisticFit:
    """A quadratic fit v(t) = c0 + c1 t + c2 t² and linear u(t) of the falling part of a track."""

    t0: float  # seconds: the time origin of the coefficients
    v_coef: tuple[float, float, float]  # c0, c1, c2
    u_coef: tuple[float, float]  # u0, du/dt
    accel: float  # m/s², negative = downward
    residual_m: float  # RMS of v about the fit
    descent_m: float
    descending_fraction: float
    apex_index: int

    def v_at(self, t: float) -> float:
        s = t - self.t0
        return self.v_coef[0] + self.v_coef[1] * s + self.v_coef[2] * s * s

    def u_at(self, t: float) -> float:
        return self.u_coef[0] + self.u_coef[1] * (t - self.t0)

    def release_time(self, *, earliest: float) -> float:
        """When vertical speed was zero (the release of a dropped object), not before ``earliest``."""
        c1, c2 = self.v_coef[1], self.v_coef[2]
        if c2 >= 0:
            return self.t0
        apex = self.t0 - c1 / (2 * c2)
        return float(min(max(apex, earliest), self.t0))


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str
    fit: BallisticFit | None


def gravity_gate(t: np.ndarray, u: np.ndarray, v: np.ndarray, *, config: DetectorConfig,
                 size_m: float = 0.0) -> GateResult:
    """Does this façade track (seconds, metres) move like an object falling under gravity?

    ``size_m`` is the object's typical extent on the façade: a large, tumbling object is seen in
    changing pieces, so its centroid wanders by a share of its size and the fit is allowed that much more.
    """
    t, u, v = (np.asarray(a, dtype=float) for a in (t, u, v))
    if len(t) < config.min_track_frames:
        return GateResult(False, f"only {len(t)} frames (needs {config.min_track_frames})", None)
    apex = _launch_index(v, _apex_index(v))
    fall = slice(apex, None)
    n_fall = len(t) - apex
    if n_fall < config.min_track_frames:
        return GateResult(False, "never falls: rises or stays level to the end of the track", None)
    result = _judge(t[fall], u[fall], v[fall], apex, config, size_m)
    if result.passed and len(t) - _last_stay(v, wander=max(HELD_M, SIZE_WANDER * size_m)) < config.min_track_frames:
        # a blob that sits and then slips away below in a frame or two: the slip is too short to be a fall
        return GateResult(False, "sits, then slips away in too few frames to judge", result.fit)
    early = apex + EARLY_FRAMES
    if not result.passed and result.fit is not None and len(t) - early >= EARLY_FRAMES // 2:
        # drag flattens a long fall towards terminal speed; its first second still shows gravity
        first = _judge(t[apex:early], u[apex:early], v[apex:early], apex, config, size_m)
        if first.passed:
            return GateResult(True, "falls under gravity, then slows by drag", first.fit)
    return result


def _judge(t: np.ndarray, u: np.ndarray, v: np.ndarray, apex: int, config: DetectorConfig, size_m: float) -> GateResult:
    fit = fit_ballistic(t, u, v, apex_index=apex)
    if len(t) >= OUTLIER_MIN_POINTS:
        # one stray blob (a piece of something else, a leap at the end) can bend a short fit into a
        # parabola: a point far off a fit that suits all the others is left out
        resid = np.abs(v - np.array([fit.v_at(x) for x in t]))
        worst = int(np.argmax(resid))
        rest = np.delete(np.arange(len(t)), worst)
        refit = fit_ballistic(t[rest], u[rest], v[rest], apex_index=apex)
        if resid[worst] > max(OUTLIER_SIGMAS * refit.residual_m, OUTLIER_MIN_M):
            t, u, v, fit = t[rest], u[rest], v[rest], refit
    if fit.descent_m < config.min_descent_m:
        return GateResult(False, f"descends {fit.descent_m:.2f} m (needs {config.min_descent_m} m)", fit)
    steps = np.diff(t)
    steps_down = -np.diff(v)[steps <= 1.5 * float(np.median(steps))]  # between frames in a row (gaps: below)
    if len(steps_down) and steps_down.max() > MAX_STEP_SHARE * fit.descent_m:
        # a fall spreads its descent over its frames (from rest, the last of five steps is 36% of it)
        return GateResult(False, f"leaps: {steps_down.max() / fit.descent_m:.0%} of its descent in one step", fit)
    if fit.descending_fraction < 0.8:
        return GateResult(False, f"not monotonic: descends in {fit.descending_fraction:.0%} of steps", fit)
    # most of the fall must be watched: a track that hovers and then makes its descent in one leap
    # across a gap (a leaf that faded, then a stray blob far below) is not a fall
    drops = np.clip(-np.diff(v), 0.0, None)
    watched = steps <= 3.5 * float(np.median(steps))
    if (drops.sum() > 0 and drops[watched].sum() < MIN_WATCHED_DESCENT * drops.sum()
            and drops[~watched].max() > MAX_LEAP_SHARE * drops.sum()):
        unseen = 1 - drops[watched].sum() / drops.sum()
        return GateResult(False, f"unwatched: {unseen:.0%} of its descent is in gaps", fit)
    lo, hi = -config.gravity_max * G, -config.gravity_min * G
    if not lo <= fit.accel <= hi:
        return GateResult(False, f"acceleration {fit.accel:+.1f} m/s² is not gravity ({lo:.1f} to {hi:.1f})", fit)
    if abs(fit.u_coef[1]) > config.max_lateral_speed:
        return GateResult(False, f"sideways: {abs(fit.u_coef[1]):.1f} m/s along the façade "
                                 f"(at most {config.max_lateral_speed:g})", fit)
    allowed = config.max_fit_residual_m + 0.02 * fit.descent_m + SIZE_WANDER * size_m
    if fit.residual_m > allowed:
        return GateResult(False, f"erratic: {fit.residual_m:.2f} m from a ballistic path (allowed {allowed:.2f})", fit)
    # a blob that sits still and then jumps (a flicker, a hand) can fit a parabola; a fall speeds up smoothly
    dt = np.maximum(np.diff(t), 1e-3)
    rates = -np.diff(v) / dt
    end_speed = -(fit.v_coef[1] + 2 * fit.v_coef[2] * (t[-1] - fit.t0))
    limit = 2.0 * max(end_speed, 0.0) + 3.0 * (fit.residual_m + 0.02) / float(np.median(dt))
    if len(rates) and rates.max() > limit:
        return GateResult(False, f"jumps: {rates.max():.1f} m/s in one step, the fall reaches {end_speed:.1f} m/s", fit)
    return GateResult(True, "falls under gravity", fit)


def fit_ballistic(t: np.ndarray, u: np.ndarray, v: np.ndarray, *, apex_index: int = 0) -> BallisticFit:
    """Least-squares quadratic v(t) and linear u(t) (times relative to the first sample)."""
    t0 = float(t[0])
    s = t - t0
    if len(s) >= 3 and np.ptp(s) > 0:
        c2, c1, c0 = np.polyfit(s, v, 2)
    else:
        c2, c1, c0 = 0.0, 0.0, float(v.mean())
    du, u0 = np.polyfit(s, u, 1) if len(s) >= 2 and np.ptp(s) > 0 else (0.0, float(u.mean()))
    resid = v - (c0 + c1 * s + c2 * s * s)
    steps = np.diff(v)
    # a step counts as descending unless it rises by more than the centroid noise
    tol = 0.01 + 1.5 * float(np.sqrt(np.mean(resid ** 2)))
    descending = float(np.mean(steps < tol)) if len(steps) else 0.0
    return BallisticFit(
        t0=t0, v_coef=(float(c0), float(c1), float(c2)), u_coef=(float(u0), float(du)), accel=float(2 * c2),
        residual_m=float(np.sqrt(np.mean(resid ** 2))), descent_m=float(v.max() - v[-1]),
        descending_fraction=descending, apex_index=apex_index,
    )


def _launch_index(v: np.ndarray, apex: int) -> int:
    """Where the fall starts: an object held still (or a blob that only sits) before it moves is not falling."""
    dropped = np.nonzero(v[apex] - v[apex:] >= HELD_M)[0]
    if len(dropped) == 0:
        return apex
    return apex + max(int(dropped[0]) - 2, 0)


def _last_stay(v: np.ndarray, *, wander: float) -> int:
    """Index where the track's last stay at one height (HELD_FRAMES within ``wander``) ends; 0 if none."""
    if len(v) < HELD_FRAMES:
        return 0
    windows = np.lib.stride_tricks.sliding_window_view(v, HELD_FRAMES)
    still = np.nonzero(np.ptp(windows, axis=1) < wander)[0]
    return int(still[-1]) + HELD_FRAMES if len(still) else 0


def _apex_index(v: np.ndarray) -> int:
    """Index of the highest point, on a lightly smoothed height so one noisy sample does not decide."""
    if len(v) >= 3:
        smooth = np.convolve(np.pad(v, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    else:
        smooth = v
    return int(np.argmax(smooth))
