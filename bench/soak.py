"""Soak run of the live recognizer: several camera streams for a long time, with resident memory and
window latency percentiles every minute. Nothing may grow.

The whole live path of demo.py runs headless (runtime/runner.py: capture threads, one compiled model
with asynchronous requests, the per-window decisions, segment timelines and start/end events, written
as JSON lines). Each stream is the benchmark's camera (bench/streams.py): a 640 x 480 video looped at
30 FPS, a window every 8 frames; the model is the published S3D with random weights, the FP32 IR as
export.py writes it, under OpenVINO's default settings. The window latency is the time from a window's
last frame to its decision (waiting for a request included).

    venv/bin/python -m bench.soak                  # 4 streams for 20 minutes (the real run)
    venv/bin/python -m bench.soak --minutes 2      # a short check
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from action_rec.runtime.compile import throughput_config
from action_rec.runtime.events import EventBus, EventDelivery, JsonLinesSink
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.runner import StreamRunner
from action_rec.runtime.sources import LoopingFile
from action_rec.runtime.stream import Stream, StreamSettings
from bench.harness import (
    MODELS,
    bench_command,
    environment,
    environment_text,
    finish_environment,
    markdown_table,
)
from bench.streams import FPS, STRIDE, camera_workspace, export_irs


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=20.0, help="how long to run (default 20)")
    p.add_argument("--streams", type=int, default=4, help="camera streams (default 4)")
    p.add_argument("--model", choices=list(MODELS), default="s3d")
    p.add_argument("--int8", action="store_true", help="the INT8 IR instead of FP32")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between two records (default 60)")
    p.add_argument("--work-dir", type=Path, help="keep the IRs, the video and the events here")
    args = p.parse_args(argv)
    command = bench_command("bench.soak", argv)
    cores = os.cpu_count() or 1
    env = environment(cores, "OpenVINO's default settings, throughput mode", ("openvino", "opencv-python"))
    tmp, work, video = camera_workspace(args.work_dir)  # noqa: F841 (tmp: kept alive for the run)
    xml = export_irs(args.model, work) / ("model_int8.xml" if args.int8 else "model.xml")
    model = ExportedModel(xml, config=throughput_config())
    streams = [
        Stream(f"cam{k}", LoopingFile(video, fps=FPS, decode_threads=1), model, StreamSettings(stride=STRIDE))
        for k in range(args.streams)
    ]
    events = EventBus([EventDelivery(JsonLinesSink(work / "events.jsonl"))])
    runner = StreamRunner(model, streams, events=events, log=lambda message: print(message, flush=True))
    print(f"command: {command}\n{environment_text(env)}")
    print(
        f"soak: {args.streams} streams of {video.name} (640 x 480) looped at {FPS:g} fps for {args.minutes:g} min; "
        f"{args.model.upper()} {'INT8' if args.int8 else 'FP32'} IR, a window every {STRIDE} frames, "
        f"{runner.requests} infer requests",
        flush=True,
    )
    header = [
        "minute",
        "RSS MB",
        "latency p50 ms",
        "latency p99 ms",
        "windows",
        "stale",
        "segments",
        "frames",
    ]
    print(" | ".join(header), flush=True)
    records: list[list] = []
    done = threading.Event()

    def monitor() -> None:
        start, seen = time.monotonic(), {s.name: 0 for s in streams}
        while not done.wait(max(0.0, start + (len(records) + 1) * args.interval - time.monotonic())):
            recent: list[float] = []
            for s in streams:
                new = s.stats["windows"] - seen[s.name]
                seen[s.name] = s.stats["windows"]
                recent += list(s.delays_ms)[-new:] if new > 0 else []
            row = [
                round((time.monotonic() - start) / 60, 1),
                round(rss_mb(), 1),
                round(float(np.percentile(recent, 50)), 1) if recent else float("nan"),
                round(float(np.percentile(recent, 99)), 1) if recent else float("nan"),
                len(recent),
                sum(s.stats["windows_stale"] for s in streams),
                sum(len(s.timeline.segments) for s in streams),
                sum(s.stats["frames_read"] for s in streams),
            ]
            records.append(row)
            print(" | ".join(str(v) for v in row), flush=True)
            if row[0] >= args.minutes - 1e-6:
                runner.stop.set()
                return

    thread = threading.Thread(target=monitor, daemon=True)
    thread.start()
    summary = runner.run()
    done.set()
    thread.join()
    (delivery,) = events.close()
    print(f"\n{markdown_table(header, records)}\n")
    if len(records) >= 2:
        first, last = records[0], records[-1]
        base = records[1] if len(records) > 2 else first  # minute 1 includes the warm-up
        print(
            f"first minute: RSS {first[1]} MB, p50 {first[2]} ms, p99 {first[3]} ms; last minute: RSS {last[1]} MB, "
            f"p50 {last[2]} ms, p99 {last[3]} ms; RSS change from minute {base[0]:g} to the last: "
            f"{last[1] - base[1]:+.1f} MB"
        )
    frames = sum(s["frames_read"] for s in summary["streams"])
    print(
        f"{frames} frames, {sum(s['windows'] for s in summary['streams'])} windows, "
        f"{sum(s['windows_stale'] for s in summary['streams'])} stale windows dropped, "
        f"{sum(s['segments'] for s in summary['streams'])} segments in {summary['elapsed_s'] / 60:.1f} min; events: "
        f"{delivery['delivered']} delivered, {delivery['dropped']} dropped"
    )
    print(f"{environment_text(finish_environment(env, cores))}\ncommand: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
