#!/usr/bin/env python3
"""Recognize actions in a camera, a video file or an RTSP stream with the exported model beside this file.

    python recognize.py --input 0                                    # camera 0, window on screen
    python recognize.py --input video.mp4 --no-show --json out.json  # headless timeline of a file
    python recognize.py --input rtsp://host/stream --int8 --threshold 0.6

Needs only openvino, opencv-python and numpy (requirements.txt). Everything about the model comes from
model.json: input format and shape, clip length, frame interval (or target fps), short-side resize,
crop size, class names and the softmax scale of the raw output. The sliding window is the one of the
training toolkit's recognizer, so both give the same labels on the same video: every frame_interval-th
frame is resized (short side) and centre-cropped once, the last clip_len of them form a window, a
window is run every --stride source frames and the class probabilities of the last --average windows
are averaged. A window whose best averaged probability is below the threshold (model.json's
no_action.threshold, or --threshold; 0 disables), or whose best class is one of no_action.classes, is
"no action". Exit status: 0 done, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

HERE = Path(__file__).resolve().parent
NO_ACTION = "no action"


class RecognizeError(Exception):
    """Bad input: the message is one line that names the file or setting."""


def load_model(xml: Path, device: str, hint: str) -> tuple[ov.CompiledModel, dict]:
    """Read the IR and its model.json, check that they belong together, compile with the hint
    ("default": OpenVINO's own settings; "f32" / "bf16": the CPU's execution precision)."""
    meta_path = xml.with_suffix(".json")
    for path in (xml, xml.with_suffix(".bin"), meta_path):
        if not path.is_file():
            raise RecognizeError(f"{path}: not found (the model needs {xml.stem}.xml, .bin and .json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    core = ov.Core()
    model = core.read_model(str(xml))
    got = (
        list(model.inputs[0].get_partial_shape().to_shape())
        if model.inputs[0].get_partial_shape().is_static
        else None
    )
    want = list(meta["input"]["shape"])
    if got != want:
        raise RecognizeError(f"{meta_path}: input.shape {want} does not match the IR's input shape {got}")
    outputs = list(model.outputs[0].get_partial_shape().to_shape())
    if outputs != [1, len(meta["class_names"])]:
        raise RecognizeError(
            f"{meta_path}: {len(meta['class_names'])} class names, but the IR's output shape is {outputs}"
        )
    config = {}
    if hint != "default":
        if device.upper().startswith("CPU"):
            check_hint(hint, cpu_capabilities(core), core.get_property("CPU", "FULL_DEVICE_NAME"))
        config["INFERENCE_PRECISION_HINT"] = hint
    return core.compile_model(model, device, config), meta


def cpu_capabilities(core: ov.Core) -> list[str]:
    """What the CPU can execute: "FP32", "BF16", "INT8", ..."""
    return list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def check_hint(hint: str, capabilities: list[str], cpu_name: str = "this CPU") -> None:
    """A precision hint the CPU cannot execute is the user's to fix, not a crash."""
    if hint == "bf16" and "BF16" not in capabilities:
        raise RecognizeError(f"--hint bf16: {cpu_name} has no bf16 support; use --hint f32 or default")


class Window:
    """The sliding window: sampling, per-frame preprocessing into a ring buffer, when to infer."""

    def __init__(self, meta_input: dict, source_fps: float | None, stride: int) -> None:
        self.format = meta_input["format"]
        self.size, self.short = int(meta_input["size"]), int(meta_input["resize_short"])
        self.clip_len, self.stride = int(meta_input["clip_len"]), stride
        target = meta_input.get("target_fps")  # a rate: follow it whatever the source's fps
        self.step = (
            max(source_fps / float(target), 1.0)
            if target and source_fps
            else float(meta_input["frame_interval"])
        )
        self.mean = np.asarray(meta_input["mean"], np.float32).reshape(3, 1, 1)
        self.std = np.asarray(meta_input["std"], np.float32).reshape(3, 1, 1)
        self.frames: deque = deque(maxlen=self.clip_len)  # (source index, prepared frame)
        self.next_sample, self.last_window = 0.0, None

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """BGR frame -> short side resized to resize_short (mmcv rounding), centre crop of size
        (black where the frame is smaller) -> the IR's per-frame layout."""
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        h, w = frame.shape[:2]
        scale = self.short / min(h, w)
        rh, rw = int(h * scale + 0.5), int(w * scale + 0.5)
        if (h, w) != (rh, rw):
            frame = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_LINEAR)
        top, left = (rh - self.size) // 2, (rw - self.size) // 2
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + self.size, rh), min(left + self.size, rw)
        crop = np.zeros((self.size, self.size, 3), np.uint8)
        crop[y0 - top : y1 - top, x0 - left : x1 - left] = frame[y0:y1, x0:x1]
        if self.format == "bgr8":
            return crop
        planar = crop[..., ::-1].transpose(2, 0, 1).astype(np.float32)  # RGB 0-255, 3 x H x W
        return (planar - self.mean) / self.std if self.format == "normalized" else planar

    def add(self, index: int, frame: np.ndarray) -> np.ndarray | None:
        """Source frame `index` (0-based, consecutive) -> the window's input tensor when one is due."""
        if index < self.next_sample:
            return None
        while self.next_sample <= index:
            self.next_sample += self.step
        self.frames.append((index, self.prepare(frame)))
        if len(self.frames) < self.clip_len:
            return None
        if self.last_window is not None and index - self.last_window < self.stride:
            return None
        self.last_window = index
        prepared = [f for _, f in self.frames]
        axis = 0 if self.format == "bgr8" else 1  # T x H x W x 3, or 3 x T x H x W
        return np.ascontiguousarray(np.stack(prepared, axis=axis)[None])

    @property
    def start_index(self) -> int:
        return self.frames[0][0]


class Labeller:
    """Raw scores -> probabilities, averaged over the last windows -> one timeline entry."""

    def __init__(self, meta: dict, average: int, top_k: int, threshold: float | None) -> None:
        self.names, self.scale = list(meta["class_names"]), float(meta["output"]["softmax_scale"])
        no_action = meta.get("no_action") or {}
        self.threshold = no_action.get("threshold") if threshold is None else (threshold or None)
        self.no_action_classes = set(no_action.get("classes") or [])
        self.recent: deque = deque(maxlen=average)
        self.top_k = top_k

    def __call__(self, scores: np.ndarray, frame: int, start: int, fps: float | None, ms: float) -> dict:
        z = np.asarray(scores, np.float64).reshape(-1) * self.scale
        e = np.exp(z - z.max())
        window = (e / e.sum()).astype(np.float32)
        self.recent.append(window)
        averaged = np.mean(self.recent, axis=0)
        order = np.argsort(-averaged)[: self.top_k]
        best, score = self.names[order[0]], float(averaged[order[0]])
        quiet = best in self.no_action_classes or (self.threshold is not None and score < self.threshold)
        return {
            "frame": frame,
            "start_frame": start,
            "time_s": round(frame / fps, 3) if fps else None,
            "label": NO_ACTION if quiet else best,
            "no_action": quiet,
            "score": round(score, 4),
            "top_k": [[self.names[i], round(float(averaged[i]), 4)] for i in order],
            "window_label": self.names[int(np.argmax(window))],
            "window_score": round(float(window.max()), 4),
            "latency_ms": round(ms, 2),
        }


def segments(entries: list[dict]) -> list[dict]:
    """Consecutive windows with the same label merged; no-action windows belong to no segment. Times
    are those of the windows' last frames (when each label became known)."""
    out: list[dict] = []
    previous = None
    for e in entries:
        if e["no_action"]:
            previous = None
            continue
        if previous is not None and previous["label"] == e["label"]:
            previous.update(end_s=e["time_s"], last_frame=e["frame"], windows=previous["windows"] + 1)
            previous["score"] += e["score"]
        else:
            previous = {
                "label": e["label"],
                "start_s": e["time_s"],
                "end_s": e["time_s"],
                "first_frame": e["frame"],
                "last_frame": e["frame"],
                "windows": 1,
                "score": e["score"],
            }
            out.append(previous)
    for seg in out:
        seg["score"] = round(seg["score"] / seg["windows"], 4)
    return out


def open_input(spec: str) -> tuple[cv2.VideoCapture, bool]:
    """A camera index, an rtsp:// (or any scheme://) URL, or a video file; returns (capture, live)."""
    live = spec.isdigit() or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) is not None
    if not live and not Path(spec).is_file():
        raise RecognizeError(f"{spec}: no such video file")
    capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
    if not capture.isOpened():
        raise RecognizeError(f"{spec}: cannot open the input (not a video, or no such camera or stream)")
    return capture, live


def draw(frame: np.ndarray, entry: dict | None) -> np.ndarray:
    """The top-k labels (or "no action") in the top-left corner."""
    lines = ["collecting frames..."] if entry is None else [f"{n}  {s:.2f}" for n, s in entry["top_k"]]
    if entry is not None and entry["no_action"]:
        lines = [NO_ACTION]
    for k, text in enumerate(lines):
        y = 28 * (k + 1)
        cv2.putText(frame, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(frame, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def run(args: argparse.Namespace) -> dict:
    """Read the input to its end (or q / Esc / Ctrl-C); returns {"windows": [...], "segments": [...], ...}."""
    xml = Path(args.model) if args.model else HERE / "model.xml"
    if args.int8:
        xml = xml.with_name("model_int8.xml")
    compiled, meta = load_model(xml, args.device, args.hint)
    capture, live = open_input(args.input)
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = float(fps) if fps and 0 < fps < 1000 else None
    window = Window(meta["input"], fps, args.stride)
    label = Labeller(meta, args.average, args.top_k, args.threshold)
    request = compiled.create_infer_request()
    entries: list[dict] = []
    pending = None  # live sources: (end frame, start frame, start time) of the window in flight
    shown, index, skipped = None, 0, 0

    def finish(end: int, start: int, started: float, scores: np.ndarray) -> dict:
        entries.append(label(scores, end, start, fps, (time.perf_counter() - started) * 1e3))
        if live:  # a live run has no end to wait for: say each label as it comes
            print(f"frame {end}: {entries[-1]['label']} ({entries[-1]['score']:.2f})", flush=True)
        return entries[-1]

    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            clip = window.add(index, frame)
            if pending is not None and request.wait_for(0):  # live: the window in flight is done
                shown, pending = finish(*pending, request.get_output_tensor(0).data), None
            if clip is not None and not live:  # a file: every window, in order (reproducible)
                started = time.perf_counter()
                shown = finish(index, window.start_index, started, request.infer({0: clip})[0])
            elif clip is not None and pending is None:  # live: never wait for the model
                request.start_async({0: clip})
                pending = (index, window.start_index, time.perf_counter())
            elif clip is not None:  # live, the model still busy: this window is skipped
                skipped += 1
            if not args.no_show:
                cv2.imshow("recognize", draw(frame, shown))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            index += 1
    except KeyboardInterrupt:  # Ctrl-C ends a run as q / Esc do: the timeline so far is kept
        pass
    finally:
        capture.release()
        if not args.no_show:
            cv2.destroyAllWindows()
    if pending is not None:
        request.wait()
        finish(*pending, request.get_output_tensor(0).data)
    if index == 0:
        raise RecognizeError(f"{args.input}: no frame could be decoded")
    return {
        "model": str(xml),
        "input": args.input,
        "fps": fps,
        "frames": index,
        "windows_skipped": skipped,
        "threshold": label.threshold,
        "windows": entries,
        "segments": segments(entries),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Recognize actions with the exported OpenVINO model.")
    p.add_argument("--input", required=True, help="camera index (0), video file, or stream URL (rtsp://...)")
    p.add_argument("--model", help="model.xml (default: the one beside this script)")
    p.add_argument("--int8", action="store_true", help="use model_int8.xml beside the model")
    p.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
    p.add_argument(
        "--hint",
        choices=["default", "f32", "bf16"],
        default="default",
        help="CPU execution precision (default: OpenVINO's own, bf16 on CPUs that have it)",
    )
    p.add_argument("--threshold", type=float, help="below this averaged score: no action (0: never)")
    p.add_argument("--stride", type=int, default=8, help="source frames between two windows (default 8)")
    p.add_argument("--average", type=int, default=3, help="average the last N windows (default 3)")
    p.add_argument("--top-k", type=int, default=3, help="labels to show (default 3)")
    p.add_argument("--json", help="write the timeline here (per-window entries and merged segments)")
    p.add_argument("--no-show", action="store_true", help="do not open a window (headless)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for name in ("stride", "average", "top_k"):
            if getattr(args, name) < 1:
                raise RecognizeError(f"--{name.replace('_', '-')} must be at least 1")
        if (
            not args.no_show
            and sys.platform.startswith("linux")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        ):
            raise RecognizeError("no display to show the video on: use --no-show (with --json)")
        result = run(args)
    except RecognizeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for seg in result["segments"]:
        when = (
            f"{seg['start_s']:7.2f} s - {seg['end_s']:7.2f} s"
            if seg["start_s"] is not None
            else (f"frame {seg['first_frame']} - {seg['last_frame']}")
        )
        print(f"{when}  {seg['label']:<24} (mean score {seg['score']:.2f}, {seg['windows']} windows)")
    print(
        f"{result['frames']} frames, {len(result['windows'])} windows ({result['windows_skipped']} skipped)"
    )
    if args.json:
        tmp = Path(args.json).with_name(
            f".{Path(args.json).name}.tmp"
        )  # write, then rename: never half a file
        tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
