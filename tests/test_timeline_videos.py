"""Untrimmed recordings after training: eval_timeline.py over many videos with the demo's recognizer,
and the timeline settings calibrated on validation recordings, stored in model.json and carried by
export into the deployment package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_untrimmed import REPO, prepare_tool, write_video

from action_rec.data.untrimmed import (
    read_video_truth_list,
)
from action_rec.data.untrimmed_sources import UntrimmedError
from action_rec.evaluation.timeline import read_segments

# --- eval_timeline.py --model --videos: the demo's recognizer on held-out recordings -----------------


def copy_export(trained: dict, folder: Path, timeline: dict | None = None) -> Path:
    """The tiny export copied to `folder`, with `timeline` as model.json's timeline block."""
    folder.mkdir(parents=True, exist_ok=True)
    src = trained["xml"].parent
    for name in ("model.xml", "model.bin"):
        (folder / name).write_bytes((src / name).read_bytes())
    meta = json.loads((src / "model.json").read_text())
    if timeline is not None:
        meta["timeline"] = timeline
    (folder / "model.json").write_text(json.dumps(meta))
    return folder / "model.xml"


def truth_list(trained: dict, folder: Path, copies: int = 1) -> Path:
    from action_rec.inference.synthetic_video import truth_segments

    folder.mkdir(parents=True, exist_ok=True)
    truth = folder / "truth.json"
    truth.write_text(json.dumps(truth_segments(trained["truth"], 30.0)))
    lines = [f"{trained['video'].resolve()}\t{truth.name}\n"] * copies
    (folder / "test_videos.txt").write_text("# header comment\n" + "".join(lines))
    return folder / "test_videos.txt"


def test_eval_timeline_videos_runs_the_demo_recognizer_and_pools(trained, tmp_path, capsys):
    from action_rec.evaluation.timeline import timeline_metrics
    from action_rec.inference.video_file import recognize_video

    sys.path.insert(0, str(REPO / "tools"))
    try:
        import eval_timeline as tool
    finally:
        sys.path.remove(str(REPO / "tools"))
    import yaml

    videos = truth_list(trained, tmp_path / "list", copies=2)
    out = tmp_path / "eval"
    code = tool.main(
        ["--model", str(trained["xml"]), "--videos", str(videos), "--out-dir", str(out), "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    report = yaml.safe_load((out / "timeline_metrics.yaml").read_text())
    assert len(report["videos"]) == 2 and {p.name for p in out.glob("*.png")} == {
        "synthetic-0.png",
        "synthetic-1.png",
        "overall.png",
    }
    # The same numbers as the demo's recognizer (recognize_video) and the one-pair measures give.
    _, segments = recognize_video(trained["xml"], trained["video"], progress=False, timeline={})
    truth = read_segments(videos.parent / "truth.json")
    expected = timeline_metrics(segments, truth, 160 / 30.0)
    for name in ("synthetic-0", "synthetic-1"):
        for key in ("frame_accuracy", "f1@0.10", "f1@0.25", "f1@0.50", "edit"):
            assert report["videos"][name][key] == pytest.approx(expected[key], abs=1e-3)
            assert report["overall"][key] == pytest.approx(expected[key], abs=1e-3)  # two copies pool to one
    assert set(report["overall"]["per_class_f1"]) >= {s["label"] for s in truth}
    # A folder of videos with <stem>.json beside them is read the same way.
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "synthetic.mp4").symlink_to(trained["video"])
    (folder / "synthetic.json").write_text((videos.parent / "truth.json").read_text())
    assert tool.main(["--model", str(trained["xml"]), "--videos", str(folder), "--out-dir", str(tmp_path / "e2"),
                      "--no-progress", "--no-plot"]) == 0  # fmt: skip
    again = yaml.safe_load((tmp_path / "e2" / "timeline_metrics.yaml").read_text())
    assert again["overall"]["f1@0.50"] == report["overall"]["f1@0.50"]


def test_eval_timeline_uses_model_json_settings_unless_overridden(trained, tmp_path):
    from action_rec.evaluation.timeline_videos import evaluate_videos, video_truth_pairs

    pairs = video_truth_pairs(truth_list(trained, tmp_path / "list"))
    plain = evaluate_videos(trained["xml"], pairs, tmp_path / "a", progress=False, plots=False)
    xml = copy_export(trained, tmp_path / "long", {"min_segment_s": 60.0, "average": 1})
    stored = evaluate_videos(xml, pairs, tmp_path / "b", progress=False, plots=False)
    assert stored["settings"]["min_segment_s"] == 60.0 and stored["settings"]["average"] == 1
    assert stored["overall"]["segments_predicted"] == 1  # nothing lasts 60 s: one segment stands for all
    assert plain["overall"]["segments_predicted"] > 1
    override = evaluate_videos(
        xml, pairs, tmp_path / "c", min_segment_s=0.5, average=3, progress=False, plots=False
    )
    assert override["overall"] == plain["overall"]


def test_pooled_f1_sums_counts_over_videos():
    from action_rec.evaluation.timeline_videos import measure, pool

    seg = [{"start_s": 0.0, "end_s": 2.0, "label": "a"}]
    perfect = measure(seg, seg, 4.0)
    missed = measure([], seg + [{"start_s": 2.5, "end_s": 3.5, "label": "b"}], 4.0)
    overall = pool([perfect, missed])
    assert perfect["f1@0.50"] == 1.0 and missed["f1@0.50"] == 0.0
    assert overall["f1@0.50"] == pytest.approx(2 * 1.0 * (1 / 3) / (1 + 1 / 3))  # P = 1/1, R = 1/3
    assert overall["frame_accuracy"] == pytest.approx(
        100 * (4 + 1) / 8
    )  # missed: only 0.5..., 2..2.5, 3.5..4
    assert overall["per_class_f1"] == {"a": pytest.approx(2 / 3), "b": 0.0}


# --- calibrating the timeline settings on validation recordings ------------------------------------


def test_replayed_timeline_is_the_recognizers(trained):
    """Calibration scores settings by replaying kept window probabilities: the same segments as
    recognize_video (the demo's recognizer) gives with those settings."""
    from action_rec.inference.video_file import recognize_video, replay_timeline, video_windows
    from action_rec.runtime.metadata import TimelineSettings
    from action_rec.runtime.model import ExportedModel

    model = ExportedModel(trained["xml"])
    windows = video_windows(model, trained["video"], stride=4)
    for settings in (
        TimelineSettings(),
        TimelineSettings(0.6, 0.0, 0.0, 1),
        TimelineSettings(0.9, 1.0, 0.2, 5),
    ):
        _, expected = recognize_video(
            model,
            trained["video"],
            stride=4,
            average=settings.average,
            threshold=settings.threshold,
            hysteresis=settings.hysteresis,
            timeline={"min_segment_s": settings.min_segment_s},
            progress=False,
        )
        assert replay_timeline(model, windows, settings) == expected


def test_calibrated_settings_are_stored_read_back_and_no_worse(trained, tmp_path, capsys):
    from action_rec.evaluation.timeline_videos import evaluate_videos, video_truth_pairs
    from action_rec.runtime.metadata import TimelineSettings, read_metadata, timeline_settings

    sys.path.insert(0, str(REPO / "tools"))
    try:
        import calibrate_timeline as tool
    finally:
        sys.path.remove(str(REPO / "tools"))

    # Start from poor settings (a threshold that silences most windows), as a fresh export might have.
    xml = copy_export(trained, tmp_path / "export", {"threshold": 0.99, "min_segment_s": 0.0, "average": 1})
    videos = truth_list(trained, tmp_path / "val")
    pairs = video_truth_pairs(videos)
    before = evaluate_videos(xml, pairs, tmp_path / "before", progress=False, plots=False)["overall"]
    code = tool.main(["--model", str(xml), "--videos", str(videos), "--no-progress", "--thresholds", "0,0.5,0.99",
                      "--min-segments", "0,0.5", "--hystereses", "0,0.1", "--averages", "1,3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "before" in out and "after" in out
    meta = read_metadata(xml)  # still a valid model.json
    block = meta["timeline"]
    assert block["calibrated_on"] == [str(trained["video"].resolve())]
    assert block["objective"].startswith("f1@0.50") and block["settings_before"]["threshold"] == 0.99
    stored = timeline_settings(meta)
    assert stored == TimelineSettings(
        block["threshold"], block["min_segment_s"], block["hysteresis"], block["average"]
    )
    assert stored.threshold != 0.99
    # eval_timeline (the demo's recognizer, stored settings by default) agrees with the stored score
    after = evaluate_videos(xml, pairs, tmp_path / "after", progress=False, plots=False)["overall"]
    assert after["f1@0.50"] == pytest.approx(block["score_after"]["f1@0.50"], abs=1e-4)
    assert after["f1@0.50"] >= before["f1@0.50"] and after["f1@0.50"] > 0
    if after["f1@0.50"] == before["f1@0.50"]:
        assert after["frame_accuracy"] >= before["frame_accuracy"]
    assert block["score_before"]["f1@0.50"] == pytest.approx(before["f1@0.50"], abs=1e-4)


def test_export_calibrates_the_timeline_and_the_package_carries_it(trained, tmp_path):
    """With untrimmed validation recordings, export stores calibrated settings in model.json, and the
    deployment package ships that model.json."""
    from action_rec.export.pipeline import ExportOptions, export_module
    from action_rec.runtime.metadata import read_metadata, timeline_settings

    videos = truth_list(trained, tmp_path / "val")
    out = tmp_path / "export"
    options = ExportOptions(progress=False, deploy=True, timeline_videos=[str(videos)])
    export_module(
        trained["model"], trained["template"], trained["class_names"], out, options, log=lambda *_: None
    )
    for xml in (out / "model.xml", out / "deploy" / "model.xml"):
        meta = read_metadata(xml)
        assert meta["timeline"]["calibrated_on"] == [str(trained["video"].resolve())]
        assert meta["timeline"]["score_after"]["f1@0.50"] >= meta["timeline"]["score_before"]["f1@0.50"]
        assert timeline_settings(meta).average == meta["timeline"]["average"]
    bad = tmp_path / "bad.txt"
    bad.write_text("missing.mp4\n")
    with pytest.raises(UntrimmedError, match=r"bad\.txt:1: video .*missing\.mp4 not found"):
        export_module(trained["model"], trained["template"], trained["class_names"], tmp_path / "e2",
                      ExportOptions(progress=False, timeline_videos=[str(bad)]), log=lambda *_: None)  # fmt: skip
    assert not (tmp_path / "e2").exists()


def test_export_finds_val_videos_in_the_calibration_data_root(tmp_path):
    from action_rec.export.pipeline import ExportOptions, _timeline_recordings

    video = write_video(tmp_path / "videos" / "r.avi")
    (tmp_path / "videos" / "r.json").write_text("[]")
    data = tmp_path / "data"
    data.mkdir()
    assert _timeline_recordings(ExportOptions(calib_data_roots=[str(data)])) == []
    (data / "val_videos.txt").write_text("../videos/r.avi\n")
    assert _timeline_recordings(ExportOptions(calib_data_roots=[str(data)])) == [
        (data / "../videos/r.avi", data / "../videos/r.json")
    ]
    assert _timeline_recordings(ExportOptions(calib_data_roots=[str(data)], timeline_videos=[])) == []
    assert video.is_file()


@pytest.mark.slow  # about 15 s: prepare, train one epoch, export, evaluate
def test_recordings_to_a_calibrated_model_end_to_end(tmp_path, capsys):
    """Long synthetic recordings (actions with still scenes between them) through the command-line
    tools: prepare, train, export (which calibrates the timeline on the val recording), evaluate."""
    from action_rec.export.cli import main as export_main
    from action_rec.inference.synthetic_video import make_synthetic_video, truth_segments
    from action_rec.runtime.metadata import read_metadata
    from action_rec.training import cli as train

    sys.path.insert(0, str(REPO / "tools"))
    try:
        import eval_timeline
    finally:
        sys.path.remove(str(REPO / "tools"))
    folder = tmp_path / "recordings"
    for k in range(4):
        truth = make_synthetic_video(folder / f"rec{k}.mp4", [0, 2, 1][k % 3 :] + [3], frames_per_segment=40, size=64,
                                     seed=k, gap_frames=(30, 60))  # fmt: skip
        (folder / f"rec{k}.json").write_text(json.dumps(truth_segments(truth, 30.0)))
    data = tmp_path / "data"
    args = [
        str(folder),
        str(data),
        "--clip-s",
        "1",
        "--margin-s",
        "0.5",
        "--test-videos",
        "1",
        "--val-fraction",
        "0.34",
    ]
    assert prepare_tool.main([*args, "--no-progress"]) == 0
    template = REPO / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
    tiny = ["input.clip_len=4", "input.size=32", "input.resize_short=40"]
    code = train.main(
        ["--template", str(template), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
         "--val-ann-files", "val.txt", "--val-data-roots", str(data), "--save-checkpoints-to", str(tmp_path / "out"),
         "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--workers", "0", "--no-progress", "--set", *tiny]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    export = tmp_path / "export"
    code = export_main(
        ["--template", str(template), "--load-weights", str(tmp_path / "out" / "latest.pth"), "--save-model-to",
         str(export), "--calib-ann-files", "val.txt", "--calib-data-roots", str(data), "--workers", "0",
         "--no-progress", "--set", *tiny]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    [(val_video, _, _)] = read_video_truth_list(data / "val_videos.txt")
    assert read_metadata(export / "model.xml")["timeline"]["calibrated_on"] == [str(val_video)]
    out = tmp_path / "eval"
    assert eval_timeline.main(["--model", str(export / "model.xml"), "--videos", str(data / "test_videos.txt"),
                               "--out-dir", str(out), "--no-progress"]) == 0  # fmt: skip
    assert (out / "overall.png").is_file() and (out / "timeline_metrics.yaml").is_file()
