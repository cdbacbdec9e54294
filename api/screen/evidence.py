"""An incident's evidence on the screen: its keyframe, and its clip made playable in the browser.

Only files inside the evidence folder are served (no path traversal); a clip Chromium
cannot play (MJPEG AVI from the camera pipeline) is transcoded once to WebM and kept.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse

from api.screen import selectors as scenes
from api.screen.access import ScreenError, incident_number, screen_view

EVIDENCE_ENV = "ONEMAP_EVIDENCE_DIR"
CLIP_MAX_FRAMES = 25 * 120  # a transcoded clip stops after two minutes at 25 fps


@screen_view()
def evidence_api(request: HttpRequest, identity, incident_id: str, kind: str) -> HttpResponse:
    """The incident's keyframe (image) or clip (WebM, transcoded once when the stored clip will not play)."""
    path = evidence_file(incident_id=incident_number(incident_id), kind=kind)
    if kind == "keyframe":
        content_type = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}.get(path.suffix.lower())
        if content_type is None:
            raise ScreenError(f"the keyframe {path.name} is not a JPEG or PNG image", status=415)
        return FileResponse(open(path, "rb"), content_type=content_type)
    return FileResponse(open(playable_clip(path), "rb"), content_type="video/webm")


def evidence_root() -> Path:
    """The folder evidence is served from: ``ONEMAP_EVIDENCE_DIR``, else ``$ONEMAP_VAR_DIR/evidence``."""
    raw = os.environ.get(EVIDENCE_ENV)
    return Path(raw).resolve() if raw else (settings.ONEMAP.var_dir / "evidence").resolve()


def evidence_file(*, incident_id: int, kind: str) -> Path:
    """The evidence file of an incident, only when it lies inside the evidence root (no path traversal)."""
    paths = scenes.incident_evidence_paths(incident_id=incident_id)
    if paths is None:
        raise ScreenError(f"incident {incident_id} does not exist (deleted, or a wrong id)", status=404)
    stored = paths.get(kind)
    if not stored:
        raise ScreenError(f"incident {incident_id} has no {kind} evidence", status=404)
    candidate = Path(stored)
    if not candidate.is_absolute():
        candidate = settings.ONEMAP.var_dir / candidate  # relative paths are under ONEMAP_VAR_DIR
    resolved = candidate.resolve()
    root = evidence_root()
    if not resolved.is_relative_to(root):
        raise ScreenError(f"the {kind} of incident {incident_id} lies outside the evidence folder {root} "
                          f"({EVIDENCE_ENV}); it is not served", status=404)
    if not resolved.is_file():
        raise ScreenError(f"the {kind} file of incident {incident_id} is missing from the evidence folder",
                          status=404)
    return resolved


_TRANSCODE_LOCK = threading.Lock()


def playable_clip(source: Path) -> Path:
    """A clip Chromium's <video> plays: WebM as stored, anything else (MJPEG AVI) transcoded once to VP8 WebM.

    The evidence file is only read; the copy lives under ``$ONEMAP_VAR_DIR/screen/clips``.
    """
    if source.suffix.lower() == ".webm":
        return source
    stat = source.stat()
    key = hashlib.sha256(f"{source}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    folder = settings.ONEMAP.var_dir / "screen" / "clips"
    target = folder / f"{key}.webm"
    if target.exists():
        return target
    with _TRANSCODE_LOCK:
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            _transcode_to_webm(source, target)
    return target


def _transcode_to_webm(source: Path, target: Path) -> None:
    import cv2

    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise ScreenError(f"the clip {source.name} cannot be decoded", status=415)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    partial = target.with_name(f"{target.stem}.{os.getpid()}.{threading.get_ident()}.part.webm")
    writer = None
    try:
        for _ in range(CLIP_MAX_FRAMES):
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"VP80"), fps, (width, height))
                if not writer.isOpened():
                    raise ScreenError("this server's OpenCV cannot write VP8 WebM; the clip cannot be shown",
                                      status=500)
            writer.write(frame)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        partial.unlink(missing_ok=True)
        raise ScreenError(f"the clip {source.name} holds no frame", status=415)
    partial.replace(target)
