"""Video sources: a camera index, a video file or a network stream, opened with a clear error.

Live sources (cameras, rtsp/http streams) produce frames whether or not we keep up, so the reader
must never fall behind: when a consumer is slow, stale frames are dropped. A file is read at the
speed of its consumers and never loses a frame, so results on a file are reproducible.
"""

from __future__ import annotations

import queue
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from action_rec.errors import UserError

__all__ = ["SourceError", "VideoSource", "open_source", "put_latest"]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class SourceError(UserError):
    """An input that cannot be opened or decoded; the message names it."""


@dataclass
class VideoSource:
    """An opened `cv2.VideoCapture` and what we know about it."""

    capture: cv2.VideoCapture
    name: str
    live: bool
    fps: float | None  # None when the source does not say (some cameras and streams)
    frame_count: int | None  # None for live sources

    def read(self) -> Any:
        """The next BGR frame, or None at the end of the stream."""
        ok, frame = self.capture.read()
        return frame if ok else None

    def release(self) -> None:
        self.capture.release()


def open_source(spec: str | int) -> VideoSource:
    """Open `spec`: an integer (or digits) is a camera index, `scheme://...` a stream, else a file."""
    text = str(spec)
    if text.isdigit():
        capture, live = cv2.VideoCapture(int(text)), True
        what = f"camera {text}"
    elif _URL.match(text):
        capture, live = cv2.VideoCapture(text), True
        what = f"stream {text}"
    else:
        path = Path(text)
        if not path.is_file():
            raise SourceError(f"{text}: no such video file")
        capture, live = cv2.VideoCapture(str(path)), False
        what = text
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"{what}: cannot open the input (not a video, or no such device)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = float(fps) if fps and 0 < fps < 1000 else None
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not live else 0
    return VideoSource(capture, what, live, fps, count if count > 0 else None)


def put_latest(q: queue.Queue, item: Any) -> int:
    """Put `item` without blocking, dropping the oldest queued items to make room; returns how many
    were dropped (live sources: stale work is worth nothing)."""
    dropped = 0
    while True:
        try:
            q.put_nowait(item)
            return dropped
        except queue.Full:
            try:
                q.get_nowait()
                dropped += 1
            except queue.Empty:
                pass
