"""Benchmark: the live camera service's streaming core with 4 cameras at 720p, against decode-only in the same run.

    python tests/bench/vision_run.py [--cameras 4] [--seconds 30] [--queue 25]

Renders (cached under ``.var/bench/vision_run/``) one 1280×720, 25 fps clip per camera with
drops on a generated façade, encodes it once to H.264 (``gst-launch-1.0``), and serves all of
them at their own pace with GStreamer's RTSP server (``host/rtsp_server.py`` on the system
Python; the server only packetises, so it costs little CPU). Two rounds, each with one process
per camera as ``onemap vision run`` has:

- **decode-only**: the worker reads its stream through ``StreamSource`` and throws each frame away;
- **vision run**: the same source through ``StreamingCore`` with the falling-object stage, as the
  service's workers run it (evidence written to a temporary folder; no database: the sink's
  cost is one transaction per event).

Per camera: frames received per second, frames analysed per second, the share of received
frames dropped, and events found. The table gives the ratio of each round to decode-only.
It prints the machine's load average, since this machine is shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from servers import free_port

    clips = _clips(args.cameras, args.seconds)
    port = free_port()
    mounts = [f"cam{n}={c['h264']}" for n, c in enumerate(clips)]
    results = {}
    for mode in ("decode", "vision"):
        server = subprocess.Popen(["/usr/bin/python3", str(ROOT / "host" / "rtsp_server.py"), "--port", str(port),
                                   *mounts], stdout=subprocess.PIPE, start_new_session=True)
        assert server.stdout.readline().decode().strip() == "ready", "the RTSP server did not start"
        try:
            results[mode] = _round(mode, [f"rtsp://127.0.0.1:{port}/cam{n}" for n in range(len(clips))], clips,
                                   args.seconds, args.queue)
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        time.sleep(1)
    _report(results, args, clips)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30.0, help="length of each camera's clip")
    p.add_argument("--queue", type=int, default=25, help="frames a camera may buffer (the service's default)")
    return p


def _clips(count: int, seconds: float) -> list[dict]:
    from data.falling_clips import clip_render

    cache = ROOT / ".var" / "bench" / "vision_run"
    out = []
    for n in range(count):
        folder = cache / f"cam{n}-{int(seconds)}s"
        meta = folder / "clip.json"
        if not meta.exists():
            truth = clip_render(seed=9100 + n, out_dir=folder, width=1280, height=720, fps=25.0, seconds=seconds,
                                drops=max(1, int(seconds // 8)), size_px=8.0)
            h264 = folder / "clip.h264.mp4"
            subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={truth.path}", "!", "decodebin", "!",
                            "videoconvert", "!", "x264enc", "speed-preset=veryfast", "bitrate=4000", "key-int-max=25",
                            "!", "h264parse", "!", "mp4mux", "!", "filesink", f"location={h264}"], check=True)
            meta.write_text(json.dumps({"calibration": truth.calibration, "h264": str(h264),
                                        "drops": len(truth.drops), "frames": truth.frames}))
        out.append(json.loads(meta.read_text()))
    return out


def _round(mode: str, urls: list[str], clips: list[dict], seconds: float, queue: int) -> list[dict]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_camera, args=(mode, url, clip["calibration"], seconds, queue, results))
             for url, clip in zip(urls, clips)]
    for p in procs:
        p.start()
    rows = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    return sorted(rows, key=lambda r: r["url"])


def _camera(mode: str, url: str, calibration: dict, seconds: float, queue: int, results) -> None:
    """One camera's worker; stops when its stream ends (the clip is over) or after the clip's length + 20 s."""
    import threading

    import cv2

    from vision.config import DetectorConfig
    from vision.sources import StreamSource
    from vision.streaming import StreamingCore, falling_stage

    cv2.setNumThreads(1)
    source = StreamSource(url, queue_size=queue, reconnect_max_seconds=1.0, give_up_after=3.0)
    config = DetectorConfig()
    stages = [falling_stage(calibration=calibration, config=config)] if mode == "vision" else []
    events = []
    evidence = tempfile.mkdtemp(prefix="vision-run-bench-")
    core = StreamingCore(source=source, stages=stages, config=config,
                         evidence_dir=Path(evidence) if mode == "vision" else None, camera_code="BENCH",
                         on_ended=lambda event, timing: events.append(timing.latency_s))
    threading.Timer(seconds + 20, source.stop).start()
    first = {}

    def on_frame(frame):
        first.setdefault("t", time.monotonic())
        first["last"] = time.monotonic()

    core.on_frame = on_frame
    cpu0 = time.process_time()
    core.run()
    span = max(first.get("last", 0) - first.get("t", 0), 1e-6)
    results.put({"url": url, "received": source.frames_received, "analysed": core.frames_out,
                 "dropped": source.frames_dropped, "seconds": span, "cpu": time.process_time() - cpu0,
                 "events": len(events), "latencies": sorted(x for x in events if x is not None)})
    results.close()
    results.join_thread()  # the row is sent before the process ends
    os._exit(0)  # the timer thread may still wait


def _report(results: dict, args, clips) -> None:
    load = os.getloadavg()
    print(f"\nvision run bench: {args.cameras} cameras × 1280×720 @ 25 fps over RTSP, {args.seconds:.0f} s clips, "
          f"queue {args.queue}; {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'round':<12} {'camera':<7} {'fps in':>7} {'fps out':>8} {'dropped':>8} {'events':>7} "
          f"{'lat. med/max s':>14} {'cpu s':>6}")
    totals = {}
    for mode, rows in results.items():
        for r in rows:
            fps_in, fps_out = r["received"] / r["seconds"], r["analysed"] / r["seconds"]
            share = r["dropped"] / r["received"] if r["received"] else 0.0
            lats = r["latencies"]
            lat = f"{lats[len(lats) // 2]:.2f}/{lats[-1]:.2f}" if lats else "-"
            print(f"{mode:<12} {r['url'].rsplit('/', 1)[1]:<7} {fps_in:>7.1f} {fps_out:>8.1f} {share:>8.1%} "
                  f"{r['events']:>7} {lat:>14} {r['cpu']:>6.1f}")
        totals[mode] = (sum(r["analysed"] / r["seconds"] for r in rows) / len(rows),
                        sum(r["dropped"] for r in rows) / max(sum(r["received"] for r in rows), 1))
    base = totals["decode"][0]
    print(f"\n{'round':<12} {'fps out / camera':>17} {'× decode-only':>14} {'dropped':>8}")
    for mode, (fps, share) in totals.items():
        print(f"{mode:<12} {fps:>17.1f} {fps / base if base else 0:>14.2f} {share:>8.1%}")
    print(f"drops in the clips: {[c['drops'] for c in clips]} (latency: from an event's last frame's arrival to its "
          "end; an event still open when a clip ends waits for the stream to be given up, 3 s)")


if __name__ == "__main__":
    sys.exit(main())
