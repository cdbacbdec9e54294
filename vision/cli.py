"""``onemap vision ...``: analyse a video, run the camera service, its status, train the classifier, verify evidence.

Heavy imports (OpenCV, PyTorch, Django) happen inside the commands so that
``onemap --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli import CommandError, setup_django


def register(subparsers) -> None:
    """Add the ``vision`` command and its subcommands to the ``onemap`` parser."""
    vision = subparsers.add_parser("vision", help="camera pipelines: falling objects (高空抛物), fire and smoke, "
                                                  "people passing, parking (违章停车), evidence")
    sub = vision.add_subparsers(title="vision commands", metavar="ACTION")
    vision.set_defaults(func=lambda args: _usage(vision))

    analyze = sub.add_parser("analyze", help="detect falling objects (or fire and smoke, people passing, illegal "
                                             "parking) in a video file or stream")
    analyze.add_argument("video", help="video file, or rtsp:// / http(s):// stream URL")
    where = analyze.add_mutually_exclusive_group()
    where.add_argument("--camera", metavar="CODE",
                       help="a camera in the database: use its calibration and write incidents for the events")
    where.add_argument("--calibration", metavar="FILE", help="calibration JSON file (see DESIGN.md)")
    analyze.add_argument("--json", action="store_true", help="print one JSON object per event (JSON lines)")
    analyze.add_argument("--evidence-dir", metavar="DIR", type=Path,
                         help="write clips, keyframes and chained records here (default with --camera: "
                              "$ONEMAP_VAR_DIR/evidence)")
    analyze.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    analyze.add_argument("--detect", choices=("auto", "falling_object", "fire_smoke", "person", "illegal_parking", "all"),
                         default="auto",
                         help="what to look for (default auto: falling objects; for a --camera, by its purpose: "
                              "fire and smoke and people passing for a courtyard, fire and smoke and illegal "
                              "parking for a car park, people passing for a peephole; illegal parking needs "
                              "--camera, for its spots and zones)")
    analyze.add_argument("--recorded-at", metavar="ISO-8601",
                         help="with --camera: when the video's first frame was recorded, for the times of people "
                              "passing (default: a file's modification time less its length; a stream: now)")
    analyze.set_defaults(func=cmd_analyze)

    run = sub.add_parser("run", help="the camera service: every enabled camera with a stream URL, until stopped")
    run.add_argument("--camera", metavar="CODE", action="append", dest="cameras",
                     help="run only this camera (repeat for more); default: every camera with a stream URL "
                          "that is not under maintenance")
    run.add_argument("--evidence-dir", metavar="DIR", type=Path,
                     help="clips, keyframes and chained records (default $ONEMAP_VAR_DIR/evidence)")
    run.add_argument("--health-interval", type=float, default=None, metavar="S",
                     help="seconds between health writes (default 2)")
    run.add_argument("--queue", type=int, default=None, metavar="FRAMES",
                     help="frames a camera may buffer before the oldest are dropped (default 25)")
    run.add_argument("--reconnect-max", type=float, default=10.0, metavar="S",
                     help="longest pause between reconnection attempts (default 10)")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="each camera's live-pipeline health as its worker last wrote it")
    status.add_argument("--camera", metavar="CODE", action="append", dest="cameras", help="only this camera")
    status.add_argument("--json", action="store_true", help="one JSON object per camera")
    status.set_defaults(func=cmd_status)

    counts = sub.add_parser("counts", help="people passing courtyard cameras, per hour and building (numbers only)")
    counts.add_argument("--camera", metavar="CODE", action="append", dest="cameras", help="only this camera")
    counts.add_argument("--json", action="store_true", help="one JSON object per camera and hour")
    counts.set_defaults(func=cmd_counts)

    train = sub.add_parser("train", help="train the falling-object classifier on simulated trajectories")
    train.add_argument("--seed", type=int, default=None, help="random seed (same seed, same weights)")
    train.add_argument("--out", type=Path, default=None, help="weights file (default .var/models/falling_mlp.json)")
    train.set_defaults(func=cmd_train)

    verify = sub.add_parser("verify", help="check that evidence files and their hash chain are unchanged")
    verify.add_argument("dir", type=Path, help="evidence folder (of one camera, or holding camera folders)")
    verify.set_defaults(func=cmd_verify)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# -- commands -------------------------------------------------------------------------


def cmd_analyze(args) -> int:
    from vision.calibration import CalibrationError
    from vision.classifier import ClassifierError
    from vision.config import VisionConfigError
    from vision.evidence import EvidenceError
    from vision.pipeline import analyze_video
    from vision.sink import SinkError
    from vision.sources import VideoSourceError, VideoTruncatedError

    camera = calibration = None
    evidence_dir = args.evidence_dir
    try:
        if args.camera:
            setup_django()
            from vision.sink import camera_for_code

            camera = camera_for_code(args.camera)
            calibration = camera.calibration or None
            if evidence_dir is None:
                evidence_dir = _default_evidence_dir()
        elif args.calibration:
            calibration = _read_calibration(Path(args.calibration))
        detect = _detectors(args.detect, camera)
        door = None
        if camera is not None and camera.purpose == "peephole" and "person" in detect:
            from vision.sink import door_sensor_for

            door = door_sensor_for(camera)  # an unbound peephole is refused before a frame is read
        layout, changes = None, []
        if "illegal_parking" in detect:
            if camera is None:
                raise CommandError("illegal-parking detection needs --camera CODE: the spots and zones it watches "
                                   "come from the parking_spots and no_parking_zones layers")
            from vision.parking import parking_layout_for

            layout = parking_layout_for(camera)
        result = analyze_video(
            args.video, calibration=calibration, camera_code=args.camera, evidence_dir=evidence_dir,
            progress=sys.stderr.isatty(), max_frames=args.max_frames, detect=detect, parking_layout=layout,
            on_occupancy=changes.append,
        )
        written, passes = {}, None
        if camera is not None and result.events:
            from vision.sink import incidents_write, people_passes_write

            incidents = [e for e in result.events if e.type != "person"]
            if incidents:
                written = dict(zip((id(e) for e in incidents), incidents_write(events=incidents, camera=camera)))
            people = [e for e in result.events if e.type == "person"]
            if people:
                passes = people_passes_write(events=people, camera=camera, sensor=door,
                                             started_at=_recorded_at(args.recorded_at, args.video, result))
    except VideoTruncatedError as exc:
        if exc.result is not None:  # what the decodable part showed, for the record; nothing is written
            _print_events(exc.result.events, {}, as_json=args.json)
        raise CommandError(f"{exc}; no incident was written") from None
    except (VideoSourceError, CalibrationError, VisionConfigError, EvidenceError, ClassifierError, SinkError) as exc:
        raise CommandError(str(exc)) from None
    _print_events(result.events, written, as_json=args.json)
    if passes is not None:
        print(_describe_passes(passes), file=sys.stderr)
    if layout is not None:
        print(f"{len(changes)} spot occupancy change(s) seen (a file's occupancy is not written to the layer)",
              file=sys.stderr)
    kinds = " or ".join(d.replace("_", "-") for d in detect)
    print(
        f"{len(result.events)} {kinds} event(s) in {result.frames_read} frames "
        f"({result.video_seconds:.1f} s of video, {result.processing_fps:.0f} frames/s"
        + (f", {result.frames_dropped} dropped" if result.frames_dropped else "") + ")",
        file=sys.stderr,
    )
    return 0


def cmd_run(args) -> int:
    import signal
    import threading

    from core.children import die_with_parent
    from vision.service import HEALTH_INTERVAL_S, LIVE_QUEUE_FRAMES, ServiceOptions, run_service

    setup_django()
    options = ServiceOptions(
        evidence_dir=args.evidence_dir or _default_evidence_dir(),
        health_interval=args.health_interval or HEALTH_INTERVAL_S, queue_size=args.queue or LIVE_QUEUE_FRAMES,
        reconnect_max_seconds=args.reconnect_max,
    )
    if options.health_interval <= 0 or options.queue_size < 1 or options.reconnect_max_seconds <= 0:
        raise CommandError("--health-interval and --reconnect-max must be positive, --queue at least 1")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    die_with_parent(on_orphan=stop.set)  # started by `onemap demo --cameras`: ends with it
    print(f"onemap vision run: evidence in {options.evidence_dir}; stop with Ctrl-C or SIGTERM", flush=True)
    run_service(codes=args.cameras, options=options, stop=stop, log=lambda msg: print(msg, flush=True))
    print("onemap vision run: stopped", flush=True)
    return 0


def cmd_status(args) -> int:
    setup_django()
    from gis.spatial.selectors import camera_health_rows

    rows = camera_health_rows(codes=args.cameras)
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str))
        return 0
    if not rows:
        print("no camera has a stream URL or a health record")
        return 0
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    print(f"{'camera':<14} {'state':<13} {'fps in/out':>11} {'dropped':>14} {'gaps':>12} {'events':>6}  "
          f"{'last event':<20} {'updated':>8}  last error")
    for row in rows:
        h = row["health"]
        if h is None:
            print(f"{row['code']:<14} {'never run':<13}")
            continue
        share = h["frames_dropped"] / h["frames_in"] if h["frames_in"] else 0.0
        gaps = f"{h['gaps']} ({h['gap_seconds']:.1f} s)"
        last = h["last_event_at"].astimezone().strftime("%m-%d %H:%M:%S") if h["last_event_at"] else "-"
        if h["last_event_latency_s"] is not None and h["last_event_at"]:
            last += f" +{h['last_event_latency_s']:.1f}s"
        age = (now - h["updated_at"]).total_seconds()
        print(f"{row['code']:<14} {h['state']:<13} {h['fps_in']:>5.1f}/{h['fps_out']:<5.1f} "
              f"{h['frames_dropped']:>6} ({share:>4.0%}) {gaps:>12} {h['events']:>6}  {last:<20} "
              f"{age:>6.0f} s  {h['last_error'][:80]}")
    return 0


def cmd_counts(args) -> int:
    setup_django()
    from gis.spatial.selectors import people_counts_rows

    rows = people_counts_rows(camera_codes=args.cameras)
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str))
        return 0
    if not rows:
        print("no people counted yet (courtyard cameras count them in onemap vision run)")
        return 0
    print(f"{'hour (UTC)':<17} {'camera':<14} {'building':<14} {'people':>6}")
    for row in rows:
        print(f"{row['hour']:%Y-%m-%d %H:%M} {row['camera']:<14} {row['building'] or '-':<14} {row['count']:>6}")
    return 0


def cmd_train(args) -> int:
    from vision.classifier import ClassifierError
    from vision.training import DEFAULT_SEED, train

    try:
        report = train(out=args.out, seed=DEFAULT_SEED if args.seed is None else args.seed)
    except ClassifierError as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {report.path} (sha256 {report.sha256[:16]}…) from {report.samples} simulated tracks")
    print(f"  held-out simulated tracks: accuracy {report.validation_accuracy:.1%}, "
          f"falling recall {report.falling_recall:.1%}, others called falling {report.false_falling_rate:.1%}")
    return 0


def cmd_verify(args) -> int:
    from vision.evidence import verify

    report = verify(args.dir)
    for problem in report.problems:
        print(problem)
    state = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"{report.records} record(s) in {report.chains} chain(s): {state}")
    return 0 if report.ok else 1


# -- helpers ------------------------------------------------------------------------------


def _print_events(events, written: dict, *, as_json: bool) -> None:
    for event in events:
        line = event.to_json()
        incident = written.get(id(event))
        if incident is not None:
            line["incident"] = {"code": incident.code, "grid": incident.grid_code}
        print(json.dumps(line, ensure_ascii=False) if as_json else _describe(line))


def _detectors(choice: str, camera) -> tuple[str, ...]:
    """The event types to look for: as asked, or by the camera's purpose (falling objects by default)."""
    from vision.pipeline import DETECTORS

    if choice == "all":  # every detector the camera can run: parking needs one with a ground calibration
        ground = camera is not None and bool((camera.calibration or {}).get("ground"))
        return tuple(d for d in DETECTORS if d != "illegal_parking" or ground)
    if choice != "auto":
        return (choice,)
    from vision.streaming import detect_for

    return detect_for(camera) or ("falling_object",)


def _recorded_at(text: str | None, video: str, result):
    """When the video's first frame was recorded: as given, else a file's modification time less its length
    (the same file gives the same times, so analysing it again writes nothing twice), else now."""
    from datetime import datetime, timedelta, timezone

    from vision.sources import STREAM_SCHEMES

    if text:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise CommandError(f"--recorded-at {text!r} is not an ISO-8601 date and time") from None
        if when.tzinfo is None:
            raise CommandError(f"--recorded-at {text!r} has no time zone (add Z or +08:00)")
        return when
    if str(video).startswith(STREAM_SCHEMES):
        return datetime.now(timezone.utc) - timedelta(seconds=result.video_seconds)
    modified = datetime.fromtimestamp(Path(video).stat().st_mtime, timezone.utc)
    return modified.replace(microsecond=0) - timedelta(seconds=result.video_seconds)


def _describe_passes(p) -> str:
    if p.sensor:
        return (f"{p.passes} person pass(es) at the door: {p.sightings} sighting(s) of {p.sensor} written, "
                f"{p.duplicates} already stored")
    if p.counted or p.building:
        return f"{p.passes} person pass(es): {p.counted} added to the hourly people counts (building {p.building})"
    return f"{p.passes} person pass(es), not stored (only peephole and courtyard cameras store theirs)"


def _read_calibration(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CommandError(f"{path}: no such calibration file") from None
    except ValueError as exc:
        raise CommandError(f"{path} is not valid JSON: {exc}") from None


def _default_evidence_dir() -> Path:
    from core.settings import settings

    return settings().var_dir / "evidence"


def _describe(line: dict) -> str:
    if line["type"] == "person":
        x, y, w, h = line["box"]
        return (f"person  {line['t_start']:.2f}–{line['t_end']:.2f} s  p={line['confidence']:.2f}"
                f"  box {w}×{h} at ({x}, {y})")
    where = f"  floor {line['floor']}" if line["floor"] is not None else ""
    if line["location"]:
        where += f"  at {line['location']['lon']:.6f}, {line['location']['lat']:.6f}"
    if line.get("zone"):
        where += f"  zone {line['zone']['code']} ({line['zone']['reason']}, stood {line['zone']['stood_s']:.0f} s)"
    incident = f"  incident {line['incident']['code']}" if "incident" in line else ""
    return (f"{line['type']}  {line['t_start']:.2f}–{line['t_end']:.2f} s  p={line['confidence']:.2f}"
            f"  from ({line['origin_image'][0]:.0f}, {line['origin_image'][1]:.0f}){where}{incident}")
