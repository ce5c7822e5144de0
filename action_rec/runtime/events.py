"""Events while it runs: a JSON line or an HTTP POST as each action segment starts and ends.

Recognition never waits for delivery. Each sink (a file or stdout, a URL) has its own bounded queue
and delivery thread: `EventBus.emit` only puts the event on the queues. A full queue drops its oldest
event and counts it. A failed delivery (the endpoint is down, slow past its timeout, or answers
non-2xx) is retried with growing waits, and the events behind it wait, so a receiver gets them in
order. At the end (`close`) the queues get `grace_s` to drain; what is left is counted as dropped.
Every event carries `seq`, its number in the run, so a receiver can see a gap.

An event:

    {"seq": 7, "stream": "door", "event": "start", "label": "wave", "score": 0.91,
     "start_s": 12.4, "stream_time_s": 12.4, "wall_time": "2026-12-03T12:00:01.234Z"}

`end` events also have `end_s` (`stream_time_s` is then the end). Stream times are seconds since
the stream's first frame, as in its timeline JSON; `wall_time` is when the event was emitted (UTC).
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

__all__ = ["EventSink", "JsonLinesSink", "HttpSink", "EventDelivery", "EventBus", "wall_time"]


def wall_time() -> str:
    """Now, UTC, ISO 8601 to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventSink(Protocol):
    """Where events go; `send` raises on a failed delivery (it is then retried)."""

    name: str

    def send(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """One JSON object per line, flushed at once, to a file (appended) or stdout (`-`)."""

    def __init__(self, target: str | Path) -> None:
        self.name = "stdout" if str(target) == "-" else str(target)
        self._file: TextIO = sys.stdout if str(target) == "-" else open(target, "a", encoding="utf-8")

    def send(self, event: dict[str, Any]) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()


class HttpSink:
    """POST each event as JSON to `url`; anything but a 2xx answer within `timeout_s` is a failure."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.name, self.url, self.timeout_s = url, url, timeout_s

    def send(self, event: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(event).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310 (user's URL)
            if not 200 <= answer.status < 300:
                raise urllib.error.HTTPError(self.url, answer.status, answer.reason, answer.headers, None)

    def close(self) -> None:
        pass


class EventDelivery:
    """One sink behind a bounded queue and its own thread: `put` never blocks; failures are retried
    after `backoff_s`, doubling up to `max_backoff_s`; the first failure of a run of them is logged."""

    def __init__(
        self,
        sink: EventSink,
        max_queue: int = 1000,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.sink, self.max_queue = sink, max_queue
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self._queue: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._deadline = threading.Event()  # set when the grace period is over: stop retrying
        self.delivered = self.dropped = self.failures = 0
        self._in_flight = False
        self._thread = threading.Thread(target=self._deliver, name=f"events {sink.name}", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        with self._cond:
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(event)
            self._cond.notify()

    def _deliver(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing.is_set():
                    self._cond.wait(0.5)
                if not self._queue:
                    return
                event = self._queue.popleft()  # in flight: the queue holds only the waiting ones
                self._in_flight = True
            wait = self.backoff_s
            while True:
                try:
                    self.sink.send(event)
                    break
                except Exception as exc:  # noqa: BLE001 (any failure of the receiver is retried)
                    self.failures += 1
                    if wait == self.backoff_s:
                        self.log(f"events to {self.sink.name}: delivery failed ({exc}); retrying")
                    if self._deadline.wait(wait):
                        return  # the grace period is over; close() counts it as dropped
                    wait = min(wait * 2, self.max_backoff_s)
            with self._cond:
                self.delivered += 1
                self._in_flight = False

    def close(self, grace_s: float = 10.0) -> dict[str, Any]:
        """Let the queue drain for up to `grace_s`; returns the counts (undelivered events are dropped)."""
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(grace_s)
        self._deadline.set()
        self._thread.join(5.0)
        with self._cond:
            left = len(self._queue) + int(self._in_flight)
            self._queue.clear()
        self.dropped += left
        self.sink.close()
        return {
            "sink": self.sink.name,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "failed_attempts": self.failures,
        }


class EventBus:
    """Numbers each event and hands it to every delivery; `emit` returns at once."""

    def __init__(self, deliveries: list[EventDelivery]) -> None:
        self.deliveries = deliveries
        self._seq = 0
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            event = {"seq": self._seq, **event, "wall_time": wall_time()}
            for delivery in self.deliveries:
                delivery.put(event)

    def close(self, grace_s: float = 10.0) -> list[dict[str, Any]]:
        return [delivery.close(grace_s) for delivery in self.deliveries]
