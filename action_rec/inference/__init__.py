"""Inference: the exported model with its metadata, the sliding-window recognizer, the action timeline,
the live demo."""

from action_rec.inference.model import ExportedModel, ModelError
from action_rec.inference.recognizer import Recognizer, format_timeline, recognize_video, timeline_segments
from action_rec.inference.stream import ReconnectingSource, SourceError, TimedFrame, open_source
from action_rec.inference.synthetic_video import (
    format_truth,
    make_synthetic_video,
    timeline_agreement,
    truth_segments,
    windows_inside_segments,
)
from action_rec.inference.timeline import NO_ACTION, ActionRule, TimelineBuilder

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
    "format_truth",
    "make_synthetic_video",
    "open_source",
    "recognize_video",
    "timeline_agreement",
    "timeline_segments",
    "truth_segments",
    "windows_inside_segments",
]
