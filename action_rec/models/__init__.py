"""Models: S3D / X3D MobileNetV3-Large backbones, angular and linear heads, weight loading."""

from .backbones import (
    S3D_MOBILENET_V3_LARGE,
    X3D_MOBILENET_V3_LARGE,
    MobileNetV3Backbone3d,
    s3d_mobilenet_v3_large,
    x3d_mobilenet_v3_large_lgd_gc,
)
from .blocks import BlockConfig
from .heads import AngularHead, LinearHead
from .recognizer import ActionRecognizer, build_model
from .weights import (
    CheckpointError,
    CheckpointMismatchError,
    LoadReport,
    load_weights,
    read_state_dict,
    remap_state_dict,
)

__all__ = [
    "ActionRecognizer",
    "AngularHead",
    "BlockConfig",
    "CheckpointError",
    "CheckpointMismatchError",
    "LinearHead",
    "LoadReport",
    "MobileNetV3Backbone3d",
    "S3D_MOBILENET_V3_LARGE",
    "X3D_MOBILENET_V3_LARGE",
    "build_model",
    "load_weights",
    "read_state_dict",
    "remap_state_dict",
    "s3d_mobilenet_v3_large",
    "x3d_mobilenet_v3_large_lgd_gc",
]
