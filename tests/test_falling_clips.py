"""The synthetic falling-object clips: deterministic, truthful about floors, sizes and negatives."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from data import falling_clips
from data.falling_clips import (
    PHOTO_COLUMN_LINES,
    PHOTO_SLAB_LINES,
    PHOTO_TO_IMAGE,
    ClipRenderError,
    ClipTruth,
    benchmark_recipe,
    benchmark_set,
    clip_render,
    samples_dir,
)

SMALL = {"width": 320, "height": 180, "fps": 25.0, "seconds": 3.0}
HAVE_PHOTO = (samples_dir() / "building.jpg").exists()
needs_photo = pytest.mark.skipif(
    not HAVE_PHOTO, reason=f"building.jpg not found in {samples_dir()}: set ONEMAP_SAMPLES to ../shared/data"
)
BACKGROUNDS = ["generated", pytest.param("photo", marks=needs_photo)]


def _first_frame(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok, f"cannot read {path}"
    return frame


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def _truth_without_path(clip: ClipTruth) -> dict:
    data = clip.to_dict()
    data.pop("path")
    return data


def _facade_point_through_calibration(calibration: dict, x: float, y: float) -> tuple[float, float]:
    """An image point on the façade, from the calibration's point pairs alone (an independent homography)."""
    facade = calibration["facade"]
    h, _ = cv2.findHomography(np.float64(facade["image_points"]), np.float64(facade["facade_points"]))
    u, v = cv2.perspectiveTransform(np.float64([[[x, y]]]), h)[0, 0]
    return float(u), float(v)


def _floor_through_calibration(calibration: dict, x: float, y: float) -> int:
    facade = calibration["facade"]
    v = _facade_point_through_calibration(calibration, x, y)[1]
    return facade["ground_floor"] + math.floor(v / facade["floor_height_m"])


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_same_seed_gives_the_same_first_frame_and_truth(tmp_path, background):
    kwargs = dict(seed=11, background=background, drops=1, negatives=("bird", "leaf"), rain=True,
                  light_change=True, jitter_px=1.2, **SMALL)
    a = clip_render(out_dir=tmp_path / "a", **kwargs)
    b = clip_render(out_dir=tmp_path / "b", **kwargs)
    assert _first_frame(a.path).tobytes() == _first_frame(b.path).tobytes()
    assert _truth_without_path(a) == _truth_without_path(b)
    c = clip_render(out_dir=tmp_path / "c", **{**kwargs, "seed": 12})
    assert _truth_without_path(c) != _truth_without_path(a)


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_truth_floor_is_the_release_point_projected_through_the_calibration(tmp_path, background, seed):
    clip = clip_render(seed=seed, out_dir=tmp_path, background=background, drops=2, **SMALL)
    assert len(clip.drops) == 2
    for drop in clip.drops:
        x, y = drop.release_image
        assert 0 <= x < clip.width and 0 <= y < clip.height
        assert _floor_through_calibration(clip.calibration, x, y) == drop.origin_floor
        assert drop.path[0] == pytest.approx(drop.release_image, abs=0.05)  # at release, nothing has moved yet
        assert len(drop.path) == drop.frame_end - drop.frame_start + 1 >= 8
        assert drop.path[-1][1] > drop.path[0][1]  # it came down
        u = _facade_point_through_calibration(clip.calibration, x, y)[0]
        assert drop.origin_column == 1 + math.floor(u / clip.calibration["facade"]["column_width_m"])
        assert 1 <= drop.origin_column <= len(clip.window_columns_m) + 1


def test_calibration_follows_the_design_json(tmp_path):
    clip = clip_render(seed=4, out_dir=tmp_path, **SMALL)
    cal = clip.calibration
    assert set(cal) == {"image_size", "facade"}
    assert cal["image_size"] == [clip.width, clip.height]
    facade = cal["facade"]
    assert set(facade) == {"building", "origin", "azimuth_deg", "floor_height_m", "ground_floor", "column_width_m",
                           "image_points", "facade_points"}
    assert len(facade["image_points"]) == len(facade["facade_points"]) >= 4
    lon, lat = facade["origin"]
    assert abs(lon - 113.66) < 0.01 and abs(lat - 34.757) < 0.01
    assert 2.8 <= facade["floor_height_m"] <= 3.4 and facade["ground_floor"] == 1
    for x, y in facade["image_points"]:
        assert 0 <= x <= clip.width and 0 <= y <= clip.height
    json.dumps(clip.to_dict())  # the truth is plain JSON


@pytest.mark.parametrize("size_px, lo, hi", [((6.0, 10.0), 6.0, 10.0), (3.0, 3.0, 3.0), (None, 3.0, 40.0)])
def test_object_sizes_stay_in_the_asked_range(tmp_path, size_px, lo, hi):
    sizes = []
    for seed in range(3):
        clip = clip_render(seed=100 + seed, out_dir=tmp_path, drops=2, size_px=size_px, **SMALL)
        sizes += [d.size_px for d in clip.drops]
    assert len(sizes) == 6
    assert all(lo - 0.01 <= s <= hi + 0.01 for s in sizes), sizes


def test_drops_a_moment_apart_come_from_one_window_column(tmp_path):
    """column_gap_s: the second object goes from the first one's column, within two floors of it, 0.2–1 s later."""
    for seed in range(3):
        clip = clip_render(seed=200 + seed, out_dir=tmp_path, drops=2, column_gap_s=(0.2, 1.0), **{**SMALL, "seconds": 4.0})
        first, second = clip.drops
        assert first.origin_column == second.origin_column
        assert abs(first.origin_floor - second.origin_floor) <= 2
        assert 0.2 * clip.fps - 1 <= second.frame_start - first.frame_start <= 1.0 * clip.fps + 1


def test_the_new_options_leave_the_default_draws_alone(tmp_path):
    """colour and column_gap_s at their defaults draw what clip_render drew before they existed (the
    benchmark's cached clips stay valid): one drop with them set to defaults is the same clip."""
    a = clip_render(seed=7, out_dir=tmp_path / "a", drops=2, **SMALL)
    b = clip_render(seed=7, out_dir=tmp_path / "b", drops=2, colour="any", column_gap_s=None, **SMALL)
    assert _truth_without_path(a) == _truth_without_path(b)
    wall = clip_render(seed=7, out_dir=tmp_path / "c", drops=2, colour="wall", **SMALL)
    assert wall.drops[0].path == a.drops[0].path  # the first object falls the same way; its paint differs


def test_negatives_carry_no_drops(tmp_path):
    clip = clip_render(seed=21, out_dir=tmp_path, drops=0, negatives=("bird", "insect", "leaf"), rain=True, **SMALL)
    assert clip.drops == ()
    assert clip.negatives == ("bird", "insect", "leaf", "rain")
    frames = _frames(clip.path)
    assert len(frames) == clip.frames == 75


def test_a_drop_is_drawn_where_its_truth_says(tmp_path):
    clip = clip_render(seed=31, out_dir=tmp_path, drops=1, size_px=14.0, **SMALL)
    drop = clip.drops[0]
    frames = _frames(clip.path)
    k = drop.frame_start + (drop.frame_end - drop.frame_start) // 2
    x, y = (int(round(c)) for c in drop.path[k - drop.frame_start])
    before = frames[drop.frame_start - 1].astype(int)
    now = frames[k].astype(int)
    near = np.abs(now[y - 3:y + 4, x - 3:x + 4] - before[y - 3:y + 4, x - 3:x + 4]).mean()
    everywhere = np.abs(now - before).mean()
    assert near > 10 * everywhere, (near, everywhere)


@needs_photo
def test_photo_homography_agrees_with_the_hand_measurements():
    to_facade = np.linalg.inv(PHOTO_TO_IMAGE)
    slabs = np.float64([[x, y] for x, y, _ in PHOTO_SLAB_LINES]).reshape(-1, 1, 2)
    v = cv2.perspectiveTransform(slabs, to_facade)[:, 0, 1]
    columns = np.float64([[x, y] for x, y, _ in PHOTO_COLUMN_LINES]).reshape(-1, 1, 2)
    u = cv2.perspectiveTransform(columns, to_facade)[:, 0, 0]
    errors = np.concatenate([v - [m for *_, m in PHOTO_SLAB_LINES], u - [m for *_, m in PHOTO_COLUMN_LINES]])
    assert np.sqrt(np.mean(errors**2)) < 0.2 and np.abs(errors).max() < 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"negatives": ("cat",)}, "unknown negative kind"),
        ({"size_px": (2.0, 8.0)}, "size_px must lie within 3–40"),
        ({"background": "moon"}, "background must be one of"),
        ({"width": 100}, "at least 160×120"),
        ({"drops": 9}, "drops must be between 0 and 4"),
    ],
)
def test_bad_arguments_say_what_to_change(tmp_path, kwargs, message):
    with pytest.raises(ClipRenderError, match=message):
        clip_render(seed=1, out_dir=tmp_path, **{**SMALL, **kwargs})


def test_missing_photo_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEMAP_SAMPLES", str(tmp_path / "nowhere"))
    with pytest.raises(ClipRenderError, match="ONEMAP_SAMPLES"):
        clip_render(seed=1, out_dir=tmp_path, background="photo", **SMALL)


def test_benchmark_mix_is_balanced():
    recipes = [benchmark_recipe(index=i) for i in range(200)]
    positives = [r for r in recipes if r["drops"]]
    negatives = [r for r in recipes if not r["drops"]]
    assert len(positives) >= 120 and len(negatives) >= 40
    assert sum(r["seconds"] for r in negatives) >= 3600  # a camera-hour of negative footage
    assert {r["drops"] for r in positives} == {1, 2}
    assert all(r["negatives"] for r in negatives)
    assert {r["background"] for r in positives} == {r["background"] for r in negatives} == {"generated", "photo"}
    bands = {tuple(r["size_px"]) for r in positives}
    assert min(lo for lo, _ in bands) == 3.0 and max(hi for _, hi in bands) == 40.0
    assert sum(1 for r in positives if r["size_px"][0] >= 6.0) >= 60
    kinds = {k for r in recipes for k in r["negatives"]}
    assert kinds == {"bird", "insect", "leaf"}
    assert any(r["rain"] for r in recipes) and any(r["light_change"] for r in recipes)
    assert any(r["jitter_px"] for r in recipes)
    assert len({r["seed"] for r in recipes}) == 200 and min(r["seed"] for r in recipes) == 4242
    assert all((r["width"], r["height"], r["fps"]) == (1280, 720, 25.0) for r in recipes)


def test_benchmark_set_is_cached_by_seed_and_version(tmp_path, monkeypatch):
    real = falling_clips.benchmark_recipe

    def small(*, index, seed):
        return {**real(index=index, seed=seed), **SMALL}

    monkeypatch.setattr(falling_clips, "benchmark_recipe", small)
    first = benchmark_set(out_dir=tmp_path, count=2, seed=77)
    stamps = [c.path.stat().st_mtime_ns for c in first]
    again = benchmark_set(out_dir=tmp_path, count=2, seed=77)
    assert [c.path.stat().st_mtime_ns for c in again] == stamps  # not rendered again
    assert [_truth_without_path(c) for c in again] == [_truth_without_path(c) for c in first]
    assert all(c.path.parent.name == f"v{falling_clips.GENERATOR_VERSION}-seed77" for c in first)


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_vision_calibration_reads_the_clip_calibration_and_agrees_on_floor_and_column(tmp_path, background):
    calibration_module = pytest.importorskip("vision.calibration", reason="vision/ (vision-core) not there yet")
    clip = clip_render(seed=5, out_dir=tmp_path, background=background, drops=2, **SMALL)
    calibration = calibration_module.Calibration.from_dict(clip.calibration)
    for drop in clip.drops:
        world = calibration.facade_to_world(*drop.release_image)
        assert world.floor == drop.origin_floor
        assert calibration.column_at(world.u_m) == drop.origin_column
        assert abs(world.lon - 113.66) < 0.02 and abs(world.lat - 34.757) < 0.02
