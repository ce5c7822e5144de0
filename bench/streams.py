"""How many cameras one CPU serves: the largest number of real-time streams, and the CPU per stream.

Each stream is a looping 640 x 480 video played as a camera at 30 FPS (runtime.sources.LoopingFile:
frames come at their time, never early), recognized by the live recognizer of demo.py with a window
every 8 frames (runtime/runner.py: one compiled model, OpenVINO's throughput settings, asynchronous
requests). A number of streams is real time when, over the whole trial, no stale window was dropped
and every stream read at least 97 % of the frames its camera delivered. A 20-second probe of one
stream gives the CPU a stream costs and a first guess; full trials then step from it one stream at a
time to the largest real-time number. The models are the published S3D and X3D (random weights
with BatchNorm statistics from real-looking clips: latency does not depend on what was learnt),
exported FP32 and INT8 as export.py writes them, run under OpenVINO's default settings.

CPU figures come from the process's CPU time over the trial: per stream (% of one core) and per
frame, split into decode (read or grab, on the capture thread), preprocess (resize, crop, into the
window) and the rest (inference, dispatch, timeline: OpenVINO's threads).

    venv/bin/python -m bench.streams                           # 2 minutes per trial (the real run)
    venv/bin/python -m bench.streams --seconds 20 --models s3d --precisions fp32   # a quick look
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from action_rec.export.pipeline import ExportOptions, export_module
from action_rec.runtime.compile import throughput_config
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.runner import StreamRunner
from action_rec.runtime.sources import LoopingFile
from action_rec.runtime.stream import Stream, StreamSettings
from action_rec.templates import load_template
from bench.harness import (
    MODELS,
    ROOT,
    TEMPLATES,
    bench_command,
    environment,
    environment_text,
    finish_environment,
    markdown_table,
    random_weight_model,
    synthetic_clips,
)

REAL_VIDEO = ROOT.parent / "shared" / "data" / "real" / "debian-opencv-doc" / "vtest.avi"
FPS, WIDTH, HEIGHT, STRIDE = 30.0, 640, 480, 8
REAL_TIME_SHARE = 0.97  # of the frames a camera delivered, a real-time stream reads at least this


def camera_video(path: Path, source: Path = REAL_VIDEO, frames: int = 300) -> Path:
    """A 640 x 480, 30 FPS MPEG-4 video (what a camera's stream decodes like) of a real street
    scene, or of moving noise when the real clip is missing."""
    capture = cv2.VideoCapture(str(source)) if source.is_file() else None
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (HEIGHT, WIDTH * 2, 3), dtype=np.uint8)
    for t in range(frames):
        ok, frame = capture.read() if capture is not None else (False, None)
        frame = (
            cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
            if ok
            else texture[:, t : t + WIDTH]
        )
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    if capture is not None:
        capture.release()
    return path


def camera_workspace(work_dir: Path | None) -> tuple[tempfile.TemporaryDirectory | None, Path, Path]:
    """(the temporary dir to keep alive, or None; the work dir; the camera video in it, made once)."""
    tmp = tempfile.TemporaryDirectory() if work_dir is None else None
    work = Path(tmp.name) if tmp else work_dir
    work.mkdir(parents=True, exist_ok=True)
    video = work / "camera.mp4"
    if not video.is_file():
        camera_video(video)
    return tmp, work, video


def export_irs(key: str, work: Path, calib_clips: int = 12) -> Path:
    """The FP32 and INT8 IRs of a published model with random weights, as export.py writes them."""
    out = work / key
    if (out / "model_int8.xml").is_file():
        return out
    data = synthetic_clips(work / "calib", per_class=max(1, -(-calib_clips // 6)), workers=2)
    template = load_template(TEMPLATES / MODELS[key] / "template.yaml")
    model, _ = random_weight_model(template, data)
    options = ExportOptions(
        int8=True, calib_ann_files=["val.txt"], calib_data_roots=[str(data)], calib_clips=calib_clips,
        workers=0, progress=False,
    )  # fmt: skip
    export_module(
        model,
        template,
        [f"c{i}" for i in range(27)],
        out,
        options,
        log=lambda *_: None,
        source="random weights",
    )
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def trial(model: ExportedModel, video: Path, streams: int, seconds: float) -> dict[str, Any]:
    """`streams` cameras for `seconds`: whether they stayed real time, and what they cost."""
    runs = [
        Stream(f"cam{k}", LoopingFile(video, fps=FPS, decode_threads=1), model, StreamSettings(stride=STRIDE))
        for k in range(streams)
    ]
    runner = StreamRunner(model, runs, log=lambda message: None)
    timer = threading.Timer(seconds, runner.stop.set)
    cpu = cpu_seconds()
    timer.start()
    summary = runner.run()
    cpu = cpu_seconds() - cpu
    timer.cancel()
    per = summary["streams"]
    frames = sum(s["frames_read"] for s in per)
    delivered = [s["capture_s"] * FPS for s in per] if all("capture_s" in s for s in per) else [seconds * FPS]
    behind = min(s["frames_read"] / max(d, 1.0) for s, d in zip(per, delivered, strict=False))
    stale = sum(s["windows_stale"] for s in per)
    decode = sum(s["decode_cpu_s"] for s in per)
    preprocess = sum(s["preprocess_cpu_s"] for s in per)
    delays = [s["delay_p99_ms"] for s in per if np.isfinite(s["delay_p99_ms"])]
    return {
        "streams": streams,
        "real_time": stale == 0 and behind >= REAL_TIME_SHARE,
        "stale": stale,
        "read_share": behind,
        "requests": summary["requests"],
        "cpu_per_stream_pct": 100 * cpu / (streams * summary["elapsed_s"]),
        "ms_per_frame": 1e3 * cpu / max(frames, 1),
        "decode_ms": 1e3 * decode / max(frames, 1),
        "preprocess_ms": 1e3 * preprocess / max(frames, 1),
        "rest_ms": 1e3 * (cpu - decode - preprocess) / max(frames, 1),
        "infer_ms": float(np.mean([s["infer_ms_per_window"] for s in per])),
        "delay_p99_ms": max(delays) if delays else float("nan"),
    }


def most_streams(
    model: ExportedModel, video: Path, seconds: float, limit: int, log, probe_s: float = 20.0
) -> tuple[dict, dict | None]:
    """(the largest real-time trial, the smallest failing one). A short probe of one stream gives the
    CPU one stream costs and from it a first guess; trials then step up from a real-time guess, or down
    from a failing one, one stream at a time."""
    results: dict[int, dict] = {}

    def run(n: int, length: float = seconds) -> dict:
        if n not in results or length != seconds:
            r = trial(model, video, n, length)
            log(
                f"  {n:3d} streams, {length:g} s: {'real time' if r['real_time'] else 'NOT real time'} (stale "
                f"{r['stale']}, read {100 * r['read_share']:.1f} % of frames), {r['cpu_per_stream_pct']:.1f} % CPU "
                "per stream"
            )
            if length != seconds:
                return r
            results[n] = r
        return results[n]

    cores = os.cpu_count() or 1
    probe = run(1, probe_s)
    n = max(1, min(limit, int(0.95 * 100 * cores / max(probe["cpu_per_stream_pct"], 1e-3))))
    if run(n)["real_time"]:
        while n < limit and run(n + 1)["real_time"]:
            n += 1
    else:
        while n > 1 and not run(n - 1)["real_time"]:
            n -= 1
        n -= 1
    best = results.get(n) or probe
    return best, results.get(n + 1)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--precisions", nargs="+", choices=["fp32", "int8"], default=["fp32", "int8"])
    p.add_argument("--seconds", type=float, default=120.0, help="length of each trial (default 120)")
    p.add_argument("--max-streams", type=int, default=32, help="stop searching here (default 32)")
    p.add_argument("--threads", type=int, default=0, help="OpenVINO threads in all (default 0: all cores)")
    p.add_argument("--work-dir", type=Path, help="keep the IRs and the video here (default: a temporary dir)")
    args = p.parse_args(argv)
    command = bench_command("bench.streams", argv)
    env = environment(
        args.threads or os.cpu_count() or 0,
        "OpenVINO's default settings, throughput mode",
        ("openvino", "opencv-python"),
    )
    print(f"command: {command}\n{environment_text(env)}", flush=True)
    tmp, work, video = camera_workspace(args.work_dir)
    rows = []
    for key in args.models:
        out = export_irs(key, work)
        for precision in args.precisions:
            xml = out / ("model.xml" if precision == "fp32" else "model_int8.xml")
            model = ExportedModel(xml, config=throughput_config(args.threads))
            print(f"{key} {precision.upper()}: searching ({args.seconds:g} s per trial)", flush=True)
            best, failed = most_streams(
                model, video, args.seconds, args.max_streams, lambda m: print(m, flush=True)
            )
            n = best["streams"] if best["real_time"] else 0
            rows.append([
                key.upper(), precision.upper(), n, f"{best['cpu_per_stream_pct']:.1f}",
                f"{best['ms_per_frame']:.2f}", f"{best['decode_ms']:.2f}", f"{best['preprocess_ms']:.2f}",
                f"{best['rest_ms']:.2f}", f"{best['infer_ms']:.1f}", f"{best['delay_p99_ms']:.0f}",
                "-" if failed is None else f"{failed['streams']}: stale {failed['stale']}, read {100 * failed['read_share']:.0f} %",
            ])  # fmt: skip
    header = ["model", "IR", "real-time streams", "CPU % per stream", "CPU ms per frame", "decode", "preprocess",
              "infer + rest", "infer ms per window", "window delay p99 ms", "first failing trial"]  # fmt: skip
    print(f"\n{markdown_table(header, rows)}\n")
    print(
        f"{WIDTH} x {HEIGHT} at {FPS:g} FPS, a window every {STRIDE} frames, {args.seconds:g} s per trial; the CPU "
        "columns are at the largest real-time number of streams (CPU ms per frame = decode + preprocess + "
        "infer + rest, the process's CPU time per frame read)"
    )
    print(
        f"{environment_text(finish_environment(env, args.threads or os.cpu_count() or 0))}\ncommand: {command}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
