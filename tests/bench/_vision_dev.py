"""Tuning aid: the falling-object detector on a development clip set, on several processes.

    python tests/bench/_vision_dev.py [--seed 9000] [--count 400] [--kind large|negative|all] [--jobs 2]
    python tests/bench/_vision_dev.py --kind fragment|column [--count 24] [--jobs 1]

Renders (once; cached under ``.var/bench/falling_dev/``) the clips of
``data.falling_clips.benchmark_clip`` for another seed than the benchmark's, keeps those of the
chosen kind (``large``: positive clips whose drops are in the ≥ 6 px bands; ``negative``: the
minute-long pure negatives; ``all``), analyses them with ``vision.pipeline.analyze_video`` and
scores them with the benchmark's own matching rule. The focused kinds render ``--count`` clips of
``data.falling_clips.focused_recipe`` instead (``fragment``: one large object, mostly of nearly the
wall's colour; ``column``: two objects let go from one window column 0.2–1.0 s apart). It prints recall at ≥ 6 px, false alarms, and
every missed drop and false alarm with its clip, so that a change can be judged on clips the
benchmark never uses. Tune here; run ``tests/bench/vision_falling.py`` only to confirm.

Throughput here is not a measure (several processes share the machine); the benchmark's is. This is
not a benchmark: `make bench` leaves out the files of `tests/bench/` whose names start with _.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = ("large", "negative", "all", "fragment", "column")
FOCUSED = ("fragment", "column")


def main(argv: list[str] | None = None) -> int:
    from data.falling_clips import BENCH_SEED, FOCUSED_SEEDS, benchmark_recipe

    args = _parser().parse_args(argv)
    focused = args.kind in FOCUSED
    seed = args.seed if args.seed is not None else FOCUSED_SEEDS[args.kind] if focused else 9000
    count = args.count if args.count is not None else 24 if focused else 400
    if seed < BENCH_SEED + 200 and BENCH_SEED < seed + count:  # clip seeds run seed … seed + count - 1
        print(f"seeds {seed}…{seed + count - 1} overlap the benchmark's test set ({BENCH_SEED}…{BENCH_SEED + 199}): "
              "pick another seed to tune on", file=sys.stderr)
        return 2
    if focused:
        indices = list(range(count))
    else:
        indices = [i for i in range(count) if _wanted(benchmark_recipe(index=i, seed=seed), args.kind)]
    print(f"development set: seed {seed}, {len(indices)} clips of kind {args.kind!r}, {args.jobs} processes",
          flush=True)
    started = time.perf_counter()
    from multiprocessing import Pool

    with Pool(args.jobs) as pool:
        runs = pool.map(_run, [(i, seed, args.kind if focused else None) for i in indices], chunksize=1)
    print(_report(runs), flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=None,
                   help="first seed of the set (not the benchmark's; default 9000, or the focused kind's own)")
    p.add_argument("--count", type=int, default=None,
                   help="benchmark-style clip indices to draw from (default 400), or focused clips (default 24)")
    p.add_argument("--kind", choices=KINDS, default="large", help="which clips to keep (default: large)")
    p.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 4)), help="processes")
    return p


def _wanted(recipe: dict, kind: str) -> bool:
    if kind == "all":
        return True
    if kind == "negative":
        return recipe["drops"] == 0
    return recipe["drops"] > 0 and recipe["size_px"][0] >= 6.0


def _run(item: tuple[int, int, str | None]):
    import cv2

    from data.falling_clips import benchmark_clip, benchmark_recipe, focused_recipe, recipe_clip
    from vision.pipeline import analyze_video
    from vision_falling import ClipRun

    cv2.setNumThreads(1)
    index, seed, focused = item
    cache = ROOT / ".var" / "bench" / "falling_dev"
    if focused:
        recipe = focused_recipe(kind=focused, index=index, seed=seed)
        clip = recipe_clip(recipe, folder=cache / f"{focused}-seed{seed}")
    else:
        recipe = benchmark_recipe(index=index, seed=seed)
        clip = benchmark_clip(index=index, out_dir=cache, seed=seed)
    cpu = time.process_time()
    error, events, rejections = None, [], {}
    try:
        result = analyze_video(clip.path, calibration=clip.calibration)
        events, rejections = list(result.events), dict(result.rejections)
    except Exception as exc:  # one clip's crash is reported, and the run goes on
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.process_time() - cpu
    return ClipRun(clip=clip, events=events, frames=clip.frames, decode_seconds=0.0, analyse_seconds=seconds,
                   decode_cpu=0.0, analyse_cpu=seconds, error=error,
                   jitter_px=recipe["jitter_px"], rejections=rejections)


def _report(runs: list) -> str:
    from vision_falling import _match_distance, _score

    score = _score(runs)
    large = [r for r in score.drops if r.drop.size_px >= 6.0]
    found = sum(r.found for r in large)
    lines = [
        f"recall, objects ≥ 6 px: {found}/{len(large)}" + (f" = {found / len(large):.1%}" if large else ""),
        f"recall, all sizes: {sum(r.found for r in score.drops)}/{len(score.drops)}",
        f"events {score.events}, duplicates {score.duplicates}, false alarms: {score.false_alarms_negative} in "
        f"{score.negative_seconds / 60:.1f} negative minutes, {score.false_alarms_positive} in clips with drops",
    ]
    matched = [r for r in score.drops if r.found and r.event.floor is not None]
    if matched:
        exact = sum(r.event.floor == r.drop.origin_floor for r in matched)
        near = sum(abs(r.event.floor - r.drop.origin_floor) <= 1 for r in matched)
        lines.append(f"floor exact {exact}/{len(matched)}, within ±1 {near}/{len(matched)} (matched drops)")
    both = [run for run in runs if len(run.clip.drops) == 2]
    if both:
        whole = sum(all(r.found for r in score.drops if r.clip is run.clip) for run in both)
        lines.append(f"clips with two drops: both found in {whole}/{len(both)}")
    for r in large:
        if not r.found:
            lines.append(f"  missed {r.clip.path.name}: {r.drop.size_px:.1f} px, frames {r.drop.frame_start}–"
                         f"{r.drop.frame_end}, {r.clip.background}, {'+'.join(r.clip.negatives) or 'clean'}, "
                         f"{len(r.clip.drops)} drop(s) in the clip")
    matched_events = {id(r.event) for r in score.drops if r.found}
    for run in runs:
        for event in run.events:
            if id(event) not in matched_events and any(_match_distance(event, d, run.jitter_px) is not None
                                                       for d in run.clip.drops):
                lines.append(f"  duplicate {run.clip.path.name}: frames {event.frames[0]}–{event.frames[1]}")
            if not any(_match_distance(event, d, run.jitter_px) is not None for d in run.clip.drops):
                lines.append(f"  false alarm {run.clip.path.name}: frames {event.frames[0]}–{event.frames[1]}, "
                             f"P = {event.confidence:.2f}, {'+'.join(run.clip.negatives) or 'clean'}")
        if run.error:
            lines.append(f"  ERROR {run.clip.path.name}: {run.error}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
