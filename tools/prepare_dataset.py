#!/usr/bin/env python3
r"""Turn a folder of videos (one folder per class) or a CSV into a training-ready raw-frame dataset.

python tools/prepare_dataset.py ${DATA_DIR}/videos ${DATA_DIR}/custom_dataset [--val-fraction 0.2] [--seed 0]
python tools/prepare_dataset.py kinetics_train.csv OUT_DIR --videos-dir ${KINETICS}/videos

SOURCE is a folder of <class>/<video file> (the class name is the folder), a CSV `path,label[,split]`
(paths relative to --videos-dir, default the CSV's folder), or a Kinetics-style CSV
`label,youtube_id,time_start,time_end,split` whose videos are found in --videos-dir as
<youtube_id>_<start>_<end>.<ext> (already cut: used whole) or <youtube_id>.<ext> (cut to the time range).
OUT_DIR gets rawframes/<class>/<video>/00001.jpg ..., train.txt and val.txt (7 columns, real frame
counts and fps), label_map.txt and dataset_summary.png. The split is the CSV's, else stratified by class;
--group-regex keeps clips of one source video in one split (UCF-101: '_g(\d+)_'). Frames are shrunk
to a short side of 256 pixels, the training resize (smaller ones are kept; --short-side 0: full size).
Parallel and resumable like tools/dump_frames.py; unreadable videos are listed and skipped.
Exit status: 0 all videos dumped, 1 some videos failed (left out), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.data.prepare import prepare_dataset  # noqa: E402
from action_rec.errors import run_cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, help="folder of <class>/<video> folders, or a CSV")
    parser.add_argument("out_dir", type=Path, help="the data root to write (rawframes/, train.txt, ...)")
    parser.add_argument(
        "--videos-dir", type=Path, help="where a CSV's videos are (default: the CSV's folder)"
    )
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of each class for val (0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
    parser.add_argument(
        "--group-regex", help=r"clips whose file names share this match (group 1 if any) stay in one split"
    )
    parser.add_argument(
        "--short-side", type=int, default=256, help="shrink frames to this short side (pixels); 0: full size"
    )
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="parallel videos (default: up to 4)"
    )
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100 (default 90)")
    parser.add_argument("--frame-pattern", default="{:05d}.jpg", help="frame file names (default {:05d}.jpg)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.short_side < 0:
        parser.error("--short-side must be 0 (full size) or positive")
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be in 1..100")

    def body() -> int:
        summary = prepare_dataset(
            args.source,
            args.out_dir,
            videos_dir=args.videos_dir,
            val_fraction=args.val_fraction,
            seed=args.seed,
            group_regex=args.group_regex,
            short_side=args.short_side or None,
            workers=args.workers,
            quality=args.quality,
            frame_pattern=args.frame_pattern,
            progress=not args.no_progress,
        )
        print("\n".join(summary.lines()))
        return 1 if summary.failed else 0

    return run_cli(body)  # Ctrl-C: 130; the same command again resumes


if __name__ == "__main__":
    sys.exit(main())
