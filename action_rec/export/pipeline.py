"""From a checkpoint to a verified, deployable model directory, in one call.

    checkpoint -> PyTorch model -> model.onnx -> OpenVINO model -> (input format) -> model.xml/.bin
               -> verified against PyTorch on a random and a real clip (FP32 must agree within 1e-4)
               -> [FP16 weights] [INT8 through NNCF on the user's clips, as model_int8.xml]
               -> accuracy of PyTorch and every IR on those clips -> model.json (+ model_int8.json)

Everything is written into a temporary directory beside the destination and moved in only when the
whole export succeeded: a failed export leaves no half-written model and keeps an earlier good one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from action_rec.errors import UserError
from action_rec.export.deploy import build_deploy_package
from action_rec.export.model_json import DEFAULT_INPUT_FORMAT, build_metadata, write_metadata
from action_rec.export.no_action import calibrate_threshold, no_action_metadata
from action_rec.export.onnx_export import DEFAULT_OPSET, export_onnx, onnx_op_counts
from action_rec.export.openvino_ir import add_input_format, convert_onnx
from action_rec.export.variants import Variant, realize_variant
from action_rec.export.verify import VerificationError, evaluate_accuracy, moving_pattern_clip, random_clip
from action_rec.fileio import move_into_place
from action_rec.runtime.compile import available_hints
from action_rec.runtime.frames import clip_to_frames
from action_rec.runtime.labels import no_action_classes
from action_rec.runtime.metadata import metadata_path
from action_rec.templates import InputConfig, Template

__all__ = [
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "export_model",
    "export_module",
    "MODEL_FILES",
]

DEPLOY_DIR = "deploy"  # the deployment package (export.py --deploy), and its .zip beside it

# Every file an export may write; a new export replaces all of them (stale ones are removed).
MODEL_FILES = (
    "model.onnx",
    "model.xml",
    "model.bin",
    "model.json",
    "model_int8.xml",
    "model_int8.bin",
    "model_int8.json",
    DEPLOY_DIR,
    f"{DEPLOY_DIR}.zip",
)


class ExportError(UserError):
    """An export that cannot be done as asked; the message says why."""


@dataclass
class ExportOptions:
    """What to export. `calib_*` clips (a few hundred of the user's validation data) calibrate INT8 and
    measure the accuracy of every variant; without them INT8 is impossible and no accuracy is given."""

    precision: str = "FP32"  # FP32 | FP16: the weights of model.xml
    input_format: str = DEFAULT_INPUT_FORMAT
    int8: bool = False
    int8_preset: str = "mixed"  # mixed | performance (see quantize.quantize_int8)
    calib_ann_files: list[str] = field(default_factory=list)
    calib_data_roots: list[str] = field(default_factory=list)
    calib_clips: int = 300
    class_names: list[str] | None = None
    opset: int = DEFAULT_OPSET
    tolerance: float = 1e-4
    workers: int = 2
    seed: int = 0
    progress: bool = True
    hints: list[str] | None = None  # precision hints every IR must compile under (None: all this CPU has)
    keep_correct: float = 0.95
    deploy: bool = False  # also write the deployment package (deploy/ and deploy.zip)  # the "no action" threshold keeps this share of correct predictions
    # Untrimmed validation recordings (val_videos.txt of tools/prepare_dataset.py) on which each IR's
    # timeline settings are calibrated; None: the calibration data roots' val_videos.txt, where present.
    timeline_videos: list[str] | None = None


@dataclass
class ExportResult:
    out_dir: Path
    files: list[Path]
    max_prob_diff: dict[str, dict[str, float]]  # variant -> clip name -> largest probability difference
    accuracy: dict[str, Any] | None  # AccuracyReport.as_dict() on the calibration clips


def _calibration_data(template: Template, options: ExportOptions, class_names: list[str]):
    """The calibration dataset (val pipeline) and an evenly spread subset of at most `calib_clips`."""
    from action_rec.data.dataset import RawFrameDataset

    names = class_names if not all(n == f"class_{i}" for i, n in enumerate(class_names)) else None
    try:
        dataset = RawFrameDataset(
            options.calib_ann_files, options.calib_data_roots, template, "val", class_names=names
        )
    except UserError as exc:
        raise ExportError(f"calibration data: {exc}") from None
    count = min(options.calib_clips, len(dataset))
    indices = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(int)).tolist()
    return dataset, indices


def _loader(dataset, indices: list[int], workers: int):
    """Clips one at a time, decoded by spawned workers (forked ones can hang in OpenCV's thread pool).

    Not persistent: workers that outlive the pass and are shut down later, once OpenVINO has compiled
    models, crashed the process (SIGSEGV) on exit; workers that end with their pass do not."""
    from action_rec.data.loading import make_loader

    return make_loader(torch.utils.data.Subset(dataset, indices), 1, None, workers, persistent=False)


def _move_into_place(tmp: Path, out_dir: Path, written: list[str]) -> list[Path]:
    """Move the new files over the old ones (metadata last), then remove what this export did not
    write: the directory describes one export, and a stale INT8 IR or deployment package beside a new
    model.xml would be run by mistake."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = [n for n in written if n.endswith(".json")]
    for name in [n for n in written if not n.endswith(".json")] + metadata:
        move_into_place(tmp / name, out_dir / name)
    for name in MODEL_FILES:
        if name not in written:
            if (out_dir / name).is_dir():
                shutil.rmtree(out_dir / name)
            else:
                (out_dir / name).unlink(missing_ok=True)
    return [out_dir / n for n in written]


def _check_options(options: ExportOptions, out_dir: Path) -> None:
    if options.precision not in ("FP32", "FP16"):
        raise ExportError(f"--precision must be FP32 or FP16, got {options.precision}")
    if options.int8 and not options.calib_ann_files:
        raise ExportError("--int8 needs calibration clips: give --calib-ann-files and --calib-data-roots")
    if options.calib_ann_files and not options.calib_data_roots:
        raise ExportError("--calib-ann-files needs --calib-data-roots")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a directory")


def export_model(
    template: Template,
    checkpoint: str | Path,
    out_dir: str | Path,
    options: ExportOptions | None = None,
    log: Callable[[str], Any] = print,
    overrides: list[str] | None = None,
) -> ExportResult:
    """Export `checkpoint` (ours or a published snapshot) to `out_dir` (see the module docstring);
    `overrides` (--set) apply after the checkpoint's own model/input/loss settings. Raises ExportError,
    VerificationError or the loaders' UserErrors with one-line messages."""
    options = options or ExportOptions()
    _check_options(options, Path(out_dir))
    torch.manual_seed(options.seed)
    from action_rec.models.checkpoint import load_trained_model

    model, template, class_names, _ = load_trained_model(
        template, checkpoint, options.class_names, log, overrides or ()
    )
    return export_module(model, template, class_names, out_dir, options, log, source=str(checkpoint))


def export_module(
    model: torch.nn.Module,
    template: Template,
    class_names: list[str],
    out_dir: str | Path,
    options: ExportOptions | None = None,
    log: Callable[[str], Any] = print,
    source: str | None = None,
) -> ExportResult:
    """Export a model already in memory: any module with the recognizer's contract (normalized
    `1 x 3 x T x H x W` in, scores out, `probabilities(scores)`), described by `template`."""
    options = options or ExportOptions()
    out_dir = Path(out_dir)
    _check_options(options, out_dir)
    model = model.eval()
    inp = template.input
    hints = options.hints or available_hints()
    dataset = indices = None
    if options.calib_ann_files:
        dataset, indices = _calibration_data(template, options, class_names)
        if dataset.num_classes != len(class_names):
            log(
                f"calibration data has {dataset.num_classes} classes, the model {len(class_names)}: "
                "accuracy is not measured (INT8 calibration does not need labels)"
            )

    recordings = _timeline_recordings(options)  # read now: a bad list fails before the long export

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    try:
        onnx_path, poolings = _export_onnx(model, tmp, inp, options, log)
        meta = _metadata(model, template, class_names, options, source)
        meta["no_action"] = no_action_metadata(class_names, None, options.keep_correct, 0)  # until calibrated
        clips = {"random": random_clip(inp.clip_len, inp.size, options.seed)}
        if dataset is not None:
            clips["real"] = clip_to_frames(dataset[indices[0]][0], inp.mean, inp.std)
        else:
            clips["moving_pattern"] = moving_pattern_clip(inp.clip_len, inp.size, options.seed)

        fp32 = add_input_format(
            convert_onnx(onnx_path, attention_poolings=poolings),
            options.input_format,
            inp.mean,
            inp.std,
        )
        variants = [Variant("FP32", fp32, meta, "model.xml" if options.precision == "FP32" else None)]
        if options.precision == "FP16" or dataset is not None:  # FP16 is measured whenever there are clips
            variants.append(
                Variant(
                    "FP16",
                    fp32,
                    {**meta, "precision": "FP16"},
                    "model.xml" if options.precision == "FP16" else None,
                    fp16_weights=True,
                )
            )
        if options.int8:
            variants.append(_int8_variant(onnx_path, poolings, meta, dataset, indices, options, log))
        for variant in variants:
            realize_variant(variant, tmp, hints, model, clips, log)
            if variant.name == "FP32":  # the reference: must equal PyTorch in f32 before anything else
                worst = max(variant.diffs["f32"].values())
                if worst > options.tolerance:
                    raise VerificationError(
                        f"FP32 IR differs from PyTorch by {worst:.3g} in class probability (tolerance "
                        f"{options.tolerance:g}); nothing was written"
                    )

        accuracy = None
        if dataset is not None and dataset.num_classes == len(class_names):
            report = _measure_accuracy(model, variants, dataset, indices, options)
            accuracy = report.as_dict()
            log(_accuracy_table(report, variants))
            for variant in variants:  # each IR's own threshold, as OpenVINO's defaults run it
                key = f"{variant.name} default"
                threshold = calibrate_threshold(
                    np.asarray(report.top_probability[key]),
                    np.asarray(report.hits[key]),
                    options.keep_correct,
                )
                # With a background class the model says "no action" itself; the threshold (calibrated on
                # trimmed clips, so high) would also silence the less sure windows at the edges of every
                # action in a long video. It is then recorded but not applied by default.
                applied = None if no_action_classes(class_names) else threshold
                block = no_action_metadata(class_names, applied, options.keep_correct, report.clips)
                variant.meta = {**variant.meta, "no_action": {**block, "calibrated_threshold": threshold}}
                if variant.file:
                    if threshold is None:
                        verdict = "no prediction was right, so there is no threshold"
                    elif applied is None:
                        verdict = f"recorded, not applied: the class {block['classes'][0]} says 'no action'"
                    else:
                        verdict = "'no action' below it (--threshold overrides)"
                    log(
                        f"{variant.file}: top probability {threshold} keeps {100 * options.keep_correct:.0f} % "
                        f"of its correct predictions on {report.clips} clips: {verdict}"
                    )

        written = ["model.onnx"]
        for variant in variants:
            if variant.file is None:
                continue
            shutil.rmtree(tmp / variant.name.lower(), ignore_errors=True)
            meta_file = metadata_path(tmp / variant.file).name
            write_metadata(
                tmp / meta_file,
                {**variant.meta, "verification": _verification(variant, accuracy, options)},
            )
            written += [variant.file, Path(variant.file).with_suffix(".bin").name, meta_file]
        if recordings:
            _calibrate_timelines(tmp, [v.file for v in variants if v.file], recordings, options, log)
        if options.deploy:
            build_deploy_package(tmp, tmp / DEPLOY_DIR)
            written += [DEPLOY_DIR, f"{DEPLOY_DIR}.zip"]
            log(f"Deployment package: {out_dir / DEPLOY_DIR} (and {DEPLOY_DIR}.zip), runs with openvino, "
                "opencv-python and numpy alone")  # fmt: skip
        files = _move_into_place(tmp, out_dir, written)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    diffs = {v.name: v.diffs.get("f32", {}) for v in variants}
    return ExportResult(out_dir, files, diffs, accuracy)


def _timeline_recordings(options: ExportOptions) -> list[tuple[Path, Path]]:
    """(video, truth) pairs of the untrimmed validation recordings to calibrate the timeline on."""
    from action_rec.evaluation.timeline_videos import video_truth_pairs

    lists = options.timeline_videos
    if lists is None:
        lists = [str(p) for r in options.calib_data_roots if (p := Path(r) / "val_videos.txt").is_file()]
    return [pair for path in lists for pair in video_truth_pairs(path)]


def _calibrate_timelines(tmp: Path, files: list[str], recordings, options: ExportOptions, log) -> None:
    """Each IR's timeline settings (its model.json's `timeline` block), calibrated on the recordings
    (evaluation/calibrate_timeline.py) before the deployment package copies them."""
    from action_rec.evaluation.calibrate_timeline import calibrate, format_calibration, store_settings

    for file in files:
        result = calibrate(tmp / file, recordings, progress=options.progress)
        store_settings(tmp / file, result)
        log(
            f"{file}: timeline settings calibrated on {len(recordings)} recordings\n{format_calibration(result)}"
        )


def _export_onnx(model, tmp: Path, inp: InputConfig, options: ExportOptions, log) -> tuple[Path, int]:
    """model.onnx (normalized input) and the number of attention poolings the rewrite must find."""
    from action_rec.models.attention import GlobalContextPooling

    shape = (1, 3, inp.clip_len, inp.size, inp.size)
    onnx_path = export_onnx(model, tmp / "model.onnx", shape, options.opset)
    ops = onnx_op_counts(onnx_path)
    log(
        f"ONNX: {onnx_path.name}, opset {options.opset}, input 'input' {list(shape)}, "
        f"{sum(ops.values())} nodes, {ops.get('BatchNormalization', 0)} BatchNormalization left"
    )
    return onnx_path, sum(isinstance(m, GlobalContextPooling) for m in model.modules())


def _metadata(
    model, template: Template, class_names, options: ExportOptions, source: str | None
) -> dict[str, Any]:
    head = template.model.head
    extra = {
        "source_checkpoint": source,
        "onnx": {"file": "model.onnx", "opset": options.opset, "input_format": "normalized"},
    }
    return build_metadata(
        template,
        class_names,
        precision=options.precision,
        extra=extra,
        input_format=options.input_format,
        output_kind="cosine" if head == "angular" else "logits",
        softmax_scale=float(getattr(model.cls_head, "scale", 1.0)) if head == "angular" else 1.0,
    )


def _int8_variant(onnx_path, poolings, meta, dataset, indices, options: ExportOptions, log) -> Variant:
    """NNCF post-training quantization of the quantizable form on the calibration clips."""
    import nncf

    from action_rec.export.quantize import quantize_int8

    inp = meta["input"]
    log(f"INT8: NNCF post-training quantization on {len(indices)} clips")
    loader = _loader(dataset, indices, options.workers)
    calib = (clip for clip, _ in loader)
    quantized, kept_float = quantize_int8(
        convert_onnx(onnx_path, for_int8=True, attention_poolings=poolings),
        calib,
        len(indices),
        options.int8_preset,
    )
    for _ in calib:  # NNCF stops at the last clip: end the pass so that the workers stop now
        pass
    model = add_input_format(quantized, options.input_format, inp["mean"], inp["std"])
    quantization = {
        "tool": f"NNCF {nncf.__version__}",
        "preset": options.int8_preset,
        "clips": len(indices),
        "kept_in_float": kept_float,
    }
    return Variant(
        "INT8", model, {**meta, "precision": "INT8", "quantization": quantization}, "model_int8.xml"
    )


def _measure_accuracy(model, variants: list[Variant], dataset, indices, options: ExportOptions):
    """Top-1 of PyTorch and of every variant as users run it (OpenVINO defaults) and in f32."""
    compiled = {
        f"{v.name} {hint}": (v.compiled[hint], v.meta) for v in variants for hint in ("f32", "default")
    }
    samples = _loader(dataset, indices, options.workers)
    bar = (
        (lambda it: tqdm(it, total=len(indices), desc="accuracy", unit="clip")) if options.progress else iter
    )
    return evaluate_accuracy(model, compiled, samples, progress=bar)


def _verification(
    variant: Variant, accuracy: dict[str, Any] | None, options: ExportOptions
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "max_prob_diff_vs_pytorch": variant.diffs["f32"],
        "max_prob_diff_by_hint": variant.diffs,
        "fp32_tolerance": options.tolerance,
        "compiles_with": {hint: variant.execution[hint] for hint in variant.compiled},
    }
    if accuracy is not None:
        out["accuracy_top1"] = {
            "clips": accuracy["clips"],
            "pytorch": accuracy["top1"]["pytorch"],
            "this_model": {hint: accuracy["top1"][f"{variant.name} {hint}"] for hint in ("f32", "default")},
            "calibration_data": [str(a) for a in options.calib_ann_files],
        }
    return out


def _accuracy_table(report, variants: list[Variant]) -> str:
    """Rows: PyTorch and each variant; columns: f32 and OpenVINO's defaults (what users run)."""
    execution = variants[0].execution.get("default", "?")
    base = report.top1("pytorch")
    lines = [
        f"Top-1 accuracy on {report.clips} calibration clips (the same clips for every row; "
        f"'default' = OpenVINO's default settings, which execute in {execution} on this CPU):",
        f"  {'':8s} {'f32':>9s} {'default':>9s}   vs PyTorch (default)",
        f"  {'pytorch':8s} {base:8.2f}%",
    ]
    for v in variants:
        f32, default = report.top1(f"{v.name} f32"), report.top1(f"{v.name} default")
        lines.append(f"  {v.name:8s} {f32:8.2f}% {default:8.2f}%   {default - base:+.2f}")
    return "\n".join(lines)
