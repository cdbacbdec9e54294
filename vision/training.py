"""Training the falling-object classifier: reproducible weights from simulated trajectories.

Training is reproducible bit for bit on CPU with one thread: the same seed gives the same
weights file, which ``onemap vision train`` regenerates and ``load_or_train`` makes on first
use. PyTorch is imported only by ``train``; the model it writes is evaluated with numpy by
``vision.classifier``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.classifier import (
    CLASSES, FEATURES, FORMAT, ClassifierError, FallingClassifier, default_model_path, read_weights,
)
from vision.simulation import simulate_dataset

log = logging.getLogger(__name__)

DEFAULT_SEED = 20261126
HIDDEN = 32
FALLING_CLASS_WEIGHT = 3.0  # missing a thrown object costs more than a false alarm


def load_or_train(path: Path | None = None) -> FallingClassifier:
    """Load the weights file, training it first (with a log line) when it is missing or for other features."""
    path = Path(path) if path else default_model_path()
    if not path.exists():
        log.warning("classifier weights %s missing: training them now (onemap vision train)", path)
        train(out=path)
    weights = read_weights(path)
    if weights.get("features") != list(FEATURES):
        # weights from an older version of the features: they are a build product, so rebuild them
        log.warning("classifier weights %s are for other track features: training them again", path)
        train(out=path)
        weights = read_weights(path)
    return FallingClassifier(weights)


@dataclass(frozen=True)
class TrainingReport:
    """What ``train`` wrote, and how the model does on held-out simulated tracks."""

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
