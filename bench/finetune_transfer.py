#!/usr/bin/env python3
"""Fine-tuning modes on a transfer task that runs on a CPU: accuracy, clips/s and minutes.

    python bench/finetune_transfer.py                          # S3D, 5 / 10 / 30 clips per class
    python bench/finetune_transfer.py --modes head blocks:3 --clips 10

1. pre-train S3D from scratch on the quick start's six motion classes (left / right / up / down /
   growing / shrinking; the quick start's reduced clip, 8 frames of 64 x 64), once (kept in --out-dir);
2. fine-tune it to held-out classes it never saw (rotating clockwise / counter-clockwise) with 5, 10
   and 30 training clips per class, in each mode of ``training.trainable``: ``head`` and ``blocks:3``
   with ``training.cache_features`` (the CPU modes), and ``all`` (the whole network, no cache);
3. report, per mode and training-set size, the top-1 of the last epoch's weights on 60 held-out
   validation clips (evaluated once, after training: no model selection on them), the training speed
   (clips/s over the epochs, cache excluded) and the wall time of the fine-tuning (cache included).

Prints a Markdown table and the command that produced it. Every run is seeded; timings depend on
the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from action_rec.data.synthetic import make_held_out_dataset, make_synthetic_dataset  # noqa: E402
from action_rec.evaluation.evaluate import evaluate  # noqa: E402
from action_rec.templates import apply_overrides, load_template  # noqa: E402
from action_rec.training import TrainOptions, train  # noqa: E402
from action_rec.training.logs import read_metrics  # noqa: E402
from tools.quickstart import FINETUNE_PRETRAIN, QUICK_SETTINGS, finetune_settings  # noqa: E402

S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"


def pretrain(out: Path, args: argparse.Namespace) -> Path:
    weights = out / "pretrained" / "latest.pth"
    if weights.is_file():
        print(f"# pre-trained backbone: {weights} (delete it to train again)")
        return weights
    data = out / "motion"
    if not (data / "train.txt").is_file():
        make_synthetic_dataset(
            data,
            6,
            args.pretrain_per_class,
            FINETUNE_PRETRAIN["val_per_class"],
            frames=16,
            size=80,
            workers=2,
        )
    template = apply_overrides(
        load_template(S3D), [*QUICK_SETTINGS, "training.batch_size=8", "training.workers=2"]
    )
    template["training"]["base_learning_rate"] = 0.0007
    template["training"]["epochs"] = args.pretrain_epochs
    start = time.monotonic()
    train(
        template,
        TrainOptions(out / "pretrained", ["train.txt"], [str(data)], device="cpu", seed=0, progress=False),
    )
    print(
        f"# pre-trained from scratch on 6 motion classes x {args.pretrain_per_class} clips, {args.pretrain_epochs} "
        f"epochs in {(time.monotonic() - start) / 60:.1f} min: val top-1 {val_top1(template, weights, data):.1f} %"
    )
    return weights


def val_top1(template: dict, weights: Path, data: Path) -> float:
    """Top-1 (%) of `weights` on the validation clips of `data`, evaluated once after training."""
    result = evaluate(
        template,
        weights,
        ["val.txt"],
        [str(data)],
        device="cpu",
        workers=1,
        progress=False,
        log=lambda m: None,
    )
    return result["top1"]


def fine_tune(out: Path, weights: Path, mode: str, clips: int) -> dict[str, float]:
    data = out / f"held_out_{clips}"
    if not (data / "train.txt").is_file():
        make_held_out_dataset(data, train_per_class=clips, val_per_class=30)  # the same 60 val clips for all
    run_dir = out / f"{mode.replace(':', '')}_{clips}"
    template = apply_overrides(load_template(S3D), [*finetune_settings(mode, clips), "training.workers=1"])
    start = time.monotonic()
    train(
        template,
        TrainOptions(run_dir, ["train.txt"], [str(data)], load_weights=str(weights), device="cpu", seed=0,
                     progress=False),
    )  # fmt: skip
    minutes = (time.monotonic() - start) / 60
    epochs = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("kind") == "epoch"]
    speeds = [r["clips_per_s"] for r in epochs if r.get("clips_per_s")]
    return {
        "top1": val_top1(template, run_dir / "latest.pth", data),
        "clips_s": sum(speeds) / max(len(speeds), 1),
        "minutes": minutes,
        "epochs": len(epochs),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", type=Path, default=Path("/tmp/finetune_transfer"), help="data, runs, weights")
    p.add_argument("--modes", nargs="+", default=["head", "blocks:3", "all"])
    p.add_argument("--clips", nargs="+", type=int, default=[5, 10, 30], help="training clips per class")
    p.add_argument("--pretrain-per-class", type=int, default=FINETUNE_PRETRAIN["train_per_class"])
    p.add_argument("--pretrain-epochs", type=int, default=FINETUNE_PRETRAIN["epochs"])
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a busy machine)")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python bench/finetune_transfer.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"# {command.strip()}")

    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} CPU threads; S3D at 8 x 64 x 64 (quick start)"
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights = pretrain(args.out_dir, args)
    rows = []
    for mode in args.modes:
        for clips in args.clips:
            r = fine_tune(args.out_dir, weights, mode, clips)
            rows.append((mode, clips, r))
            print(f"# {mode} x {clips}: {r}", flush=True)
    print("\n| mode | clips / class | epochs | val top-1 (%) | train clips/s | minutes |")
    print("|---|---|---|---|---|---|")
    for mode, clips, r in rows:
        print(
            f"| {mode} | {clips} | {r['epochs']} | {r['top1']:.1f} | {r['clips_s']:.1f} | {r['minutes']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
