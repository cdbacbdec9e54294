"""Serve video files over RTSP with GStreamer's RTSP server, for the tests, the benchmark and the demo.

Run with the system Python, which has GStreamer's bindings (the project's venv does not):

    /usr/bin/python3 host/rtsp_server.py --port 8554 cam1=/path/clip.avi [cam2=/other.mp4 ...] [--loop]

Each ``NAME=FILE`` is served at ``rtsp://127.0.0.1:PORT/NAME`` as H.264 at the file's own pace;
a client that connects gets the file from its start (``--loop``: over and over). A file named
``*.h264.mp4`` is sent without re-encoding. Prints
``ready`` on stdout once it listens, and ends when the process that started it ends (``onemap demo``
starts it beside the server). The project's venv never imports this file.
"""

import argparse
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--loop", action="store_true", help="start the file again at its end")
    parser.add_argument("mounts", nargs="+", metavar="NAME=FILE")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mounts:
        name, _, path = spec.partition("=")
        if not name or not path:
            parser.error(f"{spec!r}: give NAME=FILE")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(_launch(path))
        factory.set_shared(True)  # several clients of one mount see one stream, as with a camera
        if args.loop:
            factory.connect("media-configure", _loop_media)
        mounts.add_factory("/" + name, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    loop = GLib.MainLoop()
    parent = os.getppid()
    GLib.timeout_add(500, lambda: os.getppid() == parent or loop.quit())  # orphaned: end with the parent
    loop.run()
    return 0


def _launch(path: str) -> str:
    quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if path.endswith(".h264.mp4"):  # already H.264 (the bench's clips): sent as they are, no encoder's CPU
        return f"( filesrc location={quoted} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    # a key frame every second, so a client that joins (or rejoins) decodes within a second
    return (f"( filesrc location={quoted} ! decodebin ! videoconvert ! video/x-raw,format=I420 "
            "! x264enc tune=zerolatency speed-preset=ultrafast bitrate=6000 key-int-max=25 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )")


def _loop_media(factory, media) -> None:
    """At the end of the file, seek back to its start instead of ending the stream."""
    pipeline = media.get_element()
    source = pipeline.get_by_name("pay0")
    pad = source.get_static_pad("sink")

    def on_event(pad, info):
        event = info.get_event()
        if event.type == Gst.EventType.EOS:
            GLib.idle_add(lambda: pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH, 0) and False)
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_event)


if __name__ == "__main__":
    sys.exit(main())
