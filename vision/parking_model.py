"""Does a parking spot's view look like a vehicle? A small MLP over appearance features, in numpy.

The learnt empty view of a spot (``vision.parking``) judges arrivals and departures well, but a
spot needs a first judgement before it has been seen empty, and a wrong first judgement used to
be learnt as the empty view and last until the spot changed. This model judges a spot's view on
its own: the brightness of its visible pixels against the road around it (percentiles, dark and
bright shares, the spread along its rows and columns), the strength of its detail edges against
the road's, its colour against the road's, and its size in the frame; all ratios, so shadows and
night change them little.

The weights (``parking_spot_model.json`` beside this module, a few kilobytes) are made by
``scripts/train_parking_model.py`` from clips the project renders itself
(``vision.parking_synthetic``) of the demo's parking cameras *other* than the three the benchmark
renders, with seeds from 5000 (the benchmark's are 1000–1199, the tests' below 100); no
downloaded weights or data. Training is plain numpy and deterministic from its seed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "onemap-parking-spot-mlp/1"
MODEL_PATH = Path(__file__).with_name("parking_spot_model.json")
FEATURES = (
    "rel_p05", "rel_p25", "rel_p50", "rel_p75", "rel_p95", "rel_spread", "rel_std",
    "darker_0.5", "darker_0.25", "brighter_0.2", "brighter_0.35",
    "log_grad_ratio", "grad_over_3ring", "grad_over_0.3", "grad_over_0.8",
    "chroma_mean", "chroma_p90", "chroma_over_0.06",
    "row_range", "col_range", "ring_spread", "log_ring_grad",
    "log_level", "log_pixels", "visible_share",
)


class SpotModelError(RuntimeError):
    """The spot model's weights cannot be read; the message says what to do."""


def spot_appearance(*, log: np.ndarray, grad: np.ndarray, r: np.ndarray, g: np.ndarray, rect, visible: np.ndarray,
                    ring, inner_pixels: int) -> np.ndarray:
    """The feature vector (``FEATURES``) of a spot's visible pixels, against the road around it.

    ``log`` is the working image's log-brightness, ``grad`` its detail-gradient magnitude, ``r`` and
    ``g`` its normalised colour; ``rect`` the spot's box (x0, y0, x1, y1) and ``visible`` the mask of
    its pixels seen in this frame; ``ring`` the road around it (x0, y0, x1, y1, mask).
    """
    x0, y0, x1, y1 = rect
    rx0, ry0, rx1, ry1, ring_mask = ring
    ring_log = log[ry0:ry1, rx0:rx1][ring_mask]
    ref = float(np.median(ring_log))
    ring_grad = float(np.median(grad[ry0:ry1, rx0:rx1][ring_mask])) + 1e-3
    ref_r = float(np.median(r[ry0:ry1, rx0:rx1][ring_mask]))
    ref_g = float(np.median(g[ry0:ry1, rx0:rx1][ring_mask]))
    cell_log = log[y0:y1, x0:x1] - ref
    rel = cell_log[visible]
    cell_grad = grad[y0:y1, x0:x1][visible]
    chroma = (np.abs(r[y0:y1, x0:x1] - ref_r) + np.abs(g[y0:y1, x0:x1] - ref_g))[visible]
    p05, p25, p50, p75, p95 = np.percentile(rel, (5, 25, 50, 75, 95))
    ring_lo, ring_hi = np.percentile(ring_log - ref, (10, 90))
    n = int(visible.sum())
    return np.array([
        p05, p25, p50, p75, p95, p95 - p05, float(rel.std()),
        np.mean(rel < -0.5), np.mean(rel < -0.25), np.mean(rel > 0.2), np.mean(rel > 0.35),
        np.log((float(cell_grad.mean()) + 1e-3) / ring_grad), np.mean(cell_grad > 3 * ring_grad),
        np.mean(cell_grad > 0.3), np.mean(cell_grad > 0.8),
        float(chroma.mean()), float(np.percentile(chroma, 90)), np.mean(chroma > 0.06),
        _profile_range(cell_log, visible, axis=1), _profile_range(cell_log, visible, axis=0),
        ring_hi - ring_lo, np.log(ring_grad),
        float(np.median(log[y0:y1, x0:x1][visible])), np.log(max(n, 1)), n / max(inner_pixels, 1),
    ], dtype=np.float64)


def _profile_range(values: np.ndarray, visible: np.ndarray, *, axis: int) -> float:
    """The range of the mean over visible pixels along each row (axis=1) or column (axis=0): a car is banded."""
    counts = visible.sum(axis=axis)
    sums = np.where(visible, values, 0.0).sum(axis=axis)
    means = sums[counts > 0] / counts[counts > 0]
    return float(means.max() - means.min()) if len(means) else 0.0


# -- inference ------------------------------------------------------------------------


class SpotModel:
    """The trained MLP (one hidden tanh layer, a logistic output), evaluated with numpy."""

    def __init__(self, weights: dict):
        if weights.get("format") != FORMAT or weights.get("features") != list(FEATURES):
            raise SpotModelError(f"spot model weights are format {weights.get('format')!r} for other features; "
                                 "run scripts/train_parking_model.py")
        self.mean = np.asarray(weights["mean"], dtype=np.float64)
        self.std = np.asarray(weights["std"], dtype=np.float64)
        self.w1 = np.asarray(weights["w1"], dtype=np.float64)
        self.b1 = np.asarray(weights["b1"], dtype=np.float64)
        self.w2 = np.asarray(weights["w2"], dtype=np.float64)
        self.b2 = float(weights["b2"])
        self.sha256 = weights.get("_sha256", "")

    @classmethod
    def load(cls, path: Path | None = None) -> "SpotModel":
        path = Path(path) if path else MODEL_PATH
        try:
            raw = path.read_bytes()
            weights = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise SpotModelError(f"cannot read the spot model {path} ({exc}); run scripts/train_parking_model.py") from None
        weights["_sha256"] = hashlib.sha256(raw).hexdigest()
        return cls(weights)

    def probability(self, features: np.ndarray) -> float:
        """P(a vehicle stands in the spot) for one feature vector."""
        hidden = np.tanh(((features - self.mean) / self.std) @ self.w1 + self.b1)
        return float(1.0 / (1.0 + np.exp(-(hidden @ self.w2 + self.b2))))


_DEFAULT: SpotModel | None = None


def default_spot_model() -> SpotModel:
    """The weights shipped beside this module, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = SpotModel.load()
    return _DEFAULT


# -- training ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingResult:
    weights: dict
    train_accuracy: float
    samples: int


def train_spot_model(x: np.ndarray, y: np.ndarray, *, hidden: int = 8, iterations: int = 3000, seed: int = 0,
                     rate: float = 0.01, l2: float = 1e-3) -> TrainingResult:
    """Fit the MLP by full-batch Adam on the logistic loss (deterministic from ``seed``)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rng = np.random.default_rng(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    params = [rng.normal(0, 1 / np.sqrt(z.shape[1]), (z.shape[1], hidden)), np.zeros(hidden),
              rng.normal(0, 1 / np.sqrt(hidden), hidden), np.zeros(())]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    for step in range(1, iterations + 1):
        h = np.tanh(z @ params[0] + params[1])
        p = 1.0 / (1.0 + np.exp(-(h @ params[2] + params[3])))
        d = (p - y) / len(y)
        dh = np.outer(d, params[2]) * (1 - h ** 2)
        grads = (z.T @ dh + l2 * params[0], dh.sum(axis=0), h.T @ d + l2 * params[2], np.asarray(d.sum()))
        for k, grad in enumerate(grads):
            m1[k] = 0.9 * m1[k] + 0.1 * grad
            m2[k] = 0.999 * m2[k] + 0.001 * grad * grad
            params[k] = params[k] - rate * (m1[k] / (1 - 0.9 ** step)) / (np.sqrt(m2[k] / (1 - 0.999 ** step)) + 1e-8)
    weights = {"format": FORMAT, "features": list(FEATURES), "mean": mean.tolist(), "std": std.tolist(),
               "w1": params[0].tolist(), "b1": params[1].tolist(), "w2": params[2].tolist(),
               "b2": float(params[3])}
    model = SpotModel(weights)
    accuracy = float(np.mean([(model.probability(row) > 0.5) == bool(label) for row, label in zip(x, y)]))
    return TrainingResult(weights=weights, train_accuracy=accuracy, samples=len(y))
