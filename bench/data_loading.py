"""Data-loading benchmark: training clips per second beside only decoding the same JPEGs.

python -m bench.data_loading [--clips 480] [--rounds 3] [--workers 2]

Frames: the 10-second real clips in ../shared/data/real dumped with `tools/dump_frames.py
--short-side 256` (JPEG quality 90) into --data-dir (reused when already there), or, without the
real clips, the synthetic dataset at 256 x 256. Each configuration loads 16-frame training clips
(every 2nd frame, temporal jitter) through a DataLoader with --workers workers:

- decode only: cv2.imread of the clip's frames, returned as a T x H x W x 3 uint8 tensor;
- decode, uint8 / float32 clip out: the same, returning an (unfilled) 3 x 16 x 224 x 224 uint8 or
  float32 tensor instead: the cost of moving such clips between processes, with no augmentation;
- s3d / x3d: the template's full training pipeline as the trainer runs it (normalize=False),
  3 x 16 x 224 x 224 uint8 out (s3d: multi-scale crop, photometric distortion on every clip; x3d:
  random resized crop, none / photometric / CrossNorm with p .1 / .45 / .45, with a mean_std_list.txt
  made from the same frames). The trainer normalises the batch in the training step
  (normalize_batch); that cost is timed separately, in this process, and reported beside the table.

Configurations alternate over --rounds rounds and the median is reported, which damps the noise of a
shared machine. A second table times the same work in this one process with time.process_time()
(CPU time, so less sensitive to other processes): decoding and augmenting separately, per clip, and
normalising a batch of --batch-size clips as the trainer does on CPU (float32, channels_last_3d).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Dataset, RandomSampler

from action_rec.data.crossnorm import MEAN_STD_LIST, write_mean_std_list
from action_rec.data.dataset import RawFrameDataset, load_frames, torch_seeded_rng, worker_init_fn
from action_rec.data.dump import dump_videos
from action_rec.data.statistics import clip_statistics, mean_std_pairs
from action_rec.data.synthetic import make_synthetic_dataset
from action_rec.data.transforms import normalize_batch
from bench.harness import (
    MODELS,
    ROOT,
    TEMPLATES,
    bench_command,
    environment,
    environment_text,
    finish_environment,
    in_rounds,
    markdown_table,
)

REAL = ROOT.parent / "shared" / "data" / "real"
REAL_VIDEOS = [
    "mmaction2/demo.mp4",
    "mmaction2/test.mp4",
    "UniFormer/Tw2yXa6CzWE.mp4",
    "Ask-Anything/hitting_baseball.mp4",
    "Ask-Anything/yoga.mp4",
    "Ask-Anything/making_cake.mp4",
    "Ask-Anything/playing_guitar.mp4",
    "decord/flipping_a_pancake.mkv",
]


def prepare_data(data_dir: Path) -> str:
    """Frames at 256 short side under data_dir; returns a description of them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if REAL.is_dir():
        videos = [v for v in REAL_VIDEOS if (REAL / v).is_file()]
        (data_dir / "videos.txt").write_text("".join(f"{v} {i}\n" for i, v in enumerate(videos)))
        summary = dump_videos(
            REAL, [data_dir / "videos.txt"], data_dir / "frames", workers=2, short_side=256, progress=False
        )
        if summary.failed:
            raise SystemExit("\n".join(summary.lines()))
        os.replace(data_dir / "frames" / "videos.txt", data_dir / "frames" / "train.txt")
        return f"{len(videos)} real clips from {REAL}, dumped at short side 256 (JPEG q90)"
    make_synthetic_dataset(
        data_dir / "frames", num_classes=6, train_per_class=4, val_per_class=0, frames=64, size=256
    )
    return "synthetic dataset, 24 videos of 64 frames, 256 x 256 (JPEG q90)"


class DecodeOnly(Dataset):
    """The same clips as the training dataset, only decoded: T x H x W x 3 uint8 (BGR, as cv2 gives it)."""

    def __init__(self, dataset: RawFrameDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rng = torch_seeded_rng()
        record = self.dataset.records[index]
        frames = [cv2.imread(str(record.frame_path(i))) for i in self.dataset.clip_indices(index, rng)]
        return torch.from_numpy(np.stack(frames)), record.label


class DecodeClipOut(DecodeOnly):
    """Decoding plus an (unfilled) 3 x 16 x 224 x 224 clip of ``dtype`` out: what shipping such clips
    through the DataLoader costs without any augmentation."""

    def __init__(self, dataset: RawFrameDataset, dtype: type):
        super().__init__(dataset)
        self.dtype = dtype

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        frames, label = super().__getitem__(index)
        return torch.from_numpy(np.empty((3, len(frames), 224, 224), self.dtype)), label


def as_list(batch: list) -> tuple[list, list]:
    """Collate decoded clips of different frame sizes (portrait videos) into lists."""
    clips, labels = zip(*batch, strict=True)
    return list(clips), list(labels)


def clips_per_second(dataset: Dataset, clips: int, workers: int, batch_size: int) -> float:
    sampler = RandomSampler(dataset, replacement=True, num_samples=clips + batch_size)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=worker_init_fn,
        collate_fn=as_list if type(dataset) is DecodeOnly else None,
    )
    it = iter(loader)
    next(it)  # workers started and warm
    start, n = time.perf_counter(), 0
    for batch, _ in it:
        n += len(batch)
    return n / (time.perf_counter() - start)


def cpu_ms_per_clip(dataset: RawFrameDataset, clips: int) -> tuple[float, float]:
    """(decode, augment) CPU milliseconds per clip in this process, one OpenCV / torch thread."""
    rng = np.random.default_rng(0)
    decode = augment = 0.0
    for k in range(clips):
        index = k % len(dataset)
        indices = dataset.clip_indices(index, rng)
        t0 = time.process_time()
        frames = load_frames(dataset.records[index], indices)
        t1 = time.process_time()
        dataset.transform(frames, rng)
        t2 = time.process_time()
        decode, augment = decode + t1 - t0, augment + t2 - t1
    return decode / clips * 1000, augment / clips * 1000


def normalize_ms_per_clip(dataset: RawFrameDataset, batch_size: int, repeats: int = 5) -> float:
    """CPU milliseconds per clip of the training step's normalize_batch (uint8 batch -> float32,
    channels_last_3d as the trainer on CPU), median of ``repeats``, in this process."""
    clip, _ = dataset[0]
    batch = clip[None].repeat(batch_size, 1, 1, 1, 1)
    mean, std = dataset.template.input.mean, dataset.template.input.std
    normalize_batch(batch, mean, std, torch.channels_last_3d)  # warm
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        normalize_batch(batch, mean, std, torch.channels_last_3d)
        times.append(time.process_time() - t0)
    return statistics.median(times) / batch_size * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data_loading", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/action_rec_bench_data"))
    parser.add_argument("--clips", type=int, default=480, help="clips per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    command = bench_command("bench.data_loading", argv)
    env = environment(1, "no OpenVINO; PyTorch and OpenCV with 1 thread per process", ("torch", "opencv-python"),
                      workers=f"{args.workers} DataLoader worker processes")  # fmt: skip
    print(environment_text(env))

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    described = prepare_data(args.data_dir)
    root = args.data_dir / "frames"
    templates = {
        name: yaml.safe_load((TEMPLATES / MODELS[name] / "template.yaml").read_text())
        for name in ("s3d", "x3d")
    }
    if not (root / MEAN_STD_LIST).is_file():
        val = RawFrameDataset(["train.txt"], [root], templates["x3d"], split="val")
        write_mean_std_list(
            root / MEAN_STD_LIST, mean_std_pairs(clip_statistics(val.records, val.template, 0, False))
        )
    # As the trainer builds them: uint8 clips out, normalised per batch in the training step.
    datasets = {
        name: RawFrameDataset(["train.txt"], [root], t, split="train", normalize=False)
        for name, t in templates.items()
    }
    frame = cv2.imread(str(datasets["x3d"].records[0].frame_path(1)))
    configs = {
        "decode only": DecodeOnly(datasets["x3d"]),
        "decode, uint8 clip out": DecodeClipOut(datasets["x3d"], np.uint8),
        "decode, float32 clip out": DecodeClipOut(datasets["x3d"], np.float32),
        "s3d (uint8 out)": datasets["s3d"],
        "x3d (uint8 out)": datasets["x3d"],
    }

    rates = in_rounds(
        {
            name: lambda dataset=dataset: clips_per_second(dataset, args.clips, args.workers, args.batch_size)
            for name, dataset in configs.items()
        },
        args.rounds,
    )
    median = {name: statistics.median(r) for name, r in rates.items()}

    cpu = {name: cpu_ms_per_clip(datasets[name], max(args.clips // 4, 40)) for name in ("s3d", "x3d")}
    normalize_ms = normalize_ms_per_clip(datasets["x3d"], args.batch_size)

    print(f"\n{environment_text(finish_environment(env, args.workers))}")
    print(f"data: {described}; frames {frame.shape[1]} x {frame.shape[0]}")
    print(
        f"clips: 16 x 224 x 224, every 2nd frame; DataLoader: {args.workers} workers, batch {args.batch_size}, "
        f"{args.clips} clips x {args.rounds} rounds (median)"
    )
    base = median["decode only"]
    rows = [
        [
            name,
            f"{rate:.1f}",
            f"{1000 / rate:.1f}",
            "" if name == "decode only" else f"{(base / rate - 1) * 100:+.0f} %",
        ]
        for name, rate in median.items()
    ]
    print("\n" + markdown_table(["pipeline", "clips/s", "ms per clip", "vs decode only"], rows, "lrrr"))
    print("\nCPU time in one process (time.process_time, 1 thread), per clip:")
    rows = [
        [name, f"{dec:.2f}", f"{aug:.2f}", f"{aug / dec * 100:.0f} %"] for name, (dec, aug) in cpu.items()
    ]
    rows.append([f"normalize_batch (training step, batch of {args.batch_size}, float32 channels_last_3d)", "",
                 f"{normalize_ms:.2f}", ""])  # fmt: skip
    print(
        markdown_table(["template", "decode ms", "augment ms (uint8 out)", "augment / decode"], rows, "lrrr")
    )
    worst_name = min(("s3d (uint8 out)", "x3d (uint8 out)"), key=median.__getitem__)
    worst = (base / median[worst_name] - 1) * 100
    transport = (base / median["decode, uint8 clip out"] - 1) * 100
    float_transport = (base / median["decode, float32 clip out"] - 1) * 100
    # Normalising happens in the main process, beside the training step, not in the loader workers;
    # counted as if the loader paid it too, it gives an upper bound on the whole data cost.
    with_normalize = ((1000 / median[worst_name] + normalize_ms) * base / 1000 - 1) * 100
    print()
    print(
        f"full pipeline on top of decoding (DataLoader, worst template: {worst_name}): {worst:+.0f} % "
        "(target < 50 %),"
    )
    print(f"  of which shipping uint8 clips with no augmentation at all: {transport:+.0f} %,")
    print(f"  and the augmentation work itself: {worst - transport:+.0f} %;")
    print(
        f"  shipping float32 clips instead (the pipeline before uint8 clips) would cost {float_transport:+.0f} %."
    )
    print(
        f"normalising the batch in the training step: {normalize_ms:.2f} ms per clip in the main process; "
        f"with it counted as loader time too (an upper bound): {with_normalize:+.0f} %"
    )
    print("command:", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
