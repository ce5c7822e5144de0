"""Clip sampling: properties over any segment, and the recipe's offsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from action_rec.data.annotations import VideoRecord
from action_rec.data.sampling import frame_interval_for, sample_clip_indices


def record(video_start, video_end, clip_start, clip_end, fps=30.0) -> VideoRecord:
    return VideoRecord("v", 0, video_start, video_end, clip_start, clip_end, fps, Path("/nowhere/v"))


@st.composite
def segments(draw):
    """A valid annotation: video [v0, v1], clip [c0, c1] inside it, c1 > c0."""
    v0 = draw(st.integers(0, 50))
    c0 = draw(st.integers(v0, v0 + 200))
    c1 = draw(st.integers(c0 + 1, c0 + 300))
    v1 = draw(st.integers(c1, c1 + 50))
    fps = draw(st.sampled_from([10.0, 24.0, 25.0, 29.97, 30.0, 60.0]))
    return record(v0, v1, c0, c1, fps)


@settings(max_examples=300, deadline=None)
@given(
    segments(),
    st.integers(1, 32),
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    st.one_of(st.none(), st.sampled_from([5.0, 12.5, 15.0, 30.0, 45.0])),
)
def test_every_index_inside_segment_and_video_and_right_count(rec, clip_len, interval, seed, target_fps):
    rng = None if seed is None else np.random.default_rng(seed)
    idx = sample_clip_indices(rec, clip_len, interval, rng, target_fps)
    assert idx.shape == (clip_len,)
    assert np.issubdtype(idx.dtype, np.integer)
    assert idx.min() >= rec.clip_start + 1 and idx.max() <= rec.clip_end  # the action segment
    assert idx.min() >= rec.video_start + 1 and idx.max() <= rec.video_end  # hence the video


@settings(max_examples=200, deadline=None)
@given(segments(), st.integers(1, 32), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_long_segment_training_clip_is_ordered_and_spaced(rec, clip_len, interval, seed):
    """With room for the whole clip: increasing indices, steps within [1, 2 * interval - 1] (jitter)."""
    if rec.num_clip_frames < clip_len * interval:
        return
    idx = sample_clip_indices(rec, clip_len, interval, np.random.default_rng(seed))
    steps = np.diff(idx)
    assert (steps >= 1).all() if interval > 1 else (steps == 1).all()
    assert (steps <= 2 * interval - 1).all()


@settings(max_examples=200, deadline=None)
@given(segments(), st.integers(1, 32), st.integers(1, 4))
def test_test_clip_is_centred_and_deterministic(rec, clip_len, interval):
    n, span = rec.num_clip_frames, clip_len * interval
    idx = sample_clip_indices(rec, clip_len, interval)
    assert np.array_equal(idx, sample_clip_indices(rec, clip_len, interval))
    if n >= span:
        offset = (n - span + 1) // 2  # the recipe's formula
        expected = rec.clip_start + 1 + offset + interval * np.arange(clip_len)
        assert np.array_equal(idx, expected)
        # centred: the frames left out before and after differ by at most one
        before, after = idx[0] - (rec.clip_start + 1), rec.clip_end - (idx[-1] + interval - 1)
        assert abs(before - after) <= 1


def test_recipe_numbers():
    """16 frames every 2nd from a 100-frame segment: test offset (100 - 32 + 1) // 2 = 34."""
    rec = record(0, 120, 10, 110)
    idx = sample_clip_indices(rec, 16, 2)
    assert idx[0] == 10 + 1 + 34 and idx[-1] == 10 + 1 + 34 + 30


def test_training_offsets_cover_the_whole_range_and_jitter_is_used():
    rec = record(0, 40, 0, 40)  # n = 40, span = 32: offsets 0..8
    firsts, jitters = set(), set()
    rng = np.random.default_rng(0)
    for _ in range(2000):
        idx = sample_clip_indices(rec, 16, 2, rng)
        firsts.add(int(idx[0]))
        jitters.update(((idx - 1) % 2).tolist())
    assert min(firsts) == 1 and max(firsts) == 1 + 8 + 1  # offset 8 plus jitter 1
    assert jitters == {0, 1}


def test_short_segment_loops_around():
    rec = record(0, 100, 20, 30)  # 10 frames, a clip needs 32
    idx = sample_clip_indices(rec, 16, 2)
    assert idx.tolist() == [21 + (2 * i) % 10 for i in range(16)]


def test_target_fps_sets_the_interval():
    rec60 = record(0, 600, 0, 600, fps=60.0)
    assert frame_interval_for(rec60, 2, 15.0) == 4.0
    assert frame_interval_for(rec60, 2, None) == 2.0
    idx = sample_clip_indices(rec60, 16, 2, None, target_fps=15.0)
    assert (np.diff(idx) == 4).all()  # 60 fps at 15 fps: every 4th frame
    rec25 = record(0, 600, 0, 600, fps=25.0)
    idx = sample_clip_indices(rec25, 16, 2, None, target_fps=10.0)  # 2.5 frames a step
    assert set(np.diff(idx).tolist()) == {2, 3}
    assert idx[-1] - idx[0] == int(15 * 2.5)
    with pytest.raises(ValueError, match="target_fps must be positive"):
        frame_interval_for(rec25, 2, 0.0)


def test_bad_arguments():
    rec = record(0, 10, 0, 10)
    with pytest.raises(ValueError, match="clip_len"):
        sample_clip_indices(rec, 0, 2)
    with pytest.raises(ValueError, match="interval"):
        sample_clip_indices(rec, 4, 0)
