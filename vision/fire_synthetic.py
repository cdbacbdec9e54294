"""Fire clips: synthetic flames and nuisance the project renders, and the flame boxes of an annotated real clip.

``render_clip(kind, path)`` writes an MJPG clip of one of ``KINDS`` on a noisy grey yard:
``flame`` (a flickering flame, the only positive), ``orange_wall`` and ``sunset_wall`` (still warm
surfaces, the sunset one slowly brightening), ``tail_light`` (a car's tail lights blinking, as an
indicator does), ``flashing_light`` (an amber beacon flashing) and ``orange_shirt`` (a person in an
orange shirt walking across). ``read_flame_boxes`` reads the OpenCV FileStorage XML of the
furg-fire-dataset (``frames/_/frameNumber``, ``annotations/_`` = ``x y w h``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

KINDS = ("flame", "orange_wall", "sunset_wall", "tail_light", "flashing_light", "orange_shirt")
NUISANCE_KINDS = KINDS[1:]
WIDTH, HEIGHT, FPS = 320, 240, 25.0


def render_clip(kind: str, path: Path, *, seconds: float = 8.0, seed: int = 0, fps: float = FPS,
                flame_from: float = 1.0, size: tuple[int, int] | None = None) -> Path:
    """Write a clip of ``kind``; a flame appears at ``flame_from`` seconds. Returns the path.

    The scene is drawn at ``WIDTH`` × ``HEIGHT``; ``size`` (width, height) stretches each frame to
    another size, e.g. a camera's 16:9 for its calibration."""
    import cv2

    if kind not in KINDS:
        raise ValueError(f"unknown clip kind {kind!r}; choose one of {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    background = _yard(rng)
    out_size = tuple(size) if size else (WIDTH, HEIGHT)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, out_size)
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 92)
    draw = {"flame": _flame, "orange_wall": _orange_wall, "sunset_wall": _sunset_wall, "tail_light": _tail_light,
            "flashing_light": _flashing_light, "orange_shirt": _orange_shirt}[kind]
    x0 = rng.uniform(0.35, 0.65) * WIDTH
    for k in range(int(seconds * fps)):
        t = k / fps
        frame = background.copy()
        draw(frame, t, rng, x0, flame_from)
        noise = rng.normal(0, 2.0, frame.shape)
        image = np.clip(frame + noise, 0, 255).astype(np.uint8)
        writer.write(image if out_size == (WIDTH, HEIGHT) else cv2.resize(image, out_size))
    writer.release()
    return Path(path)


def read_flame_boxes(path: Path) -> dict[int, list[tuple[int, int, int, int]]]:
    """Frame number → flame rectangles (x, y, w, h) from a furg-fire-dataset XML file."""
    text = Path(path).read_text()
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for number, body in re.findall(r"<frameNumber>\s*(\d+)\s*</frameNumber>\s*<annotations>(.*?)</annotations>",
                                   text, re.S):
        out[int(number)] = [tuple(int(v) for v in box.split()) for box in re.findall(r"<_>\s*([\d\s]+?)\s*</_>", body)]
    if not out:
        raise ValueError(f"{path}: no frames/_/frameNumber with annotations found")
    return out


# -- scenes ------------------------------------------------------------------------------


def _yard(rng) -> np.ndarray:
    """A grey wall over a darker ground with a little texture."""
    img = np.empty((HEIGHT, WIDTH, 3), np.float32)
    img[: HEIGHT * 2 // 3] = (150, 152, 158)
    img[HEIGHT * 2 // 3:] = (95, 105, 100)
    img += rng.normal(0, 6, (HEIGHT, WIDTH, 1))
    return img


def _flame(frame, t, rng, x0, start) -> None:
    import cv2

    if t < start:
        return
    base_y = HEIGHT * 2 // 3
    grow = min(1.0, 0.5 + 0.25 * (t - start))  # the fire grows over two seconds
    for layer, (colour, scale) in enumerate((((20, 60, 220), 1.0), ((30, 140, 250), 0.7), ((170, 235, 255), 0.4))):
        for _ in range(4):  # tongues of flame, each jittering frame by frame
            h = grow * scale * rng.uniform(35, 60)
            w = grow * scale * rng.uniform(10, 18)
            cx = x0 + rng.normal(0, 5 * scale)
            cy = base_y - h / 2 + rng.normal(0, 3)
            cv2.ellipse(frame, (int(cx), int(cy)), (int(w), int(h / 2)), rng.normal(0, 10), 0, 360, colour, -1,
                        cv2.LINE_AA)


def _orange_wall(frame, t, rng, x0, start) -> None:
    frame[40:150, int(x0) - 60:int(x0) + 60] = (40, 120, 235)


def _sunset_wall(frame, t, rng, x0, start) -> None:
    gain = 0.85 + 0.15 * math.sin(2 * math.pi * t / 60)  # the evening light changes slowly
    frame[30:160, :] = np.array((70, 140, 240)) * gain
    frame[60:100, 40:80] = (60, 60, 70)  # a window


def _car(frame, x0) -> tuple[int, int]:
    y = HEIGHT * 2 // 3 + 10
    frame[y - 40:y, int(x0) - 70:int(x0) + 70] = (60, 60, 65)
    return int(x0), y


def _tail_light(frame, t, rng, x0, start) -> None:
    cx, y = _car(frame, x0)
    on = (t * 1.5) % 1.0 < 0.5  # an indicator blinks at 1.5 Hz
    colour = (30, 90, 250) if on else (40, 40, 90)
    for side in (-1, 1):
        frame[y - 30:y - 18, cx + side * 58 - 8:cx + side * 58 + 8] = colour


def _flashing_light(frame, t, rng, x0, start) -> None:
    import cv2

    on = (t * 2.0) % 1.0 < 0.3  # an amber beacon: short flashes at 2 Hz
    cv2.circle(frame, (int(x0), 60), 10, (30, 170, 255) if on else (60, 80, 100), -1, cv2.LINE_AA)


def _orange_shirt(frame, t, rng, x0, start) -> None:
    x = int(-20 + 40 * t)  # walking at about 40 px/s
    y = HEIGHT * 2 // 3 + 20
    frame[y - 60:y - 20, x - 10:x + 10] = (30, 110, 240)  # shirt
    frame[y - 20:y + 10, x - 8:x + 8] = (50, 40, 40)  # trousers
    frame[y - 75:y - 60, x - 6:x + 6] = (120, 150, 200)  # head
