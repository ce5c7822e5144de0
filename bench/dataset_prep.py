"""Dataset preparation benchmark: prepare_dataset against dump_frames on the same clips, and check_dataset.

python -m bench.dataset_prep [--workers 2] [--rounds 1] [--real-dir ../shared/data/real]

Clips: every video in --real-dir, one per folder and name (the real clips of ../shared/data/real: avi, mkv, mp4, GIF, 6-30 fps,
224 x 224 to 768 x 576), arranged as class folders (symlinks; the class is the clip's folder) for
prepare_dataset and listed in a `<video> <label>` file for dump_frames. Each configuration starts from an
empty output folder (nothing resumed) with --workers processes:

- dump_frames, full size: `tools/dump_frames.py` as the seed README runs it (no --short-side);
- dump_frames, short side 256: the same with `--short-side 256`;
- prepare_dataset: `tools/prepare_dataset.py` with its defaults (short side 256; the split, the
  annotations, label map, table and chart included);
- prepare_dataset, rerun: the same command again on the finished output (every video skipped).

Then check_dataset (every frame read, hashed and decoded) over prepare_dataset's train.txt and val.txt,
with --workers processes and with one (wall clock, and CPU time of the one-process run): seconds per
1000 frames. Times are medians over --rounds rounds; on a shared machine expect noise of 10-20 %.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from action_rec.data.check import check_dataset
from action_rec.data.dump import dump_videos
from action_rec.data.prepare import VIDEO_EXTENSIONS, prepare_dataset
from bench.harness import (
    ROOT,
    bench_command,
    environment,
    environment_text,
    finish_environment,
    markdown_table,
)

REAL = ROOT.parent / "shared" / "data" / "real"


def arrange(real: Path, work: Path) -> tuple[Path, Path, list[Path]]:
    """Class folders of symlinks and a dump_frames list over the same videos."""
    found = sorted(p for p in real.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    # one video per folder and name (test.avi and test.mp4 would share dump_frames' rawframes/test)
    videos = list({(v.parent, v.stem): v for v in reversed(found)}.values())[::-1]
    folders = work / "videos"
    classes = sorted({v.parent.name for v in videos})
    lines = []
    for video in videos:
        target = folders / video.parent.name / video.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(video)
        lines.append(f"{video.relative_to(real)} {classes.index(video.parent.name)}\n")
    video_list = work / "list.txt"
    video_list.write_text("".join(lines))
    return folders, video_list, videos


def timed(run) -> tuple[float, object]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def cpu_timed(run) -> float:
    """CPU seconds of this process (less sensitive to a busy machine than wall time)."""
    start = time.process_time()
    run()
    return time.process_time() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dataset_prep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--real-dir", type=Path, default=REAL)
    args = parser.parse_args(argv)
    if not args.real_dir.is_dir():
        sys.exit(f"error: {args.real_dir}: real clips not found")
    command = bench_command("bench.dataset_prep", argv)
    env = environment(1, "no OpenVINO", ("opencv-python",), workers=f"{args.workers} worker processes")
    print(environment_text(env))

    with tempfile.TemporaryDirectory(prefix="dataset_prep_") as tmp:
        work = Path(tmp)
        folders, video_list, videos = arrange(args.real_dir, work)
        configs = {
            "dump_frames, full size": lambda out: dump_videos(
                args.real_dir, [video_list], out, workers=args.workers, progress=False
            ),
            "dump_frames, short side 256": lambda out: dump_videos(
                args.real_dir, [video_list], out, workers=args.workers, short_side=256, progress=False
            ),
            "prepare_dataset": lambda out: prepare_dataset(
                folders, out, workers=args.workers, progress=False
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in configs}
        times["prepare_dataset, rerun"] = []
        frames = 0
        for _ in range(args.rounds):
            for name, run in configs.items():
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                seconds, result = timed(lambda run=run, out=out: run(out))
                times[name].append(seconds)
                if name == "prepare_dataset":
                    frames = sum(c.frames for c in result.classes)
                    failed = result.failed
                    seconds, _ = timed(
                        lambda out=out: prepare_dataset(folders, out, workers=args.workers, progress=False)
                    )
                    times["prepare_dataset, rerun"].append(seconds)
                    check_root = work / "checked"
                    shutil.rmtree(check_root, ignore_errors=True)
                    shutil.copytree(out, check_root)
        check_times = {}
        for workers in dict.fromkeys((args.workers, 1)):
            runs = [
                timed(
                    lambda w=workers: check_dataset(
                        ["train.txt", "val.txt"], [check_root], workers=w, progress=False
                    )
                )
                for _ in range(args.rounds)
            ]
            report = runs[0][1]
            check_times[workers] = statistics.median(s for s, _ in runs)
        check_cpu = statistics.median(
            cpu_timed(
                lambda: check_dataset(["train.txt", "val.txt"], [check_root], workers=1, progress=False)
            )
            for _ in range(args.rounds)
        )

    finish_environment(env, args.workers)
    print(f"\n{environment_text(env)}")
    print(f"{len(videos)} videos ({len(failed)} failed to decode), {frames} frames; {args.workers} workers; "
          f"median of {args.rounds} round(s)\n")  # fmt: skip
    rows = []
    for name, values in times.items():
        seconds = statistics.median(values)
        rows.append([name, f"{seconds:.2f}", f"{len(videos) / seconds:.1f}", f"{frames / seconds:.0f}"])
    print(markdown_table(["configuration", "seconds", "videos/s", "frames/s"], rows, "lrrr"))
    print(
        f"\ncheck_dataset over {report.rows} rows, {report.frames} frames, {len(report.problems)} problem(s):"
    )
    for workers, seconds in check_times.items():
        print(
            f"  {workers} worker(s): {seconds:.2f} s, {1000 * seconds / report.frames:.3f} s per 1000 frames (wall clock)"
        )
    print(
        f"  1 worker, CPU time: {check_cpu:.2f} s, {1000 * check_cpu / report.frames:.3f} s per 1000 frames"
    )
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
