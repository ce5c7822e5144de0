"""Inference: `recognize_video` over a file, the benchmark; the exported
model, the sliding-window recognizer and the timeline come from `action_rec.runtime` (re-exported)."""

from action_rec.inference.synthetic_video import (
    format_truth,
    make_synthetic_video,
    timeline_agreement,
    truth_segments,
    windows_inside_segments,
)
from action_rec.inference.video_file import format_timeline, recognize_video
from action_rec.runtime.labels import NO_ACTION, ActionRule
from action_rec.runtime.model import ExportedModel, ModelError
from action_rec.runtime.recognizer import Recognizer
from action_rec.runtime.segments import TimelineBuilder, label_runs
from action_rec.runtime.sources import ReconnectingSource, SourceError, TimedFrame, open_source

__all__ = [
    "NO_ACTION",
    "ActionRule",
    "TimelineBuilder",
    "ExportedModel",
    "ModelError",
    "Recognizer",
    "ReconnectingSource",
    "SourceError",
    "TimedFrame",
    "format_timeline",
    "label_runs",
    "format_truth",
    "make_synthetic_video",
    "open_source",
    "recognize_video",
    "timeline_agreement",
    "truth_segments",
    "windows_inside_segments",
]
