"""Benchmark: people counted on vtest.avi against a hand count, and passes found at an elder's door.

    python tests/bench/vision_people.py [--seeds 10] [--docs]

vtest.avi (``$ONEMAP_SAMPLES`` or ``../shared/data``; skipped with a message when absent) is read
through the people detector (``vision.people.PeopleDetector``, HOG on motion regions). At each
frame of the hand count ``tests/bench/data/vtest_people.txt`` (every 40th frame; see its header
for how it was made) the people the detector has in view (confirmed tracks, ``live``) are set
against the count by hand: the ``walkway`` column (people whose feet are on the plaza in front of
the camera) and the ``all`` column (also the far footpath and behind the parked cars). Printed:
the mean absolute error per frame, the summed count against the summed hand count, and the
passes (events) the detector reported over the whole clip.

Peephole: clips rendered by ``vision.people_synthetic`` for seeds 1000.. (the tests use 7):
people passing, two one after the other, two crossing, someone standing at the door, and
nuisance (a door opening opposite, the light going out, a pet). A true pass is *found* when an
event overlaps its time span (each event matches one pass at most); an event matching none is a
*false pass*. Goal: ≥ 95 % found.

The baseline, measured in the same run, is decoding the same files alone (CPU time, one thread).
``--docs`` writes the tables into docs/performance.md between this bench's markers. Exits 0.
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

GOAL_FOUND = 0.95
HAND_COUNT = Path(__file__).resolve().parent / "data" / "vtest_people.txt"
DOCS_BEGIN = "<!-- vision_people.py results begin -->"
DOCS_END = "<!-- vision_people.py results end -->"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    samples = Path(os.environ.get("ONEMAP_SAMPLES", ROOT.parent / "shared" / "data"))
    lines: list[str] = []
    video = samples / "vtest.avi"
    if video.exists():
        lines += _vtest(video)
    else:
        lines.append(f"vtest.avi absent from {samples} (set ONEMAP_SAMPLES to its folder): the hand-count "
                     "comparison is skipped")
    lines += _peephole(args.seeds, args.first_seed)
    report = "\n".join(lines)
    print(report)
    if args.docs:
        from _docs import write_results

        write_results(f"```\n{report}\n```", begin=DOCS_BEGIN, end=DOCS_END)
    return 0


# -- vtest.avi against the hand count -------------------------------------------------------------


def read_hand_count(path: Path = HAND_COUNT) -> dict[int, tuple[int, int]]:
    """frame -> (all, walkway) from the hand-count file (``#`` lines are its header)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or line.startswith("#") or parts[0] == "frame":
            continue
        out[int(parts[0])] = (int(parts[1]), int(parts[2]))
    return out


def _vtest(video: Path) -> list[str]:
    hand = read_hand_count()
    run = _run(video, sample=set(hand))
    rows = [f"vtest.avi: people in view, detector against the hand count ({len(hand)} frames, one every 4 s)",
            f"{'frame':>5} {'hand all':>8} {'hand walkway':>12} {'detector':>8}"]
    for f in sorted(hand):
        rows.append(f"{f:5d} {hand[f][0]:8d} {hand[f][1]:12d} {run['live'].get(f, 0):8d}")
    for col, name in ((1, "walkway"), (0, "all")):
        truth = [hand[f][col] for f in sorted(hand)]
        got = [run["live"].get(f, 0) for f in sorted(hand)]
        mae = sum(abs(a - b) for a, b in zip(truth, got)) / len(truth)
        rows.append(f"against '{name}': mean absolute error {mae:.2f} people per frame; detector total "
                    f"{sum(got)} / hand total {sum(truth)} = {sum(got) / max(sum(truth), 1):.2f}")
    rows.append(f"passes reported over the clip: {run['events']} ({run['frames']} frames, "
                f"{run['frames'] / run['fps']:.1f} s); detect {run['frames'] / run['total_s']:.1f} frames/CPU-s, "
                f"decode alone {run['frames'] / run['decode_s']:.0f} (x{run['total_s'] / run['decode_s']:.1f})")
    return rows + [""]


def _run(path: Path, *, sample: set[int] = frozenset()) -> dict:
    """Decode alone (the baseline), then decode + detect; people in view at the sampled frames."""
    import cv2

    from vision.people import PeopleDetector
    from vision.sources import VideoFileSource

    cv2.setNumThreads(1)
    t0 = time.process_time()
    frames = sum(1 for _ in VideoFileSource(path).frames())
    decode_s = time.process_time() - t0
    src = VideoFileSource(path)
    detector, live, events = None, {}, []
    t0 = time.process_time()
    for frame in src.frames():
        if detector is None:
            detector = PeopleDetector(width=frame.image.shape[1], height=frame.image.shape[0], fps=src.fps)
        events += [s.event for s in detector.process(frame) if s.kind == "end" and s.event is not None]
        if frame.index in sample:
            live[frame.index] = detector.live
    events += [s.event for s in detector.finish() if s.event is not None] if detector else []
    total_s = time.process_time() - t0
    return {"frames": frames, "fps": src.fps, "decode_s": max(decode_s, 1e-9), "total_s": max(total_s, 1e-9),
            "live": live, "events": len(events), "passes": events}


# -- peephole clips -----------------------------------------------------------------------------


def _peephole(seeds: int, first: int) -> list[str]:
    from vision.people_synthetic import KINDS, NUISANCE_KINDS, render_clip

    per_kind = {}
    totals = {"passes": 0, "found": 0, "false": 0, "seconds": 0.0, "frames": 0, "total_s": 0.0, "decode_s": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            row = per_kind.setdefault(kind, {"clips": 0, "passes": 0, "found": 0, "false": 0})
            for seed in range(first, first + seeds):
                clip = render_clip(kind, Path(tmp) / f"{kind}-{seed}.avi", seed=seed)
                run = _run(clip.path)
                found, false = match(clip.passes, [(e.t_start, e.t_end) for e in run["passes"]])
                row["clips"] += 1
                row["passes"] += len(clip.passes)
                row["found"] += found
                row["false"] += false
                for key in ("frames", "total_s", "decode_s"):
                    totals[key] += run[key]
                totals["seconds"] += clip.seconds
                clip.path.unlink()
            for key in ("passes", "found", "false"):
                totals[key] += row[key]
    lines = [f"peephole clips (rendered, seeds {first}–{first + seeds - 1}): passes found at the door",
             f"{'kind':12} {'clips':>5} {'passes':>6} {'found':>5} {'false':>5}"]
    for kind, row in per_kind.items():
        note = "  (nuisance)" if kind in NUISANCE_KINDS else ""
        lines.append(f"{kind:12} {row['clips']:5d} {row['passes']:6d} {row['found']:5d} {row['false']:5d}{note}")
    share = totals["found"] / totals["passes"] if totals["passes"] else float("nan")
    hours = totals["seconds"] / 3600
    lines.append(f"{'all':12} {sum(r['clips'] for r in per_kind.values()):5d} {totals['passes']:6d} "
                 f"{totals['found']:5d} {totals['false']:5d}")
    lines.append(f"found {share:.1%} (goal ≥ {GOAL_FOUND:.0%}: {'met' if share >= GOAL_FOUND else 'MISSED'}); "
                 f"false passes {totals['false']} in {totals['seconds'] / 60:.1f} min of video "
                 f"({totals['false'] / hours:.1f} per camera-hour)")
    lines.append(f"480x360 at 12 fps: detect {totals['frames'] / totals['total_s']:.0f} frames/CPU-s, decode alone "
                 f"{totals['frames'] / totals['decode_s']:.0f} (x{totals['total_s'] / totals['decode_s']:.1f})")
    return lines


def match(truth, events: list[tuple[float, float]]) -> tuple[int, int]:
    """(true passes found, false passes): each event matches at most one pass it overlaps in time, earliest first."""
    free = list(truth)
    found = false = 0
    for t0, t1 in sorted(events):
        hit = next((p for p in free if t0 <= p.t_out and t1 >= p.t_in), None)
        if hit is None:
            false += 1
        else:
            free.remove(hit)
            found += 1
    return found, false


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="rendered clips of each kind")
    parser.add_argument("--first-seed", type=int, default=1000, help="the first seed (the tests use 7)")
    parser.add_argument("--docs", action="store_true", help="write the results into docs/performance.md")
    return parser


if __name__ == "__main__":
    sys.exit(main())
