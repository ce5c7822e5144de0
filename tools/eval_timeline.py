#!/usr/bin/env python3
"""Measure action timelines against the truth: frame accuracy, segmental F1@k, edit score, per-class F1.

python tools/eval_timeline.py --pred timeline.json --truth truth.json [--out metrics.yaml] [--plot t.png]
python tools/eval_timeline.py --model export/model.xml --videos DATA/test_videos.txt [--out-dir DIR]

With --pred/--truth: both files hold segments [{"start_s": ..., "end_s": ..., "label": ...}]
(tools/demo.py --timeline writes them). With --model/--videos: every video of the list
(tools/prepare_dataset.py writes test_videos.txt and val_videos.txt: <video><TAB><truth JSON>, or one
video a line with its truth <stem>.json beside it) or of a folder (videos with <stem>.json beside them)
is run through the recognizer of tools/demo.py, with the model's timeline settings from model.json
unless --threshold, --min-segment, --hysteresis or --average say otherwise; per video and overall it
writes OUT_DIR/timeline_metrics.yaml, a PNG per video, overall.png and predictions/<video>.json.
See action_rec/evaluation/timeline.py and timeline_videos.py for the definitions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.errors import run_cli  # noqa: E402
from action_rec.evaluation.timeline import evaluate_timeline_files, format_metrics  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pred", type=Path, help="predicted segments (JSON)")
    p.add_argument("--truth", type=Path, help="true segments (JSON)")
    p.add_argument("--out", type=Path, help="metrics YAML (default: <pred>_metrics.yaml)")
    p.add_argument("--plot", type=Path, help="PNG of both timelines (default: <pred>.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the PNG(s)")
    group = p.add_argument_group("a model on recordings")
    group.add_argument("--model", type=Path, help="the exported model.xml")
    group.add_argument("--videos", type=Path, help="test_videos.txt / val_videos.txt, or a folder")
    group.add_argument("--out-dir", type=Path, help="where to write (default: <model dir>/timeline_eval)")
    group.add_argument("--stride", type=int, default=8, help="frames between two windows (8, as demo.py)")
    group.add_argument("--threshold", type=float, help="no-action threshold (default: model.json's; 0: none)")
    group.add_argument("--min-segment", type=float, help="minimum segment, seconds (default: model.json's)")
    group.add_argument("--hysteresis", type=float, help="hysteresis (default: model.json's)")
    group.add_argument("--average", type=int, help="windows averaged (default: model.json's)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.model or args.videos:
        if not (args.model and args.videos) or args.pred or args.truth:
            p.error("give --model and --videos together (or --pred and --truth)")
        bad = [
            (flag, value, rule)
            for flag, value, ok, rule in (
                ("--threshold", args.threshold, lambda v: 0 <= v <= 1, "in [0, 1]"),
                ("--min-segment", args.min_segment, lambda v: v >= 0, ">= 0"),
                ("--hysteresis", args.hysteresis, lambda v: 0 <= v < 1, "in [0, 1)"),
                ("--average", args.average, lambda v: v >= 1, ">= 1"),
                ("--stride", args.stride, lambda v: v >= 1, ">= 1"),
            )
            if value is not None and not ok(value)
        ]
        if bad:
            p.error(f"{bad[0][0]} must be {bad[0][2]}, got {bad[0][1]}")
        return run_cli(lambda: _videos(args))
    if not (args.pred and args.truth):
        p.error("give --pred and --truth, or --model and --videos")
    out = args.out or args.pred.with_name(f"{args.pred.stem}_metrics.yaml")
    plot = None if args.no_plot else (args.plot or args.pred.with_suffix(".png"))

    def body() -> int:
        metrics = evaluate_timeline_files(args.pred, args.truth, out, plot)
        print(format_metrics(metrics))
        print(f"wrote {out}" + (f", {plot}" if plot else ""))
        return 0

    return run_cli(body)


def _videos(args: argparse.Namespace) -> int:
    from action_rec.evaluation.timeline_videos import evaluate_videos, video_truth_pairs

    out_dir = args.out_dir or args.model.parent / "timeline_eval"
    report = evaluate_videos(
        args.model,
        video_truth_pairs(args.videos),
        out_dir,
        stride=args.stride,
        threshold=args.threshold,
        min_segment_s=args.min_segment,
        hysteresis=args.hysteresis,
        average=args.average,
        progress=not args.no_progress,
        plots=not args.no_plot,
    )
    for name, metrics in report["videos"].items():
        print(f"{name}: {format_metrics(metrics)}")
    print(f"overall ({len(report['videos'])} videos): {format_metrics(report['overall'])}")
    per_class = report["overall"]["per_class_f1"]
    print("per-class F1@0.50: " + ", ".join(f"{k} {v:.3f}" for k, v in per_class.items()))
    print(f"settings: {report['settings']}")
    print(f"wrote {out_dir / 'timeline_metrics.yaml'}" + ("" if args.no_plot else f", {out_dir}/*.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
