"""``eval.py`` of a work dir: accuracy and complexity of a checkpoint, as the original toolkit reported.

    python eval.py --test-ann-files val.txt --test-data-roots DATA [--load-weights outputs/best.pth] \\
        --save-metrics-to metrics.yaml [--device cpu] [--batch-size N] [--workers N] [--set KEY=VALUE ...]

Works with best.pth (the default: the best epoch on validation; latest.pth when there is none),
latest.pth or a bare published snapshot whose head fits the test set. Writes metrics.yaml,
confusion_matrix.png, per_class_accuracy.csv and predictions.csv (every clip: its annotation line, true
and predicted class, probabilities). Exit status: 0, 2 bad input, 1 failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from action_rec.errors import run_cli
from action_rec.script_flags import add_script_flags

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eval.py",
        description="Evaluate a checkpoint: top-1, top-5, mean class accuracy, GFLOPs, parameters.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_script_flags(
        p,
        weights_help="checkpoint (best.pth, latest.pth), published snapshot, or an exported model (model.xml, "
        "model_int8.xml, model.onnx: evaluated through OpenVINO as deployed, with the preprocessing of its "
        "model.json); default: the work dir's outputs/best.pth (the best epoch on validation), else "
        "outputs/latest.pth",
        set_help="override template values (applied after a checkpoint's own model/input/loss settings)",
        batch_size_help="clips per batch (default: the template's training.batch_size)",
    )
    p.add_argument("--test-ann-files", nargs="+", required=True, metavar="FILE", help="test annotations")
    p.add_argument("--test-data-roots", nargs="+", required=True, metavar="DIR", help="data root(s) of them")
    p.add_argument("--save-metrics-to", type=Path, default=Path("metrics.yaml"), help="metrics.yaml path")
    p.add_argument(
        "--precision-hint",
        choices=["default", "f32", "bf16"],
        default="default",
        help="exported models: OpenVINO's default settings (what users run: bf16 on CPUs that have it), "
        "or an explicit execution precision",
    )
    return p


def main(argv: list[str] | None = None, template_path: str | Path | None = None) -> int:
    """Parse flags, evaluate, write the report, print the figures; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_cli(lambda: _evaluate(args, template_path))


def _evaluate(args: argparse.Namespace, template_path: str | Path | None) -> int:
    from action_rec.evaluation.evaluate import evaluate, write_report
    from action_rec.evaluation.exported import EXPORTED_SUFFIXES, evaluate_exported
    from action_rec.templates import apply_overrides, load_template
    from action_rec.workdir import default_out_dir, default_weights, script_template

    path = script_template(args.template, template_path, "eval.py")
    if args.load_weights is None:
        args.load_weights = str(default_weights(default_out_dir(args.template, template_path), "eval.py"))
        print(f"Evaluating {args.load_weights}")
    if Path(args.load_weights).suffix.lower() in EXPORTED_SUFFIXES:
        template = load_template(path)
        if args.set:
            template = apply_overrides(template, args.set)
        result = evaluate_exported(
            template,
            args.load_weights,
            args.test_ann_files,
            args.test_data_roots,
            hint=args.precision_hint,
            workers=args.workers,
            progress=not args.no_progress,
        )
    else:
        result = evaluate(
            load_template(path),
            args.load_weights,
            args.test_ann_files,
            args.test_data_roots,
            overrides=args.set,
            device=args.device,
            batch_size=args.batch_size,
            workers=args.workers,
            progress=not args.no_progress,
        )
    paths = write_report(result, args.save_metrics_to)
    _print_summary(result)
    print("Wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _print_summary(result: dict) -> None:
    accuracy = (
        f"{result['num_clips']} clips of {len(result['class_names'])} classes: top-1 {result['top1']:.2f} %, "
        f"top-5 {result['top5']:.2f} %, mean class {result['mean_class']:.2f} %; "
    )
    deployed = result.get("deployment")
    if deployed:
        print(
            accuracy
            + f"{deployed['weights_precision']} weights executed in {deployed['execution_precision']} "
            f"({deployed['precision_hint']} settings), input {'x'.join(map(str, result['input_shape']))}"
        )
    else:
        print(
            accuracy + f"{result['gflops']:.2f} GFLOPs at {'x'.join(map(str, result['input_shape']))}, "
            f"{result['params_m']:.3f} M parameters, checkpoint {result['checkpoint_mb']:.1f} MB"
        )


if __name__ == "__main__":
    sys.exit(main())
