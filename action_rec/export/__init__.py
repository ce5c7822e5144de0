"""Export: PyTorch -> ONNX -> OpenVINO IR (FP32, FP16, INT8), verified, with the metadata a client needs."""

from action_rec.export.model_json import DEFAULT_INPUT_FORMAT, INPUT_FORMATS
from action_rec.export.pipeline import ExportError, ExportOptions, ExportResult, export_model
from action_rec.export.verify import VerificationError
from action_rec.runtime.metadata import MetadataError, read_metadata

__all__ = [
    "DEFAULT_INPUT_FORMAT",
    "INPUT_FORMATS",
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "MetadataError",
    "VerificationError",
    "export_model",
    "read_metadata",
]
