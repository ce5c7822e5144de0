"""Transforms: the fast paths agree with the plain sequence of the recipe, one set of parameters per
clip, crops inside their ranges, real photometric distortion, CrossNorm, normalisation."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from action_rec.data.crossnorm import apply_crossnorm, clip_mean_std, read_mean_std_list, write_mean_std_list
from action_rec.data.statistics import mean_std_pairs
from action_rec.data.transforms import (
    MULTI_SCALES,
    ClipParams,
    EvalTransform,
    PhotometricParams,
    TrainTransform,
    apply_photometric,
    choose_colour_stage,
    crop_resize_frames,
    geometry_matrix,
    multi_scale_crop_box,
    normalize_batch,
    normalize_clip,
    preprocess_clip,
    random_resized_crop_box,
    sample_photometric,
    warp_frames,
)
from action_rec.errors import UserError
from action_rec.runtime.frames import resize_frame, resize_interpolation, short_side_size
from action_rec.templates import apply_overrides

MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])
ALL_COLOURS = "data.colour={none: 0.2, photometric: 0.4, crossnorm: 0.4}"


def smooth_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful frame: interpolation differences between equivalent paths stay small."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(6, 8, 3)).astype(np.float32)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def reference_normalize(clip: np.ndarray) -> np.ndarray:
    return ((clip.astype(np.float64) - MEAN) / STD).transpose(3, 0, 1, 2)


def test_short_side_size():
    assert short_side_size(256, 340, 256) == (256, 340)
    assert short_side_size(480, 640, 256) == (256, 341)
    assert short_side_size(426, 320, 256) == (341, 256)  # portrait


# ------------------------------------------------------------------------------------ geometry
def sequential(frame, resized_hw, angle, crop, size, flip):
    """The recipe step by step with plain OpenCV calls: resize, rotate, crop, resize, flip."""
    rh, rw = resized_hw
    img = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_LINEAR)
    if angle:
        m = cv2.getRotationMatrix2D(((rw - 1) / 2, (rh - 1) / 2), angle, 1.0)
        img = cv2.warpAffine(img, m, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    x, y, cw, ch = crop
    img = cv2.resize(img[y : y + ch, x : x + cw], (size, size), interpolation=cv2.INTER_LINEAR)
    return img[:, ::-1] if flip else img


@pytest.mark.parametrize(
    ("src_hw", "angle", "crop", "flip"),
    [
        ((256, 340), 0.0, (30, 20, 200, 180), False),
        ((256, 340), 0.0, (0, 0, 256, 256), True),
        ((480, 640), 0.0, (50, 10, 190, 230), False),
        ((256, 340), 7.5, (40, 16, 224, 224), False),
        ((256, 340), -10.0, (0, 0, 340, 256), True),
    ],
)
def test_single_warp_equals_the_step_by_step_recipe(src_hw, angle, crop, flip):
    frame = smooth_frame(*src_hw)
    resized = short_side_size(*src_hw, 256)
    matrix = geometry_matrix(src_hw, resized, angle, crop, 224, flip)
    fast = warp_frames([frame], matrix, 224)[0].astype(int)
    slow = sequential(frame, resized, angle, crop, 224, flip).astype(int)
    inner = (slice(3, -3), slice(3, -3))  # borders differ by where black starts
    diff = np.abs(fast[inner] - slow[inner])
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())


def test_crop_resize_path_equals_the_warp_path():
    frames = [smooth_frame(256, 340, s) for s in range(3)]
    for crop, flip in [((20, 30, 200, 190), False), ((0, 0, 340, 256), True)]:
        a = crop_resize_frames(frames, crop, 112, flip).astype(int)
        b = warp_frames(frames, geometry_matrix((256, 340), (256, 340), 0.0, crop, 112, flip), 112).astype(
            int
        )
        assert np.abs(a - b)[:, 2:-2, 2:-2].max() <= 2


def test_rotation_leaves_black_corners_and_flip_mirrors():
    frame = np.full((256, 256, 3), 200, np.uint8)
    rotated = warp_frames(
        [frame], geometry_matrix((256, 256), (256, 256), 10.0, (0, 0, 256, 256), 128, False), 128
    )
    assert rotated[0, 0, 0].max() == 0 and rotated[0, 64, 64].min() == 200
    image = smooth_frame(256, 340)
    m = geometry_matrix((256, 340), (256, 340), 5.0, (10, 10, 220, 220), 96, False)
    m_flip = geometry_matrix((256, 340), (256, 340), 5.0, (10, 10, 220, 220), 96, True)
    a, b = warp_frames([image], m, 96)[0], warp_frames([image], m_flip, 96)[0]
    assert np.abs(a[:, ::-1].astype(int) - b.astype(int)).max() <= 1


def test_multi_scale_crop_sizes_and_five_offsets():
    rng = np.random.default_rng(0)
    h, w = 256, 340
    sides = [int(256 * s) for s in MULTI_SCALES]
    offsets = set()
    for _ in range(3000):
        x, y, cw, ch = multi_scale_crop_box(h, w, rng)
        assert cw in sides and ch in sides and abs(sides.index(cw) - sides.index(ch)) <= 1
        assert 0 <= x and x + cw <= w and 0 <= y and y + ch <= h
        ws, hs = (w - cw) // 4, (h - ch) // 4
        assert (x, y) in {(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)}
        offsets.add((x == 0, y == 0, x == 2 * ws and y == 2 * hs))
    assert len(offsets) >= 4  # corners and centre all drawn


def test_random_resized_crop_area_and_aspect():
    rng = np.random.default_rng(0)
    h, w = 256, 340
    for _ in range(3000):
        x, y, cw, ch = random_resized_crop_box(h, w, rng)
        assert 0 <= x and x + cw <= w and 0 <= y and y + ch <= h
        if (cw, ch) == (256, 256) and x == (w - 256) // 2:
            continue  # the fallback
        assert 0.4 * h * w * 0.97 <= cw * ch <= h * w
        assert 0.5 * 0.97 <= cw / ch <= 1.5 * 1.03
    # a frame no crop fits in 10 attempts -> centred square
    assert random_resized_crop_box(
        10, 1000, np.random.default_rng(1), area_range=(0.9, 1.0), aspect_range=(1, 1)
    ) == (
        495,
        0,
        10,
        10,
    )


# ---------------------------------------------------------------------------------- pipelines
@pytest.mark.parametrize("name", ["s3d", "x3d"])
@pytest.mark.parametrize("hw", [(256, 340), (426, 320), (720, 1280)])
def test_train_clip_shape_and_one_set_of_parameters_per_clip(request, name, hw):
    template = apply_overrides(request.getfixturevalue(f"{name}_template"), [ALL_COLOURS])
    pairs = np.array([[[110, 100, 90], [50, 55, 60]], [[90, 120, 100], [40, 45, 70]]], np.float32)
    transform = TrainTransform(template, pairs)
    frame = smooth_frame(*hw)
    for seed in range(8):
        clip = transform([frame] * 6, np.random.default_rng(seed))
        assert clip.shape == (3, 6, 224, 224) and clip.dtype == torch.float32
        assert torch.isfinite(clip).all()
        # the same frame six times in -> the same frame six times out (same parameters for all frames)
        assert (clip - clip[:, :1]).abs().max() == 0


def test_train_params_follow_the_template(s3d_template):
    transform = TrainTransform(
        apply_overrides(s3d_template, ["data.horizontal_flip=false", "data.rotation_deg=0"])
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = transform.sample(256, 340, rng)
        assert not p.flip and p.angle == 0.0 and p.colour == "photometric"
    transform = TrainTransform(
        apply_overrides(s3d_template, ["data.horizontal_flip=true", "data.rotation_deg=10"])
    )
    params = [transform.sample(256, 340, rng) for _ in range(2000)]
    angles = np.array([p.angle for p in params])
    assert 0.45 < (angles != 0).mean() < 0.55 and np.abs(angles).max() <= 10
    assert 0.45 < np.mean([p.flip for p in params]) < 0.55


def test_colour_stage_probabilities(x3d_template):
    rng = np.random.default_rng(0)
    draws = [choose_colour_stage(x3d_template.data.colour.to_dict(), rng) for _ in range(6000)]
    freq = {k: draws.count(k) / len(draws) for k in ("none", "photometric", "crossnorm")}
    assert freq["none"] == pytest.approx(0.1, abs=0.02)
    assert freq["photometric"] == pytest.approx(0.45, abs=0.03)
    assert freq["crossnorm"] == pytest.approx(0.45, abs=0.03)
    with pytest.raises(UserError, match="probabilities"):
        choose_colour_stage({"none": 0, "photometric": 0, "crossnorm": 0}, rng)


def test_eval_transform_is_resize_centre_crop_normalise(s3d_template):
    frames = [smooth_frame(240, 320, s) for s in range(4)]
    out = preprocess_clip(frames, s3d_template)
    assert out.shape == (3, 4, 224, 224)
    # reference, written out: 240x320 -> 256x341, crop rows 16..240, cols 58..282
    ref = []
    for f in frames:
        r = cv2.resize(f, (341, 256), interpolation=cv2.INTER_LINEAR)
        ref.append(r[16:240, 58:282])
    np.testing.assert_allclose(out.numpy(), reference_normalize(np.stack(ref)), atol=1e-4)
    assert torch.equal(EvalTransform(s3d_template)(frames), out)


def test_one_resize_rule_area_beyond_2x_else_bilinear():
    assert resize_interpolation((1080, 1920), (256, 455)) == cv2.INTER_AREA  # 4.2x
    assert resize_interpolation((480, 640), (256, 341)) == cv2.INTER_LINEAR  # 1.9x
    assert resize_interpolation((512, 1000), (256, 256)) == cv2.INTER_LINEAR  # 2x exactly: bilinear
    assert resize_interpolation((120, 160), (256, 341)) == cv2.INTER_LINEAR  # enlarging
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, size=(1080, 1440, 3), dtype=np.uint8)
    assert np.array_equal(
        resize_frame(noisy, (256, 341)), cv2.resize(noisy, (341, 256), interpolation=cv2.INTER_AREA)
    )


def test_training_and_evaluation_resize_a_large_frame_alike(s3d_template):
    # A 4x larger frame than the network's short side: the same centre crop through the training path
    # (no rotation, flip or colour) and through the evaluation / live path gives identical pixels.
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, size=(1024, 1360, 3), dtype=np.uint8)
    evaluated = EvalTransform(s3d_template, normalize=False)([frame])
    rh, rw = short_side_size(1024, 1360, 256)
    crop = ((rw - 224) // 2, (rh - 224) // 2, 224, 224)
    params = ClipParams((rh, rw), crop, colour="none")
    trained = TrainTransform(s3d_template, normalize=False).apply([frame], params)
    assert torch.equal(trained, evaluated)
    # ...and both averaged the area (bilinear would have kept single noisy pixels).
    area = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_AREA)[
        crop[1] : crop[1] + 224, crop[0] : crop[0] + 224
    ]
    assert np.array_equal(evaluated[:, 0].permute(1, 2, 0).numpy(), area)


def test_colour_stage_can_be_switched_off_to_the_originals_no_op(s3d_template):
    # The original's photometric distortion returned its input unchanged: `colour: {none: 1, ...}`
    # reproduces that, and gives the same clip as a drawn "none" stage.
    off = apply_overrides(s3d_template, ["data.colour={none: 1.0, photometric: 0.0, crossnorm: 0.0}"])
    transform = TrainTransform(off, normalize=False)
    rng = np.random.default_rng(0)
    assert all(transform.sample(256, 340, rng).colour == "none" for _ in range(100))
    frame = smooth_frame(256, 256)
    params = ClipParams((256, 256), (16, 16, 224, 224), colour="none")
    clip = transform.apply([frame], params)
    assert np.array_equal(clip[:, 0].permute(1, 2, 0).numpy(), frame[16:240, 16:240])


def test_eval_pads_black_when_the_crop_is_larger_than_the_frame(s3d_template):
    large = replace(s3d_template, input=replace(s3d_template.input, size=300))  # larger than resize_short
    out = preprocess_clip([np.full((240, 320, 3), 255, np.uint8)], large)
    assert out.shape == (3, 1, 300, 300)
    black = torch.tensor(-MEAN / STD, dtype=torch.float32)
    white = torch.tensor((255 - MEAN) / STD, dtype=torch.float32)
    assert torch.allclose(out[:, 0, 0, 150], black)  # top rows: outside the 256-pixel-high frame
    assert torch.allclose(out[:, 0, 150, 150], white)


def test_normalize_clip_matches_the_formula():
    clip = np.random.default_rng(0).integers(0, 256, size=(3, 8, 10, 3), dtype=np.uint8)
    out = normalize_clip(clip, MEAN, STD)
    assert out.shape == (3, 3, 8, 10) and out.is_contiguous()
    np.testing.assert_allclose(out.numpy(), reference_normalize(clip), atol=1e-5)


# ------------------------------------------------------------- uint8 clips, normalised per batch
ROUNDING = 0.5 / STD.min() + 1e-5  # half a grey level after normalisation, about 0.0087


def normalise_one(clip: torch.Tensor) -> torch.Tensor:
    return normalize_batch(clip[None], MEAN, STD)[0]


@pytest.mark.parametrize("angle", [0.0, 7.0])
@pytest.mark.parametrize(
    ("colour", "photometric", "pair"),
    [
        ("none", PhotometricParams(), None),
        # brightness/contrast only: folded into the normalisation on the float path; clamps at 0 and 255
        ("photometric", PhotometricParams(brightness=30.0, contrast=1.4), None),
        ("photometric", PhotometricParams(brightness=-25.0, contrast=0.7), None),
        ("photometric", PhotometricParams(brightness=12.0, contrast=1.2, saturation=1.4, hue=-15.0), None),
        ("crossnorm", PhotometricParams(), np.array([[70.0, 150.0, 200.0], [70.0, 30.0, 20.0]])),
    ],
)
def test_uint8_clip_normalised_per_batch_equals_the_float_clip(
    s3d_template, angle, colour, photometric, pair
):
    frames = [smooth_frame(256, 340, s) for s in range(4)]
    params = ClipParams((256, 340), (20, 10, 250, 230), angle, True, colour, photometric, pair)
    ref = TrainTransform(s3d_template).apply(frames, params)
    clip = TrainTransform(s3d_template, normalize=False).apply(frames, params)
    assert clip.dtype == torch.uint8 and clip.shape == ref.shape == (3, 4, 224, 224)
    assert (normalise_one(clip) - ref).abs().max() <= ROUNDING
    if colour != "none":  # the colour stage is there, and large next to the rounding
        plain = TrainTransform(s3d_template).apply(
            frames, ClipParams((256, 340), (20, 10, 250, 230), angle, True)
        )
        assert (plain - ref).abs().max() > 0.5


@pytest.mark.parametrize("name", ["s3d", "x3d"])
def test_uint8_and_float_training_clips_agree_for_the_same_seed(request, name):
    template = apply_overrides(request.getfixturevalue(f"{name}_template"), [ALL_COLOURS])
    pairs = np.array([[[110, 100, 90], [50, 55, 60]], [[90, 120, 100], [40, 45, 70]]], np.float32)
    as_float, as_uint8 = TrainTransform(template, pairs), TrainTransform(template, pairs, normalize=False)
    frames = [smooth_frame(256, 340, s) for s in range(3)]
    for seed in range(12):
        ref = as_float(frames, np.random.default_rng(seed))
        clip = as_uint8(frames, np.random.default_rng(seed))
        assert clip.dtype == torch.uint8 and clip.shape == (3, 3, 224, 224)
        assert (normalise_one(clip) - ref).abs().max() <= ROUNDING, seed


def test_uint8_eval_clip(s3d_template):
    frames = [smooth_frame(240, 320, s) for s in range(4)]
    clip = EvalTransform(s3d_template, normalize=False)(frames)
    assert clip.dtype == torch.uint8 and clip.shape == (3, 4, 224, 224)
    assert (normalise_one(clip) - preprocess_clip(frames, s3d_template)).abs().max() < 1e-5


def test_normalize_batch_matches_the_formula_and_keeps_the_memory_format():
    clips = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(2, 3, 4, 6, 5), dtype=np.uint8))
    ref = torch.from_numpy(
        np.stack([reference_normalize(c.permute(1, 2, 3, 0).numpy()) for c in clips]).astype(np.float32)
    )
    out = normalize_batch(clips, MEAN, STD)
    assert out.dtype == torch.float32 and out.shape == clips.shape and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    last = normalize_batch(clips, MEAN, STD, memory_format=torch.channels_last_3d)
    assert last.is_contiguous(memory_format=torch.channels_last_3d) and not last.is_contiguous()
    torch.testing.assert_close(last, ref, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        normalize_batch(clips.float(), MEAN, STD)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_normalize_batch_on_cuda():
    clips = torch.randint(0, 256, (2, 3, 4, 6, 5), dtype=torch.uint8)
    out = normalize_batch(clips.cuda(), MEAN, STD)
    assert out.is_cuda and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), normalize_batch(clips, MEAN, STD))


# ------------------------------------------------------------------------------------- colour
def test_photometric_identity_and_each_component():
    clip = np.stack([smooth_frame(32, 48, s) for s in range(3)])
    assert np.array_equal(apply_photometric(clip, PhotometricParams()), clip)
    brighter = apply_photometric(clip, PhotometricParams(brightness=20))
    assert np.abs(brighter.astype(int) - np.minimum(clip.astype(int) + 20, 255)).max() <= 1
    grey = apply_photometric(clip, PhotometricParams(saturation=0.0)).astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1  # no colour left
    grey_in = np.repeat(clip[..., :1], 3, axis=-1)
    assert np.abs(apply_photometric(grey_in, PhotometricParams(hue=15)).astype(int) - grey_in).max() <= 1
    hued = apply_photometric(clip, PhotometricParams(hue=15)).astype(int)
    assert np.abs(hued - clip).mean() > 2  # colours did move


def test_photometric_distortion_is_real_and_documented():
    clip = np.stack([smooth_frame(32, 48, s) for s in range(2)])
    rng = np.random.default_rng(0)
    changed = sum(
        not np.array_equal(apply_photometric(clip, sample_photometric(rng)), clip) for _ in range(200)
    )
    assert changed > 150  # only the all-identity draw (1/16) leaves a clip unchanged
    doc = apply_photometric.__doc__
    assert "bug" in doc and "deliberate improvement" in doc


def test_photometric_through_the_pipeline_changes_colour(s3d_template):
    s3d_template = apply_overrides(s3d_template, ["data.rotation_deg=0"])
    frame = smooth_frame(256, 256)
    transform = TrainTransform(s3d_template)
    base = ClipParams((256, 256), (0, 0, 256, 256))
    plain = transform.apply([frame], base)
    for photo in (PhotometricParams(brightness=30), PhotometricParams(saturation=0.3, hue=10)):
        base.colour, base.photometric = "photometric", photo
        assert (transform.apply([frame], base) - plain).abs().mean() > 0.05


def test_crossnorm_gives_the_listed_statistics():
    rng = np.random.default_rng(0)
    clip = rng.normal(120, 20, size=(4, 32, 32, 3)).clip(0, 255).astype(np.uint8)
    pair = np.array([[90.0, 130.0, 150.0], [25.0, 30.0, 15.0]])
    out = apply_crossnorm(clip, pair)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), pair[0], atol=1.0)
    np.testing.assert_allclose(out.reshape(-1, 3).std(0), pair[1], rtol=0.05)


def test_crossnorm_leaves_flat_clips_alone_and_fuses_with_normalisation():
    flat = np.zeros((2, 8, 8, 3), np.uint8)
    flat[..., 0] = 7  # one channel has std 0
    flat[0, :, :, 1:] = 200
    pair = np.array([[100.0, 100.0, 100.0], [50.0, 50.0, 50.0]])
    assert np.array_equal(apply_crossnorm(flat, pair), flat.astype(np.float32))

    clip = np.random.default_rng(1).integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    from action_rec.data.crossnorm import crossnorm_affine

    fused = normalize_clip(clip, MEAN, STD, crossnorm_affine(clip, pair))
    np.testing.assert_allclose(fused.numpy(), reference_normalize(apply_crossnorm(clip, pair)), atol=1e-4)


def test_clip_mean_std_matches_numpy():
    clip = np.random.default_rng(2).integers(0, 256, size=(3, 8, 9, 3), dtype=np.uint8)
    mean, std = clip_mean_std(clip)
    np.testing.assert_allclose(mean, clip.reshape(-1, 3).mean(0), rtol=1e-9)
    np.testing.assert_allclose(std, clip.reshape(-1, 3).std(0), rtol=1e-6)


def test_mean_std_list_round_trip_and_errors(tmp_path):
    pairs = np.array([[[1.5, 2.25, 3.0], [4.0, 5.0, 6.5]], [[100.0, 110.0, 120.0], [50.0, 51.0, 52.0]]])
    path = tmp_path / "mean_std_list.txt"
    write_mean_std_list(path, pairs)
    assert path.read_text().splitlines()[0] == "1.5000,2.2500,3.0000 4.0000,5.0000,6.5000"
    np.testing.assert_allclose(read_mean_std_list(path), pairs, rtol=1e-6)
    for text, message in [
        ("1,2,3 4,5\n", r":1: expected 'm_r,m_g,m_b s_r,s_g,s_b'"),
        ("1,2,3\n", r":1: expected"),
        ("\n1,2,3 4,5,x\n", r":2: non-numeric value"),
        ("1,2,3 4,0,6\n", r":1: stds must be positive"),
        ("\n", r"no mean/std pairs"),
    ]:
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(UserError, match=message):
            read_mean_std_list(bad)


def test_mean_std_pairs_drop_dark_or_flat_clips():
    stats = np.array(
        [
            [[100, 100, 100], [40, 40, 40]],
            [[0.5, 100, 100], [40, 40, 40]],  # a channel mean <= 1
            [[100, 100, 100], [40, 1.0, 40]],  # a channel std <= 1
            [[1.01, 2, 3], [1.01, 2, 3]],
        ],
        dtype=float,
    )
    kept = mean_std_pairs(stats)
    assert kept.shape == (2, 2, 3)
    np.testing.assert_array_equal(kept, stats[[0, 3]])
