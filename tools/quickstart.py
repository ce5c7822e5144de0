#!/usr/bin/env python3
"""One command from a fresh clone to a trained and evaluated model, on the synthetic sample data.

    ./init_venv.sh && venv/bin/python tools/quickstart.py              # S3D, the README's template
    venv/bin/python tools/quickstart.py --model x3d                     # or x3d, or all
    venv/bin/python tools/quickstart.py --device cuda --gpu-num 1       # on a GPU

It runs the README's steps and prints each command, so you can repeat or change any of them:
1. make the synthetic motion dataset (six classes that differ only in the direction of motion);
2. instantiate the template into a work dir (tools/instantiate_template.py --no-download);
3. train from scratch with the work dir's train.py, at a reduced clip length and input size so that a
   2-core CPU finishes in minutes (the overrides are passed with --set and printed);
4. evaluate best.pth with the work dir's eval.py;
5. export best.pth to OpenVINO IR with the work dir's export.py (skip with --no-export).
Everything goes under --out-dir (default ./quickstart).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {
    "s3d": ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml",
    "x3d": ROOT / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml",
}

# The quick-start recipe: from scratch (no snapshot), short clips at a small size, a high learning rate
# with a cosine schedule. The flip is off because it would turn "moving left" into "moving right".
QUICK_SETTINGS = [
    "input.clip_len=8",
    "input.frame_interval=2",
    "input.size=64",
    "input.resize_short=72",
    "data.horizontal_flip=false",
    "data.rotation_deg=0",
    "training.lr_schedule=cosine",
    "training.warmup_epochs=1",
    "loss.scale_epochs=6",
]
QUICK_TRAINING = {"epochs": 12, "batch_size": 8, "base_learning_rate": 0.05}
DATA = {"num_classes": 6, "train_per_class": 24, "val_per_class": 8, "frames": 32, "size": 96}


def run(command: list[str], cwd: Path | None = None) -> float:
    """Run and echo a command; exit with its status when it fails. Returns the seconds it took."""
    print("\n$ " + shlex.join(command), flush=True)
    start = time.monotonic()
    status = subprocess.call(command, cwd=cwd)
    if status != 0:
        print(f"quickstart: the command above failed (exit status {status})", file=sys.stderr)
        sys.exit(status)
    return time.monotonic() - start


def make_data(data_dir: Path, args: argparse.Namespace) -> None:
    if (data_dir / "train.txt").is_file() and (data_dir / "val.txt").is_file():
        print(f"Sample data already in {data_dir} (delete it to make it again)")
        return
    run(
        [
            sys.executable,
            str(ROOT / "tools/make_synthetic_dataset.py"),
            str(data_dir),
            "--num-classes", str(DATA["num_classes"]),
            "--train-per-class", str(args.train_per_class),
            "--val-per-class", str(args.val_per_class),
            "--frames", str(DATA["frames"]),
            "--size", str(DATA["size"]),
            "--workers", "2",
        ]
    )  # fmt: skip


def quickstart(model: str, data_dir: Path, args: argparse.Namespace) -> dict:
    template = TEMPLATES[model]
    work_dir = args.out_dir / template.parent.name
    start = time.monotonic()
    if (work_dir / "train.py").is_file():
        print(f"\nWork dir {work_dir} exists: reusing it")
    else:
        run(
            [
                sys.executable,
                str(ROOT / "tools/instantiate_template.py"),
                str(template),
                str(work_dir),
                "--no-download",
            ]
        )
    outputs = work_dir / "outputs"
    overrides = QUICK_SETTINGS + list(args.set)
    print(f"\nQuick-start settings for {template.parent.name} (--set): {' '.join(overrides)}")
    train = [
        sys.executable, str(work_dir / "train.py"),
        "--train-ann-files", "train.txt", "--train-data-roots", str(data_dir),
        "--val-ann-files", "val.txt", "--val-data-roots", str(data_dir),
        "--save-checkpoints-to", str(outputs),
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
        "--base-learning-rate", str(args.base_learning_rate),
        "--workers", str(args.workers), "--device", args.device, "--gpu-num", str(args.gpu_num),
        "--seed", str(args.seed), "--set", *overrides,
    ]  # fmt: skip
    if args.resume and (outputs / "latest.pth").is_file():
        train.append("--resume")
    train_seconds = run(train)
    metrics_path = work_dir / "metrics.yaml"
    evaluate = [
        sys.executable, str(work_dir / "eval.py"),
        "--load-weights", str(outputs / "best.pth"),
        "--test-ann-files", "val.txt", "--test-data-roots", str(data_dir),
        "--save-metrics-to", str(metrics_path), "--device", args.device, "--workers", str(args.workers),
    ]  # fmt: skip
    run(evaluate)
    export_dir = None
    if args.export:
        export_dir = work_dir / "export"
        run([sys.executable, str(work_dir / "export.py"), "--load-weights", str(outputs / "best.pth"),
             "--save-model-to", str(export_dir), "--workers", str(args.workers)])  # fmt: skip
    metrics = {m["key"]: m["value"] for m in yaml.safe_load(metrics_path.read_text())["metrics"]}
    return {
        "model": template.parent.name,
        "work_dir": work_dir,
        "outputs": outputs,
        "metrics_path": metrics_path,
        "export_dir": export_dir,
        "top1": metrics["accuracy"],
        "mean_class": metrics["mean_class_accuracy"],
        "train_seconds": train_seconds,
        "seconds": time.monotonic() - start,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", choices=["s3d", "x3d", "all"], default="s3d", help="which template (all: both)")
    p.add_argument("--out-dir", type=Path, default=Path("quickstart"), help="where data and work dirs go")
    p.add_argument("--epochs", type=int, default=QUICK_TRAINING["epochs"])
    p.add_argument("--batch-size", type=int, default=QUICK_TRAINING["batch_size"])
    p.add_argument("--base-learning-rate", type=float, default=QUICK_TRAINING["base_learning_rate"])
    p.add_argument("--train-per-class", type=int, default=DATA["train_per_class"])
    p.add_argument("--val-per-class", type=int, default=DATA["val_per_class"])
    p.add_argument("--workers", type=int, default=2, help="data loading processes")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--gpu-num", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted quick start")
    p.add_argument("--no-export", dest="export", action="store_false", help="skip the OpenVINO export")
    p.add_argument(
        "--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="more template overrides"
    )
    args = p.parse_args(argv)
    args.out_dir = args.out_dir.resolve()
    start = time.monotonic()

    data_dir = args.out_dir / "data"
    make_data(data_dir, args)
    results = [
        quickstart(m, data_dir, args) for m in (["s3d", "x3d"] if args.model == "all" else [args.model])
    ]

    print(f"\nQuick start done in {time.monotonic() - start:.0f} s. Sample data: {data_dir}")
    for r in results:
        print(
            f"  {r['model']}: validation top-1 {r['top1']:.2f} % (mean class {r['mean_class']:.2f} %), "
            f"trained in {r['train_seconds']:.0f} s, {r['seconds']:.0f} s with evaluation\n"
            f"    work dir     {r['work_dir']}\n"
            f"    checkpoints  {r['outputs']}/best.pth, latest.pth\n"
            f"    logs         {r['outputs']}/train.log, metrics.jsonl, training_curves.png\n"
            f"    evaluation   {r['metrics_path']}, confusion_matrix.png, per_class_accuracy.csv"
            + (f"\n    OpenVINO IR  {r['export_dir']}/model.xml" if r["export_dir"] else "")
        )
    ir = next((r["export_dir"] for r in results if r["export_dir"]), None)
    if ir is not None:
        print(
            f"Recognize live: python tools/demo.py --model {ir}/model.xml --input 0   (a camera, or a video file)"
        )
    print("Then train on your own data: see the README, steps 2-5.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
