"""The parking spot model: the shipped weights, the appearance features, training, and its config."""

from __future__ import annotations

import numpy as np
import pytest

from vision.config import ParkingConfig
from vision.parking_model import FEATURES, SpotModel, SpotModelError, default_spot_model, spot_appearance, train_spot_model


def _views(seed: int, n: int = 200):
    """Rendered-like spot views: asphalt with texture, or a car's bands (dark glass and underside, a body)."""
    rng = np.random.default_rng(seed)
    h, w = 20, 16
    log = np.full((h + 8, w + 8), np.log(100.0)) + rng.normal(0, 0.03, (h + 8, w + 8))
    ring = np.ones((h + 8, w + 8), bool)
    ring[4:-4, 4:-4] = False
    x, y = [], []
    for k in range(n):
        car = bool(k % 2)
        view = log.copy()
        if car:
            rows = np.arange(h)
            band = np.where(rows < 5, np.log(45.0), np.where(rows > 15, np.log(25.0), np.log(rng.uniform(40, 230))))
            view[4:-4, 4:-4] = band[:, None] + rng.normal(0, 0.03, (h, w))
        grad = np.abs(np.diff(view, axis=0, prepend=view[:1]))
        grey = np.zeros_like(view) + 0.33
        visible = np.ones((h, w), bool)
        x.append(spot_appearance(log=view, grad=grad, r=grey, g=grey, rect=(4, 4, 4 + w, 4 + h), visible=visible,
                                 ring=(0, 0, w + 8, h + 8, ring), inner_pixels=h * w))
        y.append(car)
    return np.array(x), np.array(y)


def test_the_shipped_weights_load_and_are_for_these_features():
    model = default_spot_model()
    assert len(model.mean) == len(FEATURES) and model.w1.shape[0] == len(FEATURES)
    assert 0.0 <= model.probability(model.mean) <= 1.0


def test_weights_for_other_features_are_refused_clearly(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"format": "onemap-parking-spot-mlp/1", "features": ["brightness"]}')
    with pytest.raises(SpotModelError, match="train_parking_model"):
        SpotModel.load(path)
    with pytest.raises(SpotModelError, match="cannot read"):
        SpotModel.load(tmp_path / "missing.json")


def test_features_are_finite_on_a_flat_grey_frame():
    flat = np.full((30, 30), np.log(100.0))
    ring = np.ones((30, 30), bool)
    ring[5:25, 5:25] = False
    features = spot_appearance(log=flat, grad=np.zeros_like(flat), r=flat * 0, g=flat * 0, rect=(5, 5, 25, 25),
                               visible=np.ones((20, 20), bool), ring=(0, 0, 30, 30, ring), inner_pixels=400)
    assert features.shape == (len(FEATURES),) and np.isfinite(features).all()


def test_training_separates_cars_from_asphalt_and_is_deterministic():
    x, y = _views(1)
    first = train_spot_model(x, y, iterations=300)
    again = train_spot_model(x, y, iterations=300)
    assert first.weights == again.weights
    assert first.train_accuracy == 1.0
    xt, yt = _views(2, 60)
    model = SpotModel(first.weights)
    assert all((model.probability(row) > 0.5) == label for row, label in zip(xt, yt))


def test_the_model_thresholds_must_leave_a_band_between_them():
    with pytest.raises(ValueError, match="model_free_p"):
        ParkingConfig(model_free_p=0.8, model_occupied_p=0.6)
    assert ParkingConfig().model_free_p < ParkingConfig().model_occupied_p


def test_training_views_behind_a_vehicle_not_known_of_are_labelled_occupied():
    """``spot_samples(behind=True)`` adds, for a spot a nearer parked car would hide, the view the detector has
    when it does not know of that car (the car's side in it), labelled occupied; the default leaves them out."""
    from data.parking_clips import demo_parking_cameras
    from vision.parking_synthetic import plan, scene_from_demo, spot_samples

    scene = scene_from_demo(demo_parking_cameras()[6])  # a training camera whose nearer cars hide the far spots
    script = plan(scene, seconds=40, seed=7, night=False, fps=0.5)  # a test seed (below 100)
    x_plain, y_plain = spot_samples(scene, script)
    x_all, y_all = spot_samples(scene, script, behind=True)
    plain = {row.tobytes() for row in x_plain}
    assert plain <= {row.tobytes() for row in x_all} and y_all.sum() - y_plain.sum() == len(x_all) - len(x_plain)
    extra = [row for row in x_all if row.tobytes() not in plain]
    assert len(extra) == len(x_all) - len(x_plain) > 0
