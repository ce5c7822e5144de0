"""tools/demo.py headless on real clips and on errors: an annotated video with every frame, a JSON-lines
timeline with one entry per window, and one-line errors for inputs and models that cannot work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from action_rec.export.pipeline import ExportOptions, export_module
from action_rec.inference.demo import main as demo_main
from action_rec.templates import apply_overrides, load_template

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "model_templates" / "custom-action-recognition" / "s3d-rgb-mobilenet-v3" / "template.yaml"
CLASSES = ["a", "b", "c", "d", "e"]


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 5)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores, dim=1)


@pytest.fixture(scope="module")
def model_xml(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    template = apply_overrides(
        load_template(TEMPLATE),
        ["input.clip_len=8", "input.size=64", "input.resize_short=72", "model.head=linear"],
    )
    out = tmp_path_factory.mktemp("demo") / "export"
    export_module(
        SmallNet(),
        template,
        CLASSES,
        out,
        ExportOptions(input_format="bgr8", progress=False),
        log=lambda *_: None,
    )
    return out / "model.xml"


def _frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap, frames = cv2.VideoCapture(str(path)), []
    while (limit is None or len(frames) < limit) and (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    return frames


@pytest.mark.parametrize("clip, limit", [("mmaction2/demo.mp4", None), ("debian-opencv-doc/vtest.avi", 120)])
def test_headless_run_on_real_clips(model_xml, real_data_dir, tmp_path, capsys, clip, limit):
    video = real_data_dir / clip
    out, timeline = tmp_path / "annotated.mp4", tmp_path / "predictions.jsonl"
    args = [
        "--model",
        str(model_xml),
        "--input",
        str(video),
        "--no-show",
        "--output",
        str(out),
        "--json",
        str(timeline),
    ]
    assert demo_main(args + (["--max-frames", str(limit)] if limit else [])) == 0
    printed = capsys.readouterr().out
    assert "mean latency" in printed and "FPS" in printed

    source = _frames(video, limit)
    annotated = _frames(out)
    assert len(annotated) == len(source)  # a file loses no frame
    assert annotated[0].shape == source[0].shape
    # The overlay is in the top-left corner; the rest of the picture is the video (up to re-encoding).
    late_src, late_out = source[-1].astype(np.float32), annotated[-1].astype(np.float32)
    assert np.abs(late_out[:30, :100] - late_src[:30, :100]).mean() > 20
    assert np.abs(late_out[-60:, -60:] - late_src[-60:, -60:]).mean() < 8

    entries = [json.loads(line) for line in timeline.read_text().splitlines()]
    first = (8 - 1) * 2  # the first window ends when 8 frames, every 2nd, are in
    assert [e["frame"] for e in entries] == list(range(first, len(source), 8))
    for e in entries:
        assert e["label"] in CLASSES and e["label"] == e["top_k"][0][0] and len(e["top_k"]) == 3
        assert e["frame"] - e["start_frame"] == first and 0 < e["score"] <= 1
        assert [s for _, s in e["top_k"]] == sorted((s for _, s in e["top_k"]), reverse=True)


def test_realtime_mode_reads_at_the_frame_rate_and_may_drop(model_xml, real_data_dir, capsys):
    video = real_data_dir / "mmaction2" / "demo.mp4"
    assert (
        demo_main(
            [
                "--model",
                str(model_xml),
                "--input",
                str(video),
                "--no-show",
                "--max-frames",
                "40",
                "--realtime",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    seconds = float(printed.split(" in ")[1].split(" s")[0])
    assert seconds >= 40 / 28 * 0.9  # paced at the file's 28 fps
    assert "40 frames read" in printed


@pytest.mark.parametrize(
    "bad_input, message", [("missing.mp4", "no such video file"), ("README.md", "cannot open the input")]
)
def test_unreadable_input_is_one_line_and_exit_2(model_xml, capsys, bad_input, message):
    path = bad_input if bad_input != "README.md" else str(REPO / "README.md")
    assert demo_main(["--model", str(model_xml), "--input", path, "--no-show"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_model_that_does_not_match_its_metadata(model_xml, tmp_path, capsys, real_data_dir):
    for name in ("model.xml", "model.bin"):
        (tmp_path / name).write_bytes((model_xml.parent / name).read_bytes())
    meta = json.loads(model_xml.with_suffix(".json").read_text())
    meta["input"]["element_type"] = "f32"  # an IR exported for another input format
    (tmp_path / "model.json").write_text(json.dumps(meta))
    video = real_data_dir / "mmaction2" / "demo.mp4"
    assert demo_main(["--model", str(tmp_path / "model.xml"), "--input", str(video), "--no-show"]) == 2
    assert "IR input type u8 does not match model.json" in capsys.readouterr().err


def test_no_display_without_no_show(model_xml, monkeypatch, capsys, real_data_dir):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is for Linux")
    assert (
        demo_main(["--model", str(model_xml), "--input", str(real_data_dir / "mmaction2" / "demo.mp4")]) == 2
    )
    assert "use --no-show" in capsys.readouterr().err


def test_tools_demo_script_runs(model_xml, real_data_dir, tmp_path):
    """The script a user runs (a separate process)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "demo.py"), "--model", str(model_xml), "--input",
         str(real_data_dir / "mmaction2" / "demo.mp4"), "--no-show", "--max-frames", "30", "--json", str(tmp_path / "p.jsonl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "30 frames read" in result.stdout and len((tmp_path / "p.jsonl").read_text().splitlines()) == 2
    )  # windows end at frames 14 and 22
