"""Evidence: a ring buffer of recent frames, a clip around each event, a keyframe and a chained record.

Per camera, records are numbered and each holds the SHA-256 of the clip, the
keyframe and the previous record, and ``HEAD`` holds the last record's hash, so
``verify`` notices any changed byte, a deleted record or a deleted file.

Layout: ``DIR/<camera>/000001.avi``, ``000001.jpg``, ``000001.json``, ..., ``HEAD``, ``LOCK``.
Appending to a chain holds ``LOCK`` (flock), so several writers for one camera make one chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from contextlib import contextmanager
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.vocabulary import PARKING_CATEGORY
from vision.events import VisionEvent

RECORD_FORMAT = "onemap-evidence/1"
UNNAMED_CAMERA = "unnamed-camera"  # evidence folder when no camera code is given
_RECORD_NAME = re.compile(r"^(\d{6})\.json$")


class EvidenceError(RuntimeError):
    """Evidence could not be written; the message names the file or folder."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- recording ------------------------------------------------------------------------


@dataclass
class _Recording:
    event_id: int
    first_frame: int
    tmp_path: Path
    writer: object
    end_frame: int | None = None
    event: VisionEvent | None = None
    keyframe: np.ndarray | None = None
    frames_written: int = 0
    last_written: int = -1


@dataclass
class EvidenceRecorder:
    """Keeps recent frames; writes a clip from ≥pre_seconds before to ≥post_seconds after each event."""

    root: Path
    camera_code: str | None
    fps: float
    pre_seconds: float
    post_seconds: float
    calibration: object = None  # for marking the floor on the keyframe
    # how long after its track began an event may be confirmed and still get its full pre-roll;
    # raw frames are kept, so this bounds memory (about 2.8 MB a frame at 1280×720)
    max_event_seconds: float = 2.0
    _ring: deque = field(init=False)
    _open: dict = field(init=False, default_factory=dict)
    _done: list = field(init=False, default_factory=list)

    def __post_init__(self):
        self.camera_dir = Path(self.root) / _safe_name(self.camera_code or UNNAMED_CAMERA)
        try:
            self.camera_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EvidenceError(f"cannot create the evidence folder {self.camera_dir}: {exc.strerror}") from None
        # the event may only be confirmed a few seconds after its track began
        capacity = int(round((self.pre_seconds + self.max_event_seconds) * self.fps)) + 2
        self._ring = deque(maxlen=capacity)
        self.pre_frames = int(np.ceil(self.pre_seconds * self.fps))
        self.post_frames = int(np.ceil(self.post_seconds * self.fps))

    def push(self, index: int, image: np.ndarray) -> list[VisionEvent]:
        """Add a frame; returns events whose evidence has just been completed."""
        self._ring.append((index, image))
        for rec in self._open.values():
            self._write(rec, index, image)
        return self._close_due(index)

    def start(self, event_id: int, first_frame: int) -> None:
        """Begin a clip for an event whose track began at ``first_frame``."""
        if event_id in self._open:
            return
        import cv2

        height, width = self._ring[-1][1].shape[:2]
        # unique per writer: two processes may record for one camera at once
        tmp = self.camera_dir / f".pending-{os.getpid()}-{id(self):x}-{event_id}.avi"
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (width, height))
        if not writer.isOpened():
            raise EvidenceError(f"cannot write the evidence clip {tmp}")
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
        rec = _Recording(event_id=event_id, first_frame=first_frame, tmp_path=tmp, writer=writer)
        for index, image in self._ring:
            if index >= first_frame - self.pre_frames:
                self._write(rec, index, image)
        self._open[event_id] = rec

    def end(self, event_id: int, first_frame: int, last_frame: int, event: VisionEvent | None) -> list[VisionEvent]:
        """The event is over: keep its clip (accepted) or discard it (rejected)."""
        if event is None:
            rec = self._open.pop(event_id, None)
            if rec is not None:
                rec.writer.release()
                rec.tmp_path.unlink(missing_ok=True)
            return []
        if event_id not in self._open:
            self.start(event_id, first_frame)
        rec = self._open[event_id]
        rec.event, rec.end_frame = event, last_frame + self.post_frames
        rec.keyframe = self._keyframe(event, last_frame)
        return self._close_due(self._ring[-1][0])

    def flush(self) -> list[VisionEvent]:
        """The video is over: close every clip with what there is."""
        done = []
        for event_id in list(self._open):
            rec = self._open.pop(event_id)
            if rec.event is None:
                rec.writer.release()
                rec.tmp_path.unlink(missing_ok=True)
            else:
                done.append(self._seal(rec))
        return done

    # -- helpers ------------------------------------------------------------------

    def _write(self, rec: _Recording, index: int, image: np.ndarray) -> None:
        if index > rec.last_written and (rec.end_frame is None or index <= rec.end_frame):
            rec.writer.write(image)
            rec.frames_written += 1
            rec.last_written = index

    def _close_due(self, index: int) -> list[VisionEvent]:
        done = []
        for event_id in [e for e, r in self._open.items() if r.end_frame is not None and index >= r.end_frame]:
            done.append(self._seal(self._open.pop(event_id)))
        return done

    def _keyframe(self, event: VisionEvent, last_frame: int) -> np.ndarray:
        """The event's last frame with the trajectory, release point and floor marked (a fire: its box)."""
        import cv2

        image = next((img for idx, img in reversed(self._ring) if idx <= last_frame), self._ring[-1][1]).copy()
        if event.box is not None:  # a fire: its region at its largest
            x, y, w, h = event.box
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 0, 255), 2, cv2.LINE_AA)
            kind = "illegal parking" if event.type == PARKING_CATEGORY else "fire/smoke"
            label = f"{kind}  p={event.confidence:.2f}" + (f"  floor {event.floor}" if event.floor else "")
            cv2.putText(image, label, (max(x - 10, 5), max(y - 10, 20)), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        (0, 0, 255), 2, cv2.LINE_AA)
            return image
        pts = np.round(np.array(event.trajectory)).astype(np.int32)
        cv2.polylines(image, [pts.reshape(-1, 1, 2)], False, (0, 0, 255), 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(image, tuple(int(c) for c in p), 3, (0, 255, 255), 1, cv2.LINE_AA)
        ox, oy = (int(round(c)) for c in event.origin_image)
        cv2.drawMarker(image, (ox, oy), (255, 0, 255), cv2.MARKER_CROSS, 24, 2)
        cal = self.calibration
        if event.floor is not None and cal is not None and cal.facade is not None:
            f = cal.facade
            u_lo, u_hi, _, _ = cal.facade_extent_m()
            for k in (0, 1):  # the floor's lower and upper slab lines across the façade
                v = (event.floor - f.ground_floor + k) * f.floor_height_m
                a, b = cal.facade_to_image(u_lo, v), cal.facade_to_image(u_hi, v)
                cv2.line(image, tuple(int(round(c)) for c in a), tuple(int(round(c)) for c in b), (255, 0, 255), 1)
        label = f"falling object  p={event.confidence:.2f}" + (f"  floor {event.floor}" if event.floor is not None else "")
        cv2.putText(image, label, (max(ox - 60, 5), max(oy - 14, 20)), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                    (255, 0, 255), 2, cv2.LINE_AA)
        return image

    def _seal(self, rec: _Recording) -> VisionEvent:
        rec.writer.release()
        # the chain's next number and its link to the last record are taken under the camera's lock,
        # so two writers for one camera (a restarted worker beside the old one, analyze beside run)
        # append one after the other and never fork the chain
        with chain_lock(self.camera_dir):
            return self._append(rec)

    def _append(self, rec: _Recording) -> VisionEvent:
        import cv2

        seq, previous = read_head(self.camera_dir)
        seq += 1
        stem = f"{seq:06d}"
        clip, keyframe, record = (self.camera_dir / f"{stem}{ext}" for ext in (".avi", ".jpg", ".json"))
        rec.tmp_path.replace(clip)
        if not cv2.imwrite(str(keyframe), rec.keyframe, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise EvidenceError(f"cannot write the keyframe {keyframe}")
        hashes = {"clip": sha256_file(clip), "keyframe": sha256_file(keyframe)}
        body = {
            "format": RECORD_FORMAT, "seq": seq, "camera": self.camera_code,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "event": rec.event.to_json(),
            "files": {"clip": {"name": clip.name, "sha256": hashes["clip"], "frames": rec.frames_written},
                      "keyframe": {"name": keyframe.name, "sha256": hashes["keyframe"]}},
            "previous_record_sha256": previous,
        }
        raw = json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True).encode()
        record.write_bytes(raw)
        hashes["record"] = hashlib.sha256(raw).hexdigest()
        head = self.camera_dir / "HEAD"
        head.with_suffix(".tmp").write_text(json.dumps({"seq": seq, "record_sha256": hashes["record"]}) + "\n")
        head.with_suffix(".tmp").replace(head)
        evidence = {"clip": str(clip), "keyframe": str(keyframe), "record": str(record), "sha256": hashes}
        return replace(rec.event, evidence=evidence)


@contextmanager
def chain_lock(camera_dir: Path):
    """Hold the camera's evidence chain exclusively (an flock on ``LOCK`` in its folder; waits for it)."""
    fd = os.open(Path(camera_dir) / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_head(camera_dir: Path) -> tuple[int, str | None]:
    """(last sequence number, last record's SHA-256) of a camera's chain; (0, None) when it is empty."""
    head = Path(camera_dir) / "HEAD"
    if not head.exists():
        return 0, None
    data = json.loads(head.read_text())
    return int(data["seq"]), data["record_sha256"]


def _safe_name(code: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", code)


# -- verification ----------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    chains: int
    records: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(root: Path) -> VerifyReport:
    """Check every chain under ``root`` (a camera folder, or a folder of camera folders)."""
    root = Path(root)
    if not root.is_dir():
        return VerifyReport(0, 0, (f"{root} is not a folder",))
    dirs = [root] if _is_chain(root) else sorted(d for d in root.iterdir() if d.is_dir() and _is_chain(d))
    if not dirs:
        return VerifyReport(0, 0, (f"{root} holds no evidence (no HEAD file or numbered records)",))
    problems: list[str] = []
    records = 0
    for d in dirs:
        n, found = _verify_chain(d)
        records += n
        problems.extend(found)
    return VerifyReport(len(dirs), records, tuple(problems))


def _is_chain(d: Path) -> bool:
    return (d / "HEAD").exists() or any(_RECORD_NAME.match(p.name) for p in d.iterdir())


def _verify_chain(d: Path) -> tuple[int, list[str]]:
    problems: list[str] = []
    seqs = sorted(int(m.group(1)) for p in d.iterdir() if (m := _RECORD_NAME.match(p.name)))
    try:
        head_seq, head_sha = read_head(d)
    except (ValueError, KeyError, OSError):
        problems.append(f"{d / 'HEAD'}: unreadable or changed")
        head_seq, head_sha = (seqs[-1] if seqs else 0), None
    expected = list(range(1, head_seq + 1))
    for missing in sorted(set(expected) - set(seqs)):
        problems.append(f"{d / f'{missing:06d}.json'}: record missing (deleted?)")
    for extra in sorted(set(seqs) - set(expected)):
        problems.append(f"{d / f'{extra:06d}.json'}: record beyond HEAD (added, or HEAD changed)")
    previous: str | None = None
    for seq in expected:
        path = d / f"{seq:06d}.json"
        if not path.exists():
            previous = "(missing)"
            continue
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
            problems.append(f"{path}: not valid JSON (changed)")
        if body is not None:
            if body.get("seq") != seq:
                problems.append(f"{path}: says it is record {body.get('seq')!r}, not {seq}")
            if previous != "(missing)" and body.get("previous_record_sha256") != previous:
                problems.append(f"{path}: does not chain to the record before it (that record or this one changed)")
            for kind, info in (body.get("files") or {}).items():
                f = d / str(info.get("name", ""))
                if not f.is_file():
                    problems.append(f"{f}: {kind} missing")
                elif sha256_file(f) != info.get("sha256"):
                    problems.append(f"{f}: {kind} changed (SHA-256 differs from record {seq})")
        previous = digest
    if head_seq and previous not in (head_sha, "(missing)"):
        problems.append(f"{d / f'{head_seq:06d}.json'}: the last record does not match HEAD (changed)")
    return len([s for s in expected if s in seqs]), problems
