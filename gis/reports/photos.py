"""A resident's photo: checked by its content, re-encoded (which drops EXIF, GPS included), stored durably.

What a phone uploads is untrusted: the name and the declared type mean nothing. A photo is
taken only if its first bytes say JPEG, PNG or WebP and OpenCV decodes it; it is scaled down
to at most ``MAX_SIDE`` pixels and written anew as JPEG, so nothing of the original file
(EXIF, GPS, embedded thumbnails, trailing data) survives. OpenCV turns the image upright by
its EXIF orientation while decoding, before the tag is dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from core.settings import settings
from gis.services import ServiceError

MAX_PHOTOS = 3
MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000  # refused before decoding (a small file can claim a huge image)
MAX_SIDE = 1600
JPEG_QUALITY = 85
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPEG, PNG (WebP: RIFF....WEBP)


class PhotoRefused(ServiceError):
    """A photo that is too large, not an image, or not one of the accepted types."""


def clean(data: bytes, *, name: str = "photo") -> bytes:
    """The photo re-encoded as JPEG without metadata; PhotoRefused naming the problem otherwise."""
    if not data:
        raise PhotoRefused(f"{name} is empty")
    if len(data) > MAX_BYTES:
        raise PhotoRefused(f"{name} is {len(data) / 1048576:.1f} MB; at most {MAX_BYTES // 1048576} MB are allowed")
    if not _known_type(data):
        raise PhotoRefused(f"{name} is not a JPEG, PNG or WebP image (judged by its content, not its name)")
    if not _size_allowed(data):
        raise PhotoRefused(f"{name} claims more than {MAX_PIXELS:,} pixels")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise PhotoRefused(f"{name} could not be decoded as an image (damaged or truncated?)")
    height, width = image.shape[:2]
    if height * width > MAX_PIXELS:
        raise PhotoRefused(f"{name} has {height * width:,} pixels; at most {MAX_PIXELS:,} are allowed")
    scale = MAX_SIDE / max(height, width)
    if scale < 1:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PhotoRefused(f"{name} could not be re-encoded")
    return encoded.tobytes()


def folder(report_code: str) -> Path:
    return settings().var_dir / "media" / "reports" / report_code


def store(report_code: str, photos: list[bytes]) -> list[str]:
    """Write cleaned photos durably (fsync of each file and of the folder) before the report commits."""
    if not photos:
        return []
    where = folder(report_code)
    where.mkdir(parents=True, exist_ok=True)
    names = []
    for n, data in enumerate(photos, start=1):
        name = f"{n}.jpg"
        fd = os.open(where / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        names.append(name)
    dir_fd = os.open(where, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return names


def remove(report_code: str, names: list[str] | None = None) -> None:
    """Remove some (or all) of a report's stored photos; a missing file is not an error."""
    where = folder(report_code)
    for name in names if names is not None else [p.name for p in where.glob("*.jpg")]:
        (where / name).unlink(missing_ok=True)
    if names is None and where.exists():
        where.rmdir()


def path_of(report_code: str, name: str) -> Path | None:
    """The stored file of a photo name the report lists, or None."""
    if "/" in name or name.startswith("."):
        return None
    candidate = folder(report_code) / name
    return candidate if candidate.is_file() else None


def _known_type(data: bytes) -> bool:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data.startswith(_SIGNATURES)


def _size_allowed(data: bytes) -> bool:
    """Read the declared size from the header without decoding (a decompression bomb is refused cheaply)."""
    width, height = _declared_size(data)
    return width * height <= MAX_PIXELS


def _declared_size(data: bytes) -> tuple[int, int]:
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return 0, 0  # unknown here (WebP): OpenCV's own limit and the check after decoding apply
