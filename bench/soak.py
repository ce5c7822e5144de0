"""Soak test of the live recognizer: a looping video read at its real frame rate for a long time,
with resident memory and inference latency percentiles every minute. Nothing may grow.

The demo's whole live path runs (capture, inference and drawing threads, the per-window decisions and
the segment timeline), headless. The model is deliberately tiny (an untrained small 3D CNN exported to
IR: 8 x 64 x 64 input, the quick start's clip) so that the figures show the recognizer's own memory
and overhead, not a network's; the video is the synthetic test video with no-action gaps (128 x 128,
30 fps), made on the spot unless `--video` is given.

    venv/bin/python -m bench.soak                 # 20 minutes (the real run)
    venv/bin/python -m bench.soak --minutes 2     # a short check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from action_rec.inference.demo import LiveDemo
from torch import nn

from action_rec.data.synthetic import BACKGROUND, CLASSES
from action_rec.export.pipeline import ExportOptions, export_module
from action_rec.inference import ExportedModel, TimedFrame, make_synthetic_video, open_source
from action_rec.templates import apply_overrides, load_template
from bench.harness import MODELS, TEMPLATES, bench_command, environment, environment_text, finish_environment

TEMPLATE = TEMPLATES / MODELS["s3d"] / "template.yaml"


class TinyNet(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(3, 16, 3, (1, 2, 2), 1), nn.ReLU(), nn.Conv3d(16, 32, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(32, classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores, dim=1)


class LoopingFile:
    """A video file played as a camera: at its own frame rate, from the start again at its end, with
    clock timestamps (the recognizer sees an endless live stream)."""

    live = True

    def __init__(self, path: Path) -> None:
        self.path, self.source = path, open_source(str(path))
        self.name, self.fps = f"{path} (looping)", self.source.fps or 30.0
        self.loops, self._start, self._frames = 0, time.monotonic(), 0

    def read_timed(self) -> TimedFrame | None:
        frame = self.source.read()
        if frame is None:
            self.source.release()
            self.source, self.loops = open_source(str(self.path)), self.loops + 1
            frame = self.source.read()
        due = self._start + self._frames / self.fps
        time.sleep(max(0.0, due - time.monotonic()))
        self._frames += 1
        return TimedFrame(frame, time.monotonic() - self._start)

    def release(self) -> None:
        self.source.release()


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=20.0, help="how long to run (default 20)")
    p.add_argument("--video", type=Path, help="video to loop (default: the synthetic test video)")
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--average", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="OpenVINO inference threads (default 1)")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between two records (default 60)")
    args = p.parse_args(argv)
    command = bench_command("bench.soak", argv)
    env = environment(args.threads, "OpenVINO under the default hint (the live demo's)", ("openvino",))

    work = Path(tempfile.mkdtemp(prefix="soak_"))
    torch.manual_seed(0)
    names = [c.name for c in CLASSES[:6]] + [BACKGROUND.name]
    template = apply_overrides(
        load_template(TEMPLATE),
        ["input.clip_len=8", "input.frame_interval=2", "input.size=64", "input.resize_short=72", "model.head=linear"],
    )  # fmt: skip
    export_module(
        TinyNet(len(names)).eval(), template, names, work / "export", ExportOptions(progress=False), log=lambda *_: None
    )  # fmt: skip
    video = args.video
    if video is None:
        video = work / "test.mp4"
        labels = np.random.default_rng(0).permutation(np.repeat(np.arange(6), 2)).tolist()
        make_synthetic_video(video, labels, frames_per_segment=16, size=128, gap_frames=(24, 48))
    model = ExportedModel(work / "export" / "model.xml", threads=args.threads)
    source = LoopingFile(video)
    demo = LiveDemo(model, source, stride=args.stride, average=args.average, show=False)
    print(f"command: {command}\n{environment_text(env)}")
    print(
        f"soak: {video} looped at {source.fps:g} fps for {args.minutes:g} min; tiny IR {template['input']['clip_len']}"
        f" x {template['input']['size']}^2, stride {args.stride}, average {args.average}, {args.threads} thread(s)"
    )
    print(
        f"{'min':>5} {'RSS MB':>8} {'p50 ms':>7} {'p99 ms':>7} {'windows':>8} {'dropped':>8} {'segments':>8} {'loops':>6}"
    )
    records: list[dict[str, float]] = []
    done = threading.Event()

    def monitor() -> None:
        start, seen = time.monotonic(), 0
        while not done.wait(max(0.0, start + (len(records) + 1) * args.interval - time.monotonic())):
            count = model.inferences
            recent = list(model.latencies_ms)[-(count - seen) :] if count > seen else []
            seen = count
            row = {
                "minute": (time.monotonic() - start) / 60,
                "rss_mb": rss_mb(),
                "p50_ms": float(np.percentile(recent, 50)) if recent else float("nan"),
                "p99_ms": float(np.percentile(recent, 99)) if recent else float("nan"),
                "windows": len(recent),
                "dropped": demo.stats["windows_dropped"],
                "segments": len(demo.timeline.segments),
                "loops": source.loops,
            }
            records.append(row)
            print(
                f"{row['minute']:5.1f} {row['rss_mb']:8.1f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} "
                f"{row['windows']:8d} {row['dropped']:8d} {row['segments']:8d} {row['loops']:6d}",
                flush=True,
            )
            if row["minute"] >= args.minutes - 1e-6:
                demo.stop.set()
                return

    thread = threading.Thread(target=monitor, daemon=True)
    thread.start()
    summary = demo.run()
    done.set()
    thread.join()
    if len(records) >= 2:
        first, last = records[0], records[-1]
        base = records[1] if len(records) > 2 else first  # minute 1 includes the warm-up
        print(
            f"first minute: RSS {first['rss_mb']:.1f} MB, p50 {first['p50_ms']:.2f} ms, p99 {first['p99_ms']:.2f} ms; "
            f"last minute: RSS {last['rss_mb']:.1f} MB, p50 {last['p50_ms']:.2f} ms, p99 {last['p99_ms']:.2f} ms"
        )
        print(
            f"RSS change from minute {base['minute']:.0f} to the last: {last['rss_mb'] - base['rss_mb']:+.1f} MB; "
            f"{summary['frames_read']} frames, {summary['windows']} windows, {summary['windows_dropped']} stale "
            f"windows dropped, {summary['segments']} segments in {summary['elapsed_s'] / 60:.1f} min"
        )
    print(f"{environment_text(finish_environment(env, args.threads))}\ncommand: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
