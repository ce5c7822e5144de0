"""Many sources, one model: the runner of the live recognizer of `demo.py` and the deployed
`recognize.py` (stream.py holds each stream's state).

One compiled model serves every stream through OpenVINO's asynchronous requests. Per stream:

    capture thread   read (frames neither sampled nor drawn are only grabbed) -> sampled frames
                     preprocessed into the stream's window -> every `stride` frames a window job
    draw thread      (only with an annotated video or --show) frame + the stream's latest result ->
                     overlay -> video writer / the mosaic's tile

and for all streams together:

    dispatcher       due windows, round robin over the streams -> a free infer request
    collector        each finished window -> probabilities averaged, decided (labels.ActionRule) ->
                     per-window log, segment timeline, start/end events (events.py)

Each stream has at most one window waiting and one in flight, so its results come in order and one
stream cannot take every request. A live stream (camera, URL, a file read with `pace`) never waits:
a newer window replaces one still waiting (counted as stale), and a frame the draw thread has not
taken yet is replaced by the newest. A file waits for its own windows instead, so a run on a file is
reproducible and gives the labels `recognize_video` gives. A slow, dropped or failed stream only
holds up itself: sources reconnect on their own threads (sources.ReconnectingSource), and an error in
one stream ends that stream, not the run.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openvino as ov

from action_rec.runtime.errors import UserError
from action_rec.runtime.events import EventBus
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.overlay import draw_overlay, mosaic, open_writer
from action_rec.runtime.recognizer import WindowJob
from action_rec.runtime.sources import ReconnectingSource, put_latest
from action_rec.runtime.stream import Stream

__all__ = ["StreamRunner"]

_POLL_S = 0.05


def _temporary(path: Path | None) -> Path | None:
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def _publish(tmp: Path | None, final: Path | None, keep: bool) -> None:
    """Rename a finished output into place, or remove it (the runtime ships without action_rec.fileio,
    so its outputs are renamed here)."""
    if tmp is None or final is None or not tmp.exists():
        return
    if keep:
        os.replace(tmp, final)
    else:
        tmp.unlink()


class StreamRunner:
    """Runs `streams` over one compiled `model` until every stream ends or `stop` is set; `run()`
    returns the per-stream summaries. `requests` infer requests are used (default: OpenVINO's optimal
    number for the compiled model, at most one per stream); `events` gets every stream's start/end
    events; `show` displays a mosaic of all streams (q or Esc quits)."""

    def __init__(
        self,
        model: ExportedModel,
        streams: list[Stream],
        *,
        requests: int | None = None,
        events: EventBus | None = None,
        show: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not streams:
            raise ValueError("no streams to run")
        self.model, self.streams, self.events, self.show = model, streams, events, show
        if requests is None:
            optimal = int(model.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            requests = max(1, min(optimal, len(streams)))
        self.requests = requests
        self.infer_queue = ov.AsyncInferQueue(model.compiled, requests)
        self.infer_queue.set_callback(self._finished)
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.results_q: queue.Queue = queue.Queue()
        self.log = log or print
        for stream in streams:
            stream.events = events
            if isinstance(stream.source, ReconnectingSource):
                stream.source.stop = self.stop  # quitting also ends a wait to reopen a source

    # --- capture threads ------------------------------------------------------------------------------
    def _capture(self, s: Stream) -> None:
        start, index = time.perf_counter(), 0
        window = s.recognizer.window
        try:
            while not self.stop.is_set() and (s.settings.max_frames is None or index < s.settings.max_frames):
                wall, cpu = time.perf_counter(), time.thread_time()
                timed = s.source.read_timed(s.draws or window.wants(index))
                if timed is None:
                    break
                if timed.after_gap:
                    s.recognizer.restart(index)
                    window = s.recognizer.window
                image = timed.image
                if image is None and window.wants(index):  # the new window after a gap starts here
                    image = s.source.retrieve()
                read_wall, read_cpu = time.perf_counter(), time.thread_time()
                if s.pace:
                    time.sleep(max(0.0, start + index / s.source.fps - time.perf_counter()))
                prep_wall, prep_cpu = time.perf_counter(), time.thread_time()
                job = s.recognizer.add_frame(index, image, timed.time_s)
                s.stage_s["decode"] += read_wall - wall
                s.stage_cpu_s["decode"] += read_cpu - cpu
                s.stage_s["preprocess"] += time.perf_counter() - prep_wall
                s.stage_cpu_s["preprocess"] += time.thread_time() - prep_cpu
                s.stats["frames_read"] += 1
                s.stats["frames_decoded"] += image is not None
                if job is not None:
                    self._offer(s, job)
                if s.draws:
                    self._to_draw(s, (index, image, job is not None))
                index += 1
        except BaseException as exc:  # this stream ends; the others go on
            s.error = exc
            self.log(f"{s.name}: stopped by an error: {type(exc).__name__}: {exc}")
            if not isinstance(exc, UserError):  # a bug of ours: its traceback
                traceback.print_exc()
        finally:
            s.stats["capture_s"] = time.perf_counter() - start
            with self.cond:
                s.capture_done = True
                self.cond.notify_all()
            if s.draws:
                self._to_draw(s, None, end=True)

    def _offer(self, s: Stream, job: WindowJob) -> None:
        with self.cond:
            if s.live:
                if s.pending is not None:
                    s.stats["windows_stale"] += 1
            else:
                while s.pending is not None and not self.stop.is_set():
                    self.cond.wait(_POLL_S)
            s.pending = job
            self.cond.notify_all()

    def _to_draw(self, s: Stream, item: Any, end: bool = False) -> None:
        if s.live:
            dropped = put_latest(s.draw_q, item)
            s.stats["frames_dropped"] += 0 if end else dropped
            return
        while True:
            try:
                s.draw_q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if self.stop.is_set():
                    put_latest(s.draw_q, item)
                    return

    # --- dispatcher and collector ---------------------------------------------------------------------
    def _dispatch(self) -> None:
        turn = 0
        while True:
            with self.cond:
                while True:
                    order = self.streams[turn:] + self.streams[:turn]
                    ready = next((s for s in order if s.pending is not None and not s.in_flight), None)
                    if ready is not None:
                        break
                    if all(s.capture_done and s.pending is None for s in self.streams):
                        return
                    self.cond.wait(_POLL_S)
                turn = (self.streams.index(ready) + 1) % len(self.streams)
                job, ready.pending, ready.in_flight = ready.pending, None, True
                self.cond.notify_all()
            self.infer_queue.start_async({0: job.clip}, (ready, job, time.perf_counter()))

    def _finished(self, request: ov.InferRequest, userdata: tuple[Stream, WindowJob, float]) -> None:
        """OpenVINO's callback thread: hand the scores on, nothing more."""
        stream, job, started = userdata
        now = time.perf_counter()
        scores = request.get_output_tensor(0).data.copy()
        self.results_q.put((stream, job, scores, (now - started) * 1e3, (now - job.due) * 1e3))

    def _collect(self) -> None:
        while (item := self.results_q.get()) is not None:
            stream, job, scores, latency_ms, delay_ms = item
            try:
                stream.record(job, scores, latency_ms, delay_ms)
            except BaseException as exc:
                stream.error = stream.error or exc
                self.log(f"{stream.name}: stopped by an error: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            with self.cond:
                stream.in_flight = False
                self.cond.notify_all()

    # --- draw threads and the display -----------------------------------------------------------------
    def _draw(self, s: Stream, writer_path: Path | None) -> None:
        writer, shown, recent = None, None, deque(maxlen=30)
        try:
            while True:
                try:
                    item = s.draw_q.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is None:
                    break
                index, frame, due = item
                if frame is None:
                    continue
                if s.live:
                    shown = s.latest
                elif due:
                    shown = self._result_for(s, index) or shown
                recent.append(time.perf_counter())
                fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
                latency = s.latencies_ms[-1] if s.latencies_ms else 0.0
                stages = s.stage_ms() if len(self.streams) > 1 else None
                canvas = draw_overlay(
                    frame, shown, fps, latency, s.name if len(self.streams) > 1 else None, stages
                )
                if writer_path is not None:
                    if writer is None:
                        writer = open_writer(
                            writer_path, s.source.fps or 25.0, canvas.shape[1], canvas.shape[0]
                        )
                    writer.write(canvas)
                s.canvas = canvas
                s.stats["frames_drawn"] += 1
        except BaseException as exc:
            s.error = s.error or exc
            self.log(f"{s.name}: drawing stopped by an error: {type(exc).__name__}: {exc}")
        finally:
            if writer is not None:
                writer.release()

    def _result_for(self, s: Stream, index: int) -> dict[str, Any] | None:
        """A drawn file: wait for the window ending at `index`, the one this frame shows."""
        with self.cond:
            while index not in s.results and s.error is None and not self.stop.is_set():
                self.cond.wait(_POLL_S)
            return s.results.pop(index, None)

    def _display(self, threads: list[threading.Thread]) -> None:
        import cv2

        while any(t.is_alive() for t in threads):
            cv2.imshow("action_rec", mosaic([s.canvas for s in self.streams]))
            if cv2.waitKey(15) & 0xFF in (ord("q"), 27):
                self.stop.set()
                break
        cv2.destroyAllWindows()

    def _stop_on_ctrl_c(self) -> Callable[[], None]:
        """Ctrl-C (SIGINT) ends the run as q does, whatever handler the process had: the first one
        stops the streams and keeps what was recognized, a second one interrupts at once. Returns the
        function that puts the previous handler back (only the main thread can set one)."""
        self._ctrl_c = False
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if self._ctrl_c:
                raise KeyboardInterrupt
            self._ctrl_c = True
            self.stop.set()

        previous = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(
            signal.SIGINT, signal.default_int_handler if previous is None else previous
        )

    # --- the run --------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run every stream to its end (or until q, Esc, Ctrl-C or `stop`); returns the summaries."""
        started = time.perf_counter()
        temps = {id(s): [_temporary(p) for p in (s.outputs.video, s.outputs.log)] for s in self.streams}
        for s in self.streams:
            log_tmp = temps[id(s)][1]
            s.log_file = open(log_tmp, "w", encoding="utf-8") if log_tmp else None
        captures = [threading.Thread(target=self._capture, args=(s,), name=f"capture {s.name}", daemon=True)
                    for s in self.streams]  # fmt: skip
        draws = [
            threading.Thread(target=self._draw, args=(s, temps[id(s)][0]), name=f"draw {s.name}", daemon=True)
            for s in self.streams
            if s.draws
        ]
        dispatcher = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
        collector = threading.Thread(target=self._collect, name="collector", daemon=True)
        interrupted = False
        restore = self._stop_on_ctrl_c()
        try:
            for thread in (collector, dispatcher, *captures, *draws):
                thread.start()
            if self.show:
                self._display(captures + draws)
            for thread in captures:
                while thread.is_alive():
                    thread.join(0.2)
            dispatcher.join()
            self.infer_queue.wait_all()
        except KeyboardInterrupt:  # Ctrl-C ends the run as q does: what was recognized so far is kept
            interrupted = True
            self.stop.set()
            for thread in captures:
                thread.join(5)
            dispatcher.join(5)
            self.infer_queue.wait_all()
        finally:
            restore()
            self.results_q.put(None)
            collector.join(60)
            for thread in draws:
                thread.join(60)
            for s in self.streams:
                s.source.release()
        for s in self.streams:
            s.finish_timeline()
            if s.log_file is not None:
                s.log_file.close()
            ok = s.error is None
            _publish(temps[id(s)][0], s.outputs.video, ok)
            _publish(temps[id(s)][1], s.outputs.log, ok)
            if ok and s.outputs.timeline is not None:
                tmp = _temporary(s.outputs.timeline)
                tmp.write_text(json.dumps(s.timeline.segments, indent=1) + "\n", encoding="utf-8")
                _publish(tmp, s.outputs.timeline, True)
        elapsed = time.perf_counter() - started
        return {
            "elapsed_s": elapsed,
            "interrupted": interrupted or self._ctrl_c,
            "requests": self.requests,
            "streams": [s.summary() for s in self.streams],
        }
