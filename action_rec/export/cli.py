"""``export.py`` of a work dir: checkpoint -> verified OpenVINO IR with its metadata.

    python export.py --save-model-to export [--load-weights outputs/best.pth (the default; else latest.pth)]
        [--precision FP32|FP16] [--input-format rgb255|normalized|bgr8]
        [--int8 --calib-ann-files val.txt --calib-data-roots DATA [--calib-clips 300]]
        [--class-names label_map.txt] [--set section.key=value ...]

Writes ``model.xml`` + ``model.bin`` (and ``model.onnx``, ``model.json``; with ``--int8`` also
``model_int8.xml/.bin/.json``). Exit status: 0 done, 2 bad input or failed verification (one line,
nothing written), 1 other failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from action_rec.errors import UserError
from action_rec.export.model_json import DEFAULT_INPUT_FORMAT, INPUT_FORMATS
from action_rec.export.onnx_export import DEFAULT_OPSET
from action_rec.script_flags import add_script_flags

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="export.py",
        description="Export a checkpoint to OpenVINO IR through ONNX, verified against PyTorch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_script_flags(
        p,
        weights_help="checkpoint or published snapshot (default: the work dir's outputs/best.pth, the best "
        "epoch on validation, else outputs/latest.pth)",
        set_help="override template values (applied after a checkpoint's own model/input/loss settings)",
        torch_device=False,  # exports on the CPU
    )
    p.add_argument("--save-model-to", required=True, type=Path, help="output directory")
    p.add_argument("--precision", choices=["FP32", "FP16"], default="FP32", help="weights of model.xml")
    p.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default=DEFAULT_INPUT_FORMAT,
        help="what model.xml takes: rgb255 = float planar RGB 0-255, normalized inside the IR (the original "
        "toolkit's and Open Model Zoo's contract); normalized = the PyTorch input; bgr8 = uint8 N T H W C BGR "
        "camera frames, converted inside the IR",
    )
    p.add_argument("--int8", action="store_true", help="also write model_int8.xml, quantized with NNCF")
    p.add_argument(
        "--deploy",
        action="store_true",
        help="also write deploy/ (and deploy.zip): the IRs with a standalone recognize.py that needs only "
        "openvino, opencv-python and numpy",
    )
    p.add_argument(
        "--int8-preset",
        choices=["mixed", "performance"],
        default="mixed",
        help="NNCF preset: mixed (asymmetric activations) or performance (all-symmetric, faster, may cost accuracy)",
    )
    p.add_argument(
        "--calib-ann-files",
        nargs="+",
        default=[],
        metavar="FILE",
        help="clips for INT8 calibration and the accuracy check (e.g. the validation set)",
    )
    p.add_argument("--calib-data-roots", nargs="+", default=[], metavar="DIR", help="data root(s) of them")
    p.add_argument(
        "--timeline-videos",
        nargs="+",
        metavar="LIST",
        help="untrimmed validation recordings (val_videos.txt) to calibrate the timeline settings on "
        "(default: val_videos.txt in the calibration data roots, if any; see tools/calibrate_timeline.py)",
    )
    p.add_argument("--calib-clips", type=int, default=300, help="use at most this many clips (evenly spread)")
    p.add_argument("--class-names", type=Path, help="class names, one a line (default: from the checkpoint)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest allowed FP32 IR vs PyTorch class-probability difference",
    )
    return p


def main(argv: list[str] | None = None, template_path: str | Path | None = None) -> int:
    """Parse flags, export, print a summary; returns the exit status."""
    args = build_parser().parse_args(argv)
    from action_rec.data.annotations import read_label_map
    from action_rec.export.pipeline import ExportOptions, export_model
    from action_rec.templates import apply_overrides, load_template
    from action_rec.workdir import default_out_dir, default_weights, script_template

    try:
        template = load_template(script_template(args.template, template_path, "export.py"))
        weights = args.load_weights or default_weights(
            default_out_dir(args.template, template_path), "export.py"
        )
        if args.set:
            template = apply_overrides(
                template, args.set
            )  # checked now; applied again after the checkpoint's
        if args.calib_clips < 1:
            raise UserError("--calib-clips must be at least 1")
        options = ExportOptions(
            precision=args.precision,
            input_format=args.input_format,
            int8=args.int8,
            int8_preset=args.int8_preset,
            deploy=args.deploy,
            calib_ann_files=args.calib_ann_files,
            calib_data_roots=args.calib_data_roots,
            calib_clips=args.calib_clips,
            timeline_videos=args.timeline_videos,
            class_names=read_label_map(args.class_names) if args.class_names else None,
            opset=args.opset,
            tolerance=args.tolerance,
            workers=template.training.workers if args.workers is None else args.workers,
            progress=not args.no_progress,
        )
        print(f"Exporting {weights}")
        result = export_model(template, weights, args.save_model_to, options, overrides=args.set)
    except UserError as exc:  # templates, checkpoints, data, verification: one line, nothing written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Exported to {result.out_dir}: " + ", ".join(p.name for p in result.files))
    print(f"Run it: python tools/demo.py --model {result.out_dir / 'model.xml'} --input 0")
    if args.deploy:
        print(f"On a device: copy {result.out_dir / 'deploy.zip'}, unzip, pip install -r requirements.txt, "
              "python recognize.py --input 0")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
