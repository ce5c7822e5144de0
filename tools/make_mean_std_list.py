#!/usr/bin/env python3
"""Make CrossNorm's mean_std_list.txt from your own training frames.

python tools/make_mean_std_list.py --template ${WORK_DIR}/template.yaml \\
    --train-ann-files ${TRAIN_ANN_FILE} --train-data-roots ${TRAIN_DATA_ROOT}

Runs the test pipeline without normalisation (centred clip, short-side resize, centre crop) over the
training clips, keeps each clip's per-channel mean and std (0-255 scale), drops entries with a mean
or std <= 1 in any channel, and writes `m_r,m_g,m_b s_r,s_g,s_b` lines to <first data root>/mean_std_list.txt
(where training looks for it) unless --output says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.data.crossnorm import MEAN_STD_LIST, write_mean_std_list  # noqa: E402
from action_rec.data.dataset import RawFrameDataset  # noqa: E402
from action_rec.data.statistics import clip_statistics, mean_std_pairs  # noqa: E402
from action_rec.errors import UserError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--template", type=Path, required=True, help="template.yaml (clip length, interval, sizes)"
    )
    parser.add_argument("--train-ann-files", nargs="+", required=True)
    parser.add_argument("--train-data-roots", nargs="+", type=Path, required=True)
    parser.add_argument(
        "--output", type=Path, default=None, help=f"default: <first data root>/{MEAN_STD_LIST}"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        dataset = RawFrameDataset(args.train_ann_files, args.train_data_roots, args.template, split="val")
        stats = clip_statistics(dataset.records, dataset.template, workers=args.workers)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pairs = mean_std_pairs(stats)
    if len(pairs) == 0:
        print(
            f"error: all {len(stats)} clips have a channel mean or std <= 1; no list written", file=sys.stderr
        )
        return 1
    output = args.output or args.train_data_roots[0] / MEAN_STD_LIST
    write_mean_std_list(output, pairs)
    print(
        f"wrote {len(pairs)} mean/std pairs to {output} ({len(stats) - len(pairs)} of {len(stats)} clips dropped)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
