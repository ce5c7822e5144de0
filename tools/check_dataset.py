#!/usr/bin/env python3
"""Check a raw-frame dataset before training: every problem as FILE:LINE, exit status 1 if any.

python tools/check_dataset.py --ann-files train.txt val.txt --data-roots ${DATA_DIR} [--workers N]

For every annotation row: its frames exist and decode completely (a JPEG cut short by a partial copy
has no end-of-image marker and is reported), the folder holds as many frames as the row says, the fps
is plausible, the label id fits the data root's label_map.txt, and no video's frames (content hash)
are in two of the given annotation files (train and val). Videos are checked in parallel.
Exit status: 0 no problem, 1 problems (listed), 2 bad input (a missing file or root).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.data.check import check_dataset  # noqa: E402
from action_rec.errors import run_cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ann-files", nargs="+", required=True, metavar="FILE", help="annotation files")
    parser.add_argument(
        "--data-roots",
        nargs="+",
        required=True,
        metavar="DIR",
        help="their data root(s): one, or one per file",
    )
    parser.add_argument("--frame-pattern", default=None, help="frame file names (default {:05d}.jpg)")
    parser.add_argument("--template", type=Path, help="take the frame pattern from this template.yaml")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: all cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    def body() -> int:
        pattern = args.frame_pattern
        if pattern is None and args.template is not None:
            from action_rec.templates import load_template

            pattern = load_template(args.template).data.frame_pattern
        report = check_dataset(
            args.ann_files,
            args.data_roots,
            frame_pattern=pattern or "{:05d}.jpg",
            workers=args.workers,
            progress=not args.no_progress,
        )
        print("\n".join(report.lines()))
        return 1 if report.problems else 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
