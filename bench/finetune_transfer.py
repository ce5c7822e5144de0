"""Fine-tuning modes on a transfer task that runs on a CPU: accuracy, clips/s and minutes.

    python -m bench.finetune_transfer --threads 1                  # S3D, 5 / 10 / 30 clips, 3 seeds
    python -m bench.finetune_transfer --threads 1 --pretrained quickstart/s3d-rgb-mobilenet-v3/outputs/best.pth
    python -m bench.finetune_transfer --modes head blocks:3 --clips 10 --seeds 0
    python -m bench.finetune_transfer --classes rotating_clockwise rotating_counterclockwise --out-dir /tmp/rot

1. pre-train S3D from scratch on the quick start's data (six motions: left / right / up / down /
   growing / shrinking, and the background class) with ``tools/quickstart.py --finetune``'s recipe
   (FINETUNE_PRETRAIN: the quick start's reduced clip, 8 frames of 64 x 64, 6 epochs), once (kept in
   --out-dir); or start from --pretrained weights, e.g. the full quick start's model (the same clip and
   data, 10 epochs);
2. fine-tune it to held-out classes it never saw (the four diagonal motions, chance 25 %) with 5, 10
   and 30 training clips per class, in each mode of ``training.trainable``: ``head`` and ``blocks:3``
   with ``training.cache_features`` (the CPU modes), and ``all`` (the whole network, no cache); and,
   as the baseline that shows what the pre-training buys, ``scratch``: the same network trained on the
   same clips from random weights (everything trainable, the quick start's from-scratch rate);
3. report, per mode and training-set size, the top-1 on 50 held-out validation clips per class of the
   last epoch's weights and of the best epoch's (``best.pth``, chosen on 10 other clips per class,
   ``select.txt``: the held-out clips choose nothing), the training speed (clips/s over the epochs,
   cache excluded) and the wall time of the fine-tuning (cache and per-epoch selection included). Each
   seed draws other training and validation clips and another fine-tuning run (the pre-trained backbone
   is the same); the table gives the mean and the range over seeds.

Prints a Markdown table and the command that produced it, and plots top-1 against clips per class
(``transfer.png`` in --out-dir). Every run is seeded; timings depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from action_rec.data.synthetic import HELD_OUT, ROTATIONS, make_held_out_dataset, make_synthetic_dataset
from action_rec.evaluation.evaluate import evaluate
from action_rec.templates import Template, apply_overrides, load_template
from action_rec.training import TrainOptions, train
from action_rec.training.logs import read_metrics
from bench.harness import (
    MODELS,
    TEMPLATES,
    bench_command,
    environment,
    environment_text,
    finish_environment,
    markdown_table,
)
from tools.quickstart import (
    FINETUNE_PRETRAIN,
    FINETUNE_SELECT_PER_CLASS,
    QUICK_TRAINING,
    TRIMMED_DATA,
    finetune_settings,
    pretrain_settings,
)

S3D = TEMPLATES / MODELS["s3d"] / "template.yaml"
VAL_PER_CLASS = 50


def pretrain(out: Path, args: argparse.Namespace) -> Path:
    if args.pretrained is not None:
        print(f"# pre-trained backbone: {args.pretrained}")
        return args.pretrained
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
            frames=TRIMMED_DATA["frames"],
            size=TRIMMED_DATA["size"],
            workers=2,
            background=True,
        )
    settings = [*pretrain_settings(args.pretrain_epochs), "training.workers=1"]
    template = apply_overrides(load_template(S3D), settings)
    start = time.monotonic()
    train(
        template,
        TrainOptions(out / "pretrained", ["train.txt"], [str(data)], device="cpu", seed=0, progress=False),
    )
    minutes = (time.monotonic() - start) / 60
    print(
        f"# pre-trained from scratch on 6 motion classes and the background x {args.pretrain_per_class} clips, "
        f"{args.pretrain_epochs} epochs in {minutes:.1f} min: val top-1 {val_top1(template, weights, data):.1f} % "
        f"on {7 * FINETUNE_PRETRAIN['val_per_class']} clips (--set {' '.join(settings)})"
    )
    return weights


def val_top1(template: Template, weights: Path, data: Path) -> float:
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


def run_settings(mode: str, clips: int) -> list[str]:
    """Overrides of one run: quickstart's fine-tuning settings; `scratch` trains everything from random
    weights at the quick start's from-scratch learning rate, with the same epochs and batch size."""
    if mode != "scratch":
        return [*finetune_settings(mode, clips), "training.workers=1"]
    lr = QUICK_TRAINING["base_learning_rate"]
    return [
        *finetune_settings("all", clips),
        "training.head_only_epochs=0",
        f"training.base_learning_rate={lr}",
        "training.workers=1",
    ]


def fine_tune(
    out: Path,
    weights: Path,
    classes: tuple[str, ...],
    mode: str,
    clips: int,
    seed: int,
    overrides: list[str] = (),
) -> dict[str, float]:
    data = out / f"held_out_seed{seed}_{clips}"
    if (data / "label_map.txt").is_file() and (data / "label_map.txt").read_text().split() != list(classes):
        sys.exit(f"{data} holds other classes than {classes}: use another --out-dir per set of classes")
    if not (data / "select.txt").is_file():  # the same validation clips for every size and mode of a seed
        make_held_out_dataset(
            data, classes, train_per_class=clips, val_per_class=VAL_PER_CLASS, frames=TRIMMED_DATA["frames"],
            size=TRIMMED_DATA["size"], seed=seed, select_per_class=FINETUNE_SELECT_PER_CLASS,
        )  # fmt: skip
    tag = "".join(c if c.isalnum() else "_" for c in "_".join(overrides))  # --set runs apart, same data
    run_dir = out / (f"{mode.replace(':', '')}_{clips}_seed{seed}" + (f"_{tag}" if tag else ""))
    template = apply_overrides(load_template(S3D), [*run_settings(mode, clips), *overrides])
    start = time.monotonic()
    train(
        template,
        TrainOptions(run_dir, ["train.txt"], [str(data)], ["select.txt"], [str(data)],
                     load_weights=None if mode == "scratch" else str(weights), device="cpu", seed=seed,
                     progress=False),
    )  # fmt: skip
    minutes = (time.monotonic() - start) / 60
    epochs = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("kind") == "epoch"]
    speeds = [r["clips_per_s"] for r in epochs if r.get("clips_per_s")]
    return {
        "top1": val_top1(template, run_dir / "latest.pth", data),
        "top1_best": val_top1(template, run_dir / "best.pth", data),
        "clips_s": sum(speeds) / max(len(speeds), 1),
        "minutes": minutes,
        "epochs": len(epochs),
    }


def summarize(rows: list[tuple[str, int, int, dict]], modes: list[str], clips: list[int]) -> list[dict]:
    """Per mode and size: mean and range over seeds of the last and the best epoch's top-1, mean clips/s
    and minutes."""
    table = []
    for mode in modes:
        for n in clips:
            runs = [r for m, c, _, r in rows if m == mode and c == n]
            if not runs:
                continue
            top1, best = [r["top1"] for r in runs], [r["top1_best"] for r in runs]
            table.append(
                {
                    "mode": mode,
                    "clips": n,
                    "epochs": runs[0]["epochs"],
                    "top1": sum(top1) / len(top1),
                    "low": min(top1),
                    "high": max(top1),
                    "best": sum(best) / len(best),
                    "best_low": min(best),
                    "best_high": max(best),
                    "seeds": len(runs),
                    "clips_s": sum(r["clips_s"] for r in runs) / len(runs),
                    "minutes": sum(r["minutes"] for r in runs) / len(runs),
                }
            )
    return table


def plot(table: list[dict], classes: tuple[str, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode in dict.fromkeys(t["mode"] for t in table):
        rows = [t for t in table if t["mode"] == mode]
        x = [t["clips"] for t in rows]
        y = [t["best"] for t in rows]
        err = [[t["best"] - t["best_low"] for t in rows], [t["best_high"] - t["best"] for t in rows]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=mode)
    ax.axhline(100 / len(classes), color="grey", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_ylim(0, 102)
    ax.set_xticks([t["clips"] for t in table], [str(t["clips"]) for t in table])
    ax.set_xlabel("training clips per class")
    ax.set_ylabel("held-out top-1 (%) of the best epoch,\nmean and range over seeds")
    ax.set_title(f"S3D fine-tuned to {len(classes)} classes it never saw", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", type=Path, default=Path("/tmp/finetune_transfer"), help="data, runs, weights")
    p.add_argument("--modes", nargs="+", default=["head", "blocks:3", "all", "scratch"])
    p.add_argument("--clips", nargs="+", type=int, default=[5, 10, 30], help="training clips per class")
    p.add_argument(
        "--classes",
        nargs="+",
        default=list(HELD_OUT),
        help=f"held-out classes (default: the diagonal motions); e.g. {' '.join(ROTATIONS)}",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="held-out data and fine-tuning")
    p.add_argument("--pretrain-per-class", type=int, default=FINETUNE_PRETRAIN["train_per_class"])
    p.add_argument("--pretrain-epochs", type=int, default=FINETUNE_PRETRAIN["epochs"])
    p.add_argument(
        "--pretrained",
        type=Path,
        help="weights trained from scratch on the motion classes to start from instead, e.g. the quick start's "
        "best.pth (tools/quickstart.py: 10 epochs of 300 clips per class)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a busy machine)")
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="template overrides for every fine-tuning run, after the mode's, e.g. training.bn_statistics=update",
    )
    args = p.parse_args(argv)
    classes = tuple(args.classes)
    import torch
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    command = bench_command("bench.finetune_transfer", argv)
    env = environment(torch.get_num_threads(), "PyTorch in float32", ("torch",))
    print(f"{environment_text(env)}\nS3D at 8 x 64 x 64 (quick start)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    weights = pretrain(args.out_dir, args)
    rows = []
    runs = [(seed, n, mode) for seed in args.seeds for n in args.clips for mode in args.modes]
    for seed, n, mode in tqdm(runs, desc="fine-tuning runs", file=sys.stdout):
        r = fine_tune(args.out_dir, weights, classes, mode, n, seed, args.set)
        rows.append((mode, n, seed, r))
        tqdm.write(f"# {mode} x {n} clips, seed {seed}: {r}", file=sys.stdout)
    table = summarize(rows, args.modes, args.clips)
    print(
        f"\n# {len(classes)} held-out classes ({', '.join(classes)}; chance {100 / len(classes):.0f} %), "
        f"{len(classes) * VAL_PER_CLASS} validation clips, seeds {args.seeds}; "
        f"load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        markdown_table(
            ["mode", "clips / class", "epochs", "held-out top-1 (%), last epoch: mean (range)",
             "best epoch: mean (range)", "train clips/s", "minutes"],
            [
                (t["mode"], t["clips"], t["epochs"], f"{t['top1']:.1f} ({t['low']:.1f}-{t['high']:.1f})",
                 f"{t['best']:.1f} ({t['best_low']:.1f}-{t['best_high']:.1f})", f"{t['clips_s']:.1f}",
                 f"{t['minutes']:.1f}")
                for t in table
            ],
            "llrrrrr",
        )
    )  # fmt: skip
    plot(table, classes, args.out_dir / "transfer.png")
    print(f"\nDone in {(time.monotonic() - start) / 60:.1f} min; plot: {args.out_dir / 'transfer.png'}")
    print(environment_text(finish_environment(env, torch.get_num_threads())))
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
