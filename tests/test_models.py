"""The two backbones and heads: state-dict layout of the originals, shapes, order of operations,
init, training/eval behaviour, export and complexity."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from action_rec.errors import UserError
from action_rec.evaluation.complexity import count_complexity
from action_rec.models import build_model
from action_rec.models.attention import GlobalContextPooling
from action_rec.models.blocks import SqueezeExcitation3d
from action_rec.runtime.openvino_core import shared_core
from action_rec.templates import Template, apply_overrides, load_template

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared" / "spec"
TEMPLATE_DIR = ROOT / "model_templates" / "custom-action-recognition"
S3D, X3D = "s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc"
MODELS = [S3D, X3D]


def template(name: str) -> Template:
    return load_template(TEMPLATE_DIR / name / "template.yaml")


def randomise_bn(model: nn.Module) -> None:
    """Give every BN non-trivial statistics and affine parameters (init leaves them at 0/1)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)


def parse_key_file(path: Path) -> list[tuple[str, tuple[int, ...], str]]:
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, rest = line.split(" ", 1)
        shape_text, dtype = rest.rsplit(" ", 1)
        shape = tuple(int(s) for s in shape_text.strip("()").split(",") if s.strip())
        rows.append((name, shape, dtype))
    return rows


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_equals_original_key_list(name):
    key_file = SPEC / f"{name}.state_dict_keys.txt"
    if not key_file.is_file():
        pytest.skip(f"{key_file} not available")
    expected = parse_key_file(key_file)
    state = build_model(template(name), num_classes=27).state_dict()
    actual = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()]
    assert [r[0] for r in actual] == [r[0] for r in expected]  # same names, same order
    assert actual == expected  # and the same shapes and dtypes


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("clip_len", "size", "classes"), [(8, 112, 3), (16, 112, 27), (8, 160, 101)])
def test_output_shapes(name, clip_len, size, classes):
    model = build_model(template(name), num_classes=classes).eval()
    x = torch.randn(2, 3, clip_len, size, size)
    with torch.no_grad():
        features = model.features(x)
        scores = model(x)
        embedding = model.embed(x)
    assert features.shape == (2, 960, clip_len // 4, math.ceil(size / 32), math.ceil(size / 32))
    assert scores.shape == (2, classes)
    assert embedding.shape == (2, 256)
    assert model.num_classes == classes


@pytest.mark.parametrize("name", MODELS)
def test_backbone_output_at_published_input_size(name):
    model = build_model(template(name)).eval()
    with torch.no_grad():
        assert model.features(torch.randn(1, 3, 16, 224, 224)).shape == (1, 960, 4, 7, 7)


@pytest.mark.parametrize("name", MODELS)
def test_angular_head_is_cosine_of_normalised_embedding(name):
    model = build_model(template(name), num_classes=7).eval()
    randomise_bn(model)
    x = torch.randn(3, 3, 8, 64, 64)
    with torch.no_grad():
        scores = model(x)
        # The head written out step by step: global average, 1x1x1 conv, BN, L2, cosine per column.
        features = model.features(x)
        conv, bn = model.cls_head.fc_pre_angular
        pooled = features.mean(dim=(2, 3, 4))
        emb = F.linear(pooled, conv.weight.flatten(1))
        emb = (emb - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        emb = emb / emb.norm(dim=1, keepdim=True)
        w = model.cls_head.fc_angular.weight
        expected = emb @ (w / w.norm(dim=0, keepdim=True))
        embedding = model.embed(x)
    assert w.shape == (256, 7)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(model.classify(embedding), scores)
    assert scores.abs().max() <= 1.0 + 1e-6


def test_reg_mask_is_strict_upper_triangle():
    head = build_model(template(S3D), num_classes=4).cls_head
    mask = head.fc_angular.reg_mask
    assert mask.dtype == torch.float32
    assert mask.tolist() == [[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    # What the centre-push loss needs, asked of the head (training does not read its attributes).
    assert head.centre_pairs() is mask
    torch.testing.assert_close(head.class_centres(), F.normalize(head.fc_angular.weight, dim=0))
    t = apply_overrides(template(S3D), ["model.head=linear"])
    linear = build_model(t, num_classes=4).cls_head
    assert linear.class_centres() is None and linear.centre_pairs() is None


def test_probabilities_use_template_scale_end():
    t = apply_overrides(template(S3D), ["loss.scale_end=10.0"])
    model = build_model(t, num_classes=3)
    scores = torch.tensor([[0.5, 0.0, -0.5]])
    probs = model.probabilities(scores)
    e = [math.exp(10 * s) for s in (0.5, 0.0, -0.5)]
    torch.testing.assert_close(probs, torch.tensor([[v / sum(e) for v in e]]))
    assert build_model(template(S3D), num_classes=3).cls_head.scale == 5.0


@pytest.mark.parametrize("name", MODELS)
def test_linear_head_gives_logits_of_pooled_features(name):
    t = apply_overrides(template(name), ["model.head=linear"])
    model = build_model(t, num_classes=6).eval()
    assert set(model.cls_head.state_dict()) == {"fc.weight", "fc.bias"}
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        nn.init.normal_(model.cls_head.fc.bias)
        logits = model(x)
        expected = model.features(x).mean(dim=(2, 3, 4)) @ model.cls_head.fc.weight.T + model.cls_head.fc.bias
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.probabilities(logits), torch.softmax(logits, dim=1))


def test_build_model_rejects_unknown_architecture_and_head():
    t = template(S3D)
    t = replace(
        t, model=replace(t.model, architecture="resnet50")
    )  # past validation: build_model says so too
    with pytest.raises(UserError, match="resnet50"):
        build_model(t)
    t = template(S3D)
    t = replace(t, model=replace(t.model, head="arcface"))
    with pytest.raises(UserError, match="arcface"):
        build_model(t)
    with pytest.raises(UserError, match="num_classes"):
        build_model(template(S3D), num_classes=0)


def test_build_model_accepts_template_path():
    model = build_model(TEMPLATE_DIR / X3D / "template.yaml")
    assert model.num_classes == 27
    assert hasattr(model.backbone, "lgd_pool")


def test_squeeze_excitation_gates_each_frame_over_height_and_width_only():
    torch.manual_seed(0)
    se = SqueezeExcitation3d(8).eval()
    x = torch.rand(2, 8, 3, 5, 5) + 0.1
    x[:, :, 1] *= 4  # frames differ, so a per-frame gate differs from a per-clip one
    with torch.no_grad():
        gate = se(x) / x
        expected = F.hardsigmoid(se.fc[2](F.relu(se.fc[0](x.mean(dim=(3, 4), keepdim=True)))))
    torch.testing.assert_close(gate, expected.expand_as(x))
    assert not torch.allclose(gate[:, :, 0], gate[:, :, 1])


def test_global_context_pooling_softmax_over_all_positions():
    gc = GlobalContextPooling(4).eval()
    x = torch.randn(2, 4, 3, 5, 6)
    with torch.no_grad():
        nn.init.zeros_(gc.encoder[0].weight)  # equal keys -> uniform weights -> plain mean
        torch.testing.assert_close(gc(x), x.mean(dim=(2, 3, 4), keepdim=True))
        nn.init.normal_(gc.encoder[0].weight)
        keys = gc.encoder(x).flatten(2)
        weights = torch.softmax(keys, dim=2)  # one distribution over T*H*W
        expected = (x.flatten(2) * weights).sum(dim=2)
        torch.testing.assert_close(gc(x).flatten(1), expected)


@pytest.mark.parametrize("name", MODELS)
def test_residual_only_without_stride_and_with_equal_channels(name):
    model = build_model(template(name)).eval()
    randomise_bn(model)
    table_name = "S3D_MOBILENET_V3_LARGE" if name == S3D else "X3D_MOBILENET_V3_LARGE"
    import action_rec.models as models

    table = getattr(models, table_name)
    in_channels = [16] + [cfg.out for cfg in table[:-1]]
    for cfg, cin, block in zip(table, in_channels, model.backbone.features[1:], strict=True):
        last_bn = [m for m in block.conv if isinstance(m, nn.BatchNorm3d)][-1]
        with torch.no_grad():
            nn.init.zeros_(last_bn.weight)
            nn.init.zeros_(last_bn.bias)
            last_bn.running_mean.zero_()
            x = torch.randn(1, cin, 4, 8, 8)
            y = block(x)
        if cfg.stride == 1 and cfg.t_stride == 1 and cin == cfg.out:
            torch.testing.assert_close(y, x)  # the branch is zero, the skip remains
        else:
            assert not y.any()


def test_s3d_temporal_stride_is_average_pool_after_projection():
    model = build_model(template(S3D)).eval()
    block = model.backbone.features[2]  # block 1: spatial stride 2, temporal stride 2
    assert isinstance(block.conv[-1], nn.AvgPool3d)
    x = torch.randn(1, 16, 8, 16, 16)
    with torch.no_grad():
        before_pool = block.conv[:-1](x)
        y = block(x)
    assert before_pool.shape[2] == 8
    torch.testing.assert_close(y, (before_pool[:, :, 0::2] + before_pool[:, :, 1::2]) / 2)


def test_x3d_starts_as_the_plain_network():
    """upsample_m's last BN starts at zero, so the global path adds nothing at init."""
    model = build_model(template(X3D)).eval()
    backbone = model.backbone
    for up in backbone.lgd_upsample.values():
        assert not up.conv[4].weight.any() and not up.conv[4].bias.any()
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        plain = x
        for module in backbone.features:
            plain = module(plain)
        torch.testing.assert_close(backbone(x), backbone.conv(plain))


def test_x3d_global_path_order():
    """The LGD order of the spec, written out: upsample after modules 1..14, pool after 0..13,
    glob_m(glob) + pooled after 1..13 (glob with residual when channels agree)."""
    model = build_model(template(X3D)).eval()
    randomise_bn(model)  # also makes the upsample branches non-zero
    b = model.backbone
    x = torch.randn(1, 3, 8, 64, 64)

    def mlp(seq, v):
        return seq[4](seq[3](seq[2](seq[1](seq[0](v)))))

    with torch.no_grad():
        local, glob = x, None
        for m, module in enumerate(b.features):
            local = module(local)
            if 1 <= m <= 14:
                local = mlp(b.lgd_upsample[f"upsample_{m}"].conv, glob) + local
            if m <= 13:
                pool = b.lgd_pool[f"pooling_{m}"].conv
                pooled = pool[5](pool[4](pool[3](pool[2](pool[1](pool[0](local))))))
                if m == 0:
                    glob = pooled
                else:
                    g = mlp(b.lgd_glob[f"glob_{m}"].conv, glob)
                    glob = (g + glob if g.shape == glob.shape else g) + pooled
        expected = b.conv(local)
        torch.testing.assert_close(b(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_init_from_scratch(name):
    model = build_model(template(name))
    conv = model.backbone.features[15].conv[0]  # 960 x 160 x 1 x 1 x 1
    n = math.prod(conv.kernel_size) * conv.out_channels
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / n), rel=0.05)
    assert abs(conv.weight.mean().item()) < 0.1 * math.sqrt(2 / n)
    zero_init = {id(up.conv[4]) for up in getattr(model.backbone, "lgd_upsample", {}).values()}
    residual = [block for block in model.backbone.features[1:] if block.use_residual]
    assert len(residual) >= 5
    zero_init |= {id([m for m in block.conv if isinstance(m, nn.BatchNorm3d)][-1]) for block in residual}
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            assert not m.bias.any()
            assert not m.weight.any() if id(m) in zero_init else (m.weight == 1).all()
    # A residual block starts as the identity, in training as in eval mode.
    block = residual[0]
    x = torch.randn(2, block.conv[0].in_channels, 4, 8, 8)
    for mode in (True, False):
        block.train(mode)
        torch.testing.assert_close(block(x), x)
    torch.testing.assert_close(model.cls_head.fc_angular.weight.norm(dim=0), torch.ones(27))


@pytest.mark.parametrize("name", MODELS)
def test_train_mode_backward_and_eval_mode(name):
    model = build_model(template(name), num_classes=4)
    model.train()
    x = torch.randn(2, 3, 8, 64, 64)
    scores = model(x)
    F.cross_entropy(10 * scores, torch.tensor([0, 3])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert model.backbone.features[0][0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    torch.testing.assert_close(a, b)  # eval is deterministic (no dropout, fixed BN statistics)


@pytest.mark.parametrize("name", MODELS)
def test_saved_and_reloaded_state_dict_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(template(name), num_classes=5).eval()
    randomise_bn(model)
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    torch.manual_seed(1)
    other = build_model(template(name), num_classes=5).eval()
    other.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    ("name", "dynamo"),
    [
        pytest.param(S3D, False, id="s3d-legacy"),
        pytest.param(X3D, False, id="x3d-legacy"),
        pytest.param(X3D, True, id="x3d-default-exporter", marks=pytest.mark.slow),  # ~10 s
    ],
)
def test_onnx_export_fixed_shape_matches_pytorch(name, dynamo, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = build_model(template(name), num_classes=5).eval()
    randomise_bn(model)
    x = torch.randn(1, 3, 8, 112, 112)
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model, (x,), str(path), dynamo=dynamo, input_names=["input"], output_names=["output"], verbose=False
    )
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    dims = [d.dim_value for d in graph.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 5]
    compiled = shared_core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    with torch.no_grad():
        expected = model(x).numpy()
    got = compiled(x.numpy())[0]
    assert abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_complexity_matches_published_within_one_percent(name):
    t = template(name)
    model = build_model(t, num_classes=27)
    model.train()
    result = count_complexity(model, (1, 3, 16, 224, 224))
    assert model.training  # mode restored
    assert result["params_m"] == pytest.approx(t.published.params_m, rel=0.01)
    assert result["gflops"] == pytest.approx(t.published.gflops, rel=0.01)
    # Parameters include the head: 73 classes more add 256 x 73 weights.
    more = count_complexity(build_model(t, num_classes=100), (1, 3, 8, 64, 64))
    assert more["params_m"] - result["params_m"] == pytest.approx(256 * 73 / 1e6)
