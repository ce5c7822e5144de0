#!/usr/bin/env python3
"""Recognize actions in a camera, a video file or an RTSP stream with the exported model beside this file.

    python recognize.py --input 0                                    # camera 0, window on screen
    python recognize.py --input video.mp4 --no-show --json out.json  # headless timeline of a file
    python recognize.py --input rtsp://host/stream --int8 --threshold 0.6

Needs only openvino, opencv-python and numpy (requirements.txt). The work is done by `action_rec/runtime/`
beside this file: the training toolkit's own runtime, shipped byte for byte, so this script gives the
labels that the toolkit's demo and eval tools give on the same video (same resize, crop, sampling,
window, score averaging and no-action rule). Everything about the model comes from model.json. Every
frame_interval-th frame (or the model's target fps) is resized and centre-cropped once, the last
clip_len of them form a window, a window is run every --stride source frames and the class
probabilities of the last --average windows are averaged. A window whose best averaged probability is
below the threshold (model.json's no_action.threshold, or --threshold; 0 disables), or whose best class
is a no-action class, is "no action"; the previous window's action stays while its score is within
--hysteresis of the best one. This file is the command line: input, display, the JSON timeline.
Exit status: 0 done, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from action_rec.runtime.errors import UserError
from action_rec.runtime.labels import NO_ACTION
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.recognizer import Recognizer
from action_rec.runtime.segments import label_runs

HERE = Path(__file__).resolve().parent


class RecognizeError(UserError):
    """Bad input: the message is one line that names the file or setting."""


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
    model = ExportedModel(xml, args.device, threads=args.threads, precision=args.hint)
    capture, live = open_input(args.input)
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = float(fps) if fps and 0 < fps < 1000 else None
    recognizer = Recognizer(
        model,
        fps,
        stride=args.stride,
        average=args.average,
        threshold=args.threshold,
        hysteresis=args.hysteresis,
    )
    entries: list[dict] = []
    pending = None  # live sources: the window in flight
    shown, index, skipped = None, 0, 0

    def log(prediction) -> dict:
        entries.append(prediction.to_json(model.class_names, args.top_k))
        if live:  # a live run has no end to wait for: say each label as it comes
            print(
                f"frame {entries[-1]['frame']}: {entries[-1]['label']} ({entries[-1]['score']:.2f})",
                flush=True,
            )
        return entries[-1]

    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            job = recognizer.add_frame(index, frame)
            if pending is not None and model.done():  # live: the window in flight is done
                shown, pending = log(recognizer.finish(pending)), None
            if job is not None and not live:  # a file: every window, in order (reproducible)
                shown = log(recognizer.infer(job))
            elif job is not None and pending is None:  # live: never wait for the model
                recognizer.start(job)
                pending = job
            elif job is not None:  # live, the model still busy: this window is skipped
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
        log(recognizer.finish(pending))
    if index == 0:
        raise RecognizeError(f"{args.input}: no frame could be decoded")
    return {
        "model": str(xml),
        "input": args.input,
        "fps": fps,
        "frames": index,
        "windows_skipped": skipped,
        "threshold": recognizer.rule.threshold,
        "windows": entries,
        "segments": [run for run in label_runs(entries) if run["label"] != NO_ACTION],
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Recognize actions with the exported OpenVINO model.")
    p.add_argument("--input", required=True, help="camera index (0), video file, or stream URL (rtsp://...)")
    p.add_argument("--model", help="model.xml (default: the one beside this script)")
    p.add_argument("--int8", action="store_true", help="use model_int8.xml beside the model")
    p.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU inference threads (default 0: all cores)")
    p.add_argument(
        "--hint",
        choices=["default", "f32", "bf16"],
        default="default",
        help="CPU execution precision (default: OpenVINO's own, bf16 on CPUs that have it)",
    )
    p.add_argument("--threshold", type=float, help="below this averaged score: no action (0: never)")
    p.add_argument(
        "--hysteresis",
        type=float,
        default=0.1,
        help="the current action stays while its score is within this of the top one (default 0.1)",
    )
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
        if not 0 <= args.hysteresis < 1:
            raise RecognizeError(f"--hysteresis must be in [0, 1), got {args.hysteresis}")
        if (
            not args.no_show
            and sys.platform.startswith("linux")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        ):
            raise RecognizeError("no display to show the video on: use --no-show (with --json)")
        result = run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for seg in result["segments"]:
        when = (
            f"{seg['start_s']:7.2f} s - {seg['end_s']:7.2f} s"
            if seg["start_s"] is not None
            else f"frame {seg['first_frame']} - {seg['last_frame']}"
        )
        print(f"{when}  {seg['label']:<24} (mean score {seg['score']:.2f}, {seg['windows']} windows)")
    print(
        f"{result['frames']} frames, {len(result['windows'])} windows ({result['windows_skipped']} skipped)"
    )
    if args.json:
        tmp = Path(args.json).with_name(f".{Path(args.json).name}.tmp")  # write, then rename: never half
        tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
