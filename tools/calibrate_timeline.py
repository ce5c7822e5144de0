#!/usr/bin/env python3
"""Calibrate an exported model's timeline settings on untrimmed validation recordings.

python tools/calibrate_timeline.py --model export/model.xml --videos DATA/val_videos.txt [--dry-run]

--videos is the val_videos.txt that tools/prepare_dataset.py writes for untrimmed recordings
(<video><TAB><truth JSON> a line, or one video a line with <stem>.json beside it), or a folder of videos
with <stem>.json truths beside them. Never calibrate on the test recordings.

The no-action threshold, minimum segment, hysteresis and averaging are chosen by a grid search that
maximizes F1@0.50 pooled over the recordings (ties: the higher frame accuracy; the current settings
are a candidate, so the result is never worse on these recordings). The IR runs once per video; each
grid point replays the recognizer from the kept window probabilities. The choice is written into
model.json's "timeline" block (atomically; with the objective, the scores before and after and the
recordings), which tools/demo.py, the deployment package and tools/eval_timeline.py then use by
default. A before/after table is printed. See action_rec/evaluation/calibrate_timeline.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.errors import run_cli  # noqa: E402


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", type=Path, required=True, help="the exported model.xml (its model.json is updated)"
    )
    p.add_argument(
        "--videos", type=Path, required=True, help="val_videos.txt, or a folder of videos + <stem>.json"
    )
    p.add_argument("--stride", type=int, default=8, help="frames between two windows (8, as demo.py)")
    p.add_argument("--thresholds", type=_floats, help="grid of no-action thresholds, comma-separated")
    p.add_argument("--min-segments", type=_floats, help="grid of minimum segments (s), comma-separated")
    p.add_argument("--hystereses", type=_floats, help="grid of hysteresis values, comma-separated")
    p.add_argument("--averages", type=lambda t: [int(v) for v in _floats(t)], help="grid of window averages")
    p.add_argument("--dry-run", action="store_true", help="print the table, do not write model.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    checks = (
        ("--thresholds", args.thresholds, lambda v: 0 <= v <= 1, "in [0, 1]"),
        ("--min-segments", args.min_segments, lambda v: v >= 0, ">= 0"),
        ("--hystereses", args.hystereses, lambda v: 0 <= v < 1, "in [0, 1)"),
        ("--averages", args.averages, lambda v: v >= 1, ">= 1"),
    )
    for flag, values, ok, rule in checks:
        if values is not None and not all(ok(v) for v in values):
            p.error(f"{flag} values must be {rule}, got {values}")
    if args.stride < 1:
        p.error("--stride must be at least 1")

    def body() -> int:
        from action_rec.evaluation.calibrate_timeline import calibrate, format_calibration, store_settings
        from action_rec.evaluation.timeline_videos import video_truth_pairs

        grid = {
            k: v
            for k, v in (
                ("threshold", args.thresholds),
                ("min_segment_s", args.min_segments),
                ("hysteresis", args.hystereses),
                ("average", args.averages),
            )
            if v
        }
        pairs = video_truth_pairs(args.videos)
        result = calibrate(args.model, pairs, grid, stride=args.stride, progress=not args.no_progress)
        print(format_calibration(result))
        if not args.dry_run:
            print(f"wrote the timeline settings into {store_settings(args.model, result, args.stride)}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
