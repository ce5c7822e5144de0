"""``train.py`` of a work dir: flags of the original toolkit plus resume, devices, seeds, overrides.

    python train.py --load-weights snapshot.pth \\
        --train-ann-files train.txt --train-data-roots DATA --val-ann-files val.txt --val-data-roots DATA \\
        --save-checkpoints-to outputs [--epochs N --batch-size N --base-learning-rate LR --nproc N]
        [--resume] [--device cpu|cuda|cuda:N] [--workers N] [--seed N] [--amp]
        [--set section.key=value ...]

Defaults come from --template, else the work dir's template.yaml. Exit status: 0 done, 2 bad input (one
line naming the file), 1 failure at run time (loss not finite, out of memory), 130 interrupted.
``--nproc N`` spawns N processes (DistributedDataParallel): one per GPU over NCCL on CUDA, N CPU
processes over gloo with ``--device cpu``. Several machines: start this script with ``torchrun --nnodes ...
--nproc-per-node ... train.py ...``; torchrun's environment is detected and no processes are spawned.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from action_rec.errors import UserError
from action_rec.script_flags import add_script_flags
from action_rec.templates import Template
from action_rec.workdir import default_out_dir

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train or fine-tune an action recognition model; defaults come from the template.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_script_flags(
        p,
        weights_help="fine-tune from these weights (snapshot.pth or a checkpoint)",
        set_help="override template values, e.g. --set input.clip_len=8 training.lr_schedule=cosine",
        batch_size_help="training.batch_size (per process)",
    )
    p.add_argument("--train-ann-files", nargs="+", required=True, metavar="FILE", help="training annotations")
    p.add_argument("--train-data-roots", nargs="+", required=True, metavar="DIR", help="data root(s) of them")
    p.add_argument("--val-ann-files", nargs="+", default=[], metavar="FILE", help="validation annotations")
    p.add_argument("--val-data-roots", nargs="+", default=[], metavar="DIR", help="data root(s) of them")
    p.add_argument(
        "--save-checkpoints-to",
        type=Path,
        help="output dir (default: the work dir's outputs/, or outputs/ beside --template)",
    )
    p.add_argument("--epochs", type=int, help="training.epochs")
    p.add_argument("--base-learning-rate", type=float, help="training.base_learning_rate")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="training processes (DistributedDataParallel): one per GPU on CUDA, CPU processes over gloo "
        "with --device cpu",
    )
    p.add_argument("--resume", action="store_true", help="continue from latest.pth in the output dir")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and augmentation")
    p.add_argument("--amp", action="store_true", help="mixed precision (float16 autocast) on CUDA")
    p.add_argument(
        "--stop-after", type=int, metavar="EPOCHS", help="stop after this many epochs (resume later)"
    )
    p.add_argument(
        "--precise-bn",
        type=int,
        default=0,
        metavar="CLIPS",
        help="before each validation, recompute BatchNorm statistics on this many training clips "
        "(helps when training from scratch at a high learning rate; 0: off, as the original)",
    )
    return p


def _template(args: argparse.Namespace, template_path: str | Path | None) -> Template:
    from action_rec.templates import apply_overrides, load_template
    from action_rec.workdir import script_template

    template = load_template(script_template(args.template, template_path, "train.py"))
    overrides = list(args.set)
    for flag, key in (
        ("epochs", "training.epochs"),
        ("batch_size", "training.batch_size"),
        ("base_learning_rate", "training.base_learning_rate"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if overrides:
        template = apply_overrides(template, overrides)
    return template


def main(argv: list[str] | None = None, template_path: str | Path | None = None) -> int:
    """Parse flags, train, print a summary; returns the exit status."""
    args = build_parser().parse_args(argv)
    from action_rec.training import TrainingError, TrainOptions, train

    try:
        template = _template(args, template_path)
        world_size = args.nproc
        if world_size < 1:
            raise UserError(f"--nproc: need at least 1 process, got {world_size}")
        if args.set:
            print(f"Template overrides: {' '.join(args.set)}")
        options = TrainOptions(
            out_dir=args.save_checkpoints_to or default_out_dir(args.template, template_path),
            train_ann_files=args.train_ann_files,
            train_data_roots=args.train_data_roots,
            val_ann_files=args.val_ann_files,
            val_data_roots=args.val_data_roots,
            load_weights=args.load_weights,
            resume=args.resume,
            device=args.device,
            world_size=world_size,
            workers=args.workers,
            seed=args.seed,
            amp=args.amp,
            progress=not args.no_progress,
            stop_after=args.stop_after,
            precise_bn=args.precise_bn,
        )
        train(template, options)
    except UserError as exc:  # bad input: 2; a run-time failure (loss not finite, out of memory): 1
        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, TrainingError) else 2
    except KeyboardInterrupt:
        print("interrupted: continue with the same command and --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
