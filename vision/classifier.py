"""A small MLP over track features: falling object vs bird, insect, leaf, rain streak, light flicker.

It is trained by the project on simulated façade trajectories (this module's
simulator, random draws from ``SeedSequence([seed, TRAINING_STREAM])``); rendered
clips, and in particular the benchmark set of ``data/falling_clips.py``, are
never used for training. Training is reproducible bit for bit on CPU with one
thread; the weights are a small JSON file that ``onemap vision train``
regenerates. Inference needs only numpy, so analysis does not import PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.physics import G

log = logging.getLogger(__name__)

CLASSES = ("falling_object", "bird", "insect", "leaf", "rain_streak", "light_flicker")
FEATURES = (
    "log_frames", "duration_s", "accel_g", "quad_residual_px", "linear_residual_px", "lateral_residual_px",
    "mean_vz", "std_vz", "lateral_speed", "std_vx", "descending_fraction", "straightness",
    "log_area", "area_cv", "log_aspect", "vz_sign_changes", "descent_10m", "quad_residual_size",
)
FORMAT = "onemap-falling-mlp/1"
DEFAULT_SEED = 20261126
TRAINING_STREAM = 0x7E1A  # the simulator's own seed space, apart from any clip generator's seeds
HIDDEN = 32
FALLING_CLASS_WEIGHT = 3.0  # missing a thrown object costs more than a false alarm


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
    def load(cls, path: Path | None = None, *, train_if_missing: bool = True) -> "FallingClassifier":
        """Load the weights file, training it first (with a log line) when it does not exist."""
        path = Path(path) if path else default_model_path()
        if not path.exists():
            if not train_if_missing:
                raise ClassifierError(f"{path} does not exist; run `onemap vision train`")
            log.warning("classifier weights %s missing: training them now (onemap vision train)", path)
            train(out=path)
        raw = path.read_bytes()
        try:
            weights = json.loads(raw)
        except ValueError:
            raise ClassifierError(f"{path} is not a weights file; delete it and run `onemap vision train`") from None
        if weights.get("features") != list(FEATURES) and train_if_missing:
            # weights from an older version of the features: they are a build product, so rebuild them
            log.warning("classifier weights %s are for other track features: training them again", path)
            train(out=path)
            return cls.load(path, train_if_missing=False)
        weights["_sha256"] = hashlib.sha256(raw).hexdigest()
        return cls(weights)

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


# -- training ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingReport:
    path: Path
    sha256: str
    samples: int
    validation_accuracy: float
    falling_recall: float
    false_falling_rate: float


def train(*, out: Path | None = None, seed: int = DEFAULT_SEED, per_class: int = 2000, epochs: int = 400) -> TrainingReport:
    """Simulate trajectories, train the MLP on CPU with one thread and write the weights (reproducible)."""
    try:
        import torch
    except ImportError:
        raise ClassifierError("training needs PyTorch: pip install -e '.[vision]'") from None
    out = Path(out) if out else default_model_path()
    x, y = simulate_dataset(seed=seed, per_class=per_class)
    xv, yv = simulate_dataset(seed=seed + 1, per_class=per_class // 3)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    model = torch.nn.Sequential(
        torch.nn.Linear(len(FEATURES), HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, len(CLASSES)),
    ).double()
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y.astype(np.int64))
    weight = torch.ones(len(CLASSES), dtype=torch.float64)
    weight[0] = FALLING_CLASS_WEIGHT
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()

    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    weights = {
        "format": FORMAT, "seed": seed, "per_class": per_class, "epochs": epochs,
        "classes": list(CLASSES), "features": list(FEATURES),
        "mean": [float(a) for a in mean], "std": [float(a) for a in std],
        "layers": [{"weight": l.weight.detach().numpy().tolist(), "bias": l.bias.detach().numpy().tolist()}
                   for l in layers],
    }
    raw = json.dumps(weights, sort_keys=True, separators=(",", ":")).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(raw)
    tmp.replace(out)
    clf = FallingClassifier(weights)
    pred = clf.probabilities(xv).argmax(axis=1)
    return TrainingReport(
        path=out, sha256=hashlib.sha256(raw).hexdigest(), samples=len(y),
        validation_accuracy=float(np.mean(pred == yv)),
        falling_recall=float(np.mean(pred[yv == 0] == 0)),
        false_falling_rate=float(np.mean(pred[yv != 0] == 0)),
    )


# -- the trajectory simulator ---------------------------------------------------------------


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
