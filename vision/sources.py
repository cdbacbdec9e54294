"""Frame sources: video files and RTSP/HTTP streams through OpenCV, every frame with its timestamp.

A file is read frame by frame and nothing is dropped; a live stream is read by a
thread into a bounded queue, so frames that cannot be processed in time are
dropped and counted, and a stream that drops reconnects with growing pauses.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


class VideoSourceError(RuntimeError):
    """The video cannot be read as asked; the message says what is wrong with it."""


class VideoTruncatedError(VideoSourceError):
    """Decoding stopped before the frame count the file declares; ``result`` holds what was analysed."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Frame:
    index: int  # position in the stream (gaps mean dropped frames)
    t: float  # seconds from the start of the video
    image: np.ndarray  # BGR, uint8
    segment: int = 0  # a live stream's connection: a new number after every reconnection
    arrived: float | None = None  # a live frame: time.monotonic() when it was decoded


def open_source(source, *, queue_size: int = 50, reconnect_max_seconds: float = 30.0):
    """A file source for a path, a stream source for an rtsp:// or http(s):// URL."""
    text = str(source)
    if text.startswith(STREAM_SCHEMES):
        return StreamSource(text, queue_size=queue_size, reconnect_max_seconds=reconnect_max_seconds)
    return VideoFileSource(Path(source))


class VideoFileSource:
    """Every decodable frame of a video file, in order; timestamps from the declared frame rate."""

    is_live = False

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.exists():
            raise VideoSourceError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise VideoSourceError(f"{self.path} is a folder; give a video file")
        if self.path.stat().st_size == 0:
            raise VideoSourceError(f"{self.path} is empty (0 bytes); nothing to analyse")
        import cv2

        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise VideoSourceError(f"{self.path} cannot be opened as a video (not a video, or a codec OpenCV lacks)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 1.0 <= fps <= 240.0 else 25.0
        self.declared_frames = max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frames_read = 0
        self.frames_dropped = 0

    def frames(self, *, max_frames: int | None = None) -> Iterator[Frame]:
        """Yield frames until the end of the file (or ``max_frames``)."""
        index = 0
        try:
            while max_frames is None or index < max_frames:
                ok, image = self._cap.read()
                if not ok or image is None:
                    break
                yield Frame(index=index, t=index / self.fps, image=image)
                index += 1
                self.frames_read = index
        finally:
            self._cap.release()

    def truncation(self, *, max_frames: int | None = None) -> str | None:
        """Why the file ended early, or None when every declared frame was decoded."""
        if self.frames_read == 0:
            return f"{self.path}: no frame could be decoded (empty or damaged video)"
        wanted = self.declared_frames if max_frames is None else min(self.declared_frames, max_frames)
        # containers round their declared count; a shortfall of one or two frames is not damage
        if self.declared_frames and self.frames_read < wanted - max(2, int(0.01 * wanted)):
            return (f"{self.path}: decoding stopped after {self.frames_read} of the {self.declared_frames} frames "
                    "the file declares (truncated or damaged file)")
        return None


class StreamSource:
    """A live RTSP/HTTP stream read by a thread into a bounded queue; reconnects with backoff.

    The reader never waits for the analysis: when the queue is full the oldest frame is
    dropped and counted. A connection that stops delivering frames is a gap; gaps are
    counted and their length summed, and frames after one carry a new ``segment``.
    """

    is_live = True
    OPEN_TIMEOUT_MS = 5000
    READ_TIMEOUT_MS = 5000

    def __init__(self, url: str, *, queue_size: int = 50, reconnect_max_seconds: float = 30.0,
                 give_up_after: float | None = None):
        self.url = url
        self.fps = 25.0
        self.declared_frames = 0
        self.width = self.height = 0
        self.frames_read = 0  # handed to the analysis
        self.frames_received = 0  # decoded from the stream (read + dropped + still queued)
        self.frames_dropped = 0
        self.reconnects = 0
        self.connected = False
        self.gaps = 0
        self.gap_seconds = 0.0
        self.last_gap_seconds: float | None = None
        self.last_error = ""
        self.last_error_at: float | None = None  # time.time()
        self.segment = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._backoff_cap = reconnect_max_seconds
        self._give_up_after = give_up_after
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.started_wall = 0.0  # time.time() at t = 0
        self._lost_at: float | None = None  # monotonic time the current gap began

    @property
    def started(self) -> float:
        """``time.monotonic()`` at t = 0 of the frames' timestamps."""
        return self._started

    def current_gap_seconds(self) -> float:
        """Seconds of the gap going on now (0 while frames arrive)."""
        lost = self._lost_at
        return time.monotonic() - lost if lost is not None else 0.0

    def stop(self) -> None:
        """Ask the reader to stop; ``frames`` ends soon after (within a read timeout)."""
        self._stop.set()

    def frames(self, *, max_frames: int | None = None) -> Iterator[Frame]:
        """Yield frames as they arrive; ends when the stream is given up, stopped or ``max_frames`` are read."""
        self._started = time.monotonic()
        self.started_wall = time.time()
        self._thread = threading.Thread(target=self._read_loop, name=f"stream {self.url}", daemon=True)
        self._thread.start()
        try:
            while max_frames is None or self.frames_read < max_frames:
                frame = self._queue.get()
                if frame is None:
                    break
                self.frames_read += 1
                yield frame
        finally:
            self._stop.set()

    def truncation(self, *, max_frames: int | None = None) -> str | None:
        if self.frames_read == 0:
            return f"{self.url}: the stream delivered no frame"
        return None

    def _open(self):
        import cv2

        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                  self.READ_TIMEOUT_MS]
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)

    def _error(self, message: str) -> None:
        self.last_error, self.last_error_at = message, time.time()

    def _read_loop(self) -> None:
        import cv2

        index, pause, last_frame_at, last_t = 0, 0.5, time.monotonic(), None
        self._lost_at = last_frame_at  # nothing yet: the first connection counts as no gap, see below
        had_frames = False
        while not self._stop.is_set():
            cap = self._open()
            if cap.isOpened():
                fps = cap.get(cv2.CAP_PROP_FPS)
                if fps and 1.0 <= fps <= 240.0:
                    self.fps = float(fps)
                got, base = False, None
                while not self._stop.is_set():
                    ok, image = cap.read()
                    if not ok:
                        break
                    now = time.monotonic()
                    if not got:
                        got = True
                        self.connected = True
                        if had_frames and self._lost_at is not None:  # a gap has ended
                            self.last_gap_seconds = now - self._lost_at
                            self.gap_seconds += self.last_gap_seconds
                            self.segment += 1
                        self._lost_at = None
                        self.height, self.width = image.shape[:2]
                    pause, last_frame_at, had_frames = 0.5, now, True
                    # the stream's own clock: on connecting, FFmpeg hands over the seconds it read while
                    # probing in one burst, so arrival times would squeeze a fall into an instant
                    pos = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    if base is None:
                        base = now - self._started - pos
                    t = base + pos if pos > 0 or last_t is None else last_t + 1.0 / self.fps
                    if last_t is not None and t <= last_t:
                        t = last_t + 1e-3
                    last_t = t
                    self._offer(Frame(index=index, t=t, image=image, segment=self.segment, arrived=now))
                    self.frames_received += 1
                    index += 1
                if got and not self._stop.is_set():
                    self.gaps += 1
                    self._lost_at = last_frame_at
                    self._error(f"{self.url}: the stream stopped delivering frames")
                elif not got and not self._stop.is_set():
                    self._error(f"{self.url}: opened, but no frame could be read")
            else:
                self._error(f"{self.url}: cannot connect")
            cap.release()
            self.connected = False
            if self._give_up_after is not None and time.monotonic() - last_frame_at > self._give_up_after:
                break
            if self._stop.is_set():
                break
            self.reconnects += 1
            self._stop.wait(pause)
            pause = min(pause * 2, self._backoff_cap)
        self._offer(None)  # the end marker; never blocks, even when nobody reads any more

    def _offer(self, frame: Frame | None) -> None:
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            # a live view wants the newest frames: drop the oldest queued one and count it
            try:
                self._queue.get_nowait()
                self.frames_dropped += 1
            except queue.Empty:
                pass
            self._queue.put_nowait(frame)
