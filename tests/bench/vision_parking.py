"""Benchmark: spot occupancy and illegal parking on parking clips rendered from the demo's spot layout.

    python tests/bench/vision_parking.py [--seconds 300] [--cameras 3] [--seed-base 1000] [--no-docs]

For each of the first ``--cameras`` demo parking cameras that see spots and a fire lane, two
clips are rendered by ``vision.parking_synthetic`` (seeds from 1000; ``--seed-base 2000`` renders
the development set, which never writes the docs; the tests use seeds below 100, the spot model
is trained on other cameras with seeds from 5000): a day with moving shadows (a building's shadow edge sweeping the spots, cloud shadows,
each car's shadow) and a night (low light, noise, street lamps, headlights). Each has cars
arriving and leaving (driving past other spots to do so), cars driving by, one stop in the fire
lane longer than its 60 s limit and one shorter.

Occupancy accuracy, per spot-frame of the spots the detector judges (spots out of the frame or
too small in it are counted separately), three ways:

- "acc vis", the goal's first figure: over the spot-frames the truth leaves visible (the
  detector's own occlusion model applied to the *true* occupancy: at least ``min_visible_share``
  of the spot not behind a vehicle standing in a nearer spot), ``unknown`` counting as wrong. A
  detector cannot raise it by saying ``unknown`` more often;
- "acc seen", the goal's second figure (the old headline): spot-frames whose state equals the
  truth / spot-frames whose state is not ``unknown`` (the detector's own 'cannot tell' is left
  out of both; a hidden spot's kept state counts);
- "acc all": over every spot-frame, ``unknown`` counting as wrong (a spot no camera could see
  counts against it too, so it is reported, not a goal).

Both goal figures must reach 0.97. Illegal-parking events: an illegal stop is *found* by an
event in its zone between its limit and 10 s after it; an event matching no illegal stop is
*false*. The baseline, measured in the same run, is decoding the same clips alone (CPU seconds).
Writes its results block into docs/performance.md unless ``--no-docs``. Exits 0 either way.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GOALS = {"accuracy": 0.97, "late_s": 10.0}
BEGIN, END = "<!-- bench:vision-parking:begin -->", "<!-- bench:vision-parking:end -->"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from data.parking_clips import demo_parking_cameras
    from vision.parking_synthetic import plan, render_clip, scene_from_demo

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        used = 0
        for index, camera in enumerate(demo_parking_cameras()):
            if used >= args.cameras:
                break
            scene = scene_from_demo(camera)
            if scene.fire_lane is None or len(scene.spots) < 4:
                continue
            used += 1
            for night in (False, True):
                seed = args.seed_base + 10 * index + night
                script = plan(scene, seconds=args.seconds, seed=seed, night=night)
                path = Path(tmp) / f"parking-{index}-{'night' if night else 'day'}.avi"
                truth = render_clip(scene, script, path)
                name = f"camera {index} {'night' if night else 'day, shadows'} (seed {seed})"
                rows.append((name, _run(scene, path, truth)))
    report = _report(rows, args)
    print(report)
    if not args.no_docs and args.seed_base == 1000:  # the development set never replaces the bench's figures
        from _docs import write_results

        write_results(f"```\n{report}\n```", begin=BEGIN, end=END)
    return 0


def _run(scene, path: Path, truth) -> dict:
    """Decode alone (baseline), then decode + detect; per-frame occupancy against the truth, and the events."""
    import cv2

    from vision.calibration import Calibration
    from vision.parking import ParkingDetector
    from vision.sources import VideoFileSource

    cv2.setNumThreads(1)
    t0 = time.process_time()
    decoded = sum(1 for _ in VideoFileSource(path).frames())
    decode_s = time.process_time() - t0
    src = VideoFileSource(path)
    detector, events = None, []
    correct = judged = undecided = 0
    visible = visible_correct = 0  # spot-frames the truth leaves visible, and those judged right
    cells = {}
    per_spot: dict[str, list[int]] = {}
    t0 = time.process_time()
    for frame in src.frames():
        if detector is None:
            h, w = frame.image.shape[:2]
            detector = ParkingDetector(calibration=Calibration.from_dict(scene.calibration).scaled_to(w, h),
                                       width=w, height=h, layout=scene.layout, fps=src.fps)
        for step in detector.process(frame):
            if step.kind == "end" and step.event is not None:
                events.append((frame.t, step.event.zone["code"]))
        occupied = truth.occupied[frame.index] if frame.index < len(truth.occupied) else frozenset()
        truly = {k for k, c in enumerate(detector.cells) if not c.zone and c.place.code in occupied}
        if not cells:
            cells = {c.place.code: c for c in detector.cells if not c.zone}
        for code, state in detector.occupancy().items():
            ok = (state == "occupied") == (code in occupied) and state != "unknown"
            if _truly_visible(detector, cells[code], truly):
                visible += 1
                visible_correct += ok
            correct += ok
            judged += 1
            undecided += state == "unknown"
            per_spot.setdefault(code, [0, 0])[0] += ok
            per_spot[code][1] += state != "unknown"
    total_s = time.process_time() - t0
    limit = detector.config.fire_lane_limit_seconds
    found, delays, false = 0, [], 0
    matched = set()
    for stop in truth.stops:
        if not stop["illegal"]:
            continue
        due = stop["rest_t"] + limit
        hit = [e for e in events if e[1] == stop["zone"] and due <= e[0] <= due + GOALS["late_s"]]
        if hit:
            found += 1
            delays.append(hit[0][0] - due)
            matched.add(hit[0])
    false = sum(1 for e in events if e not in matched)
    return {"frames": decoded, "decode_s": decode_s, "total_s": total_s, "correct": correct, "judged": judged,
            "undecided": undecided, "visible": visible, "visible_correct": visible_correct,
            "spots": len(per_spot), "unjudged": len(truth.spots) - len(per_spot),
            "illegal": sum(1 for s in truth.stops if s["illegal"]), "short": sum(1 for s in truth.stops if not s["illegal"]),
            "found": found, "false": false, "delays": delays, "events": events,
            "worst": sorted((c / n, code) for code, (c, n) in per_spot.items() if n)[:2]}


def _truly_visible(detector, cell, truly: set[int]) -> bool:
    """Whether the true occupancy leaves the spot visible enough to judge, by the detector's occlusion model."""
    seen = int(detector.visible_mask(cell, truly).sum())
    config = detector.config
    return seen >= config.min_visible_share * int(cell.inner.sum()) and seen >= config.min_spot_pixels // 2


def _report(rows, args) -> str:
    lines = [f"parking clips rendered from the demo's spot layout: {args.seconds:.0f} s each at 5 fps, 640×360",
             f"{'clip':34} {'spots':>5} {'out':>4} {'unknown':>7} {'acc seen':>8} {'acc all':>7} {'acc vis':>7} "
             f"{'illegal':>7} "
             f"{'found':>5} {'false':>5} {'late s':>7} {'det fps':>8} {'×decode':>8}"]
    correct = judged = undecided = illegal = found = false = visible = visible_correct = 0
    delays = []
    for name, r in rows:
        seen = r["judged"] - r["undecided"]
        late = f"{max(r['delays']):.1f}" if r["delays"] else "-"
        lines.append(f"{name:34} {r['spots']:5d} {r['unjudged']:4d} {r['undecided'] / max(r['judged'], 1):7.3f} "
                     f"{r['correct'] / max(seen, 1):8.3f} {r['correct'] / max(r['judged'], 1):7.3f} "
                     f"{r['visible_correct'] / max(r['visible'], 1):7.3f} {r['illegal']:7d} "
                     f"{r['found']:5d} {r['false']:5d} {late:>7} {r['frames'] / max(r['total_s'], 1e-9):8.0f} "
                     f"{r['total_s'] / max(r['decode_s'], 1e-9):8.2f}")
        correct, judged, undecided = correct + r["correct"], judged + r["judged"], undecided + r["undecided"]
        visible, visible_correct = visible + r["visible"], visible_correct + r["visible_correct"]
        illegal, found, false = illegal + r["illegal"], found + r["found"], false + r["false"]
        delays += r["delays"]
    seen = judged - undecided
    acc = correct / seen if seen else float("nan")
    lines.append("spots: judged in the frame; out: outside it or too small; unknown: share of spot-frames the "
                 "detector says 'unknown' (hidden behind a car since the start, or something changed while hidden); "
                 "acc seen: 'unknown' left out; acc all: 'unknown' wrong; acc vis: spot-frames the true occupancy "
                 "leaves visible, 'unknown' wrong")
    vis = visible_correct / visible if visible else float("nan")
    goal = GOALS["accuracy"]
    lines.append(f"occupancy over the spot-frames the truth leaves visible ({visible / max(judged, 1):.3f} of them), "
                 f"'unknown' wrong (acc vis): {vis:.4f} (goal ≥ {goal}: {'met' if vis >= goal else 'MISSED'}); "
                 f"over the spot-frames not 'unknown' (acc seen): {acc:.4f} "
                 f"(goal ≥ {goal}: {'met' if acc >= goal else 'MISSED'}); "
                 f"over all, 'unknown' wrong (acc all): {correct / max(judged, 1):.4f}; "
                 f"unknown share {undecided / max(judged, 1):.3f}")
    met = found == illegal and false == 0
    lines.append(f"illegal parking: {found}/{illegal} found within {GOALS['late_s']:.0f} s after the limit, "
                 f"{false} false (goal all found, none false: {'met' if met else 'MISSED'})"
                 + (f"; delay after the limit {min(delays):.1f}–{max(delays):.1f} s" if delays else ""))
    worst = sorted((w, code, name) for name, r in rows for w, code in r["worst"])[:3]
    if worst:
        lines.append("worst spots (accuracy while seen): " + ", ".join(
            f"{code} {w:.3f} ({name.split(' (')[0]})" for w, code, name in worst))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of each rendered clip")
    parser.add_argument("--cameras", type=int, default=3, help="demo parking cameras to render")
    parser.add_argument("--seed-base", type=int, default=1000,
                        help="first seed (1000: the benchmark, written to the docs; 2000: the development set)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/performance.md")
    return parser


if __name__ == "__main__":
    sys.exit(main())
