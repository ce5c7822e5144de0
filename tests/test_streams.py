"""Many streams in one process (runtime/runner.py and stream.py, the command line of demo.py and recognize.py) and
their events (runtime/events.py): independent timelines, a failing stream that is reopened while the
others go on, frames that are only grabbed, and events that reach an HTTP endpoint in order, also
when it is slow or down for a while."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from action_rec.inference import recognize_video
from action_rec.runtime.cli import main as demo_main
from action_rec.runtime.cli import parse_sources
from action_rec.runtime.events import EventBus, EventDelivery, HttpSink
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.overlay import DemoError, mosaic
from action_rec.runtime.runner import StreamRunner
from action_rec.runtime.sources import ReconnectingSource, SourceError, TimedFrame, open_source
from action_rec.runtime.stream import Stream, StreamOutputs, StreamSettings


def _still_video(path: Path, frames: int = 120) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (48, 48))
    for _ in range(frames):
        writer.write(np.full((48, 48, 3), 90, np.uint8))
    writer.release()
    return path


class Receiver:
    """A local HTTP endpoint that records the JSON bodies POSTed to it; `refuse` answers 503 to that
    many requests first, `delay_s` makes every answer slow."""

    def __init__(self, port: int = 0, refuse: int = 0, delay_s: float = 0.0) -> None:
        self.events: list[dict] = []
        self.refuse, self.delay_s, self.requests = refuse, delay_s, 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay_s)
                receiver.requests += 1
                if receiver.refuse > 0:
                    receiver.refuse -= 1
                    self.send_response(503)
                else:
                    receiver.events.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def quiet_threshold(trained, tmp_path_factory) -> tuple[float, Path]:
    """A still video, and a threshold just above the tiny model's best score on it: the still stream
    has no action, the synthetic one keeps its actions."""
    still = _still_video(tmp_path_factory.mktemp("still") / "still.avi")
    model = ExportedModel(trained["xml"], precision="f32")
    entries = recognize_video(model, still, threshold=0, progress=False)
    return max(e["score"] for e in entries) + 0.01, still


# ------------------------------------------------------------------------------- independent streams
def test_two_streams_get_independent_timelines_and_events(trained, quiet_threshold, tmp_path, capsys):
    """One process, one model, two inputs: the synthetic video gets the timeline it gets alone and the
    still one none; their events reach a local endpoint in order, start before end, one pair per
    segment, each naming its stream."""
    threshold, still = quiet_threshold
    model = ExportedModel(trained["xml"], precision="f32")
    alone_entries, alone = recognize_video(
        model, trained["video"], threshold=threshold, progress=False, timeline={}
    )
    assert alone  # the synthetic video keeps its actions above the threshold
    receiver = Receiver()
    try:
        args = ["--model", str(trained["xml"]), "--input", f"moving={trained['video']}", "--input",
                f"still={still}", "--no-show", "--precision-hint", "f32", "--threshold", str(threshold),
                "--timeline", str(tmp_path / "{name}.json"), "--json", str(tmp_path / "{name}.jsonl"),
                "--events-url", receiver.url]  # fmt: skip
        assert demo_main(args) == 0
    finally:
        receiver.close()
    printed = capsys.readouterr().out
    assert "2 input(s)" in printed and "0 dropped" in printed
    assert json.loads((tmp_path / "moving.json").read_text()) == alone
    assert json.loads((tmp_path / "still.json").read_text()) == []
    windows = [json.loads(line) for line in (tmp_path / "moving.jsonl").read_text().splitlines()]
    assert [(e["frame"], e["label"]) for e in windows] == [(e["frame"], e["label"]) for e in alone_entries]

    events = receiver.events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # all of them, in order
    assert {e["stream"] for e in events} == {"moving"}
    pairs = [(events[k], events[k + 1]) for k in range(0, len(events), 2)]
    assert [(a["event"], b["event"]) for a, b in pairs] == [("start", "end")] * len(alone)
    assert [(b["label"], b["start_s"], b["end_s"]) for _, b in pairs] == [
        (s["label"], s["start_s"], s["end_s"]) for s in alone
    ]
    assert all(a["label"] == b["label"] and a["start_s"] == b["start_s"] for a, b in pairs)


def test_frames_neither_sampled_nor_drawn_are_only_grabbed(trained):
    """Without drawing, only the sampled frames are converted; the windows are those of a run that
    decodes every frame."""
    model = ExportedModel(trained["xml"], precision="f32")
    expected = recognize_video(model, trained["video"], progress=False)
    stream = Stream("file", open_source(str(trained["video"])), model)
    summary = StreamRunner(model, [stream]).run()["streams"][0]
    step = model.input["frame_interval"]
    assert step > 1 and summary["frames_read"] == 160
    assert summary["frames_decoded"] == len(range(0, 160, step))
    assert summary["windows"] == len(expected) and summary["windows_stale"] == 0


# ------------------------------------------------------------------ a failing stream, the others go on
class DroppingCamera:
    """A live camera of `frames` frames at 100 fps that then drops."""

    live, fps = True, 100.0

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.name, self.frames, self.k = "rtsp://door", frames, 0

    def read_timed(self, decode: bool = True) -> TimedFrame | None:
        if self.k >= len(self.frames):
            return None
        time.sleep(0.01)
        self.k += 1
        return TimedFrame(self.frames[self.k - 1] if decode else None, (self.k - 1) / self.fps)

    def retrieve(self) -> np.ndarray:
        return self.frames[self.k - 1]

    def release(self) -> None:
        pass


def test_a_stream_that_fails_mid_run_is_reopened_while_the_others_go_on(trained, tmp_path):
    """The camera drops after 60 frames and cannot be reopened until the file stream has finished:
    the file runs to its end meanwhile (were it held up by the camera, it would never finish and the
    camera never come back), then the camera is reopened and recognized again."""
    cap = cv2.VideoCapture(str(trained["video"]))
    frames = [cap.read()[1] for _ in range(120)]
    cap.release()
    file_done, opened, messages = threading.Event(), [], []

    def reopen() -> DroppingCamera:
        if opened:  # the camera comes back only after the file stream has ended
            if not file_done.wait(60):
                raise SourceError("rtsp://door: cannot open the input")
            if len(opened) > 1:
                raise SourceError("rtsp://door: cannot open the input")
        opened.append(1)
        return DroppingCamera(frames[:60] if len(opened) == 1 else frames[60:])

    model = ExportedModel(trained["xml"], precision="f32")
    camera = ReconnectingSource(reopen, tries=2, backoff_s=0.1, log=messages.append)
    streams = [
        Stream("door", camera, model, outputs=StreamOutputs(log=tmp_path / "door.jsonl")),
        Stream(
            "file", open_source(str(trained["video"])), model, outputs=StreamOutputs(log=tmp_path / "f.jsonl")
        ),
    ]
    runner = StreamRunner(model, streams)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(runner.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (streams[1].capture_done and not streams[1].in_flight and streams[1].pending is None):
        assert time.monotonic() < deadline, "the file stream was held up by the dropped camera"
        time.sleep(0.05)
    assert len(opened) == 1  # the camera is still down while the file has finished
    file_done.set()
    thread.join(60)
    door, file = result["streams"]
    expected = recognize_video(model, trained["video"], progress=False)
    got = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [(e["frame"], e["label"]) for e in got] == [(e["frame"], e["label"]) for e in expected]
    assert door["source_drops"] == 2 and door["frames_read"] == 120 and not door["error"]
    windows = [json.loads(line) for line in (tmp_path / "door.jsonl").read_text().splitlines()]
    assert any(e["start_frame"] >= 60 for e in windows)  # recognized again after the reconnection
    assert not any(e["start_frame"] < 60 <= e["frame"] for e in windows)  # no window spans the gap
    assert any("reopened after" in m for m in messages)


# ------------------------------------------------------------------------------------------- events
def _events(n: int) -> list[dict]:
    return [
        {"stream": "s", "event": "start" if k % 2 == 0 else "end", "label": "wave", "k": k} for k in range(n)
    ]


def test_events_reach_a_slow_endpoint_in_order_without_holding_up_the_sender():
    receiver = Receiver(refuse=3, delay_s=0.05)
    try:
        bus = EventBus([EventDelivery(HttpSink(receiver.url), backoff_s=0.05, log=lambda m: None)])
        started = time.perf_counter()
        for event in _events(20):
            bus.emit(event)
        assert time.perf_counter() - started < 0.5  # 20 emits; delivery alone takes >= 23 x 0.05 s
        (summary,) = bus.close(grace_s=30)
    finally:
        receiver.close()
    assert [e["k"] for e in receiver.events] == list(range(20))
    assert [e["seq"] for e in receiver.events] == list(range(1, 21))
    assert summary["delivered"] == 20 and summary["dropped"] == 0 and summary["failed_attempts"] == 3


def test_events_wait_while_the_endpoint_is_down_and_a_full_queue_counts_its_drops():
    port = _free_port()  # nothing listens there yet: connection refused
    delivery = EventDelivery(HttpSink(f"http://127.0.0.1:{port}/events", timeout_s=1), max_queue=8,
                             backoff_s=0.05, max_backoff_s=0.2, log=lambda m: None)  # fmt: skip
    bus = EventBus([delivery])
    for event in _events(5):
        bus.emit(event)
    time.sleep(0.5)
    assert delivery.failures >= 2 and delivery.delivered == 0
    for event in _events(12)[5:]:
        bus.emit(event)
    receiver = Receiver(port=port)  # the endpoint comes back
    try:
        (summary,) = bus.close(grace_s=30)
    finally:
        receiver.close()
    # One event was in flight when the queue filled; of the 11 waiting, the oldest 3 were dropped.
    got = [e["k"] for e in receiver.events]
    assert got == sorted(got) and got[0] == 0 and got[1:] == list(range(4, 12))
    assert summary["delivered"] == 9 and summary["dropped"] == 3


def test_undelivered_events_are_counted_at_the_end():
    port = _free_port()
    bus = EventBus([EventDelivery(HttpSink(f"http://127.0.0.1:{port}/x", timeout_s=1), backoff_s=0.05,
                                  log=lambda m: None)])  # fmt: skip
    for event in _events(4):
        bus.emit(event)
    (summary,) = bus.close(grace_s=0.3)
    assert summary["delivered"] == 0 and summary["dropped"] == 4 and summary["failed_attempts"] >= 1


# ------------------------------------------------------------------------------------ the command line
def test_sources_are_named_and_per_stream_outputs_need_a_name(trained, tmp_path, capsys):
    assert parse_sources(["0", "door=rtsp://cam/s?a=b", "rtsp://cam2/x=1", "clips/a.mp4", "b/a.mp4"]) == [
        ("cam0", "0"), ("door", "rtsp://cam/s?a=b"), ("stream3", "rtsp://cam2/x=1"), ("a", "clips/a.mp4"),
        ("a-5", "b/a.mp4"),
    ]  # fmt: skip
    listing = tmp_path / "cameras.txt"
    listing.write_text("# the shop\nhall=1\n\ndoor=1\n")
    assert parse_sources([], str(listing)) == [("hall", "1"), ("door", "1")]
    listing.write_text("door=1\ndoor=2\n")
    with pytest.raises(DemoError, match=r"--input: the name 'door' is used twice|cameras.txt:2: the name"):
        parse_sources([], str(listing))
    video = str(trained["video"])
    args = ["--model", str(trained["xml"]), "--input", video, "--input", video, "--no-show"]
    assert demo_main([*args, "--timeline", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must contain {name}" in err


def test_mosaic_places_each_stream_in_its_tile():
    tiles = [np.full((60, 80, 3), v, np.uint8) for v in (50, 100, 150)] + [None]
    grid = mosaic(tiles, width=400)
    assert grid.shape == (300, 400, 3)  # 2 x 2 tiles of 200 x 150
    assert grid[75, 100, 0] == 50 and grid[75, 300, 0] == 100 and grid[225, 100, 0] == 150
    assert grid[225, 300].max() == 0  # a stream that drew nothing yet


def test_stream_settings_reach_the_recognizer(trained):
    model = ExportedModel(trained["xml"])
    settings = StreamSettings(stride=4, average=2, hysteresis=0.2, min_segment_s=0.3)
    stream = Stream("s", open_source(str(trained["video"])), model, settings)
    assert (stream.recognizer.stride, stream.recognizer.average) == (4, 2)
    assert stream.recognizer.rule.hysteresis == 0.2 and stream.timeline.min_segment_s == 0.3
    stream.source.release()
