#!/usr/bin/env python3
"""Measure a predicted action timeline against the truth: frame accuracy, segmental F1@k, edit score.

python tools/eval_timeline.py --pred timeline.json --truth truth.json [--out metrics.yaml] [--plot t.png]

Both files hold segments [{"start_s": ..., "end_s": ..., "label": ...}] (tools/demo.py --timeline
writes them); see action_rec/evaluation/timeline.py for the definitions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.errors import run_cli  # noqa: E402
from action_rec.evaluation.timeline import evaluate_timeline_files, format_metrics  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pred", type=Path, required=True, help="predicted segments (JSON)")
    p.add_argument("--truth", type=Path, required=True, help="true segments (JSON)")
    p.add_argument("--out", type=Path, help="metrics YAML (default: <pred>_metrics.yaml)")
    p.add_argument("--plot", type=Path, help="PNG of both timelines (default: <pred>.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    args = p.parse_args(argv)
    out = args.out or args.pred.with_name(f"{args.pred.stem}_metrics.yaml")
    plot = None if args.no_plot else (args.plot or args.pred.with_suffix(".png"))

    def body() -> int:
        metrics = evaluate_timeline_files(args.pred, args.truth, out, plot)
        print(format_metrics(metrics))
        print(f"wrote {out}" + (f", {plot}" if plot else ""))
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
