"""How good is a predicted action timeline? The temporal action segmentation measures, and a picture.

A timeline is a list of action segments `[{"start_s": 1.2, "end_s": 3.4, "label": "wave", ...}]`
(what `tools/demo.py --timeline` writes and the synthetic test video's truth); time in no segment is
"no action". Measures, as the temporal action segmentation literature reports them (MS-TCN, Lea et
al. 2017):

- frame accuracy: the share of time (from 0 to the last segment end of either timeline) whose label
  (or "no action") the prediction gets right, in %. Computed exactly on the segment boundaries: the
  limit of per-frame accuracy at any frame rate.
- segmental F1@k: each predicted segment, in time order, is matched to the truth segment of its label
  with the highest IoU; it is a true positive when that IoU >= k and that truth segment is not matched
  yet, else a false positive; unmatched truth segments are false negatives. F1 = 2PR / (P + R), as a
  fraction (0..1), at k = 0.10, 0.25, 0.50.
- edit score: 100 * (1 - Levenshtein(predicted labels, true labels) / max(lengths)) over the two
  sequences of segment labels; it ignores timing and punishes over-segmentation; 100 = identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from action_rec.errors import UserError
from action_rec.fileio import atomic_path

__all__ = [
    "IOU_THRESHOLDS",
    "NO_ACTION",
    "TimelineFileError",
    "read_segments",
    "frame_agreement",
    "frame_accuracy",
    "segment_counts",
    "f1_from_counts",
    "segmental_f1",
    "edit_score",
    "timeline_metrics",
    "plot_timelines",
    "format_metrics",
    "evaluate_timeline_files",
]

IOU_THRESHOLDS = (0.10, 0.25, 0.50)
NO_ACTION = "no action"


class TimelineFileError(UserError):
    """A timeline JSON file that cannot be read or holds a malformed segment; the message names it."""


def read_segments(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a segment JSON file; returns its segments sorted by start time."""
    path = Path(path)
    if not path.is_file():
        raise TimelineFileError(f"{path}: no such timeline file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise TimelineFileError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("segments"), list):
        data = data["segments"]
    if not isinstance(data, list):
        raise TimelineFileError(f"{path}: expected a list of segments [{{start_s, end_s, label}}, ...]")
    segments = []
    for i, seg in enumerate(data):
        where = f"{path}: segment {i}"
        if not isinstance(seg, dict) or not {"start_s", "end_s", "label"} <= seg.keys():
            raise TimelineFileError(f"{where}: needs start_s, end_s and label")
        start, end = seg["start_s"], seg["end_s"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start, end)):
            raise TimelineFileError(f"{where}: start_s and end_s must be numbers")
        if not 0 <= start < end:
            raise TimelineFileError(f"{where}: needs 0 <= start_s < end_s, got {start} .. {end}")
        segments.append({**seg, "start_s": float(start), "end_s": float(end), "label": str(seg["label"])})
    segments.sort(key=lambda s: s["start_s"])
    for a, b in zip(segments, segments[1:], strict=False):
        if b["start_s"] < a["end_s"] - 1e-9:
            raise TimelineFileError(
                f"{path}: segments overlap ({a['label']} {a['start_s']}..{a['end_s']} and "
                f"{b['label']} {b['start_s']}..{b['end_s']})"
            )
    return segments


def _label_at(segments: list[dict[str, Any]], t: float) -> str:
    for seg in segments:
        if seg["start_s"] <= t < seg["end_s"]:
            return seg["label"]
    return NO_ACTION


def frame_agreement(
    pred: list[dict[str, Any]], truth: list[dict[str, Any]], duration: float | None = None
) -> tuple[float, float]:
    """(seconds labelled right, seconds judged): from 0 to `duration` (a video's length; default the
    last end of either timeline, and never less); no segment = no action. Sums over videos pool."""
    edges = sorted({0.0} | {s[k] for s in pred + truth for k in ("start_s", "end_s")})
    if duration is not None and duration > edges[-1]:
        edges.append(float(duration))
    right = sum(
        b - a
        for a, b in zip(edges, edges[1:], strict=False)
        if _label_at(pred, (a + b) / 2) == _label_at(truth, (a + b) / 2)
    )
    return right, edges[-1] - edges[0]


def frame_accuracy(
    pred: list[dict[str, Any]], truth: list[dict[str, Any]], duration: float | None = None
) -> float:
    """Share of time (0 .. `duration` or the last end of either timeline) labelled right, in %."""
    right, total = frame_agreement(pred, truth, duration)
    return 100.0 * right / total if total > 0 else 100.0


def _iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    inter = min(a["end_s"], b["end_s"]) - max(a["start_s"], b["start_s"])
    union = max(a["end_s"], b["end_s"]) - min(a["start_s"], b["start_s"])
    return max(inter, 0.0) / union if union > 0 else 0.0


def segment_counts(
    pred: list[dict[str, Any]], truth: list[dict[str, Any]], iou: float
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of the matching that `segmental_f1` scores;
    sums over videos give the pooled F1."""
    used = [False] * len(truth)
    tp = fp = 0
    for p in sorted(pred, key=lambda s: s["start_s"]):
        overlaps = [_iou(p, t) if t["label"] == p["label"] else -1.0 for t in truth]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best >= 0 and overlaps[best] >= iou and not used[best]:
            used[best] = True
            tp += 1
        else:
            fp += 1
    return tp, fp, len(truth) - sum(used)


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 = 2PR / (P + R); 1.0 when there is nothing to find and nothing was found."""
    if tp + fp + fn == 0:
        return 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def segmental_f1(pred: list[dict[str, Any]], truth: list[dict[str, Any]], iou: float) -> float:
    """F1 of the predicted segments at IoU threshold `iou` (each truth segment matched at most once)."""
    return f1_from_counts(*segment_counts(pred, truth, iou))


def _levenshtein(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def edit_score(pred: list[dict[str, Any]], truth: list[dict[str, Any]]) -> float:
    """Lea et al.'s edit score over the segment label sequences: 100 = the same sequence."""
    p = [s["label"] for s in sorted(pred, key=lambda s: s["start_s"])]
    t = [s["label"] for s in sorted(truth, key=lambda s: s["start_s"])]
    if not p and not t:
        return 100.0
    return 100.0 * (1 - _levenshtein(p, t) / max(len(p), len(t)))


def timeline_metrics(
    pred: list[dict[str, Any]], truth: list[dict[str, Any]], duration: float | None = None
) -> dict[str, float]:
    """All measures: `frame_accuracy` (%), `f1@0.10` / `f1@0.25` / `f1@0.50` (0..1), `edit` (0..100);
    `duration`: the video's length (the no-action time after the last segment counts too)."""
    metrics = {"frame_accuracy": frame_accuracy(pred, truth, duration)}
    for k in IOU_THRESHOLDS:
        metrics[f"f1@{k:.2f}"] = segmental_f1(pred, truth, k)
    metrics["edit"] = edit_score(pred, truth)
    metrics["segments_predicted"] = len(pred)
    metrics["segments_true"] = len(truth)
    return metrics


def plot_timelines(
    pred: list[dict[str, Any]], truth: list[dict[str, Any]], path: str | Path, title: str = ""
) -> Path:
    """Save a PNG of the truth and the prediction as coloured bars over time (white: no action)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    labels = sorted({s["label"] for s in truth + pred})
    cmap = plt.get_cmap("tab20" if len(labels) > 10 else "tab10")
    colour = {label: cmap(i % cmap.N) for i, label in enumerate(labels)}
    end = max([s["end_s"] for s in truth + pred] or [1.0])
    fig, ax = plt.subplots(figsize=(12, 2.2 + 0.25 * ((len(labels) + 3) // 4)))
    for row, segments in ((1, truth), (0, pred)):
        for s in segments:
            ax.broken_barh(
                [(s["start_s"], s["end_s"] - s["start_s"])],
                (row - 0.35, 0.7),
                facecolors=colour[s["label"]],
                edgecolor="black",
                linewidth=0.3,
            )
    ax.set_yticks([0, 1], ["prediction", "truth"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlim(0, end)
    ax.set_xlabel("time (s); white: no action")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(
        handles=[Patch(facecolor=colour[label], label=label) for label in labels],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35),
        ncol=min(4, max(1, len(labels))),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def format_metrics(metrics: dict[str, float]) -> str:
    """One line: frame accuracy, F1 at each IoU threshold, edit score, segment counts."""
    f1 = "  ".join(f"F1@{k:.2f} {metrics[f'f1@{k:.2f}']:.3f}" for k in IOU_THRESHOLDS)
    return (
        f"frame accuracy {metrics['frame_accuracy']:.1f} %  {f1}  edit {metrics['edit']:.1f}  "
        f"({metrics['segments_predicted']} segments predicted, {metrics['segments_true']} true)"
    )


def evaluate_timeline_files(
    pred_path: str | Path, truth_path: str | Path, metrics_path: str | Path, plot_path: str | Path | None
) -> dict[str, float]:
    """Read both segment files, measure, write the metrics YAML (and the PNG); returns the metrics."""
    import yaml

    pred, truth = read_segments(pred_path), read_segments(truth_path)
    metrics = timeline_metrics(pred, truth)
    report = {
        "prediction": str(pred_path),
        "truth": str(truth_path),
        "metrics": {k: round(float(v), 4) for k, v in metrics.items()},
        "units": {"frame_accuracy": "%", "f1": "0..1", "edit": "0..100"},
    }
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(yaml.safe_dump(report, sort_keys=False), encoding="utf-8")
    if plot_path is not None:
        plot_timelines(pred, truth, plot_path, title=f"{Path(pred_path).name}: {format_metrics(metrics)}")
    return metrics
