"""Video sources: a camera index, a video file or a network stream, opened with a clear error.

Decoding is the largest cost per stream after inference, so a frame that is neither sampled nor drawn
is only grabbed (`read_timed(decode=False)`: demuxed and decoded by the backend, never converted to a
BGR array); `retrieve()` converts the last grabbed frame after all when it turns out to be needed.

Live sources (cameras, rtsp/http streams) produce frames whether or not we keep up, so the reader
must never fall behind: when a consumer is slow, stale frames are dropped. A file is read at the
speed of its consumers and never loses a frame, so results on a file are reproducible.

A live source that drops (a camera unplugged, an RTSP server restarting, a network hiccup) is reopened
with growing waits (`ReconnectingSource`); each drop prints a message, and the frame times go on with
the time the gap lasted, so a timeline stays true to the clock. Live frame times come from the stream's
own timestamps when it has them, else from the clock when each frame arrives.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from action_rec.runtime.errors import UserError

__all__ = [
    "SourceError",
    "TimedFrame",
    "FrameSource",
    "VideoSource",
    "ReconnectingSource",
    "LoopingFile",
    "open_source",
    "put_latest",
]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class SourceError(UserError):
    """An input that cannot be opened or decoded; the message names it."""


@dataclass
class TimedFrame:
    """A decoded BGR frame and when it was taken (seconds; None: a file, whose times are index / fps)."""

    image: np.ndarray | None  # None: grabbed only (`read_timed(decode=False)`); `retrieve()` converts it
    time_s: float | None = None
    after_gap: bool = False  # the first frame after the source dropped and was reopened


class FrameSource(Protocol):
    """What the demo reads from: a `VideoSource`, or anything that behaves like one (tests, benches)."""

    name: str
    live: bool
    fps: float | None

    def read_timed(self, decode: bool = True) -> TimedFrame | None: ...

    def retrieve(self) -> np.ndarray | None: ...

    def release(self) -> None: ...


@dataclass
class VideoSource:
    """An opened `cv2.VideoCapture` and what we know about it."""

    capture: cv2.VideoCapture
    name: str
    live: bool
    fps: float | None  # None when the source does not say (some cameras and streams)
    frame_count: int | None  # None for live sources
    _first: tuple[float, float] | None = field(default=None, repr=False)  # (stream ms, clock) of frame 0
    _last_ms: float = field(default=-1.0, repr=False)

    def read(self) -> Any:
        """The next BGR frame, or None at the end of the stream."""
        ok, frame = self.capture.read()
        return frame if ok else None

    def read_timed(self, decode: bool = True) -> TimedFrame | None:
        """The next frame with its time since this source's first frame (live sources: the stream's
        timestamp when it gives increasing ones, else the clock); None at the end of the stream.
        `decode=False` grabs the frame without converting it (`image` None)."""
        if decode:
            ok, frame = self.capture.read()
        else:
            ok, frame = self.capture.grab(), None
        if not ok:
            return None
        if not self.live:
            return TimedFrame(frame)
        now, stream_ms = time.monotonic(), float(self.capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
        if self._first is None:
            self._first, self._last_ms = (stream_ms, now), stream_ms
            return TimedFrame(frame, 0.0)
        if stream_ms > self._last_ms:  # the stream's timestamps, while they keep increasing
            self._last_ms = stream_ms
            return TimedFrame(frame, (stream_ms - self._first[0]) / 1000.0)
        self._last_ms = float("inf")  # one bad timestamp: the clock from now on, never a mix
        return TimedFrame(frame, now - self._first[1])

    def retrieve(self) -> np.ndarray | None:
        """The last grabbed frame, converted after all (None when the backend cannot)."""
        ok, frame = self.capture.retrieve()
        return frame if ok else None

    def release(self) -> None:
        self.capture.release()


def _capture(target: str | int, decode_threads: int | None) -> cv2.VideoCapture:
    """A VideoCapture, with `decode_threads` decoder threads where the backend takes the setting."""
    if decode_threads:
        capture = cv2.VideoCapture(target, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, int(decode_threads)])
        if capture.isOpened():
            return capture
        capture.release()
    return cv2.VideoCapture(target)


def open_source(spec: str | int, decode_threads: int | None = None) -> VideoSource:
    """Open `spec`: an integer (or digits) is a camera index, `scheme://...` a stream, else a file.
    `decode_threads` caps the decoder's threads (None: the backend's choice, all cores); with many
    streams one each is cheapest, and its CPU time is then the capture thread's own."""
    text = str(spec)
    if text.isdigit():
        capture, live = _capture(int(text), decode_threads), True
        what = f"camera {text}"
    elif _URL.match(text):
        capture, live = _capture(text, decode_threads), True
        what = f"stream {text}"
    else:
        path = Path(text)
        if not path.is_file():
            raise SourceError(f"{text}: no such video file")
        capture, live = _capture(str(path), decode_threads), False
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


class ReconnectingSource:
    """A live source that is reopened when it stops delivering frames, until `stop` is set.

    Waits `backoff_s`, doubling up to `max_wait_s`, between tries; `tries` caps the tries per drop
    (None: forever, what an unattended camera wants). Frame times continue across a drop with the time
    the gap lasted on the clock; the first frame after it has `after_gap` set, so the recognizer starts
    a fresh window and the timeline closes the open segment.
    """

    def __init__(
        self,
        open_fn: Callable[[], FrameSource],
        *,
        tries: int | None = None,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
        stop: threading.Event | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._open = open_fn
        self.source = open_fn()  # the first open's error is the user's to see
        self.name, self.live, self.fps = self.source.name, True, self.source.fps
        self.frame_count = None
        self.tries, self.backoff_s, self.max_wait_s = tries, backoff_s, max_wait_s
        self.stop = stop or threading.Event()
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.drops = 0
        self._offset = 0.0  # timeline time of this connection's first frame
        self._last: tuple[float, float] | None = None  # (timeline time, clock) of the last frame
        self._reopened = False

    def read_timed(self, decode: bool = True) -> TimedFrame | None:
        while not self.stop.is_set():
            frame = self.source.read_timed(decode)
            if frame is not None:
                return self._stamp(frame)
            if not self._reopen():
                return None
        return None

    def read(self) -> Any:
        frame = self.read_timed()
        return None if frame is None else frame.image

    def retrieve(self) -> np.ndarray | None:
        return self.source.retrieve()

    def _stamp(self, frame: TimedFrame) -> TimedFrame:
        now = time.monotonic()
        t = frame.time_s if frame.time_s is not None else 0.0
        gap = self._reopened
        if gap and self._last is not None:  # the gap lasted as long as the clock says
            self._offset = self._last[0] + (now - self._last[1]) - t
        self._reopened = False
        frame = TimedFrame(frame.image, self._offset + t, gap)
        self._last = (frame.time_s, now)
        return frame

    def _reopen(self) -> bool:
        self.drops += 1
        at = f" at {self._last[0]:.1f} s" if self._last else ""
        self.source.release()
        wait, attempt = self.backoff_s, 0
        while self.tries is None or attempt < self.tries:
            attempt += 1
            self.log(
                f"{self.name}: no frame{at} (drop {self.drops}); reopening in {wait:g} s (try {attempt})"
            )
            if self.stop.wait(wait):
                return False
            try:
                self.source = self._open()
            except SourceError as exc:
                self.log(f"{self.name}: reopening failed: {exc}")
                wait = min(wait * 2, self.max_wait_s)
                continue
            self._reopened = True
            self.log(f"{self.name}: reopened after {attempt} tr{'y' if attempt == 1 else 'ies'}")
            return True
        self.log(f"{self.name}: gave up after {attempt} tries; the run ends here")
        self.source = _Closed(self.name)
        return False

    def release(self) -> None:
        self.source.release()


class _Closed:
    """The source after giving up: nothing more to read or release."""

    def __init__(self, name: str) -> None:
        self.name, self.live, self.fps = name, True, None

    def read_timed(self, decode: bool = True) -> None:
        return None

    def retrieve(self) -> None:
        return None

    def release(self) -> None:
        pass


class LoopingFile:
    """A video file played as a camera: at its own frame rate (`fps` overrides it), from the start
    again at its end, with clock timestamps. The recognizer sees an endless live stream, so stale work
    is dropped as for a camera: what the stream benchmark and the soak run read, and `--loop`."""

    live = True

    def __init__(
        self,
        path: str | Path,
        fps: float | None = None,
        loops: int | None = None,
        decode_threads: int | None = None,
    ) -> None:
        self.decode_threads = decode_threads
        self.source = open_source(str(path), decode_threads)
        if self.source.live:
            self.source.release()
            raise SourceError(f"{path}: only a video file can be looped")
        self.path, self.name = str(path), self.source.name
        self.fps = float(fps or self.source.fps or 25.0)
        self.frame_count = None
        self.loops_left = loops  # None: forever
        self._start: float | None = None
        self._index = 0

    def read_timed(self, decode: bool = True) -> TimedFrame | None:
        frame = self.source.read_timed(decode)
        if frame is None:
            if self.loops_left is not None:
                self.loops_left -= 1
                if self.loops_left <= 0:
                    return None
            self.source.release()
            self.source = open_source(self.path, self.decode_threads)
            frame = self.source.read_timed(decode)
            if frame is None:
                raise SourceError(f"{self.path}: no frame could be decoded")
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._index / self.fps  # a camera delivers its frames on time, never early
        if due > now:
            time.sleep(due - now)
        self._index += 1
        return TimedFrame(frame.image, (self._index - 1) / self.fps)

    def retrieve(self) -> np.ndarray | None:
        return self.source.retrieve()

    def release(self) -> None:
        self.source.release()
