#!/usr/bin/env python3
"""Write the synthetic sample dataset: classes that differ only in motion, in the raw-frame layout.

python tools/make_synthetic_dataset.py /tmp/synthetic [--videos] [--background]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.data.synthetic import BACKGROUND, CLASSES, make_synthetic_dataset  # noqa: E402
from action_rec.errors import UserError  # noqa: E402


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
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
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
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = [c.name for c in CLASSES[: args.num_classes]] + ([BACKGROUND.name] if args.background else [])
    n = len(names) * (args.train_per_class + args.val_per_class)
    print(
        f"wrote {n} videos of {args.frames} frames ({len(names)} classes: "
        f"{', '.join(names)}) to {out} in {time.perf_counter() - start:.1f} s"
    )
    print(f"  {out / 'train.txt'}, {out / 'val.txt'}, {out / 'label_map.txt'}")
    if args.videos:
        print(f"  {out / 'videos'}/, {out / 'videos_train.txt'}, {out / 'videos_val.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
