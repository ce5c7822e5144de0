"""Accuracy of an exported model as it is deployed: `eval.py --load-weights model.xml`.

The same protocol as a checkpoint's evaluation (one centred clip, one centre crop per test video, the
same metrics.yaml, confusion matrix and per-class CSV), but the clips go through OpenVINO: the IR
(`model.xml`, `model_int8.xml`) or the ONNX file, preprocessed as its model.json describes (clip
length, frame interval, resize, crop, mean/std, input format) and compiled with the settings a user's
program would use (OpenVINO's defaults unless a precision hint is asked for). metrics.yaml records
which file, which weights precision and which execution precision were measured.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import openvino as ov
import torch
from torch.utils.data import SequentialSampler
from tqdm import tqdm

from action_rec.errors import UserError
from action_rec.evaluation.metrics import AccuracyMeter
from action_rec.runtime.compile import HintError, compile_with_hint
from action_rec.runtime.frames import dataset_clip_to_input
from action_rec.runtime.metadata import MetadataError, read_metadata
from action_rec.runtime.model import clip_probabilities
from action_rec.templates import Template

__all__ = ["EXPORTED_SUFFIXES", "ExportedModelError", "evaluate_exported", "template_for_export"]

EXPORTED_SUFFIXES = (".xml", ".onnx")


class ExportedModelError(UserError):
    """An exported model that cannot be evaluated as asked (no metadata, a hint the CPU lacks)."""


def template_for_export(template: Template, meta: dict[str, Any]) -> Template:
    """`template` with the input settings the exported model was made with (they decide the clips)."""
    inp = meta["input"]
    changed = {
        key: tuple(inp[key]) if isinstance(inp[key], list) else inp[key]
        for key in ("clip_len", "frame_interval", "target_fps", "size", "resize_short", "mean", "std")
        if key in inp
    }
    return dataclasses.replace(template, input=dataclasses.replace(template.input, **changed))


def _read(path: Path, hint: str) -> tuple[ov.CompiledModel, dict[str, Any]]:
    """Compile `path` with `hint` ("default": no configuration at all) and read its metadata; an ONNX
    file takes normalized input whatever model.json says of the IR."""
    if not path.is_file():
        raise ExportedModelError(f"{path}: no such model file")
    try:
        meta = read_metadata(path)
    except MetadataError as exc:
        raise ExportedModelError(str(exc)) from None
    if path.suffix.lower() == ".onnx":
        inp = meta["input"]
        shape = [1, 3, inp["clip_len"], inp["size"], inp["size"]]
        meta = {**meta, "precision": "FP32", "input": {**inp, "format": "normalized", "shape": shape}}
    try:
        compiled = compile_with_hint(path, hint)
    except HintError as exc:
        raise ExportedModelError(str(exc)) from None
    return compiled, meta


def evaluate_exported(
    template: Template,
    model_path: str | Path,
    test_ann_files: list[str],
    test_data_roots: list[str],
    *,
    hint: str = "default",
    workers: int | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Evaluate an exported model (IR or ONNX) on the test set; returns the same result dict as
    `evaluate` (top1, top5, mean_class, per_class, confusion, class_names, ...) plus `deployment`,
    which says what ran: file, weights precision, input format and the execution precision."""
    from action_rec.data.loading import build_test_set, check_labels, make_loader

    path = Path(model_path)
    compiled, meta = _read(path, hint)
    template = template_for_export(template, meta)
    class_names = list(meta["class_names"])
    execution = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    log(
        f"Evaluating {path.name} ({meta.get('precision', '?')} weights, input {meta['input']['format']}) "
        f"with {'OpenVINO defaults' if hint == 'default' else hint + ' hint'}: executes in {execution}"
    )

    dataset = build_test_set(template, test_ann_files, test_data_roots, class_names)
    check_labels(dataset, len(class_names), "--test-ann-files")

    loader = make_loader(
        dataset,
        1,
        SequentialSampler(dataset),
        template.training.workers if workers is None else workers,
        persistent=False,
    )
    request = compiled.create_infer_request()
    meter = AccuracyMeter(len(class_names), keep_probabilities=True)
    for clips, labels in tqdm(
        loader, desc=f"evaluating {path.name}", disable=not progress, dynamic_ncols=True
    ):
        probabilities = clip_probabilities(request, dataset_clip_to_input(clips[0], meta["input"]), meta)
        meter.update(torch.from_numpy(probabilities), labels)
    result = meter.compute()
    weights_file = path.with_suffix(".bin") if path.suffix.lower() == ".xml" else path
    result.update(
        class_names=class_names,
        params_m=None,
        gflops=None,
        checkpoint_mb=weights_file.stat().st_size / 1e6 if weights_file.is_file() else None,
        input_shape=list(meta["input"]["shape"]),
        template=template,
        weights=str(path),
        records=list(dataset.records),
        deployment={
            "model_file": str(path),
            "weights_precision": meta.get("precision", "FP32"),
            "input_format": meta["input"]["format"],
            "precision_hint": hint,
            "execution_precision": execution,
        },
    )
    return result
