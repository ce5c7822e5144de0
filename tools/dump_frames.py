#!/usr/bin/env python3
"""Dump video frames to rawframes/<video>/00001.jpg ... and write the 7-column annotation files.

python tools/dump_frames.py --videos-dir ${DATA_DIR}/videos --annotation ${DATA_DIR}/train.txt ${DATA_DIR}/val.txt \\
    --output-dir ${DATA_DIR}/custom_dataset

Each input list has lines `<rel_path_to_video> <label_id>` (paths relative to --videos-dir); for each
one `<output-dir>/<same file name>` gets `<rel_dir> <label_id> 0 N 0 N <fps>` lines, N being the number
of frames OpenCV decoded. A rerun skips the videos already dumped and redoes any that were interrupted.
Exit status: 0 all videos dumped, 1 some videos failed (they are left out of the annotations), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.data.dump import dump_videos  # noqa: E402
from action_rec.errors import UserError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--videos-dir",
        type=Path,
        required=True,
        help="folder the video paths are relative to",
    )
    parser.add_argument(
        "--annotation",
        type=Path,
        nargs="+",
        required=True,
        help="video lists: <rel_path_to_video> <label_id>",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        required=True,
        help="gets rawframes/ and the annotation files",
    )
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="parallel videos (default: up to 4)"
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        help="shrink frames whose short side is longer than this many pixels (smaller ones are kept)",
    )
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100 (default 90)")
    parser.add_argument("--frame-pattern", default="{:05d}.jpg", help="frame file names (default {:05d}.jpg)")
    args = parser.parse_args(argv)
    if args.short_side is not None and args.short_side < 1:
        parser.error("--short-side must be positive")
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be in 1..100")
    if not args.videos_dir.is_dir():
        print(f"error: {args.videos_dir}: videos dir not found", file=sys.stderr)
        return 2
    try:
        summary = dump_videos(
            args.videos_dir,
            args.annotation,
            args.output_dir,
            workers=args.workers,
            short_side=args.short_side,
            quality=args.quality,
            frame_pattern=args.frame_pattern,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dump_frames: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
