"""vision.training is reproducible bit for bit, and the model of vision.classifier separates simulated classes."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pytest

pytest.importorskip("torch", reason="the vision extra (PyTorch) is not installed: pip install -e '.[vision]'")

from vision.classifier import CLASSES, TrackSample  # noqa: E402
from vision.simulation import simulate_dataset  # noqa: E402
from vision.training import load_or_train, train  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The default model, trained on first use (as the pipeline does when the file is missing)."""
    path = tmp_path_factory.mktemp("model") / "falling_mlp.json"
    return path


def test_missing_weights_are_trained_on_first_use(trained, caplog):
    with caplog.at_level(logging.WARNING, logger="vision.training"):
        clf = load_or_train(trained)
    assert trained.exists()
    assert "training them now" in caplog.text
    assert clf.sha256 == hashlib.sha256(trained.read_bytes()).hexdigest()


def test_training_twice_gives_identical_weights(trained, tmp_path, capsys):
    """`onemap vision train` regenerates the very same file the pipeline trained on first use."""
    from host.cli import main

    if not trained.exists():
        load_or_train(trained)
    again = tmp_path / "again.json"
    assert main(["vision", "train", "--out", str(again)]) == 0
    assert "held-out simulated tracks" in capsys.readouterr().out
    assert again.read_bytes() == trained.read_bytes()


def test_another_seed_gives_other_weights(tmp_path):
    a = train(out=tmp_path / "a.json", seed=1, per_class=60, epochs=30)
    b = train(out=tmp_path / "b.json", seed=2, per_class=60, epochs=30)
    again = train(out=tmp_path / "c.json", seed=1, per_class=60, epochs=30)
    assert a.sha256 != b.sha256
    assert a.sha256 == again.sha256


def test_model_tells_falls_from_the_rest_on_held_out_tracks(trained):
    clf = load_or_train(trained)
    x, y = simulate_dataset(seed=987654, per_class=80)  # a seed the training never used
    predicted = clf.probabilities(x).argmax(axis=1)
    falling = y == CLASSES.index("falling_object")
    assert np.mean(predicted[falling] == 0) > 0.95
    assert np.mean(predicted[~falling] == 0) < 0.05


def test_a_large_object_seen_in_changing_pieces_is_still_a_fall(trained):
    """A 30 px bag crossing a wall of nearly its colour shows as pieces of changing size and shape, and
    its centroid wanders with them: the simulator draws such views for falls as well as for the
    other classes, so a wandering, shape-shifting blob is not taken for an insect or a leaf."""
    clf = load_or_train(trained)
    rng = np.random.default_rng(3)
    t = np.arange(30) / 25.0
    v = 30.0 - (20.0 ** 2 / 9.81) * np.log(np.cosh(9.81 * t / 20.0))  # drag: terminal speed 20 m/s
    seen = rng.uniform(0.3, 1.0, len(t))
    pieces = TrackSample(t=t, u=12 + rng.normal(0, 0.6, len(t)), v=v + rng.normal(0, 0.6, len(t)),
                         area=700 * seen ** 2, w=30 * seen, h=30 * np.sqrt(seen), m_per_px=0.1)
    assert clf.falling_probability(pieces) > 0.5
