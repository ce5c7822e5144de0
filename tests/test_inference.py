"""The live recognizer: per-frame preprocessing, the sliding window, the exported model's checks, and
the label timeline of a trained model on a synthetic video (the windows it was trained to see)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tiny_model import TEMPLATE, decode, tiny_template

from action_rec.data.synthetic import CLASSES
from action_rec.data.transforms import preprocess_clip
from action_rec.evaluation.timeline import timeline_metrics
from action_rec.inference import (
    ExportedModel,
    ModelError,
    Recognizer,
    SourceError,
    label_runs,
    recognize_video,
)
from action_rec.inference.synthetic_video import truth_segments, windows_inside_segments
from action_rec.runtime.frames import FramePreprocessor, frames_to_input
from action_rec.runtime.metadata import metadata_path
from action_rec.runtime.overlay import draw_overlay
from action_rec.runtime.runner import StreamRunner
from action_rec.runtime.sources import open_source
from action_rec.runtime.stream import Stream, StreamOutputs
from action_rec.runtime.window import ClipWindow, ScoreAverager
from action_rec.templates import apply_overrides, load_template

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------- sliding window
def test_window_samples_every_step_and_advances_by_stride():
    window = ClipWindow(clip_len=4, step=2, stride=8, frame_shape=(1, 1, 1))
    due = []
    for i in range(40):
        if window.wants(i):
            if window.push(i, np.full((1, 1, 1), i, np.float32)):
                due.append((i, window.clip()[0, 0, :, 0, 0].tolist()))
        else:
            assert i % 2 == 1  # only every 2nd frame is sampled (and preprocessed)
    assert [d[0] for d in due] == [6, 14, 22, 30, 38]
    for end, frames in due:  # oldest first, every 2nd frame, ending at the due frame
        assert frames == [end - 6, end - 4, end - 2, end]


def test_window_fractional_step_keeps_the_rate():
    window = ClipWindow(clip_len=3, step=2.5, stride=1, frame_shape=(2, 2, 3), dtype=np.uint8, planar=False)
    sampled = [
        i for i in range(100) if window.wants(i) and (window.push(i, np.zeros((2, 2, 3), np.uint8)) or True)
    ]
    assert len(sampled) == 40  # 100 frames / 2.5
    assert window.clip().shape == (1, 3, 2, 2, 3)


def test_score_averager_means_the_last_windows():
    avg = ScoreAverager(2)
    avg(np.array([1.0, 0.0]))
    avg(np.array([0.0, 1.0]))
    np.testing.assert_allclose(avg(np.array([0.0, 1.0])), [0.0, 1.0])


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_score_averager_is_numpys_mean_to_the_bit(size):
    """Its own summation gives what np.mean over the last `size` windows gives, bit for bit (the
    timeline calibration replays it and must match the live demo)."""
    rng = np.random.default_rng(size)
    avg, recent = ScoreAverager(size), []
    for _ in range(50):
        probs = rng.dirichlet(np.ones(7)).astype(np.float32)
        recent = [*recent, probs][-size:]
        out = avg(probs)
        assert out.dtype == np.float32 and np.array_equal(out, np.mean(recent, axis=0))


class ScriptedModel:
    """Stands in for ExportedModel: clip k gets the k-th class probabilities of `plan`."""

    def __init__(self, plan: list[np.ndarray], class_names: list[str]) -> None:
        self.plan, self.latencies_ms = iter(plan), [0.0]
        inp = {"format": "bgr8", "size": 4, "resize_short": 4, "clip_len": 2, "frame_interval": 1}
        self.meta = {"class_names": class_names, "input": {**inp, "mean": [0] * 3, "std": [1] * 3}}

    class_names = property(lambda self: self.meta["class_names"])
    input = property(lambda self: self.meta["input"])

    def frame_step(self, source_fps: float | None) -> float:
        return 1.0

    def probabilities(self, clip: np.ndarray) -> np.ndarray:
        return next(self.plan)


def test_log_overlay_and_timeline_show_one_decision():
    """Each window is decided once (no-action rule, threshold, hysteresis): the per-window log says it,
    the overlay highlights it, and the timeline's segments are made of it, also where hysteresis keeps
    an action that is no longer the top class."""
    a, close, b = np.array([0.9, 0.1]), np.array([0.47, 0.53]), np.array([0.1, 0.9])
    model = ScriptedModel([a] * 5 + [close] * 5 + [b] * 5, ["a", "b"])
    recognizer = Recognizer(model, 10.0, stride=1, average=1, threshold=0.5, hysteresis=0.1)
    timeline = recognizer.timeline(min_segment_s=0.0)
    entries = []
    for index in range(16):  # windows of 2 frames end at frames 1 to 15
        prediction = recognizer.process(index, np.zeros((4, 4, 3), np.uint8))
        if prediction is not None:
            entries.append(prediction.to_json(model.class_names, top_k=2))
            prediction.add_to(timeline)
    timeline.finish()
    assert [e["label"] for e in entries] == ["a"] * 10 + ["b"] * 5  # b on top, a kept, then b clearly
    kept = entries[5]
    assert kept["top_k"][0][0] == "b" and kept["score"] == pytest.approx(0.47) and not kept["no_action"]
    assert [s["label"] for s in timeline.segments] == [r["label"] for r in label_runs(entries)] == ["a", "b"]
    assert timeline.segments[0]["end_s"] == pytest.approx(entries[10]["centre_s"] - 0.05)  # where b began
    canvas = draw_overlay(np.zeros((480, 640, 3), np.uint8), kept, 0.0, 0.0)
    rows = [tuple(int(c) for c in canvas[30 * k + 20, 7]) for k in range(2)]  # the score bars: b, then a
    assert rows == [(90, 90, 90), (60, 140, 60)]  # a, the decision, is the highlighted one


@pytest.mark.parametrize("fmt", ["rgb255", "normalized", "bgr8"])
def test_frame_preprocessing_matches_the_evaluation_pipeline(fmt):
    """Frame by frame, in any input format, the recognizer feeds the IR what the validation pipeline
    (preprocess_clip) would have fed PyTorch for the whole clip."""
    template = tiny_template()
    rng = np.random.default_rng(0)
    frames_bgr = [rng.integers(0, 256, (45, 61, 3), dtype=np.uint8) for _ in range(4)]
    meta_input = {**template.input.to_dict(), "format": fmt}
    prep = FramePreprocessor(meta_input)
    window = ClipWindow(4, 1, 1, prep.frame_shape, prep.dtype, planar=fmt != "bgr8")
    for i, f in enumerate(frames_bgr):
        window.push(i, prep(f))
    reference = preprocess_clip([f[..., ::-1] for f in frames_bgr], template)  # RGB in, 3 x T x H x W
    mean = np.asarray(template.input.mean, np.float32).reshape(3, 1, 1, 1)
    std = np.asarray(template.input.std, np.float32).reshape(3, 1, 1, 1)
    pixels = np.rint(reference.numpy() * std + mean).astype(np.uint8).transpose(1, 2, 3, 0)
    expected = frames_to_input(pixels, meta_input)
    np.testing.assert_allclose(window.clip(), expected, atol=1e-4)


# ------------------------------------- the tiny model trained on a synthetic video (conftest `trained`)
def test_timeline_matches_the_truth_on_the_synthetic_video(trained):
    # The tiny model is judged as it was trained: in f32, without a no-action threshold.
    model = ExportedModel(trained["xml"], precision="f32")
    entries = recognize_video(model, trained["video"], stride=4, average=1, progress=False, threshold=0)
    inside = windows_inside_segments(entries, trained["truth"])
    assert len(inside) >= 8
    wrong = [
        (e["frame"], e["window_label"], seg["name"]) for e, seg in inside if e["window_label"] != seg["name"]
    ]
    assert not wrong, f"windows labelled wrongly (end frame, predicted, truth): {wrong}"
    # The timeline's long runs (windows straddling two segments may say anything) name the segments.
    assert [s["label"] for s in label_runs(entries) if s["windows"] >= 4] == [
        s["name"] for s in trained["truth"]
    ]


def test_segment_timeline_matches_the_truth(trained):
    """Smoothed into segments, the windows give the video's four segments, their boundaries within a
    few frames: frame accuracy >= 90 % and F1@0.50 = 1 against the truth."""
    entries, segments = recognize_video(
        ExportedModel(trained["xml"], precision="f32"), trained["video"], stride=4, average=3,
        progress=False, timeline={}, threshold=0,
    )  # fmt: skip
    truth = truth_segments(trained["truth"], 30.0)
    assert [s["label"] for s in segments] == [s["label"] for s in truth]
    metrics = timeline_metrics(read_segments_list(segments), truth)
    assert metrics["frame_accuracy"] >= 90.0 and metrics["f1@0.50"] == 1.0 and metrics["edit"] == 100.0
    assert not any(e["no_action"] for e in entries)  # no no-action rule in this model


def read_segments_list(segments: list[dict]) -> list[dict]:
    return [{k: s[k] for k in ("start_s", "end_s", "label")} for s in segments]


def test_demo_on_a_file_is_reproducible_and_draws_every_frame(trained, tmp_path):
    """The threaded demo on a file drops nothing: its JSON timeline equals recognize_video's and the
    annotated video has every frame."""
    model = ExportedModel(trained["xml"], threads=1)
    expected = recognize_video(model, trained["video"], stride=8, average=3, progress=False)
    _, expected_segments = recognize_video(model, trained["video"], progress=False, timeline={})
    out, log, timeline = tmp_path / "annotated.avi", tmp_path / "windows.jsonl", tmp_path / "timeline.json"
    source = open_source(str(trained["video"]))
    stream = Stream("file", source, model, outputs=StreamOutputs(out, log, timeline))
    summary = StreamRunner(model, [stream]).run()["streams"][0]
    got = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["frame"], e["label"], e["top_k"], e["centre_s"]) for e in got] == [
        (e["frame"], e["label"], e["top_k"], e["centre_s"]) for e in expected
    ]
    assert json.loads(timeline.read_text()) == expected_segments and expected_segments
    n = sum(s["end"] - s["start"] for s in trained["truth"])
    assert summary["frames_drawn"] == n and summary["windows_stale"] == 0
    assert len(decode(out)) == n
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


# ----------------------------------------------------------------------------------------- errors
def test_model_that_does_not_match_its_metadata_is_refused(trained, tmp_path):
    for name in ("model.xml", "model.bin"):
        (tmp_path / name).write_bytes((trained["xml"].parent / name).read_bytes())
    meta = json.loads(metadata_path(trained["xml"]).read_text())
    meta["class_names"] = meta["class_names"][:2]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="output shape"):
        ExportedModel(tmp_path / "model.xml")
    meta = json.loads(metadata_path(trained["xml"]).read_text())
    meta["input"]["shape"] = [1, 3, 16, 32, 32]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="input shape"):
        ExportedModel(tmp_path / "model.xml")
    (tmp_path / "model.json").unlink()
    with pytest.raises(ModelError, match="model.json: metadata file not found"):
        ExportedModel(tmp_path / "model.xml")


def test_unreadable_inputs_give_one_line_errors(trained, tmp_path):
    with pytest.raises(SourceError, match="no such video file"):
        recognize_video(trained["xml"], tmp_path / "missing.mp4", progress=False)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="junk.mp4"):
        recognize_video(trained["xml"], junk, progress=False)


# ------------------------------------------------------------- end to end with the real network
@pytest.mark.slow
def test_trained_s3d_end_to_end(tmp_path, capsys):
    """Train the real S3D network with the training API and the quick start's recipe, export it with
    INT8 through the export CLI, and recognize a video made of training clips (what the model was
    trained to see). The IR's timeline agrees with PyTorch window by window, so it names the classes
    exactly as well as the trained network does (both figures are printed)."""
    import importlib.util

    from action_rec.data import make_synthetic_dataset
    from action_rec.export.cli import main as export_main
    from action_rec.models import build_model, load_weights
    from action_rec.training import TrainOptions, train

    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "tools" / "quickstart.py")
    quick = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quick)
    data = make_synthetic_dataset(tmp_path / "data", **{**quick.TRIMMED_DATA, "workers": 2})
    training = [f"training.{k}={v}" for k, v in quick.QUICK_TRAINING.items()]
    training.append(f"training.epochs={quick.QUICK_EPOCHS['s3d']}")
    template = apply_overrides(load_template(TEMPLATE), quick.QUICK_SETTINGS + training)
    result = train(
        template,
        TrainOptions(
            tmp_path / "out",
            ["train.txt"],
            [str(data)],
            ["val.txt"],
            [str(data)],
            device="cpu",
            workers=0,
            progress=False,
        ),
    )
    export_dir = tmp_path / "export"
    args = ["--load-weights", result.latest, "--save-model-to", str(export_dir), "--int8", "--calib-ann-files",
            "val.txt", "--calib-data-roots", str(data), "--workers", "0", "--no-progress"]  # fmt: skip
    assert export_main(args, template_path=TEMPLATE) == 0
    printed = capsys.readouterr().out
    rows = {  # the export's accuracy table: "  NAME  F32% [DEFAULT%  DIFF]"
        line.split()[0]: float(line.split()[1].rstrip("%"))
        for line in printed.splitlines()
        if line.startswith("  ") and "%" in line
    }
    assert rows["FP32"] == rows["pytorch"]  # same top-1 on the validation clips
    assert {"FP16", "INT8"} <= rows.keys()

    # A video of the first training clip of every class, back to back.
    size = quick.TRIMMED_DATA["size"]
    video, truth = tmp_path / "train_clips.avi", []
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (size, size))
    for label, motion in enumerate(CLASSES[: quick.TRIMMED_DATA["num_classes"]]):
        frames = sorted((data / "rawframes" / "train" / f"{motion.name}_0000").glob("*.jpg"))
        for f in frames:
            writer.write(cv2.imread(str(f)))
        start = truth[-1]["end"] if truth else 0
        truth.append({"label": label, "name": motion.name, "start": start, "end": start + len(frames)})
    writer.release()
    entries = recognize_video(export_dir / "model.xml", video, stride=4, average=1, progress=False)
    inside = windows_inside_segments(entries, truth)
    assert len(inside) >= len(truth)  # 16-frame clips: the windows that start with a clip

    # PyTorch on exactly those windows (decoded frames, validation pipeline) gives the same labels.
    model = build_model(template, num_classes=len(truth)).eval()
    load_weights(model, result.latest, log=None)
    frames = [f[..., ::-1] for f in decode(video)]
    torch_right = ir_right = 0
    with torch.no_grad():
        for entry, seg in inside:
            clip = preprocess_clip(frames[entry["start_frame"] : entry["frame"] + 1 : 2], template)
            probs = model.probabilities(model(clip[None]))[0]
            label = CLASSES[int(probs.argmax())].name
            top2 = probs.topk(2).values
            if top2[0] - top2[1] > 1e-3:  # not a near tie
                assert label == entry["window_label"]
            torch_right += label == seg["name"]
            ir_right += entry["window_label"] == seg["name"]
    print(
        f"windows named right: IR {ir_right}/{len(inside)}, PyTorch {torch_right}/{len(inside)}; {result.last_metrics}"
    )
    assert abs(ir_right - torch_right) <= 1
