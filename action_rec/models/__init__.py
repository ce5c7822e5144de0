"""Models: S3D / X3D MobileNetV3-Large backbones, angular and linear heads, weight loading, checkpoint files."""

from .action_model import ActionRecognizer, build_model
from .backbones import (
    S3D_MOBILENET_V3_LARGE,
    X3D_MOBILENET_V3_LARGE,
    MobileNetV3Backbone3d,
    s3d_mobilenet_v3_large,
    x3d_mobilenet_v3_large_lgd_gc,
)
from .blocks import BlockConfig
from .checkpoint import Checkpoint, load_trained_model, load_weights, model_template, read_checkpoint
from .heads import AngularHead, LinearHead
from .weights import CheckpointError, CheckpointMismatchError, LoadReport, head_class_count, remap_state_dict

__all__ = [
    "ActionRecognizer",
    "AngularHead",
    "BlockConfig",
    "Checkpoint",
    "CheckpointError",
    "CheckpointMismatchError",
    "LinearHead",
    "LoadReport",
    "MobileNetV3Backbone3d",
    "S3D_MOBILENET_V3_LARGE",
    "X3D_MOBILENET_V3_LARGE",
    "build_model",
    "head_class_count",
    "load_trained_model",
    "load_weights",
    "model_template",
    "read_checkpoint",
    "remap_state_dict",
    "s3d_mobilenet_v3_large",
    "x3d_mobilenet_v3_large_lgd_gc",
]
