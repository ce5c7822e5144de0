"""Inference: the exported model with its metadata, the sliding-window recognizer, the live demo."""

from action_rec.inference.model import ExportedModel, ModelError
from action_rec.inference.recognizer import Recognizer, format_timeline, recognize_video, timeline_segments
from action_rec.inference.stream import SourceError, open_source
from action_rec.inference.synthetic_video import (
    format_truth,
    make_synthetic_video,
    timeline_agreement,
    windows_inside_segments,
)

__all__ = [
    "ExportedModel",
    "ModelError",
    "Recognizer",
    "SourceError",
    "format_timeline",
    "format_truth",
    "make_synthetic_video",
    "open_source",
    "recognize_video",
    "timeline_agreement",
    "timeline_segments",
    "windows_inside_segments",
]
