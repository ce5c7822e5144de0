"""tools/demo.py headless on real clips and on errors: an annotated video with every frame, a JSON-lines
timeline with one entry per window, and one-line errors for inputs and models that cannot work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from action_rec.export.pipeline import ExportOptions, export_module
from action_rec.runtime.cli import main as demo_main
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
    assert (
        "infer" in printed and "ms per window" in printed and "0 windows, 0 frames" in printed
    )  # none stale

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
    assert (
        "model.json: input.element_type f32 does not match the IR's input type u8" in capsys.readouterr().err
    )


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


def test_timeline_and_no_action_threshold(model_xml, real_data_dir, tmp_path, capsys):
    """--timeline writes the action segments; a threshold no window reaches makes everything "no action"
    (no segment, and "no action" in the per-window log), 0 disables the threshold."""
    video = str(real_data_dir / "mmaction2" / "demo.mp4")
    base = ["--model", str(model_xml), "--input", video, "--no-show", "--max-frames", "90"]
    timeline, log = tmp_path / "timeline.json", tmp_path / "windows.jsonl"
    assert demo_main(base + ["--threshold", "0.99", "--timeline", str(timeline), "--json", str(log)]) == 0
    assert "top score below 0.990" in capsys.readouterr().out
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries and all(e["label"] == "no action" and e["score"] < 0.99 for e in entries)
    assert json.loads(timeline.read_text()) == []

    off = ["--threshold", "0", "--min-segment", "0", "--hysteresis", "0"]
    assert demo_main(base + off + ["--timeline", str(timeline), "--json", str(log)]) == 0
    printed = capsys.readouterr().out
    segments, entries = (
        json.loads(timeline.read_text()),
        [json.loads(x) for x in log.read_text().splitlines()],
    )
    assert f"wrote {timeline} ({len(segments)} segments)" in printed
    assert segments and all(s["label"] in CLASSES and 0 < s["score"] <= 1 for s in segments)
    # Without smoothing the segments follow the windows' labels and tile their time without holes, from
    # the first frame the first window saw to the end of the last frame the last one saw.
    runs = [e["label"] for k, e in enumerate(entries) if k == 0 or e["label"] != entries[k - 1]["label"]]
    assert [s["label"] for s in segments] == runs
    fps = cv2.VideoCapture(video).get(cv2.CAP_PROP_FPS)
    assert sum(s["end_s"] - s["start_s"] for s in segments) == pytest.approx(
        segments[-1]["end_s"] - segments[0]["start_s"], abs=1e-3
    )
    assert segments[0]["start_s"] == pytest.approx(entries[0]["start_frame"] / fps, abs=1e-3)
    assert segments[-1]["end_s"] == pytest.approx((entries[-1]["frame"] + 1) / fps, abs=1e-3)

    assert demo_main(base + ["--threshold", "1.5"]) == 2
    assert "--threshold must be between 0 and 1" in capsys.readouterr().err


class DroppingStream:
    """A fake live stream of `frames`, paced at 100 fps, with its own timestamps starting at 0."""

    live, fps = True, 25.0

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.name, self.frames, self.k = "rtsp://fake", frames, 0

    def read_timed(self, decode: bool = True):
        from action_rec.runtime.sources import TimedFrame

        if self.k >= len(self.frames):
            return None  # the stream drops
        time.sleep(0.01)
        self.k += 1
        return TimedFrame(self.frames[self.k - 1], (self.k - 1) / self.fps)

    def retrieve(self):
        return self.frames[self.k - 1]

    def release(self) -> None:
        pass


def test_live_source_that_fails_mid_stream_is_reopened_and_the_run_goes_on(
    model_xml, real_data_dir, tmp_path
):
    from action_rec.inference import ExportedModel, ReconnectingSource, SourceError
    from action_rec.runtime.runner import StreamRunner
    from action_rec.runtime.stream import Stream, StreamOutputs

    frames = _frames(real_data_dir / "mmaction2" / "demo.mp4", 120)
    parts = [frames[:60], frames[60:]]
    messages: list[str] = []

    def reopen() -> DroppingStream:
        if not parts:
            raise SourceError("rtsp://fake: cannot open the input")
        return DroppingStream(parts.pop(0))

    source = ReconnectingSource(reopen, tries=1, backoff_s=0.2, log=messages.append)
    log, timeline = tmp_path / "w.jsonl", tmp_path / "t.json"
    model = ExportedModel(model_xml, threads=1)
    stream = Stream("fake", source, model, outputs=StreamOutputs(log=log, timeline=timeline))
    summary = StreamRunner(model, [stream]).run()["streams"][0]
    assert summary["frames_read"] == 120 and summary["source_drops"] == 2  # the second drop ends it
    assert any("rtsp://fake: no frame at 2.4 s" in m for m in messages)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    after = [e for e in entries if e["frame"] >= 60]
    assert after, "no window after the reconnection"
    # No window spans the gap: the first one after it starts at the first frame after it, and the
    # time goes on with the gap (>= the 0.2 s wait) after frame 59's 2.36 s.
    assert min(e["start_frame"] for e in after) >= 60
    assert min(e["time_s"] for e in after) >= 59 / 25 + 0.2 + 14 / 25 - 0.01
    assert json.loads(timeline.read_text()) is not None
