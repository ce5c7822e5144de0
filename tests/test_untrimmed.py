"""Untrimmed recordings with marked segments: the three annotation formats, bad rows named FILE:LINE
with nothing written, clips inside segments, no_action clips away from them, recordings split whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from action_rec.data.annotations import parse_annotation_file, read_label_map
from action_rec.data.untrimmed import (
    NO_ACTION_LABEL,
    FrameSegment,
    free_intervals,
    plan_no_action_clips,
    plan_segment_clips,
    prepare_untrimmed,
    read_video_truth_list,
)
from action_rec.data.untrimmed_sources import UntrimmedError, detect_format, read_recordings
from action_rec.evaluation.timeline import read_segments

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import check_dataset  # noqa: E402
import prepare_dataset as prepare_tool  # noqa: E402

sys.path.remove(str(REPO / "tools"))

FPS = 10.0
FRAMES = 80  # 8 s


def write_video(path: Path, frames: int = FRAMES, fps: float = FPS, seed: int = 0) -> Path:
    """A tiny MJPG video of noise (64 x 64): preparation only needs frames and a duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 64))
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    writer.release()
    return path


SEGMENTS = {  # recording -> [(start_s, end_s, label)]
    "rec_a": [(1.0, 3.0, "wave"), (5.0, 6.0, "clap")],
    "rec_b": [(0.5, 1.5, "clap"), (4.0, 7.5, "wave")],
    "rec_c": [(2.0, 4.0, "wave")],
}


def write_csv(folder: Path, rows: list[str], header: str = "video,start,end,label") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "segments.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def csv_source(tmp_path: Path) -> Path:
    videos = tmp_path / "videos"
    for k, name in enumerate(SEGMENTS):
        write_video(videos / f"{name}.avi", seed=k)
    rows = [f"{name}.avi,{a},{b},{label}" for name, segs in SEGMENTS.items() for a, b, label in segs]
    return write_csv(videos, rows)


def lines_by_split(data: Path) -> dict[str, list]:
    return {s: parse_annotation_file(data / f"{s}.txt", data) for s in ("train", "val")}


def test_segment_csv_gives_clips_inside_segments_and_no_action_away_from_them(csv_source, tmp_path):
    data = tmp_path / "data"
    prepare_untrimmed(csv_source, data, clip_s=0.8, margin_s=0.5, val_fraction=0, progress=False)
    names = read_label_map(data / "label_map.txt")
    assert sorted(names) == ["clap", NO_ACTION_LABEL, "wave"]
    records = lines_by_split(data)["train"]  # frames checked: every clip's first and last frame exist
    assert {r.rel_dir for r in records} == set(SEGMENTS)
    margin = round(0.5 * FPS)
    per_class: dict[str, int] = {}
    for r in records:
        label = names[r.label]
        per_class[label] = per_class.get(label, 0) + 1
        assert (r.video_start, r.video_end) == (0, FRAMES)  # one dump per recording, ranges of it
        segments = [(round(a * FPS), round(b * FPS), lab) for a, b, lab in SEGMENTS[r.rel_dir]]
        if label == NO_ACTION_LABEL:
            for a, b, _ in segments:  # outside every segment, and at least the margin away
                assert r.clip_end + margin <= a or r.clip_start >= b + margin, (r, a, b)
        else:
            assert any(a <= r.clip_start and r.clip_end <= b and lab == label for a, b, lab in segments), r
    assert 0 < per_class[NO_ACTION_LABEL] <= max(n for k, n in per_class.items() if k != NO_ACTION_LABEL)
    assert (data / "dataset_summary.png").stat().st_size > 0


def test_frame_columns_read_as_frames(csv_source, tmp_path):
    """start_frame,end_frame rows give the same segments as the seconds they stand for."""
    rows = [
        f"{name}.avi,{round(a * FPS)},{round(b * FPS)},{label}"
        for name, segs in SEGMENTS.items()
        for a, b, label in segs
    ]
    frames_csv = write_csv(tmp_path / "f", rows, "video,start_frame,end_frame,label")
    seconds = read_recordings(csv_source, "segments-csv")
    frames = read_recordings(frames_csv, "segments-csv", csv_source.parent)
    assert detect_format(frames_csv) == detect_format(csv_source) == "segments-csv"
    for s, f in zip(seconds, frames, strict=True):
        assert s.video == f.video
        assert [(seg.start * FPS, seg.end * FPS) for seg in s.segments] == [
            (seg.start, seg.end) for seg in f.segments
        ]
        assert all(seg.in_frames for seg in f.segments)
    out_s, out_f = tmp_path / "ds", tmp_path / "df"
    for src, out in ((csv_source, out_s), (frames_csv, out_f)):
        prepare_untrimmed(src, out, videos_dir=csv_source.parent, clip_s=0.8, val_fraction=0, progress=False)
    assert (out_s / "train.txt").read_text() == (out_f / "train.txt").read_text()


def test_activitynet_json_subsets_become_splits_and_test_truth(tmp_path):
    videos = tmp_path / "videos"
    for k, name in enumerate(("v_aaa", "bbb", "ccc")):
        write_video(videos / "sub" / f"{name}.avi", seed=k)
    database = {
        "aaa": {"subset": "training", "annotations": [{"segment": [1.0, 3.0], "label": "wave"}]},
        "bbb": {"subset": "validation", "annotations": [{"segment": [2.0, 4.0], "label": "wave"}]},
        "ccc": {
            "subset": "testing",
            "annotations": [{"segment": [0.5, 2.0], "label": "wave"}, {"segment": [5, 7], "label": "jump"}],
        },
    }
    source = tmp_path / "activity_net.json"
    source.write_text(
        json.dumps(
            {"version": "1.3", "taxonomy": [{"nodeName": f"n{i}"} for i in range(500)], "database": database},
            indent=2,
        )
    )
    assert detect_format(source) == "activitynet"
    data = tmp_path / "data"
    prepare_untrimmed(source, data, videos_dir=videos, clip_s=0.8, progress=False)
    by_split = lines_by_split(data)
    assert {r.rel_dir for r in by_split["train"]} == {"v_aaa"}
    assert {r.rel_dir for r in by_split["val"]} == {"bbb"}
    assert not (data / "rawframes" / "ccc").exists()  # a test recording is not dumped
    [(video, truth, _)] = read_video_truth_list(data / "test_videos.txt")
    assert video.resolve() == (videos / "sub" / "ccc.avi").resolve()
    assert [(s["start_s"], s["end_s"], s["label"]) for s in read_segments(truth)] == [
        (0.5, 2.0, "wave"),
        (5.0, 7.0, "jump"),
    ]
    [(video, truth, _)] = read_video_truth_list(data / "val_videos.txt")
    assert video.name == "bbb.avi" and read_segments(truth)[0]["start_s"] == 2.0


def test_segment_json_beside_the_video_is_training_data(tmp_path):
    """A demo.py --timeline file (with scores), corrected and put beside its video as <stem>.json."""
    folder = tmp_path / "recordings"
    for k, (name, segs) in enumerate(SEGMENTS.items()):
        write_video(folder / f"{name}.avi", seed=k)
        timeline = [{"start_s": a, "end_s": b, "label": lab, "score": 0.9} for a, b, lab in segs]
        (folder / f"{name}.json").write_text(json.dumps(timeline, indent=1))
    assert detect_format(folder) == "segment-json"
    recordings = read_recordings(folder, "segment-json")
    assert {r.video.stem: [(s.start, s.end, s.label) for s in r.segments] for r in recordings} == SEGMENTS
    data = tmp_path / "data"
    code = prepare_tool.main(
        [str(folder), str(data), "--clip-s", "0.8", "--no-progress", "--test-videos", "1"]
    )
    assert code == 0
    assert len(read_video_truth_list(data / "test_videos.txt")) == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("rec_a.avi,3.0,3.0,wave", "is not after start"),
        ("rec_a.avi,4.0,2.5,wave", "is not after start"),
        ("rec_a.avi,7.0,9.5,wave", "beyond the end"),
        ("rec_a.avi,2.5,4.0,clap", "overlaps"),
        ("nowhere.avi,1.0,2.0,wave", "unknown video"),
        ("rec_a.avi,one,2.0,wave", "must be a number"),
    ],
)
def test_bad_row_is_named_file_line_and_nothing_is_written(csv_source, tmp_path, capsys, row, message):
    rows = csv_source.read_text().splitlines()
    rows.insert(3, row)  # line 4
    csv_source.write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    code = prepare_tool.main([str(csv_source), str(data), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {csv_source}:4: ") and message in err and len(err.splitlines()) == 1
    assert not data.exists()


def test_bad_activitynet_and_segment_json_rows_name_their_line(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write_video(src / "aaa.avi")
    source = src / "anet.json"
    entry = {
        "annotations": [{"segment": [1.0, 2.0], "label": "wave"}, {"segment": [3.0, 90.0], "label": "wave"}]
    }
    source.write_text(json.dumps({"database": {"aaa": entry}}, indent=2))
    with pytest.raises(UntrimmedError, match=r"anet\.json:12: database/aaa/annotations\[1\].*beyond the end"):
        prepare_untrimmed(source, out, progress=False)
    timeline = src / "aaa.json"
    timeline.write_text(
        '[\n {"start_s": 1, "end_s": 2, "label": "a"},\n {"start_s": 3, "end_s": 2, "label": "b"}\n]'
    )
    source.unlink()
    with pytest.raises(UntrimmedError, match=r"aaa\.json:3: end 2 is not after start 3"):
        prepare_untrimmed(src, out, progress=False)
    assert not out.exists()
    with pytest.raises(UntrimmedError, match="must not be inside the source folder"):
        prepare_untrimmed(src, src / "data", progress=False)


def test_no_action_mining_never_crosses_or_nears_a_segment():
    rng = np.random.default_rng(0)
    for _ in range(200):
        frames, margin, clip = int(rng.integers(50, 400)), int(rng.integers(0, 20)), int(rng.integers(1, 30))
        cuts = np.sort(rng.choice(frames, size=2 * int(rng.integers(0, 5)), replace=False))
        segments = [FrameSegment(int(a), int(b), 0, 0, "x", "") for a, b in cuts.reshape(-1, 2) if b > a]
        clips = plan_no_action_clips(segments, frames, clip, int(rng.integers(1, 20)), margin)
        for s, e in clips:
            assert 0 <= s and e <= frames and e - s == clip
            for seg in segments:
                assert e + margin <= seg.start or s >= seg.end + margin
        free = sum(b - a for a, b in free_intervals(segments, frames, margin))
        assert (
            bool(clips) == any(b - a >= clip for a, b in free_intervals(segments, frames, margin))
            or free == 0
        )


def test_clips_spread_over_a_long_segment_within_the_cap():
    assert plan_segment_clips(10, 15, 8, 8, 5) == [(10, 15)]  # shorter than a clip: the whole of it
    clips = plan_segment_clips(0, 100, 10, 10, 4)
    assert clips[0] == (0, 10) and clips[-1] == (90, 100) and len(clips) == 4
    assert len(plan_segment_clips(0, 100, 10, 10, 50)) == 10


def test_no_action_cap_can_be_set(csv_source, tmp_path):
    data = tmp_path / "data"
    prepare_untrimmed(
        csv_source, data, clip_s=0.5, margin_s=0.2, val_fraction=0, no_action_clips=3, progress=False
    )
    names = read_label_map(data / "label_map.txt")
    records = lines_by_split(data)["train"]
    assert sum(names[r.label] == NO_ACTION_LABEL for r in records) == 3
    prepare_untrimmed(csv_source, data, clip_s=0.5, val_fraction=0, no_action_clips=0, progress=False)
    assert NO_ACTION_LABEL not in read_label_map(data / "label_map.txt")


def test_recordings_are_split_whole_seeded_and_check_clean(tmp_path):
    videos = tmp_path / "videos"
    rows = []
    for k in range(10):
        write_video(videos / f"r{k}.avi", frames=40, seed=k)
        rows += [f"r{k}.avi,0.5,1.5,{'wave' if k % 2 else 'clap'}", f"r{k}.avi,2.5,3.5,jump"]
    source = write_csv(videos, rows)
    splits = []
    for seed in (0, 0, 1):
        data = tmp_path / f"data{len(splits)}"
        prepare_untrimmed(
            source,
            data,
            clip_s=0.5,
            margin_s=0.2,
            val_fraction=0.25,
            test_videos=2,
            seed=seed,
            progress=False,
        )
        by_split = {s: {r.rel_dir for r in recs} for s, recs in lines_by_split(data).items()}
        test = {v.stem for v, _, _ in read_video_truth_list(data / "test_videos.txt")}
        val = {v.stem for v, _, _ in read_video_truth_list(data / "val_videos.txt")}
        assert len(test) == 2 and len(val) == 2 and by_split["val"] == val
        assert len(by_split["train"]) == 6 and not (by_split["train"] & (val | test)) and not (val & test)
        splits.append((by_split["train"], val, test))
        assert (
            check_dataset.main(
                ["--ann-files", "train.txt", "val.txt", "--data-roots", str(data), "--no-progress"]
            )
            == 0
        )
    assert splits[0] == splits[1] and splits[0] != splits[2]


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
