"""action_rec.runtime: the code that runs an exported model stands alone (no torch, nothing of the
toolkit outside it), and its one resize rule is the one a 1080p camera frame goes through."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from action_rec.runtime.frames import (
    FramePreprocessor,
    center_crop_clip,
    clip_to_frames,
    dataset_clip_to_input,
    frames_to_input,
    short_side_size,
)

RUNTIME = Path(__file__).resolve().parents[1] / "action_rec" / "runtime"
ALLOWED = {"numpy", "cv2", "openvino"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import (the deployed copy imports by name)"
            names.add(node.module)
    return names


def test_runtime_modules_import_only_the_runtime_and_its_requirements():
    modules = sorted(RUNTIME.glob("*.py"))
    assert {p.stem for p in modules} >= {"openvino_core", "signal_stack", "metadata", "compile", "frames"}
    for path in modules:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "action_rec":
                assert name.startswith("action_rec.runtime."), f"{path.name} imports {name}"
            else:
                assert top in ALLOWED or top in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_runtime_imports_without_torch_or_the_toolkit(tmp_path):
    """In a fresh interpreter where `import torch` fails, every runtime module imports and nothing of
    action_rec outside the runtime gets loaded."""
    names = [f"action_rec.runtime.{p.stem}" for p in sorted(RUNTIME.glob("*.py")) if p.stem != "__init__"]
    code = (
        "import sys\nsys.modules['torch'] = None\nimport importlib\n"
        f"for name in {names!r}:\n    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('action_rec')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = eval(done.stdout.strip().splitlines()[-1])  # a list of module names printed above
    assert set(names) <= set(loaded)
    assert [m for m in loaded if m != "action_rec" and not m.startswith("action_rec.runtime")] == []


def test_a_1080p_frame_is_shrunk_by_area_averaging():
    """The frame preprocessor of the demo and the deployed script brings a 1920 x 1080 camera frame to
    the short side with area averaging (bilinear would skip pixels), then crops the centre."""
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    meta_input = {"format": "bgr8", "size": 224, "resize_short": 256, "mean": [0] * 3, "std": [1] * 3}
    got = FramePreprocessor(meta_input)(frame)
    rh, rw = short_side_size(1080, 1920, 256)
    area = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_AREA)
    top, left = (rh - 224) // 2, (rw - 224) // 2
    np.testing.assert_array_equal(got, area[top : top + 224, left : left + 224])
    linear = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_LINEAR)[top : top + 224, left : left + 224]
    assert np.abs(got.astype(int) - linear).mean() > 5  # on noise the two rules differ a lot
    np.testing.assert_array_equal(center_crop_clip([frame], 256, 224)[0], got)


def test_a_normalized_clip_goes_back_to_its_pixels_in_every_input_format():
    """The data pipeline's normalized clip -> the IR's input: the pixels themselves (rgb255), the clip
    as it is (normalized), whole uint8 BGR pixels (bgr8); eval.py and export's checks both use this."""
    frames = np.random.default_rng(1).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)  # T x H x W x RGB
    mean, std = [123.7, 116.3, 103.5], [58.4, 57.1, 57.4]
    meta_input = {"mean": mean, "std": std}
    normalized = frames_to_input(frames, {**meta_input, "format": "normalized"})[0]  # 3 x T x H x W
    np.testing.assert_array_equal(clip_to_frames(normalized, mean, std), frames)
    rgb255 = dataset_clip_to_input(normalized, {**meta_input, "format": "rgb255"})
    np.testing.assert_allclose(rgb255, frames.transpose(3, 0, 1, 2)[None], atol=1e-3)
    bgr8 = dataset_clip_to_input(normalized, {**meta_input, "format": "bgr8"})
    assert bgr8.dtype == np.uint8 and bgr8.shape == (1, 4, 6, 6, 3)
    np.testing.assert_array_equal(bgr8[0], frames[..., ::-1])
    same = dataset_clip_to_input(normalized[None], {**meta_input, "format": "normalized"})
    np.testing.assert_array_equal(same, normalized[None])


class _FailingCore:
    """A Core whose compile fails the way OpenVINO's CPU plugin does when a node has no kernel."""

    def compile_model(self, model, device, config):
        raise RuntimeError(
            "Exception from src/inference/src/cpp/core.cpp:112:\n"
            "Supported primitive descriptors list is empty for node: pool type: Pooling\n"
        )


def test_a_failed_compile_names_a_onednn_isa_cap_in_the_environment(monkeypatch):
    """OpenVINO's CPU plugin obeys ONEDNN_MAX_CPU_ISA (set for PyTorch's sake, say) yet still picks bf16
    by the CPU's flags, so an IR that compiles elsewhere fails in that process: the error says so."""
    import openvino as ov

    from action_rec.runtime.compile import CompileError, compile_with_hint

    param = ov.opset13.parameter([1, 4], ov.Type.f32, name="x")
    model = ov.Model([ov.opset13.relu(param)], [param], "tiny")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    with pytest.raises(CompileError) as plain_error:
        compile_with_hint(model, "default", core=_FailingCore())
    plain = str(plain_error.value)
    assert plain.startswith("tiny: OpenVINO cannot compile it for CPU with default settings: Supported")
    assert "MAX_CPU_ISA" not in plain

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(CompileError) as capped_error:
        compile_with_hint(model, "default", core=_FailingCore())
    capped = capped_error.value
    assert str(capped).startswith(plain) and "ONEDNN_MAX_CPU_ISA=AVX2 is set" in str(capped)
    assert capped.reason.startswith("Supported primitive descriptors list is empty")
    assert "\n" not in str(capped)
