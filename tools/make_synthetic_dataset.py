#!/usr/bin/env python3
"""Write the synthetic sample dataset: classes that differ only in motion, in the raw-frame layout.

python tools/make_synthetic_dataset.py /tmp/synthetic [--videos] [--background]
python tools/make_synthetic_dataset.py /tmp/recordings --recordings 20    # long videos + segments.csv

With ``--recordings N`` it writes N long recordings instead, with the segment CSV a labelling tool
would export (``video,start_frame,end_frame,label``): the input of ``tools/prepare_dataset.py``, as
a user's own recordings are (see action_rec/data/synthetic_recordings.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.data.synthetic import BACKGROUND, CLASSES, make_synthetic_dataset  # noqa: E402
from action_rec.data.synthetic_recordings import make_synthetic_recordings  # noqa: E402
from action_rec.errors import UserError  # noqa: E402


def _frame_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="directory to write (created if missing)")
    parser.add_argument("--num-classes", type=int, default=6, help=f"2..{len(CLASSES)} (default 6)")
    parser.add_argument("--train-per-class", type=int, default=60)
    parser.add_argument("--val-per-class", type=int, default=15)
    parser.add_argument("--frames", type=int, default=32, help="frames per video")
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--videos", action="store_true", help="also write mp4 videos and video lists for dump_frames"
    )
    parser.add_argument(
        "--background",
        action="store_true",
        help="add a 'background' class (still scenes, small jitter) as the last label: no action",
    )
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes to render with"
    )
    long = parser.add_argument_group("long recordings with marked segments")
    long.add_argument("--recordings", type=int, default=0, help="write this many long recordings instead")
    long.add_argument(
        "--segments-per-class", type=int, default=4, help="actions of each class per recording (4)"
    )
    long.add_argument(
        "--action-frames", type=_frame_range, default=(16, 64), help="action length range (16-64)"
    )
    long.add_argument("--gap-frames", type=_frame_range, default=(16, 48), help="no-action gap range (16-48)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        lines = write_recordings(args) if args.recordings else write_clips(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lines[0] += f" in {time.perf_counter() - start:.1f} s"
    print("\n".join(lines))
    return 0


def write_recordings(args: argparse.Namespace) -> list[str]:
    csv_path = make_synthetic_recordings(
        args.out_dir,
        num_classes=args.num_classes,
        recordings=args.recordings,
        segments_per_class=args.segments_per_class,
        action_frames=args.action_frames,
        gap_frames=args.gap_frames,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
    )
    return [
        f"wrote {args.recordings} recordings with {args.segments_per_class} actions of each of "
        f"{args.num_classes} classes ({args.action_frames[0]}-{args.action_frames[1]} frames, gaps of "
        f"{args.gap_frames[0]}-{args.gap_frames[1]}) to {args.out_dir / 'videos'}",
        f"  segments: {csv_path}",
    ]


def write_clips(args: argparse.Namespace) -> list[str]:
    out = make_synthetic_dataset(
        args.out_dir,
        num_classes=args.num_classes,
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        videos=args.videos,
        workers=args.workers,
        background=args.background,
    )
    names = [c.name for c in CLASSES[: args.num_classes]] + ([BACKGROUND.name] if args.background else [])
    n = len(names) * (args.train_per_class + args.val_per_class)
    lines = [
        f"wrote {n} videos of {args.frames} frames ({len(names)} classes: {', '.join(names)}) to {out}",
        f"  {out / 'train.txt'}, {out / 'val.txt'}, {out / 'label_map.txt'}",
    ]
    if args.videos:
        lines.append(f"  {out / 'videos'}/, {out / 'videos_train.txt'}, {out / 'videos_val.txt'}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
