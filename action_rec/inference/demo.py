"""The live demo: capture, inference and drawing on three threads, so the display keeps up.

    capture thread   read frame -> (sampled frames) preprocess into the ring buffer -> every `stride`
                     frames a window job -> infer queue; every frame -> draw queue
    inference thread window job -> IR -> probabilities averaged over the last windows -> result
    main thread      frame + latest result -> top-k labels, FPS, latency drawn -> window / video / JSON

The inference thread also feeds the segment timeline (runtime/segments.py) with each window's decision
(the label the overlay shows and the per-window log says), written with `--timeline` at the
end. A live source that drops is reopened with backoff (stream.py) and the run goes on.

Both queues are bounded. For a live source (camera, stream) a full queue drops its oldest item: a
stale window or frame is worth nothing and the display never falls behind the camera. For a file
nothing is dropped and every frame is drawn with the result of the last window ending at or before
it, so a run on a file is reproducible (and matches `recognize_video`).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from action_rec.errors import UserError
from action_rec.fileio import atomic_write
from action_rec.inference.overlay import DemoError, draw_overlay, open_writer
from action_rec.inference.stream import FrameSource, ReconnectingSource, open_source, put_latest
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.recognizer import Recognizer

__all__ = ["DemoError", "LiveDemo", "draw_overlay", "main"]

_POLL_S = 0.05


class LiveDemo:
    """One run of the demo over one source. `run()` returns the summary."""

    def __init__(
        self,
        model: ExportedModel,
        source: FrameSource,
        *,
        stride: int = 8,
        average: int = 3,
        top_k: int = 3,
        show: bool = True,
        output: str | Path | None = None,
        json_path: str | Path | None = None,
        max_frames: int | None = None,
        pace: bool = False,
        threshold: float | None = None,
        timeline_path: str | Path | None = None,
        min_segment_s: float = 0.5,
        hysteresis: float = 0.1,
    ) -> None:
        self.model, self.source = model, source
        self.live = source.live or pace
        self.pace = pace and not source.live and bool(source.fps)
        self.recognizer = Recognizer(
            model, source.fps, stride=stride, average=average, threshold=threshold, hysteresis=hysteresis
        )
        self.timeline = self.recognizer.timeline(min_segment_s=min_segment_s)
        self.timeline_path = Path(timeline_path) if timeline_path else None
        self.top_k, self.show, self.max_frames = top_k, show, max_frames
        self.output = Path(output) if output else None
        self.json_path = Path(json_path) if json_path else None
        self.infer_q: queue.Queue = queue.Queue(maxsize=1)
        self.draw_q: queue.Queue = queue.Queue(maxsize=4)
        self.stop = threading.Event()
        if isinstance(source, ReconnectingSource):
            source.stop = self.stop  # quitting also ends a wait to reopen the source
        self.results: dict[int, dict[str, Any]] = {}
        self.latest: dict[str, Any] | None = None
        self.cond = threading.Condition()
        self.errors: list[BaseException] = []
        self.stats = {
            "frames_read": 0,
            "frames_drawn": 0,
            "windows": 0,
            "windows_dropped": 0,
            "frames_dropped": 0,
            "windows_untimed": 0,
        }
        self.inference_done = False

    # --- capture thread -------------------------------------------------------------------------------
    def _put(self, q: queue.Queue, item: Any, counter: str | None) -> None:
        if self.live:
            dropped = put_latest(q, item)
            if counter:
                self.stats[counter] += dropped
            return
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _capture(self) -> None:
        start, index = time.perf_counter(), 0
        try:
            while not self.stop.is_set() and (self.max_frames is None or index < self.max_frames):
                timed = self.source.read_timed()
                if timed is None:
                    break
                if self.pace:
                    time.sleep(max(0.0, start + index / self.source.fps - time.perf_counter()))
                self.stats["frames_read"] += 1
                if timed.after_gap:
                    self.recognizer.restart(index)
                job = self.recognizer.add_frame(index, timed.image, timed.time_s)
                if job is not None:
                    self._put(self.infer_q, job, "windows_dropped")
                self._put(self.draw_q, (index, timed.image, job is not None), "frames_dropped")
                index += 1
        except BaseException as exc:  # reported by run() in the main thread
            self.errors.append(exc)
            self.stop.set()
        finally:
            self.stats["capture_s"] = time.perf_counter() - start
            self._put_end(self.infer_q)
            self._put_end(self.draw_q)

    def _put_end(self, q: queue.Queue) -> None:
        while True:
            try:
                q.put(None, timeout=_POLL_S)
                return
            except queue.Full:
                if self.stop.is_set() or self.live:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    # --- inference thread -----------------------------------------------------------------------------
    def _get(self, q: queue.Queue) -> Any:
        while True:
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                if self.stop.is_set() and not self.errors:
                    continue  # the capture thread still delivers its end marker
                if self.errors:
                    return None

    def _infer(self, json_file) -> None:
        try:
            while (job := self._get(self.infer_q)) is not None:
                prediction = self.recognizer.infer(job)
                entry = prediction.to_json(self.model.class_names, self.top_k)
                if prediction.add_to(self.timeline) is None:
                    self.stats["windows_untimed"] += 1
                if json_file is not None:
                    json_file.write(json.dumps(entry) + "\n")
                with self.cond:
                    if not self.live:  # a file's drawing waits for each window; a live one shows the latest
                        self.results[entry["frame"]] = entry
                    self.latest = entry
                    self.stats["windows"] += 1
                    self.cond.notify_all()
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()
        finally:
            with self.cond:
                self.inference_done = True
                self.cond.notify_all()

    def _result_for(self, index: int) -> dict[str, Any] | None:
        """File sources: wait for the window ending at `index`; it is the one this frame shows."""
        with self.cond:
            while index not in self.results and not self.inference_done:
                self.cond.wait(_POLL_S)
            return self.results.pop(index, None)

    # --- main thread: drawing -------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        json_tmp = self.json_path.with_name(f".{self.json_path.name}.tmp") if self.json_path else None
        video_tmp = (
            self.output.with_name(f".{self.output.stem}.tmp{self.output.suffix}") if self.output else None
        )
        json_file = open(json_tmp, "w", encoding="utf-8") if json_tmp else None
        writer = None
        capture = threading.Thread(target=self._capture, name="capture", daemon=True)
        infer = threading.Thread(target=self._infer, args=(json_file,), name="inference", daemon=True)
        start = time.perf_counter()
        ok = False
        try:
            capture.start()
            infer.start()
            shown: dict[str, Any] | None = None
            recent: list[float] = []
            while (item := self._get(self.draw_q)) is not None:
                index, frame, due = item
                if self.live:
                    shown = self.latest
                elif due:
                    shown = self._result_for(index) or shown
                now = time.perf_counter()
                recent = [t for t in recent if now - t < 1.0] + [now]
                fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
                latency = self.model.latencies_ms[-1] if self.model.latencies_ms else 0.0
                canvas = draw_overlay(frame, shown, fps, latency)
                if video_tmp is not None:
                    if writer is None:
                        writer = open_writer(
                            video_tmp, self.source.fps or 25.0, canvas.shape[1], canvas.shape[0]
                        )
                    writer.write(canvas)
                if self.show:
                    cv2.imshow("action_rec", canvas)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        self.stop.set()
                        break
                self.stats["frames_drawn"] += 1
            ok = not self.errors
        finally:
            if not ok:
                self.stop.set()
            capture.join(timeout=5)
            infer.join(timeout=60)
            self.source.release()
            self.timeline.finish()
            if ok and self.timeline_path is not None:
                atomic_write(self.timeline_path, json.dumps(self.timeline.segments, indent=1) + "\n")
            if writer is not None:
                writer.release()
            if json_file is not None:
                json_file.close()
            if self.show:
                cv2.destroyAllWindows()
            for tmp, final in ((video_tmp, self.output), (json_tmp, self.json_path)):
                if tmp is None or not tmp.exists():
                    continue
                if ok:
                    os.replace(tmp, final)
                else:
                    tmp.unlink()
        if self.errors:
            raise self.errors[0]
        elapsed = time.perf_counter() - start
        lat = self.model.latencies_ms
        return {
            **self.stats,
            "segments": len(self.timeline.segments),
            "source_drops": getattr(self.source, "drops", 0),
            "elapsed_s": elapsed,
            "display_fps": self.stats["frames_drawn"] / elapsed if elapsed > 0 else 0.0,
            "mean_latency_ms": float(np.mean(lat)) if lat else float("nan"),
            "median_latency_ms": float(np.median(lat)) if lat else float("nan"),
        }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="demo.py",
        description="Recognize actions live from a camera, a video file or a stream with an exported model.",
    )
    p.add_argument("--model", required=True, help="exported model.xml (its model.json must be beside it)")
    p.add_argument("--input", required=True, help="camera index (0), video file, or stream URL (rtsp://...)")
    p.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU inference threads (default 0: all cores)")
    p.add_argument(
        "--precision-hint",
        default="default",
        choices=["default", "f32", "bf16"],
        help="OpenVINO's default settings (as users run a model: bf16 on CPUs that have it), or f32 (the "
        "precision export verified to 1e-4) or bf16",
    )
    p.add_argument("--stride", type=int, default=8, help="advance the window by this many frames (default 8)")
    p.add_argument(
        "--average", type=int, default=3, help="average the scores of the last N windows (default 3)"
    )
    p.add_argument("--top-k", type=int, default=3, help="labels to show (default 3)")
    p.add_argument("--no-show", action="store_true", help="do not open a window (headless)")
    p.add_argument("--output", help="write the annotated video here (.mp4 or .avi)")
    p.add_argument("--json", help="write the per-window log here, one JSON object per window")
    p.add_argument(
        "--timeline",
        help='write the action segments here: [{"start_s", "end_s", "label", "score"}] (JSON)',
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="top probability below which a window means no action (default: model.json's; 0: none)",
    )
    p.add_argument(
        "--min-segment",
        type=float,
        default=0.5,
        help="seconds: shorter runs (actions or gaps) do not change the timeline (default 0.5)",
    )
    p.add_argument(
        "--hysteresis",
        type=float,
        default=0.1,
        help="the current action stays while its score is within this of the top one (default 0.1); "
        "the overlay, the per-window log and the timeline all show that one decision",
    )
    p.add_argument(
        "--reconnect-tries",
        type=int,
        help="live sources: tries to reopen after a drop (default: forever; 0: end the run)",
    )
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="read a file at its own frame rate and drop stale work, as for a camera",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for name in ("stride", "average", "top_k"):
            if getattr(args, name) < 1:
                raise DemoError(f"--{name.replace('_', '-')} must be at least 1")
        if args.threshold is not None and not 0 <= args.threshold <= 1:
            raise DemoError(f"--threshold must be between 0 and 1, got {args.threshold}")
        if args.min_segment < 0 or not 0 <= args.hysteresis < 1:
            raise DemoError("--min-segment must be >= 0 and --hysteresis in [0, 1)")
        if args.output and Path(args.output).suffix.lower() not in (".mp4", ".m4v", ".avi", ".mkv"):
            raise DemoError(f"{args.output}: --output must end in .mp4, .m4v, .avi or .mkv")
        show = not args.no_show
        if (
            show
            and sys.platform.startswith("linux")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        ):
            raise DemoError("no display to show the video on: use --no-show (with --output and/or --json)")
        model = ExportedModel(
            args.model, device=args.device, threads=args.threads, precision=args.precision_hint
        )
        source = open_source(args.input)
        if source.live and args.reconnect_tries != 0:
            spec = args.input
            source.release()
            source = ReconnectingSource(lambda: open_source(spec), tries=args.reconnect_tries)
        if args.timeline and not source.live and not source.fps:
            raise DemoError(f"{args.input}: the file has no frame rate, so --timeline has no times")
        print(
            f"{model.path}: {len(model.class_names)} classes, clip {model.input['clip_len']} frames every "
            f"{model.frame_step(source.fps):g} frame(s), input {model.input['format']}; "
            f"source {source.name} ({'live' if source.live else 'file'}, {source.fps or '?'} fps)"
        )
        demo = LiveDemo(
            model,
            source,
            stride=args.stride,
            average=args.average,
            top_k=args.top_k,
            show=show,
            output=args.output,
            json_path=args.json,
            max_frames=args.max_frames,
            pace=args.realtime,
            threshold=args.threshold,
            timeline_path=args.timeline,
            min_segment_s=args.min_segment,
            hysteresis=args.hysteresis,
        )
        rule = demo.recognizer.rule
        print(
            "no action: "
            + (
                f"classes {[model.class_names[i] for i in sorted(rule.no_action_ids)]}"
                if rule.no_action_ids
                else "no class"
            )
            + (f", top score below {rule.threshold:.3f}" if rule.threshold is not None else ", no threshold")
            + f", hysteresis {args.hysteresis:g}; timeline: segments of {args.min_segment:g} s or more"
        )
        summary = demo.run()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{summary['frames_read']} frames read, {summary['frames_drawn']} drawn, {summary['windows']} windows "
        f"({summary['windows_dropped']} stale windows and {summary['frames_dropped']} stale frames dropped) "
        f"in {summary['elapsed_s']:.1f} s"
    )
    if summary["source_drops"]:
        print(f"the source dropped {summary['source_drops']} time(s) and was reopened")
    print(
        f"mean latency {summary['mean_latency_ms']:.1f} ms/clip (median {summary['median_latency_ms']:.1f}), "
        f"{summary['display_fps']:.1f} FPS"
    )
    if summary["windows"] == 0:
        span = int(round((model.input["clip_len"] - 1) * model.frame_step(source.fps))) + 1
        print(f"note: the input ended before the first window was full ({span} frames are needed)")
    for path in (args.output, args.json, args.timeline):
        if path:
            print(f"wrote {path}" + (f" ({summary['segments']} segments)" if path == args.timeline else ""))
    return 0
