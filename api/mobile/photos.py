"""Photos from a grid worker's phone: checked by their content, re-encoded, kept by the hash of what is kept.

The phone sends the image as the request body. It must be a JPEG, PNG or WebP by its first
bytes (whatever the Content-Type says) and decode as one (OpenCV); it is then re-encoded as a
JPEG of at most ``MAX_SIDE`` pixels a side, which drops EXIF and everything else but the
pixels (a phone's GPS tag among them). The file is named by the SHA-256 of that JPEG, so the
same photo sent twice (a replay after a lost answer) is one file and one name. The name goes
into the handle action's ``photos``. Where: ``ONEMAP_PHOTO_DIR``, default
``$ONEMAP_VAR_DIR/photos``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

MAX_BYTES = 8 * 1024 * 1024
MAX_SIDE = 2048
MAX_PIXELS = 40_000_000  # larger is refused (OpenCV itself refuses over 2**30 pixels before decoding)
JPEG_QUALITY = 85
_NAME = re.compile(r"^[0-9a-f]{64}$")


class PhotoRefused(Exception):
    """Not a photo this server takes; ``str(exc)`` says why, ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def photo_store(data: bytes) -> dict:
    """Check, re-encode and keep a photo; ``{"photo": name, "url", "width", "height", "bytes"}``."""
    if not data:
        raise PhotoRefused("the body is empty; send the photo itself (JPEG, PNG or WebP) as the body")
    if len(data) > MAX_BYTES:
        raise PhotoRefused(f"the photo is {len(data) / 1024 / 1024:.1f} MiB; at most {MAX_BYTES // 1024 // 1024} MiB "
                           "are taken", status=413)
    kind = _kind(data)
    if kind is None:
        raise PhotoRefused("this is not a JPEG, PNG or WebP image (checked by its content, not its name or type)")
    jpeg, width, height = _reencoded(data, kind)
    name = hashlib.sha256(jpeg).hexdigest()
    path = photo_dir() / f"{name}.jpg"
    if not path.exists():
        _write(path, jpeg)
    return {"photo": name, "url": f"/m/api/photos/{name}", "width": width, "height": height, "bytes": len(jpeg)}


def photo_path(name: str) -> Path | None:
    """The file of a stored photo, or None (a malformed name is None too, never a path outside the folder)."""
    if not _NAME.match(name):
        return None
    path = photo_dir() / f"{name}.jpg"
    return path if path.is_file() else None


def photo_dir() -> Path:
    explicit = os.environ.get("ONEMAP_PHOTO_DIR")
    if explicit:
        return Path(explicit)
    from core.settings import settings

    return settings().var_dir / "photos"


def _kind(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _reencoded(data: bytes, kind: str) -> tuple[bytes, int, int]:
    try:
        import cv2
        import numpy as np
    except ImportError:
        raise PhotoRefused("this server cannot take photos: OpenCV (opencv-python-headless) is not installed",
                           status=503) from None
    raw = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise PhotoRefused(f"the {kind.upper()} image cannot be decoded (cut short, or damaged)")
    height, width = image.shape[:2]
    if width * height > MAX_PIXELS:
        raise PhotoRefused(f"the image is {width}×{height} pixels; at most {MAX_PIXELS:,} are taken")
    scale = min(1.0, MAX_SIDE / max(width, height))
    if scale < 1.0:
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PhotoRefused("the image could not be re-encoded")
    return encoded.tobytes(), width, height


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all: a temporary file beside it, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".upload-", delete=False) as out:
        out.write(data)
        temporary = Path(out.name)
    os.replace(temporary, path)
