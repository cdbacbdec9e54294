"""A small MLP over track features: falling object vs bird, insect, leaf, rain streak, light flicker.

Inference only: the model, the track features and loading the weights, with numpy, so
analysis does not import PyTorch. The weights are a small JSON file that
``vision.training`` makes from the simulated trajectories of ``vision.simulation``
(``onemap vision train``, or ``load_or_train`` on first use); rendered clips, and in
particular the benchmark set of ``data/falling_clips.py``, are never used for training.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.physics import G

CLASSES = ("falling_object", "bird", "insect", "leaf", "rain_streak", "light_flicker")
FEATURES = (
    "log_frames", "duration_s", "accel_g", "quad_residual_px", "linear_residual_px", "lateral_residual_px",
    "mean_vz", "std_vz", "lateral_speed", "std_vx", "descending_fraction", "straightness",
    "log_area", "area_cv", "log_aspect", "vz_sign_changes", "descent_10m", "quad_residual_size",
)
FORMAT = "onemap-falling-mlp/1"


class ClassifierError(RuntimeError):
    """The classifier cannot be trained or loaded; the message says what to do."""


@dataclass(frozen=True)
class TrackSample:
    """A track in façade metres with its blob shape, as the simulator and the detector both produce it."""

    t: np.ndarray
    u: np.ndarray
    v: np.ndarray
    area: np.ndarray
    w: np.ndarray
    h: np.ndarray
    m_per_px: float


def default_model_path() -> Path:
    """``$ONEMAP_VAR_DIR/models/falling_mlp.json`` (``.var/`` of the checkout by default)."""
    var = os.environ.get("ONEMAP_VAR_DIR")
    base = Path(var) if var else Path(__file__).resolve().parent.parent / ".var"
    return base / "models" / "falling_mlp.json"


def read_weights(path: Path) -> dict:
    """The weights file as a dict, with its ``_sha256``; ClassifierError when it is missing or not JSON."""
    if not path.exists():
        raise ClassifierError(f"{path} does not exist; run `onemap vision train`")
    raw = path.read_bytes()
    try:
        weights = json.loads(raw)
    except ValueError:
        raise ClassifierError(f"{path} is not a weights file; delete it and run `onemap vision train`") from None
    weights["_sha256"] = hashlib.sha256(raw).hexdigest()
    return weights


# -- inference -------------------------------------------------------------------


class FallingClassifier:
    """The trained MLP, evaluated with numpy."""

    def __init__(self, weights: dict):
        if weights.get("format") != FORMAT or weights.get("features") != list(FEATURES):
            raise ClassifierError(
                f"weights file format {weights.get('format')!r} is not {FORMAT}; run `onemap vision train`"
            )
        self.mean = np.asarray(weights["mean"], dtype=np.float64)
        self.std = np.asarray(weights["std"], dtype=np.float64)
        self.layers = [(np.asarray(l["weight"], dtype=np.float64), np.asarray(l["bias"], dtype=np.float64))
                       for l in weights["layers"]]
        self.sha256 = weights.get("_sha256", "")

    @classmethod
    def load(cls, path: Path | None = None) -> "FallingClassifier":
        """Load the weights file; ClassifierError when it is missing or for other track features."""
        return cls(read_weights(Path(path) if path else default_model_path()))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (N×classes) for feature rows (N×features)."""
        x = (np.atleast_2d(features) - self.mean) / self.std
        for k, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if k < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        x = x - x.max(axis=1, keepdims=True)
        e = np.exp(x)
        return e / e.sum(axis=1, keepdims=True)

    def falling_probability(self, sample: TrackSample) -> float:
        """P(falling object) for one track."""
        return float(self.probabilities(track_features(sample))[0, 0])


# -- features ------------------------------------------------------------------------


def track_features(s: TrackSample) -> np.ndarray:
    """The feature vector of one track (see ``FEATURES``); scale-free where noise matters."""
    t, u, v = s.t - s.t[0], s.u, s.v
    n = len(t)
    px = max(s.m_per_px, 1e-6)
    dur = float(t[-1]) if n > 1 else 0.0
    if n >= 3 and dur > 0:
        c2, c1, c0 = np.polyfit(t, v, 2)
        quad = v - (c0 + c1 * t + c2 * t * t)
        l1, l0 = np.polyfit(t, v, 1)
        lin = v - (l0 + l1 * t)
        m1, m0 = np.polyfit(t, u, 1)
        lat = u - (m0 + m1 * t)
    else:
        c2 = m1 = 0.0
        quad = lin = lat = np.zeros(n)
    dt = np.diff(t)
    dt[dt <= 0] = 1e-3
    vz, vx = (np.diff(v) / dt, np.diff(u) / dt) if n > 1 else (np.zeros(1), np.zeros(1))
    path = float(np.sum(np.hypot(np.diff(u), np.diff(v)))) if n > 1 else 0.0
    chord = float(np.hypot(u[-1] - u[0], v[-1] - v[0]))
    signs = np.sign(np.diff(v))
    changes = float(np.mean(signs[1:] != signs[:-1])) if len(signs) > 1 else 0.0
    area = np.maximum(s.area.astype(float), 1.0)
    aspect = np.maximum(s.h, 1) / np.maximum(s.w, 1)
    size_px = float(np.median(np.maximum(s.w, s.h))) if n else 1.0
    return np.array([
        math.log(n), min(dur, 10.0), float(np.clip(2 * c2 / G, -5, 5)),
        math.log1p(_rms(quad) / px), math.log1p(_rms(lin) / px), math.log1p(_rms(lat) / px),
        float(np.clip(vz.mean(), -60, 60)) / 10, float(np.clip(vz.std(), 0, 60)) / 10,
        float(np.clip(abs(m1), 0, 60)) / 10, float(np.clip(vx.std(), 0, 60)) / 10,
        float(np.mean(np.diff(v) < 0)) if n > 1 else 0.0, chord / path if path > 0 else 0.0,
        float(np.log(area).mean()), float(area.std() / area.mean()), float(np.log(aspect).mean()),
        changes, float(np.clip(v.max() - v[-1], 0, 100)) / 10,
        # a large object's centroid wanders by a share of its size (it tumbles, and is seen in pieces)
        math.log1p(_rms(quad) / px / max(size_px, 1.0)),
    ])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0

