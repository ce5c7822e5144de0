"""A model's timelines on held-out recordings: per video and overall, as YAML and pictures.

Every video is run through `action_rec.inference.recognize_video`, the recognizer of `tools/demo.py`,
with the model's stored timeline settings (model.json's `timeline` block, calibrated or the defaults)
unless told otherwise, and its segments are measured against the truth (`timeline.py` defines the
measures). Per video: frame accuracy over the whole video (the no-action time after the last segment
counts), F1@0.10/0.25/0.50, edit score, and per-class F1 (segmental F1@0.50 on one class's segments).
Overall, as the segmentation literature pools them: frame accuracy over all the time of all videos,
F1 from the true/false positives and false negatives summed over videos, edit score the mean of the
videos'.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from action_rec.data.untrimmed import probe_video, read_video_truth_list
from action_rec.data.untrimmed_sources import VIDEO_EXTENSIONS, UntrimmedError
from action_rec.fileio import atomic_path, atomic_write
from action_rec.runtime.metadata import TimelineSettings, timeline_settings

from .timeline import (
    IOU_THRESHOLDS,
    edit_score,
    f1_from_counts,
    format_metrics,
    frame_agreement,
    plot_timelines,
    read_segments,
    segment_counts,
)

__all__ = [
    "video_truth_pairs",
    "effective_settings",
    "measure",
    "pool",
    "evaluate_videos",
    "plot_overall",
]


def video_truth_pairs(videos: str | Path) -> list[tuple[Path, Path]]:
    """(video, truth JSON) pairs of a list (`test_videos.txt`: `<video>\\t<truth>` or `<video>` a line)
    or of a folder (each video with a `<stem>.json` beside it)."""
    videos = Path(videos)
    if videos.is_dir():
        pairs = [
            (p, p.with_suffix(".json"))
            for p in sorted(videos.rglob("*"))
            if p.suffix.lower() in VIDEO_EXTENSIONS and p.with_suffix(".json").is_file()
        ]
        if not pairs:
            raise UntrimmedError(f"{videos}: no video with a <stem>.json truth beside it")
        return pairs
    return [(video, truth) for video, truth, _ in read_video_truth_list(videos)]


def effective_settings(meta: dict[str, Any], **overrides: Any) -> TimelineSettings:
    """model.json's timeline settings with the given (not None) values in their place."""
    stored = timeline_settings(meta)
    return replace(stored, **{k: v for k, v in overrides.items() if v is not None})


def measure(pred: list[dict[str, Any]], truth: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """One video's measures and the counts that pool them (`pool`)."""
    right, total = frame_agreement(pred, truth, duration)
    counts = {f"{k:.2f}": segment_counts(pred, truth, k) for k in IOU_THRESHOLDS}
    labels = sorted({s["label"] for s in pred + truth})
    per_class = {
        label: segment_counts(
            [s for s in pred if s["label"] == label], [s for s in truth if s["label"] == label], 0.5
        )
        for label in labels
    }
    return {
        "frame_accuracy": 100.0 * right / total if total > 0 else 100.0,
        **{f"f1@{k}": f1_from_counts(*c) for k, c in counts.items()},
        "edit": edit_score(pred, truth),
        "segments_predicted": len(pred),
        "segments_true": len(truth),
        "per_class_f1": {label: f1_from_counts(*c) for label, c in per_class.items()},
        "_counts": {"time": (right, total), "f1": counts, "per_class": per_class},
    }


def pool(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The overall measures of several videos' `measure` results (see the module docstring)."""
    right = sum(r["_counts"]["time"][0] for r in results)
    total = sum(r["_counts"]["time"][1] for r in results)
    out: dict[str, Any] = {"frame_accuracy": 100.0 * right / total if total > 0 else 100.0}
    for k in IOU_THRESHOLDS:
        sums = [sum(r["_counts"]["f1"][f"{k:.2f}"][i] for r in results) for i in range(3)]
        out[f"f1@{k:.2f}"] = f1_from_counts(*sums)
    out["edit"] = sum(r["edit"] for r in results) / len(results) if results else 100.0
    out["segments_predicted"] = sum(r["segments_predicted"] for r in results)
    out["segments_true"] = sum(r["segments_true"] for r in results)
    labels = sorted({label for r in results for label in r["_counts"]["per_class"]})
    out["per_class_f1"] = {
        label: f1_from_counts(
            *[sum(r["_counts"]["per_class"].get(label, (0, 0, 0))[i] for r in results) for i in range(3)]
        )
        for label in labels
    }
    return out


def _public(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in metrics.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict):
            out[key] = {k: round(float(v), 4) for k, v in value.items()}
        else:
            out[key] = round(float(value), 4) if isinstance(value, float) else value
    return out


def plot_overall(per_video: dict[str, dict[str, Any]], overall: dict[str, Any], path: str | Path) -> Path:
    """Save a PNG: F1@0.50 and frame accuracy per video, and the overall per-class F1@0.50."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(per_video)
    classes = list(overall["per_class_f1"])
    height = 1.8 + 0.3 * max(len(names), len(classes), 1)
    fig, (ax_video, ax_class) = plt.subplots(1, 2, figsize=(12, height), constrained_layout=True)
    ax_video.barh(names, [per_video[n]["f1@0.50"] for n in names], color="tab:blue", label="F1@0.50")
    ax_video.barh(
        names, [per_video[n]["frame_accuracy"] / 100 for n in names], height=0.3, color="tab:orange",
        label="frame accuracy / 100",
    )  # fmt: skip
    ax_video.set_xlim(0, 1)
    ax_video.invert_yaxis()
    ax_video.legend(fontsize=8, loc="lower right")
    ax_video.set_title("per video")
    ax_class.barh(classes, [overall["per_class_f1"][c] for c in classes], color="tab:green")
    ax_class.set_xlim(0, 1)
    ax_class.invert_yaxis()
    ax_class.set_title("per class F1@0.50 (all videos)")
    fig.suptitle(f"{len(names)} videos: {format_metrics(overall)}", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def evaluate_videos(
    model: Any,
    pairs: list[tuple[Path, Path]],
    out_dir: str | Path,
    *,
    stride: int = 8,
    threshold: float | None = None,
    min_segment_s: float | None = None,
    hysteresis: float | None = None,
    average: int | None = None,
    progress: bool = True,
    plots: bool = True,
) -> dict[str, Any]:
    """Run `model` (an `ExportedModel` or a model.xml path) on every video, measure against its truth;
    writes `OUT_DIR/timeline_metrics.yaml`, `predictions/<video>.json` (segment JSONs: corrected, they
    are training data), `<video>.png` and `overall.png`. Returns the report written to the YAML."""
    import yaml

    from action_rec.inference.video_file import recognize_video
    from action_rec.runtime.model import ExportedModel

    out_dir = Path(out_dir)
    if not isinstance(model, ExportedModel):
        model = ExportedModel(model)
    settings = effective_settings(
        model.meta, threshold=threshold, min_segment_s=min_segment_s, hysteresis=hysteresis, average=average
    )
    truths = [(video, read_segments(truth)) for video, truth in pairs]  # all checked before the long run
    names = [video.stem for video, _ in pairs]
    names = [n if names.count(n) == 1 else f"{n}-{k}" for k, n in enumerate(names)]
    results: dict[str, dict[str, Any]] = {}
    for name, (video, truth) in zip(
        tqdm(names, desc="eval_timeline", unit="video", disable=not progress), truths, strict=True
    ):
        frames, fps = probe_video(video, str(video))
        _, pred = recognize_video(
            model,
            video,
            stride=stride,
            average=settings.average,
            threshold=threshold,  # None: the stored one, else model.json's no_action threshold
            hysteresis=settings.hysteresis,
            timeline={"min_segment_s": settings.min_segment_s},
            progress=False,
        )
        results[name] = measure(pred, truth, frames / fps)
        atomic_write(out_dir / "predictions" / f"{name}.json", json.dumps(pred, indent=1) + "\n")
        if plots:
            plot_timelines(
                pred, truth, out_dir / f"{name}.png", title=f"{name}: {format_metrics(results[name])}"
            )
    overall = pool(list(results.values()))
    report = {
        "model": str(model.path),
        "settings": {**settings.to_json(), "stride": stride},
        "overall": _public(overall),
        "videos": {
            name: {"video": str(video), **_public(results[name])}
            for name, (video, _) in zip(names, pairs, strict=True)
        },
        "units": {"frame_accuracy": "%", "f1": "0..1", "edit": "0..100"},
    }
    atomic_write(out_dir / "timeline_metrics.yaml", yaml.safe_dump(report, sort_keys=False))
    if plots:
        plot_overall({n: results[n] for n in names}, overall, out_dir / "overall.png")
    return report
