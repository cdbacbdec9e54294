"""The dense-smoke stage of the fire detector: a rendered plume gives one fire_smoke event soon after its onset,
grey nuisance none, flame and smoke of one fire one event, a broken or empty clip no crash; analyze --json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vision.fire import FireDetector
from vision.smoke_synthetic import FPS, NUISANCE_KINDS, frames, render_clip
from vision.sources import Frame

SMOKE_FROM = 2.0  # seconds: the plume's onset in every rendered clip here
WITHIN = 8.0  # seconds after the onset by which a plume must be confirmed (dark smoke is the slowest)


def _events(kind: str, *, seed: int, seconds: float, **kw) -> tuple[list, list]:
    """Run the fire detector over rendered frames; returns (start times, ended events)."""
    detector, starts, ended = None, [], []
    for k, image in enumerate(frames(kind, seconds=seconds, seed=seed, smoke_from=SMOKE_FROM, **kw)):
        detector = detector or FireDetector(calibration=None, width=image.shape[1], height=image.shape[0], fps=FPS)
        for step in detector.process(Frame(index=k, t=k / FPS, image=image)):
            starts += [k / FPS] if step.kind == "start" else []
            ended += [step.event] if step.kind == "end" and step.event is not None else []
    ended += [s.event for s in detector.finish() if s.event is not None]
    return starts, ended


@pytest.mark.parametrize("kind, seed, dusk, source", [
    ("light_smoke", 11, False, "window"),
    ("dark_smoke", 12, False, "ground"),
    ("light_smoke", 13, True, "ground"),
    ("dark_smoke", 14, True, "window"),
])
def test_a_plume_gives_one_event_soon_after_onset(kind, seed, dusk, source):
    starts, events = _events(kind, seed=seed, seconds=SMOKE_FROM + WITHIN + 1.0, dusk=dusk, source=source)
    assert len(events) == 1, [e.to_json() for e in events]
    event = events[0]
    assert event.type == "fire_smoke"
    assert SMOKE_FROM < starts[0] <= SMOKE_FROM + WITHIN
    x, y, w, h = event.box
    assert w * h > 2000 and 0.5 <= event.confidence <= 1.0
    assert event.origin_image[1] >= y + h - 1  # placed at the box's bottom centre, the plume's source side


@pytest.mark.parametrize("kind", NUISANCE_KINDS)
def test_grey_nuisance_gives_no_event(kind):
    _, events = _events(kind, seed=21, seconds=20.0)
    assert events == [], [e.to_json() for e in events]


def test_flame_and_smoke_of_one_fire_are_one_event():
    starts, events = _events("flame_smoke", seed=31, seconds=8.0)
    assert len(starts) == 1 and len(events) == 1, [e.to_json() for e in events]
    assert starts[0] <= SMOKE_FROM + 2.0  # the flame is sure first; the smoke joins its event


def test_smoke_can_be_switched_off():
    from vision.config import FireConfig

    config = FireConfig.from_dict({"smoke": {"enabled": False}})
    detector = FireDetector(calibration=None, width=320, height=240, fps=FPS, config=config)
    steps = [s for k, image in enumerate(frames("light_smoke", seconds=10.0, seed=11, smoke_from=SMOKE_FROM))
             for s in detector.process(Frame(index=k, t=k / FPS, image=image))]
    assert steps == [] and detector.finish() == []


@pytest.mark.parametrize("images", [
    [],  # nothing at all
    [np.zeros((240, 320, 3), np.uint8)] * 50,  # a black camera
    [np.full((240, 320, 3), 255, np.uint8)] * 50,  # a blinded one
    [np.zeros((240, 320), np.uint8)] * 30,  # grey frames
    [np.zeros((4, 4, 3), np.uint8)] * 30,  # a tiny broken frame size
], ids=["empty", "black", "white", "grey", "tiny"])
def test_broken_or_empty_frames_do_not_crash(images):
    h, w = images[0].shape[:2] if images else (240, 320)
    detector = FireDetector(calibration=None, width=w, height=h, fps=FPS)
    steps = [s for k, image in enumerate(images) for s in detector.process(Frame(index=k, t=k / FPS, image=image))]
    assert steps + detector.finish() == []


def test_analyze_json_on_a_rendered_plume(tmp_path, capsys):
    from host.cli import main

    clip = render_clip("light_smoke", tmp_path / "plume.avi", seconds=SMOKE_FROM + WITHIN + 1.0, seed=15,
                       smoke_from=SMOKE_FROM)
    code = main(["vision", "analyze", str(clip), "--detect", "fire_smoke", "--json",
                 "--evidence-dir", str(tmp_path / "evidence")])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["type"] == "fire_smoke" and SMOKE_FROM <= line["t_start"] <= SMOKE_FROM + WITHIN
    assert line["box"] and {"clip", "keyframe", "sha256"} <= set(line["evidence"])
    assert Path(line["evidence"]["clip"]).exists()
