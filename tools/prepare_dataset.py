#!/usr/bin/env python3
r"""Turn a folder of videos (one folder per class) or a CSV into a training-ready raw-frame dataset.

python tools/prepare_dataset.py ${DATA_DIR}/videos ${DATA_DIR}/custom_dataset [--val-fraction 0.2] [--seed 0]
python tools/prepare_dataset.py kinetics_train.csv OUT_DIR --videos-dir ${KINETICS}/videos
python tools/prepare_dataset.py segments.csv OUT_DIR [--clip-s 2] [--margin-s 1] [--test-videos 2]

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

Untrimmed recordings (long videos with marked segments; --format, detected by default):
  segments-csv   a CSV with a header video,start,end,label (seconds) or video,start_frame,end_frame,label
                 (frames, end exclusive) and an optional split column; videos relative to --videos-dir
  activitynet    {"database": {id: {"subset", "annotations": [{"segment": [start, end], "label"}]}}},
                 the video of id is <id>.<ext> or v_<id>.<ext> in --videos-dir (searched recursively)
  segment-json   a folder of <video stem>.json files, each the segment list that demo.py --timeline writes
                 ([{"start_s", "end_s", "label", "score"}]) lying beside its video: a corrected
                 prediction becomes training data
Each segment gives training clips of --clip-s seconds from inside it (every --stride-s, at most
--max-clips-per-segment); the time at least --margin-s away from any segment gives no_action clips (at
most as many as the largest action class of its split, --no-action-ratio R: R times as many;
--no-action-clips N: N in all). Recordings are split whole: the annotation's split, else --test-videos
(a count, or a fraction below 1) held out for testing and --val-fraction of the rest for validation.
Each train and val recording is dumped once to rawframes/<recording>/ and its clips are annotation
lines pointing at frame ranges of it; val_videos.txt and test_videos.txt (<video><TAB><truth JSON>) and
truth/<recording>.json list the held-out recordings for tools/eval_timeline.py --videos and
tools/calibrate_timeline.py. A bad segment (end <= start, past the video's end, overlapping another of a
different label, an unknown video) is an error naming FILE:LINE, raised before anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.data.prepare import prepare_dataset  # noqa: E402
from action_rec.data.untrimmed import prepare_untrimmed  # noqa: E402
from action_rec.data.untrimmed_sources import FORMATS, detect_format  # noqa: E402
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
    untrimmed = parser.add_argument_group("untrimmed recordings (see below)")
    untrimmed.add_argument(
        "--format", choices=("auto", "trimmed", *FORMATS), default="auto", help="source format (auto: detect)"
    )
    untrimmed.add_argument("--clip-s", type=float, default=2.0, help="training clip length, seconds (2)")
    untrimmed.add_argument("--stride-s", type=float, help="seconds between clips (default: --clip-s)")
    untrimmed.add_argument(
        "--max-clips-per-segment", type=int, default=8, help="clips from one long segment (8)"
    )
    untrimmed.add_argument(
        "--margin-s", type=float, default=1.0, help="no_action clips stay this far from segments (1.0)"
    )
    no_action = untrimmed.add_mutually_exclusive_group()
    no_action.add_argument(
        "--no-action-ratio",
        type=float,
        default=1.0,
        help="no_action clips per split: at most R times its largest action class (1)",
    )
    no_action.add_argument("--no-action-clips", type=int, help="no_action clips in all, instead of a ratio")
    untrimmed.add_argument(
        "--test-videos", type=float, default=0, help="recordings held out for testing: N, or a fraction < 1"
    )
    args = parser.parse_args(argv)
    if args.short_side < 0:
        parser.error("--short-side must be 0 (full size) or positive")
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be in 1..100")

    def body() -> int:
        fmt = args.format
        if fmt == "auto":
            fmt = detect_format(args.source) if args.source.exists() else None
        common = {  # what both kinds of source take
            "videos_dir": args.videos_dir,
            "val_fraction": args.val_fraction,
            "seed": args.seed,
            "short_side": args.short_side or None,
            "workers": args.workers,
            "quality": args.quality,
            "frame_pattern": args.frame_pattern,
            "progress": not args.no_progress,
        }
        if fmt not in (None, "trimmed"):
            summary = prepare_untrimmed(
                args.source,
                args.out_dir,
                fmt,
                clip_s=args.clip_s,
                stride_s=args.stride_s,
                max_clips_per_segment=args.max_clips_per_segment,
                margin_s=args.margin_s,
                no_action_clips=args.no_action_clips,
                no_action_ratio=args.no_action_ratio,
                test_videos=args.test_videos,
                **common,
            )
        else:
            summary = prepare_dataset(args.source, args.out_dir, group_regex=args.group_regex, **common)
        print("\n".join(summary.lines()))
        return 1 if summary.failed else 0

    return run_cli(body)  # Ctrl-C: 130; the same command again resumes


if __name__ == "__main__":
    sys.exit(main())
