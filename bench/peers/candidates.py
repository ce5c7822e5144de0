"""The models of the peers bench: ours and the ones people would pick instead, each with the input it
was published at (and the inputs it is also timed at)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from bench.harness import MODELS, TEMPLATES

COMMON_SHAPE = (16, 224, 224)  # T, H, W: the input every model is also timed at
X3D_S_SHAPE = (13, 160, 160)
NUM_CLASSES = 400  # a Kinetics-400-sized classifier for every model
EAGER, OV_FP32, OV_INT8 = "PyTorch eager", "OpenVINO FP32", "OpenVINO INT8"
SIMILAR_GFLOPS = 2.0  # "similar GFLOPs": within a factor of 2 either way


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


@dataclass(frozen=True)
class Candidate:
    """One model: `build(T, H, W)` returns it in eval mode, sized for that input (X3D's head pools
    over the whole last feature map, so its pooling kernel depends on the input)."""

    name: str
    source: str  # "ours", "PyTorchVideo", "torchvision"
    published_shape: tuple[int, int, int]
    build: Callable[[int, int, int], nn.Module]
    also_common: bool = True  # also time at COMMON_SHAPE (False where that is another candidate)
    extra_shapes: tuple[tuple[int, int, int], ...] = ()  # also time at these (ours: the peers' inputs)

    @property
    def ours(self) -> bool:
        return self.source == "ours"

    @property
    def shapes(self) -> list[tuple[int, int, int]]:
        shapes = [self.published_shape, COMMON_SHAPE] if self.also_common else [self.published_shape]
        return list(dict.fromkeys([*shapes, *self.extra_shapes]))


def replace_swish(model: nn.Module) -> int:
    """Swap PyTorchVideo's ``Swish`` (a custom autograd Function the ONNX exporter cannot trace) for
    ``nn.SiLU``, the same x * sigmoid(x); returns how many were swapped."""
    count = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child).__name__ == "Swish":
                setattr(module, child_name, nn.SiLU())
                count += 1
    return count


def _ours(key: str) -> Callable[[int, int, int], nn.Module]:
    def build(t: int, h: int, w: int) -> nn.Module:
        from action_rec.models import build_model

        return build_model(TEMPLATES / MODELS[key] / "template.yaml", num_classes=NUM_CLASSES).eval()

    return build


def _x3d(depth_factor: float) -> Callable[[int, int, int], nn.Module]:
    """PyTorchVideo's X3D with its hub settings (X3D-S and X3D-M differ only by their input); only
    ``create_x3d`` is imported, which avoids the parts of pytorchvideo 0.1.5 that newer torchvision breaks."""

    def build(t: int, h: int, w: int) -> nn.Module:
        from pytorchvideo.models.x3d import create_x3d

        assert h == w, "X3D takes square crops"
        model = create_x3d(
            input_clip_length=t, input_crop_size=h, depth_factor=depth_factor, model_num_class=NUM_CLASSES
        )
        replace_swish(model)
        return model.eval()

    return build


def _s3d(t: int, h: int, w: int) -> nn.Module:
    from torchvision.models.video import s3d

    return s3d(weights=None, num_classes=NUM_CLASSES).eval()


CANDIDATES = [
    Candidate("S3D MobileNetV3 (ours)", "ours", COMMON_SHAPE, _ours("s3d"), extra_shapes=(X3D_S_SHAPE,)),
    Candidate(
        "X3D MobileNetV3 LGD-GC (ours)", "ours", COMMON_SHAPE, _ours("x3d"), extra_shapes=(X3D_S_SHAPE,)
    ),
    # hub `x3d_s`; at 16x224x224 it is X3D-M (the same `create_x3d` settings), so not timed there twice
    Candidate("X3D-S", "PyTorchVideo", X3D_S_SHAPE, _x3d(2.2), also_common=False),
    Candidate("X3D-M", "PyTorchVideo", (16, 224, 224), _x3d(2.2)),  # hub `x3d_m`
    Candidate("S3D", "torchvision", (16, 224, 224), _s3d),  # S3D_Weights.KINETICS400_V1: 224 crop
]
