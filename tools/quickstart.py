#!/usr/bin/env python3
"""One command from a fresh clone to a trained and evaluated model, on the synthetic sample data.

    ./init_venv.sh && venv/bin/python tools/quickstart.py              # S3D, the README's template
    venv/bin/python tools/quickstart.py --model x3d                     # or x3d, or all
    venv/bin/python tools/quickstart.py --device cuda --nproc 1         # on a GPU

It runs the README's steps and prints each command, so you can repeat or change any of them:
1. make the synthetic motion dataset (six classes that differ only in the direction of motion:
   left / right, up / down, growing / shrinking, and a background class of still scenes: no action);
2. instantiate the template into a work dir (tools/instantiate_template.py --no-download);
3. train from scratch with the work dir's train.py, at a reduced clip length and input size so that a
   2-core CPU finishes in minutes (the overrides are passed with --set and printed);
4. evaluate best.pth with the work dir's eval.py;
5. export best.pth to OpenVINO IR with the work dir's export.py (skip with --no-export);
6. recognize a long test video with no-action gaps with the IR, as tools/demo.py --timeline does, and
   measure its action timeline against the truth as tools/eval_timeline.py does (frame accuracy, F1).
Everything goes under --out-dir (default ./quickstart).

    venv/bin/python tools/quickstart.py --recordings 40                 # from long recordings instead

``--recordings N`` takes the path a user takes with their own recordings instead of trimmed clips: it
records N long synthetic videos of the six motions (16-64 frames each, at varied speeds, with still and
jittering gaps and scene cuts between them) and the segment CSV a labelling tool exports
(make_synthetic_dataset.py --recordings), prepares them with tools/prepare_dataset.py (training clips
inside the segments, no_action clips mined from the gaps, twice as many as an action class has, 10 % of
the recordings held out for testing and 10 % for validation), trains on 4 frames every 4th of 56 x 56
in batches of 32 (S3D) or 64 (X3D), exports with the timeline settings calibrated on the validation
recordings (model.json), and measures the held-out recordings' timelines with tools/eval_timeline.py
(frame accuracy, F1@0.10/0.25/0.50, edit score, per-class F1, PNGs).

    venv/bin/python tools/quickstart.py --finetune                      # fine-tuning on a CPU, < 10 min

``--finetune`` runs the README's fine-tuning path on a transfer task instead: pre-train S3D from scratch
on the same data as the above (six motions and the background class) for fewer epochs, then fine-tune
it to four classes it never saw (the diagonal motions: up-left, down-right, down-left, up-right) from 10 clips per class,
training only the last three blocks and the head on cached features (``training.trainable=blocks:3``,
``training.cache_features=true``), and evaluate it on 200 held-out clips. ``--pretrained best.pth``
fine-tunes given weights instead of pre-training (e.g. the above's quickstart/s3d-rgb-mobilenet-v3/outputs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {
    "s3d": ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml",
    "x3d": ROOT / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml",
}

# The quick-start recipe: from scratch (no snapshot), 8 frames of 64 x 64, AdamW with a cosine schedule
# (SGD, the original fine-tuning recipe, leaves these backbones at chance level for the first thousand
# steps from scratch). The flip is off because it would turn "moving left" into "moving right"; the
# colour stage is off because the synthetic objects and backgrounds already have random colours.
QUICK_SETTINGS = [
    "input.clip_len=8",
    "input.frame_interval=2",
    "input.size=64",
    "input.resize_short=72",
    "data.horizontal_flip=false",
    "data.rotation_deg=0",
    "data.colour={none: 1, photometric: 0, crossnorm: 0}",
    "training.optimizer=adamw",
    "training.weight_decay=0.01",
    "training.lr_schedule=cosine",
    "training.warmup_epochs=1",
    "loss.scale_epochs=5",
]
QUICK_TRAINING = {"batch_size": 8, "base_learning_rate": 0.0007}
# With residual blocks that start as the identity S3D learns these classes in 3 epochs (96 % after 3
# of 10, 98.6 % after 5 of 5; it took 4-6 before); X3D in 3 as well (96 % after 3 of 3), at half
# S3D's speed per clip on a CPU.
QUICK_EPOCHS = {"s3d": 5, "x3d": 3}
# Fine-tuning on a CPU (--finetune, bench.finetune_transfer): fewer clips get more epochs, so that
# every training-set size makes a similar number of steps; a gentler rate than from scratch.
FINETUNE_EPOCHS = {5: 20, 10: 15, 30: 8}
# Its pre-training (the snapshot of the transfer task): the quick start's data and recipe (six motions
# and the background class, 300 clips each), for 6 epochs at a higher rate instead of 10, so that
# --finetune runs end to end in under 10 minutes on a 2-core CPU. From scratch these backbones need
# about a thousand steps, and many different clips, before they tell the directions apart (the kind of
# motion comes first): 150 clips per class for 8 epochs at 1.5e-3, or 100 for 6 at 2e-3, left them at
# 15-34 %, a backbone that cannot transfer.
FINETUNE_PRETRAIN = {"train_per_class": 300, "val_per_class": 20, "epochs": 6, "batch_size": 8,
                     "base_learning_rate": 0.001}  # fmt: skip
PRETRAIN_SETTINGS = QUICK_SETTINGS
FINETUNE_VAL_PER_CLASS = 50  # held-out validation clips per class (4 classes: 1 clip = 0.5 points)
FINETUNE_SELECT_PER_CLASS = 10  # other clips per class that choose the best epoch (select.txt)


def pretrain_settings(epochs: int = FINETUNE_PRETRAIN["epochs"]) -> list[str]:
    """Template overrides (--set) of the transfer task's pre-training from scratch on the six motions."""
    return [
        *PRETRAIN_SETTINGS,
        f"training.epochs={epochs}",
        f"training.batch_size={FINETUNE_PRETRAIN['batch_size']}",
        f"training.base_learning_rate={FINETUNE_PRETRAIN['base_learning_rate']}",
    ]


def finetune_settings(mode: str, clips_per_class: int) -> list[str]:
    """Template overrides (--set) of a CPU fine-tuning run in `mode` (training.trainable) from
    `clips_per_class` clips: the quick-start clip, features cached unless the whole network trains."""
    epochs = FINETUNE_EPOCHS.get(clips_per_class, max(8, 240 // max(clips_per_class, 1)))
    return [
        *QUICK_SETTINGS,
        f"training.trainable={mode}",
        f"training.cache_features={'false' if mode == 'all' else 'true'}",
        "training.cache_views=5",
        f"training.epochs={epochs}",
        f"training.head_only_epochs={0 if mode == 'head' else max(1, epochs // 6)}",
        "training.batch_size=4",
        "training.base_learning_rate=0.0003",
    ]


# The default quick start's data (and the fine-tuning task's pre-training): trimmed 16-frame clips, so
# that one clip of 8 frames, every 2nd, sees the whole motion.
TRIMMED_DATA = {"num_classes": 6, "train_per_class": 300, "val_per_class": 30, "frames": 16, "size": 80}
# Its test video: two segments of every class in random order, each one motion as in training (16
# frames, 0.53 s at 30 fps), with 0.8-1.6 s of still scenes (no action) before, between and after them.
# Windows every 2 frames, scores averaged over 3; segments of 0.25 s or more (the actions are short).
TEST_VIDEO = {"gap_frames": (24, 48), "fps": 30.0, "stride": 2, "average": 3, "min_segment_s": 0.25}

# --recordings N: long recordings of the six motions with marked segments, as a user records them.
# Each recording holds 4 actions of every class, 16-64 frames each at a pace drawn per action (a longer
# action covers more ground, up to a limit, beyond which it is slower), with 16-48 frames of no action
# (the object still or jittering, and a cut to the next scene) between them.
RECORDINGS = {"num_classes": 6, "segments_per_class": 4, "action_frames": "16-64", "gap_frames": "16-48",
              "size": 80}  # fmt: skip
# prepare_dataset.py on them: training clips of one model window (16 frames at 30 fps) inside the
# segments, no_action clips mined from the gaps at least 3 frames away from any action, twice as many as
# the largest action class (no action is stillness, jitter and cuts to a new scene; with as many as one
# action class S3D's seed 2 reached 92.8 % top-1, most of its mistakes no-action clips across a cut; with
# twice as many 95.2 %), 10 % of the recordings held out for testing and 10 % for validation (the
# timeline settings are calibrated there).
PREPARE = {"clip_s": 0.54, "margin_s": 0.1, "no_action_ratio": 2, "test_videos": 0.1, "val_fraction": 0.1}
# The model window on recordings: 4 frames every 4th (the same 16 frames as the trimmed clips' 8 every
# 2nd, at half the cost; the motion between two frames is twice as large), 56 x 56 pixels: at 48 S3D
# stalls at 93 % (slow growth against jittering stills), 64 costs 1.8x as much per clip.
RECORDING_SETTINGS = [*QUICK_SETTINGS, "input.clip_len=4", "input.frame_interval=4", "input.size=56",
                      "input.resize_short=63"]  # fmt: skip
# Large batches: a CPU training step over clips this small is mostly per-call overhead (S3D's step at
# 48 x 48: 205 clips/s in batches of 32, 114 in batches of 8; X3D's at 56 x 56: 91-114 in batches of
# 64, 76-87 in batches of 32; python -m bench.train_throughput --size S --clip-len 4 --batch-size B).
# From scratch the onset of direction is a matter of clips seen, and it comes as early in
# batches of 32 at twice the rate as in batches of 8 (S3D, 48 x 48: 68 % after 7 epochs against 48 %).
RECORDING_TRAINING = {
    "s3d": {"batch_size": 32, "base_learning_rate": 0.002},
    "x3d": {"batch_size": 64, "base_learning_rate": 0.003},
}
# From scratch S3D needs several epochs before it tells the directions apart inside long motions (its
# temporal kernels see one pixel at a time); with residual blocks that start as the identity the onset
# comes after 4-5 (87 % after 7, 96 % after 13 of 14); X3D, whose depthwise kernels span time and space,
# after 4 (95 % after 8 of 10). In 10 epochs X3D's validation top-1 was still rising at the end (seeds
# 0-2 and seed 0 on oneDNN's AVX2 kernels: 94.9-96.9 %), in 11 it reached 96.0-96.9 %; the 11th epoch is
# paid for by its faster depthwise gradients (action_rec/models/conv.py).
RECORDING_EPOCHS = {"s3d": 14, "x3d": 11}


def run(command: list[str], cwd: Path | None = None) -> float:
    """Run and echo a command; exit with its status when it fails. Returns the seconds it took."""
    print("\n$ " + shlex.join(command), flush=True)
    start = time.monotonic()
    status = subprocess.call(command, cwd=cwd)
    if status != 0:
        print(f"quickstart: the command above failed (exit status {status})", file=sys.stderr)
        sys.exit(status)
    return time.monotonic() - start


def default_workers(device: str) -> int:
    """Loader processes for training on `device`: none on a CPU of two cores or fewer, where loader
    processes take turns with the two training threads (X3D's recordings quick start trained 64 clips/s
    loading in-process, 51 with 2 workers; the clips are the same either way), else 2."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return 0 if device == "cpu" and (os.cpu_count() or 1) <= 2 else 2


def make_data(data_dir: Path, args: argparse.Namespace) -> None:
    if (data_dir / "train.txt").is_file() and (data_dir / "val.txt").is_file():
        label_map = data_dir / "label_map.txt"
        if "background" not in label_map.read_text().split():
            print(f"quickstart: {label_map} has no background class (an older quick start's data); "
                  f"delete {data_dir} to make it again", file=sys.stderr)  # fmt: skip
            sys.exit(2)
        print(f"Sample data already in {data_dir} (delete it to make it again)")
        return
    run(
        [
            sys.executable,
            str(ROOT / "tools/make_synthetic_dataset.py"),
            str(data_dir),
            "--num-classes", str(TRIMMED_DATA["num_classes"]),
            "--train-per-class", str(args.train_per_class),
            "--val-per-class", str(args.val_per_class),
            "--frames", str(TRIMMED_DATA["frames"]),
            "--size", str(TRIMMED_DATA["size"]),
            "--workers", "2", "--background",
        ]
    )  # fmt: skip


def recognize_test_video(model_xml: Path, args: argparse.Namespace) -> dict:
    """Recognize a new synthetic video with no-action gaps (two segments of every class, in random
    order) with the exported IR, as tools/demo.py --timeline does; print the predicted action timeline
    beside the truth and measure it as tools/eval_timeline.py does. Returns the timeline metrics."""
    from action_rec.evaluation.timeline import evaluate_timeline_files, format_metrics
    from action_rec.fileio import atomic_write
    from action_rec.inference import (
        format_truth,
        make_synthetic_video,
        recognize_video,
        timeline_agreement,
        truth_segments,
    )

    labels = np.random.default_rng(args.seed).permutation(
        np.repeat(np.arange(TRIMMED_DATA["num_classes"]), 2)
    )
    out = model_xml.parent
    video, fps = out / "synthetic_test.mp4", TEST_VIDEO["fps"]
    truth = make_synthetic_video(
        video, labels.tolist(), frames_per_segment=TRIMMED_DATA["frames"], size=TRIMMED_DATA["size"], fps=fps, seed=args.seed,
        gap_frames=TEST_VIDEO["gap_frames"],
    )  # fmt: skip
    truth_json, timeline_json = out / "synthetic_test_truth.json", out / "synthetic_test_timeline.json"
    atomic_write(truth_json, json.dumps(truth_segments(truth, fps), indent=1) + "\n")
    stride, average, min_segment = TEST_VIDEO["stride"], TEST_VIDEO["average"], TEST_VIDEO["min_segment_s"]
    print(
        f"\n$ python tools/demo.py --model {model_xml} --input {video} --no-show --stride {stride} "
        f"--average {average} --min-segment {min_segment} --timeline {timeline_json}   (in-process)",
        flush=True,
    )
    entries, segments = recognize_video(
        model_xml,
        video,
        stride=stride,
        average=average,
        progress=False,
        timeline={"min_segment_s": min_segment},
    )
    atomic_write(timeline_json, json.dumps(segments, indent=1) + "\n")
    correct, judged = timeline_agreement(entries, truth)
    print(f"Truth ({len(truth)} segments of {TRIMMED_DATA['frames']} frames, no action between):")
    print(format_truth(truth, fps))
    print("Predicted action segments:")
    for seg in segments:
        print(
            f"{seg['start_s']:7.2f} s - {seg['end_s']:7.2f} s  {seg['label']:<24} (score {seg['score']:.2f})"
        )
    print(f"Windows inside one segment labelled right: {correct} of {judged}")
    metrics_path, plot_path = (
        out / "synthetic_test_timeline_metrics.yaml",
        out / "synthetic_test_timeline.png",
    )
    print(f"\n$ python tools/eval_timeline.py --pred {timeline_json} --truth {truth_json}   (in-process)")
    metrics = evaluate_timeline_files(timeline_json, truth_json, metrics_path, plot_path)
    print(format_metrics(metrics))
    return {**metrics, "timeline": timeline_json, "plot": plot_path, "metrics_path": metrics_path}


def make_recordings(data_dir: Path, args: argparse.Namespace) -> Path:
    """The sample recordings and their segment CSV, prepared as a user's own (prepare_dataset.py);
    returns the prepared data root (train.txt, val.txt, val_videos.txt, test_videos.txt)."""
    recordings, prepared = data_dir / "recordings", data_dir / "prepared"
    if (prepared / "train.txt").is_file() and (prepared / "test_videos.txt").is_file():
        print(f"Sample data already in {data_dir} (delete it to make it again)")
        return prepared
    print("\nRecord: long videos of the six motions with no action between them, and the segment CSV a "
          "labelling tool would export")  # fmt: skip
    run([sys.executable, str(ROOT / "tools/make_synthetic_dataset.py"), str(recordings),
         "--recordings", str(args.recordings), "--num-classes", str(RECORDINGS["num_classes"]),
         "--segments-per-class", str(args.segments_per_class), "--action-frames", RECORDINGS["action_frames"],
         "--gap-frames", RECORDINGS["gap_frames"], "--size", str(RECORDINGS["size"]), "--workers", "2", "--seed", str(args.seed)])  # fmt: skip
    print("\nPrepare: training clips inside the segments, no_action clips from the gaps, recordings held "
          "out whole for validation and testing")  # fmt: skip
    run([sys.executable, str(ROOT / "tools/prepare_dataset.py"), str(recordings / "segments.csv"), str(prepared),
         "--clip-s", str(PREPARE["clip_s"]), "--margin-s", str(PREPARE["margin_s"]),
         "--no-action-ratio", str(PREPARE["no_action_ratio"]),
         "--test-videos", str(PREPARE["test_videos"]), "--val-fraction", str(PREPARE["val_fraction"]),
         "--short-side", "0", "--workers", "2", "--seed", str(args.seed)])  # fmt: skip
    return prepared


def evaluate_timelines(model_xml: Path, prepared: Path, out_dir: Path) -> dict:
    """The held-out recordings through the exported model, as tools/demo.py runs a video, with its
    calibrated timeline settings; returns the overall metrics (tools/eval_timeline.py's YAML)."""
    run([sys.executable, str(ROOT / "tools/eval_timeline.py"), "--model", str(model_xml),
         "--videos", str(prepared / "test_videos.txt"), "--out-dir", str(out_dir), "--no-progress"])  # fmt: skip
    return yaml.safe_load((out_dir / "timeline_metrics.yaml").read_text())["overall"]


def quickstart(model: str, data_root: Path, args: argparse.Namespace) -> dict:
    """Instantiate, train, evaluate, export and recognize with one template on `data_root` (the
    trimmed clips, or the prepared recordings with ``--recordings``)."""
    recordings = bool(args.recordings)
    template = TEMPLATES[model]
    work_dir = args.out_dir / template.parent.name
    start = time.monotonic()
    if (work_dir / "train.py").is_file():
        print(f"\nWork dir {work_dir} exists: reusing it")
    else:
        run([sys.executable, str(ROOT / "tools/instantiate_template.py"), str(template), str(work_dir),
             "--no-download"])  # fmt: skip
    outputs = work_dir / "outputs"
    overrides = (RECORDING_SETTINGS if recordings else QUICK_SETTINGS) + list(args.set)
    epochs = args.epochs or (RECORDING_EPOCHS if recordings else QUICK_EPOCHS)[model]
    training = RECORDING_TRAINING[model] if recordings else QUICK_TRAINING
    print(f"\nTrain {template.parent.name} from scratch (quick-start settings, --set: {' '.join(overrides)})")
    train = [
        sys.executable, str(work_dir / "train.py"),
        "--train-ann-files", "train.txt", "--train-data-roots", str(data_root),
        "--val-ann-files", "val.txt", "--val-data-roots", str(data_root),
        "--save-checkpoints-to", str(outputs),
        "--epochs", str(epochs), "--batch-size", str(args.batch_size or training["batch_size"]),
        "--base-learning-rate", str(args.base_learning_rate or training["base_learning_rate"]),
        "--workers", str(args.workers), "--device", args.device, "--nproc", str(args.nproc),
        "--seed", str(args.seed), "--set", *overrides,
    ]  # fmt: skip
    if args.resume and (outputs / "latest.pth").is_file():
        train.append("--resume")
    train_seconds = run(train)
    metrics_path = work_dir / "metrics.yaml"
    print("\nEvaluate the best epoch on the validation clips")
    run([sys.executable, str(work_dir / "eval.py"), "--load-weights", str(outputs / "best.pth"),
         "--test-ann-files", "val.txt", "--test-data-roots", str(data_root),
         "--save-metrics-to", str(metrics_path), "--device", args.device, "--workers", str(args.workers)])  # fmt: skip
    export_dir, timeline = None, None
    if args.export:
        export_dir = work_dir / "export"
        # The export measures PyTorch's and the IRs' top-1 on the validation clips; on recordings it also
        # calibrates the timeline settings on the validation recordings (val_videos.txt beside val.txt)
        # into model.json. The trimmed quick start adds an INT8 IR calibrated on the same clips.
        int8 = args.int8 or not recordings
        print("\nExport to OpenVINO IR" + (", the timeline settings calibrated on the validation recordings"
                                             if recordings else ""))  # fmt: skip
        run([sys.executable, str(work_dir / "export.py"), "--load-weights", str(outputs / "best.pth"),
             "--save-model-to", str(export_dir), *(["--int8"] if int8 else []),
             "--calib-ann-files", "val.txt", "--calib-data-roots", str(data_root),
             "--workers", str(args.workers)])  # fmt: skip
        if recordings:
            print("\nRecognize the held-out recordings with the IR and measure their timelines")
            timeline = evaluate_timelines(export_dir / "model.xml", data_root, export_dir / "timeline_eval")
        else:
            timeline = recognize_test_video(export_dir / "model.xml", args)
    metrics = {m["key"]: m["value"] for m in yaml.safe_load(metrics_path.read_text())["metrics"]}
    return {
        "model": template.parent.name,
        "work_dir": work_dir,
        "outputs": outputs,
        "metrics_path": metrics_path,
        "export_dir": export_dir,
        "int8": args.int8 or not recordings,
        "top1": metrics["top1_accuracy"],
        "timeline": timeline,
        "mean_class": metrics["mean_class_accuracy"],
        "train_seconds": train_seconds,
        "seconds": time.monotonic() - start,
    }


def finetune_quickstart(args: argparse.Namespace) -> int:
    """The transfer task end to end (see the module docstring); prints each command and the figures."""
    from action_rec.data.synthetic import HELD_OUT, make_held_out_dataset
    from action_rec.training.logs import METRICS, read_metrics

    start = time.monotonic()
    root = args.out_dir / "finetune"
    motion, held_out = root / "motion", root / "held_out"
    pre = {**FINETUNE_PRETRAIN, "train_per_class": args.pretrain_per_class}
    pre["epochs"] = args.epochs or pre["epochs"]
    if args.pretrained is None and not (motion / "train.txt").is_file():
        run([sys.executable, str(ROOT / "tools/make_synthetic_dataset.py"), str(motion), "--num-classes", "6",
             "--train-per-class", str(pre["train_per_class"]), "--val-per-class", str(pre["val_per_class"]),
             "--frames", str(TRIMMED_DATA["frames"]), "--size", str(TRIMMED_DATA["size"]), "--workers", "2", "--background"])  # fmt: skip
    if not (held_out / "select.txt").is_file():
        call = (f"make_held_out_dataset('{held_out}', train_per_class={args.finetune_clips}, "
                f"val_per_class={FINETUNE_VAL_PER_CLASS}, select_per_class={FINETUNE_SELECT_PER_CLASS}, "
                f"seed={args.seed})")  # fmt: skip
        print(f'\n$ python -c "from action_rec.data.synthetic import make_held_out_dataset; {call}"')
        make_held_out_dataset(
            held_out,
            train_per_class=args.finetune_clips,
            val_per_class=FINETUNE_VAL_PER_CLASS,
            select_per_class=FINETUNE_SELECT_PER_CLASS,
            seed=args.seed,
        )
    work_dir = root / TEMPLATES["s3d"].parent.name
    if not (work_dir / "train.py").is_file():
        run([sys.executable, str(ROOT / "tools/instantiate_template.py"), str(TEMPLATES["s3d"]), str(work_dir),
             "--no-download"])  # fmt: skip
    common = ["--device", args.device, "--seed", str(args.seed), "--workers", str(args.workers)]
    pretrained = work_dir / "pretrained"
    pretrain_seconds = 0.0
    if args.pretrained is not None:
        weights, pretrained_top1 = args.pretrained.resolve(), None
        print(f"\n1. Pre-trained weights: {weights} (--pretrained)")
    elif not (pretrained / "latest.pth").is_file():
        print("\n1. Pre-train from scratch on the six motions and the background class (the snapshot of this "
              "transfer task)")  # fmt: skip
        pretrain_seconds = run([sys.executable, str(work_dir / "train.py"),
             "--train-ann-files", "train.txt", "--train-data-roots", str(motion),
             "--val-ann-files", "val.txt", "--val-data-roots", str(motion), "--save-checkpoints-to", str(pretrained),
             *common, "--set", *pretrain_settings(pre["epochs"]), *args.set])  # fmt: skip
    if args.pretrained is None:
        weights = pretrained / "latest.pth"
        pretrained_top1 = json.loads((pretrained / "result.json").read_text())["last_metrics"].get("val_top1")
    print(f"\n2. Fine-tune to {' / '.join(HELD_OUT)} from {args.finetune_clips} clips per class, "
          f"training.trainable={args.finetune_mode}")  # fmt: skip
    tuned = work_dir / "outputs"
    seconds = run([sys.executable, str(work_dir / "train.py"), "--load-weights", str(weights),
                   "--train-ann-files", "train.txt", "--train-data-roots", str(held_out),
                   "--val-ann-files", "select.txt", "--val-data-roots", str(held_out), "--save-checkpoints-to", str(tuned),
                   *common, "--set", *finetune_settings(args.finetune_mode, args.finetune_clips), *args.set])  # fmt: skip
    metrics_path, last_path = work_dir / "metrics.yaml", work_dir / "metrics_last_epoch.yaml"
    print(
        "\n3. Evaluate on the held-out clips the best epoch's weights (outputs/best.pth, chosen on select.txt; "
        "eval.py's default), and the last epoch's"
    )
    evaluate = [sys.executable, str(work_dir / "eval.py"), "--test-ann-files", "val.txt",
                "--test-data-roots", str(held_out), "--device", args.device, "--workers", str(args.workers)]  # fmt: skip
    run([*evaluate, "--save-metrics-to", str(metrics_path)])
    run([*evaluate, "--load-weights", str(tuned / "latest.pth"), "--save-metrics-to", str(last_path)])
    metrics = {m["key"]: m["value"] for m in yaml.safe_load(metrics_path.read_text())["metrics"]}
    last = {m["key"]: m["value"] for m in yaml.safe_load(last_path.read_text())["metrics"]}
    tuned_result = json.loads((tuned / "result.json").read_text())
    curve = [
        r["val_top1"] for r in read_metrics(tuned / METRICS) if r.get("kind") == "epoch" and "val_top1" in r
    ]
    pretrained_line = (
        f"pre-trained in {pretrain_seconds:.0f} s to {pretrained_top1:.1f} % on the motions and background"
        if pretrain_seconds and pretrained_top1 is not None
        else f"pre-trained weights from {weights}"
    )
    print(
        f"\nFine-tuning quick start done in {time.monotonic() - start:.0f} s: {pretrained_line}; "
        f"{args.finetune_mode} on {args.finetune_clips} clips per class, fine-tuned in {seconds:.0f} s; "
        f"held-out top-1 {metrics['top1_accuracy']:.2f} % on {len(HELD_OUT) * FINETUNE_VAL_PER_CLASS} clips "
        f"(chance {100 / len(HELD_OUT):.0f} %) with the best epoch ({tuned_result['best_epoch']} of "
        f"{tuned_result['epochs']}), {last['top1_accuracy']:.2f} % with the last\n"
        f"    select.txt top-1 per epoch  {' '.join(f'{v:.1f}' for v in curve)}\n"
        f"    work dir     {work_dir}\n    evaluation   {metrics_path}\n"
        "Other modes and sizes: python -m bench.finetune_transfer"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    from action_rec.script_flags import add_torch_device_flag

    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", choices=["s3d", "x3d", "all"], default="s3d", help="which template (all: both)")
    p.add_argument("--out-dir", type=Path, default=Path("quickstart"), help="where data and work dirs go")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"default: {QUICK_EPOCHS}, with --recordings {RECORDING_EPOCHS}",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"default: {QUICK_TRAINING['batch_size']}, with --recordings "
        f"{ {m: t['batch_size'] for m, t in RECORDING_TRAINING.items()} }",
    )
    p.add_argument(
        "--base-learning-rate",
        type=float,
        default=None,
        help=f"default: {QUICK_TRAINING['base_learning_rate']}, with --recordings "
        f"{ {m: t['base_learning_rate'] for m, t in RECORDING_TRAINING.items()} }",
    )
    p.add_argument("--train-per-class", type=int, default=TRIMMED_DATA["train_per_class"])
    p.add_argument("--val-per-class", type=int, default=TRIMMED_DATA["val_per_class"])
    p.add_argument(
        "--recordings",
        type=int,
        default=0,
        metavar="N",
        help="train on N long sample recordings with marked segments instead of trimmed clips, as you "
        "would on your own recordings (prepare_dataset.py, calibrated timeline, eval_timeline.py); e.g. 40",
    )
    p.add_argument(
        "--segments-per-class",
        type=int,
        default=RECORDINGS["segments_per_class"],
        help="--recordings: actions per class per recording",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="--recordings: also export an INT8 IR (the trimmed quick start always does)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data loading processes (default: 0, loading in the training process, on a CPU of 2 cores or "
        "fewer; else 2)",
    )
    add_torch_device_flag(p)
    p.add_argument("--nproc", type=int, default=1, help="training processes (train.py --nproc)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted quick start")
    p.add_argument("--no-export", dest="export", action="store_false", help="skip the OpenVINO export")
    p.add_argument(
        "--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="more template overrides"
    )
    p.add_argument(
        "--finetune", action="store_true", help="the fine-tuning transfer task instead (see above)"
    )
    p.add_argument("--finetune-mode", default="blocks:3", help="training.trainable of --finetune")
    p.add_argument("--finetune-clips", type=int, default=10, help="training clips per class of --finetune")
    p.add_argument(
        "--pretrain-per-class",
        type=int,
        default=FINETUNE_PRETRAIN["train_per_class"],
        help="--finetune: motion clips per class to pre-train on (--epochs: its epochs)",
    )
    p.add_argument(
        "--pretrained",
        type=Path,
        help="--finetune: fine-tune these weights instead of pre-training, e.g. the quick start's "
        "quickstart/s3d-rgb-mobilenet-v3/outputs/best.pth",
    )
    args = p.parse_args(argv)
    args.out_dir = args.out_dir.resolve()
    if args.workers is None:
        args.workers = default_workers(args.device)
    if args.finetune:
        return finetune_quickstart(args)
    start = time.monotonic()

    data_dir = args.out_dir / "data"
    if args.recordings:
        data_root = make_recordings(data_dir, args)
    else:
        make_data(data_dir, args)
        data_root = data_dir
    results = [
        quickstart(m, data_root, args) for m in (["s3d", "x3d"] if args.model == "all" else [args.model])
    ]

    print(f"\nQuick start done in {time.monotonic() - start:.0f} s. Sample data: {data_dir}")
    for r in results:
        print(
            f"  {r['model']}: validation top-1 {r['top1']:.2f} % (mean class {r['mean_class']:.2f} %), "
            f"trained in {r['train_seconds']:.0f} s, {r['seconds']:.0f} s with evaluation\n"
            f"    work dir     {r['work_dir']}\n"
            f"    checkpoints  {r['outputs']}/best.pth, latest.pth\n"
            f"    logs         {r['outputs']}/train.log, metrics.jsonl, training_curves.png\n"
            f"    evaluation   {r['metrics_path']}, confusion_matrix.png, per_class_accuracy.csv, predictions.csv"
        )
        if r["export_dir"] is None:
            continue
        t = r["timeline"]
        print(f"    OpenVINO IR  {r['export_dir']}/model.xml" + (", model_int8.xml" if r["int8"] else ""))
        if args.recordings:
            print(
                f"    held-out recordings ({data_root / 'test_videos.txt'}), timeline settings calibrated on "
                f"{data_root / 'val_videos.txt'} (model.json): frame accuracy {t['frame_accuracy']:.1f} %, "
                f"F1@0.10/0.25/0.50 {t['f1@0.10']:.2f} / {t['f1@0.25']:.2f} / {t['f1@0.50']:.2f}, "
                f"edit {t['edit']:.1f}; {r['export_dir'] / 'timeline_eval'}/timeline_metrics.yaml, *.png"
            )
        else:
            print(
                f"    test video   timeline frame accuracy {t['frame_accuracy']:.1f} %, F1@0.50 "
                f"{t['f1@0.50']:.2f}, edit {t['edit']:.1f}: {t['timeline']}, {t['plot'].name}"
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
