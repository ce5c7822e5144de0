"""What the recognizer draws and writes: the overlay on each frame, the mosaic of several streams, the
annotated video's writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from action_rec.runtime.errors import UserError
from action_rec.runtime.labels import NO_ACTION

__all__ = ["DemoError", "draw_overlay", "mosaic", "open_writer"]


class DemoError(UserError):
    """A demo setting that cannot work (no display, unknown output type)."""


def draw_overlay(
    frame: np.ndarray,
    entry: dict[str, Any] | None,
    fps: float,
    latency_ms: float,
    name: str | None = None,
    stages_ms: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Draw the top-k labels with score bars, the FPS and the inference latency on a copy of `frame`;
    with several streams also the stream's `name` and its decode / preprocess / infer milliseconds."""
    out = frame.copy()
    h, w = out.shape[:2]
    scale = max(0.5, min(h, w) / 480)
    line = int(26 * scale) + 4
    rows = entry["top_k"] if entry else []
    idle = bool(entry) and entry["label"] == NO_ACTION
    if idle:  # the scores stay visible, greyed, under the verdict
        rows = [(NO_ACTION, None)] + list(rows)
    box_h = line * (len(rows) + 1) + 8
    box_w = min(w, int(330 * scale) + 10)
    shade = out[:box_h, :box_w]
    shade[:] = (shade * 0.45).astype(out.dtype)
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, int(round(scale * 1.5)))
    if not rows:
        cv2.putText(
            out, "collecting frames...", (6, line), font, 0.6 * scale, (255, 255, 255), thick, cv2.LINE_AA
        )
    for k, (label, score) in enumerate(rows):
        y = line * (k + 1)
        if score is None:
            cv2.putText(out, label, (10, y - 2), font, 0.6 * scale, (200, 200, 200), thick, cv2.LINE_AA)
            continue
        bar = int((box_w - 12) * float(score))
        top = not idle and label == entry["label"]  # the decision: the top class, or kept by hysteresis
        cv2.rectangle(out, (6, y - line + 8), (6 + bar, y + 2), (60, 140, 60) if top else (90, 90, 90), -1)
        text = f"{label}  {float(score):.2f}"
        cv2.putText(out, text, (10, y - 2), font, 0.6 * scale, (255, 255, 255), thick, cv2.LINE_AA)
    status = f"{fps:5.1f} FPS   {latency_ms:5.1f} ms/clip"
    cv2.putText(out, status, (6, box_h - 6), font, 0.5 * scale, (0, 255, 255), thick, cv2.LINE_AA)
    footer = [name] if name else []
    if stages_ms is not None:
        footer.append("decode {:.1f} / preprocess {:.1f} / infer {:.1f} ms".format(*stages_ms))
    if footer:
        text = "   ".join(footer)
        cv2.putText(out, text, (6, h - 8), font, 0.5 * scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, text, (6, h - 8), font, 0.5 * scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def mosaic(tiles: list[np.ndarray | None], width: int = 1280) -> np.ndarray:
    """The streams' latest frames in a grid about `width` pixels wide (a black tile for a stream that
    has drawn nothing yet), each tile scaled to the first tile's aspect ratio."""
    columns = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / columns))
    shaped = next((t for t in tiles if t is not None), None)
    aspect = shaped.shape[0] / shaped.shape[1] if shaped is not None else 0.75
    tile_w = max(1, width // columns)
    tile_h = max(1, int(round(tile_w * aspect)))
    canvas = np.zeros((rows * tile_h, columns * tile_w, 3), np.uint8)
    for k, tile in enumerate(tiles):
        if tile is None:
            continue
        r, c = divmod(k, columns)
        canvas[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w] = cv2.resize(
            tile, (tile_w, tile_h), interpolation=cv2.INTER_AREA
        )
    return canvas


def open_writer(path: Path, fps: float, width: int, height: int) -> cv2.VideoWriter:
    """An OpenCV writer for `path`, its codec chosen by the suffix."""
    fourcc = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}[path.suffix.lower()]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise DemoError(f"{path}: cannot write a video here")
    return writer
