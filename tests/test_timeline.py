"""Action timelines: the measures against hand-worked segment sets, eval_timeline.py, the no-action rule
and its calibration, the smoothing of window decisions into segments, and a live source that drops."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from action_rec.evaluation.timeline import (
    TimelineFileError,
    edit_score,
    frame_accuracy,
    read_segments,
    segmental_f1,
    timeline_metrics,
)
from action_rec.export.no_action import calibrate_threshold, no_action_metadata
from action_rec.runtime.labels import NO_ACTION_NAMES, ActionRule, no_action_classes
from action_rec.runtime.segments import TimelineBuilder
from action_rec.runtime.sources import ReconnectingSource, SourceError, TimedFrame

REPO = Path(__file__).resolve().parents[1]


def seg(start: float, end: float, label: str) -> dict:
    return {"start_s": start, "end_s": end, "label": label}


# ------------------------------------------------------------------------ measures, worked by hand
TRUTH = [seg(0, 10, "a"), seg(10, 20, "b"), seg(20, 30, "a")]
PRED = [seg(0, 8, "a"), seg(12, 20, "b"), seg(20, 24, "c"), seg(26, 30, "a")]


def test_frame_accuracy_by_hand():
    # 0-8 a=a right (8 s), 8-10 none vs a, 10-12 none vs b, 12-20 b=b right (8 s), 20-24 c vs a,
    # 24-26 none vs a, 26-30 a=a right (4 s): 20 of 30 s.
    assert frame_accuracy(PRED, TRUTH) == pytest.approx(100 * 20 / 30)
    # Time in no segment is "no action" on both sides, and counts as right when both say so:
    # truth a 2-4 in 0..4: the prediction says a 3-4; 0-2 none=none right, 2-3 wrong, 3-4 right -> 3/4.
    assert frame_accuracy([seg(3, 4, "a")], [seg(2, 4, "a")]) == pytest.approx(75.0)
    assert frame_accuracy([], [seg(2, 4, "a")]) == pytest.approx(50.0)


def test_segmental_f1_by_hand():
    # Predicted segments in order, best IoU with a truth segment of the same label:
    #   a 0-8 vs a 0-10: 8/10 = 0.8;  b 12-20 vs b 10-20: 0.8;  c: no truth c -> FP;
    #   a 26-30 vs a 20-30: 4/10 = 0.4.
    # IoU 0.10 and 0.25: TP 3, FP 1, FN 0 -> P 3/4, R 1, F1 = 2 * 0.75 / 1.75 = 6/7.
    # IoU 0.50: TP 2 (0.4 < 0.5), FP 2, FN 1 -> P 1/2, R 2/3, F1 = (2/3) / (7/6) = 4/7.
    assert segmental_f1(PRED, TRUTH, 0.10) == pytest.approx(6 / 7)
    assert segmental_f1(PRED, TRUTH, 0.25) == pytest.approx(6 / 7)
    assert segmental_f1(PRED, TRUTH, 0.50) == pytest.approx(4 / 7)


def test_each_truth_segment_matches_once():
    # Truth a 0-10 split in two predictions: both have IoU 0.5 with it; the first matches, the second
    # finds it taken -> FP. P 1/2, R 1 -> F1 2/3. Edit: [a, a] vs [a], one deletion in 2 -> 50.
    pred, truth = [seg(0, 5, "a"), seg(5, 10, "a")], [seg(0, 10, "a")]
    assert segmental_f1(pred, truth, 0.5) == pytest.approx(2 / 3)
    assert edit_score(pred, truth) == pytest.approx(50.0)
    assert frame_accuracy(pred, truth) == pytest.approx(100.0)


def test_edit_score_by_hand():
    # [a, b, c, a] vs [a, b, a]: delete c -> distance 1 of max length 4 -> 75.
    assert edit_score(PRED, TRUTH) == pytest.approx(75.0)
    # [b, a] vs [a, b, a]: insert a -> 1 of 3 -> 66.7; [c] vs [a, b]: substitute + insert -> 2 of 2 -> 0.
    assert edit_score([seg(0, 1, "b"), seg(2, 3, "a")], TRUTH) == pytest.approx(100 * 2 / 3)
    assert edit_score([seg(0, 1, "c")], [seg(0, 1, "a"), seg(2, 3, "b")]) == pytest.approx(0.0)
    m = timeline_metrics(TRUTH, TRUTH)
    assert (m["frame_accuracy"], m["f1@0.10"], m["f1@0.50"], m["edit"]) == (100.0, 1.0, 1.0, 100.0)
    empty = timeline_metrics([], TRUTH)
    assert (empty["f1@0.50"], empty["edit"], empty["frame_accuracy"]) == (0.0, 0.0, 0.0)


def test_bad_timeline_files_name_the_file(tmp_path):
    bad = tmp_path / "pred.json"
    bad.write_text(json.dumps([seg(0, 2, "a"), seg(1, 3, "b")]))
    with pytest.raises(TimelineFileError, match="pred.json: segments overlap"):
        read_segments(bad)
    bad.write_text(json.dumps([{"start_s": 0, "label": "a"}]))
    with pytest.raises(TimelineFileError, match="pred.json: segment 0: needs start_s, end_s and label"):
        read_segments(bad)
    bad.write_text(json.dumps([seg(3, 2, "a")]))
    with pytest.raises(TimelineFileError, match="start_s < end_s"):
        read_segments(bad)
    bad.write_text("{not json")
    with pytest.raises(TimelineFileError, match="not valid JSON"):
        read_segments(bad)


def test_eval_timeline_tool(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import eval_timeline as tool
    finally:
        sys.path.remove(str(REPO / "tools"))
    pred, truth = tmp_path / "pred.json", tmp_path / "truth.json"
    pred.write_text(json.dumps(PRED))
    truth.write_text(json.dumps(TRUTH))
    assert tool.main(["--pred", str(pred), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    assert "frame accuracy 66.7 %" in out and "F1@0.50 0.571" in out and "edit 75.0" in out
    report = yaml.safe_load((tmp_path / "pred_metrics.yaml").read_text())
    assert report["metrics"]["f1@0.25"] == pytest.approx(6 / 7, abs=1e-4)
    assert (tmp_path / "pred.png").read_bytes()[:4] == b"\x89PNG"
    assert tool.main(["--pred", str(tmp_path / "missing.json"), "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert "missing.json: no such timeline file" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------- no action
def test_no_action_classes_and_metadata():
    names = ["wave", "Background", "clap", "no_action"]
    assert NO_ACTION_NAMES == ("no_action", "background")
    assert no_action_classes(names) == [1, 3]
    block = no_action_metadata(names, 0.625, 0.95, 40)
    assert block == {
        "threshold": 0.625,
        "classes": ["Background", "no_action"],
        "keep_correct": 0.95,
        "calibration_clips": 40,
    }
    assert no_action_metadata(names, None, 0.95, 0)["threshold"] is None


def test_calibrated_threshold_keeps_the_share_of_correct_predictions():
    # 20 correct clips scoring 0.05, 0.10, ..., 1.00 and 5 wrong ones scoring 0.99: keep 95 % -> k =
    # floor(0.05 * 20) = 1 -> the 2nd lowest correct score, 0.10: 19 of 20 correct clips stay.
    correct_scores = np.arange(1, 21) / 20
    probs = np.concatenate([correct_scores, np.full(5, 0.99)])
    right = np.concatenate([np.ones(20, bool), np.zeros(5, bool)])
    t = calibrate_threshold(probs, right, keep=0.95)
    assert t == pytest.approx(0.10)
    assert (correct_scores >= t).mean() >= 0.95
    assert calibrate_threshold(probs, right, keep=0.5) == pytest.approx(0.55)  # k = 10 -> 11th lowest
    assert calibrate_threshold(probs, right, keep=1.0) == pytest.approx(0.05)
    assert calibrate_threshold(probs, np.zeros(25, bool)) is None


def test_action_rule():
    rule = ActionRule(["a", "background", "b"], threshold=0.5)
    assert rule.label(np.array([0.6, 0.3, 0.1])) == 0
    assert rule.label(np.array([0.2, 0.7, 0.1])) is None  # a no-action class
    assert rule.label(np.array([0.45, 0.1, 0.45])) is None  # below the threshold
    meta = {"class_names": ["a", "idle", "b"], "no_action": {"threshold": 0.8, "classes": ["idle"]}}
    stored = ActionRule.from_metadata(meta)
    assert stored.threshold == 0.8 and stored.no_action_ids == {1}
    assert ActionRule.from_metadata(meta, threshold=0).threshold is None  # 0 disables
    assert ActionRule.from_metadata({"class_names": ["a", "b"]}).label(np.array([0.51, 0.49])) == 0


def test_action_rule_hysteresis_keeps_the_previous_action():
    rule = ActionRule(["a", "b", "background"], threshold=0.5, hysteresis=0.1)
    close = np.array([0.45, 0.5, 0.05])  # b on top, a 0.05 behind
    assert rule.label(close) == 1 and rule.label(close, current=1) == 1
    assert rule.label(close, current=0) == 0  # a within 0.1 of the top and above 0.5 - 0.1: a stays
    assert rule.label(np.array([0.3, 0.65, 0.05]), current=0) == 1  # b clearly ahead
    assert rule.label(np.array([0.38, 0.4, 0.22]), current=0) is None  # a below 0.4, b below 0.5
    assert rule.label(np.array([0.05, 0.05, 0.9]), current=0) is None  # background clearly ahead
    assert ActionRule(["a", "b"], threshold=0.5).label(close[:2] / close[:2].sum(), current=0) == 1


def _decide(rule: ActionRule, plan: list[np.ndarray]) -> list[tuple[int | None, float]]:
    """Each window's (label, score) as the recognizer decides it: the rule, given the previous label."""
    out, current = [], None
    for probs in plan:
        current = rule.label(probs, current)
        out.append((current, float(probs[current]) if current is not None else 0.0))
    return out


# ---------------------------------------------------------------------------------- smoothing
def test_builder_smooths_windows_into_segments():
    names = ["a", "b", "background"]
    rule = ActionRule(names, threshold=0.5, hysteresis=0.1)
    builder = TimelineBuilder(rule, min_segment_s=0.5)
    A, B, BG = np.array([0.9, 0.05, 0.05]), np.array([0.05, 0.9, 0.05]), np.array([0.05, 0.05, 0.9])
    close = np.array([0.5, 0.45, 0.05])  # a on top, b close behind
    unsure = np.array([0.35, 0.33, 0.32])  # nothing reaches the threshold
    plan = (
        [A] * 10  # 0.0-1.0 a
        + [B]  # 1.0-1.1 a blip of b, shorter than 0.5 s: still a
        + [A] * 9  # 1.1-2.0 a
        + [BG] * 10  # 2.0-3.0 background: no action, a ends at 2.0
        + [B] * 10  # 3.0-4.0 b
        + [close] * 10  # 4.0-5.0 a on top by 0.05 < hysteresis 0.1: still b
        + [unsure] * 6  # 5.0-5.6 below the threshold (and b below threshold - hysteresis): no action
    )
    closed = []
    for k, (label, score) in enumerate(_decide(rule, plan)):
        closed += builder.add(k / 10, (k + 1) / 10, label, score)
    for k in range(70, 80):  # 7.0-8.0 a, after a hole of 14 strides in time: a new segment
        closed += builder.add(k / 10, (k + 1) / 10, 0, 0.9)
    for k in [*range(80, 85), *range(87, 90)]:  # 8.0-9.0 a; 2 windows skipped (a slow CPU): bridged
        closed += builder.add(k / 10, (k + 1) / 10, 0, 0.9)
    for k in range(90, 100):  # 9.0-10.0 a again, but after a drop the source reported: a new segment
        closed += builder.add(k / 10, (k + 1) / 10, 0, 0.9, after_gap=k == 90)
    closed += builder.finish()
    got = [(s["start_s"], s["end_s"], s["label"]) for s in builder.segments]
    assert got == [(0.0, 2.0, "a"), (3.0, 5.0, "b"), (7.0, 9.0, "a"), (9.0, 10.0, "a")]
    assert closed == builder.segments  # each segment handed out once, as it closed
    assert builder.segments[0]["score"] == pytest.approx(0.9)  # the blip's window does not count
    assert builder.segments[1]["score"] == pytest.approx((0.9 * 10 + 0.45 * 10) / 20)


def test_builder_without_smoothing_follows_every_window():
    builder = TimelineBuilder(ActionRule(["a", "b"]), min_segment_s=0.0)
    for k, label in enumerate([0, 0, 1, 0]):
        builder.add(k, k + 1, label, 1.0)
    builder.finish()
    assert [(s["start_s"], s["end_s"], s["label"]) for s in builder.segments] == [
        (0, 2, "a"),
        (2, 3, "b"),
        (3, 4, "a"),
    ]


# ------------------------------------------------------------------------- a source that drops
class FakeLive:
    """A live source of `n` numbered frames at 10 fps that then stops (a dropped stream)."""

    live, fps = True, 10.0

    def __init__(self, n: int, name: str = "fake://camera") -> None:
        self.name, self.n, self.k, self.released = name, n, 0, False

    def read_timed(self, decode: bool = True) -> TimedFrame | None:
        if self.k >= self.n:
            return None
        self.k += 1
        return TimedFrame(np.full((4, 4, 3), self.k, np.uint8), (self.k - 1) / self.fps)

    def release(self) -> None:
        self.released = True


def test_a_source_that_drops_is_reopened_and_time_goes_on():
    opened: list[FakeLive] = []
    plan = ["ok", "refuse", "ok", "refuse", "refuse", "refuse"]

    def opener() -> FakeLive:
        if plan.pop(0) == "refuse":
            raise SourceError("fake://camera: cannot open the input")
        opened.append(FakeLive(5))
        return opened[-1]

    messages: list[str] = []
    source = ReconnectingSource(opener, tries=3, backoff_s=0.01, log=messages.append)
    frames = []
    while (frame := source.read_timed()) is not None:
        frames.append(frame)
    assert len(frames) == 10 and source.drops == 2 and opened[0].released
    assert [f.after_gap for f in frames] == [False] * 5 + [True] + [False] * 4
    times = [f.time_s for f in frames]
    assert times[:5] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    # The gap lasted at least the waits (0.01 s, refused, then 0.02 s): the time goes on past it.
    assert times[5] - times[4] >= 0.03 and np.all(np.diff(times[5:]) == pytest.approx(0.1))
    assert any("no frame at 0.4 s" in m for m in messages)
    assert any("reopening failed" in m for m in messages)
    assert any("reopened after 2 tries" in m for m in messages)
    assert "gave up after 3 tries" in messages[-1]
