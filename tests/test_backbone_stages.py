"""The backbone's staged forward: `stages()` and `forward_stages` compute exactly the original forward
(the loop of the published S3D / X3D-LGD models, written out below by state-dict name) at every cut."""

from pathlib import Path

import pytest
import torch

from action_rec.models import build_model
from action_rec.templates import load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "model_templates/custom-action-recognition"
S3D = TEMPLATES / "s3d-rgb-mobilenet-v3/template.yaml"
X3D = TEMPLATES / "x3d-rgb-mobilenet-v3-lgd-gc/template.yaml"


def reference_forward(backbone, x):
    """The original forward, independent of `stages()`: features, LGD steps by name, output conv."""
    glob = None
    for m, module in enumerate(backbone.features):
        x = module(x)
        if not backbone.lgd:
            continue
        if f"upsample_{m}" in backbone.lgd_upsample:
            x = backbone.lgd_upsample[f"upsample_{m}"](glob) + x
        if f"pooling_{m}" in backbone.lgd_pool:
            pooled = backbone.lgd_pool[f"pooling_{m}"](x)
            glob = pooled if m == 0 else backbone.lgd_glob[f"glob_{m}"](glob) + pooled
    return backbone.conv(x)


@pytest.fixture(scope="module", params=[S3D, X3D], ids=["s3d", "x3d"])
def backbone(request):
    torch.manual_seed(0)
    model = build_model(load_template(request.param), num_classes=3).eval()
    with torch.no_grad():  # non-trivial LGD upsampling (zero-initialised) and BN statistics
        for name, p in model.backbone.named_parameters():
            if "lgd_upsample" in name:
                p.normal_(0.0, 0.1)
    return model.backbone


def test_staged_forward_equals_the_plain_forward_at_every_cut(backbone):
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = reference_forward(backbone, clips)
        assert torch.equal(backbone(clips), expected)
        assert torch.equal(backbone.forward_stages(clips)[0], expected)
        for cut in range(backbone.num_stages + 1):
            x, glob = backbone.forward_stages(clips, stop=cut)
            assert (glob is None) is (not backbone.lgd or cut == 0), cut
            assert torch.equal(backbone.forward_stages(x, glob, start=cut)[0], expected), cut
        x, glob = backbone.forward_stages(clips, stop=5)  # three pieces: 0..4, 5..9, 10..end
        x, glob = backbone.forward_stages(x, glob, start=5, stop=10)
        assert torch.equal(backbone.forward_stages(x, glob, start=10)[0], expected)


def test_stages_cover_every_module_once_in_order(backbone):
    stages = backbone.stages()
    assert len(stages) == backbone.num_stages == len(backbone.features) + 1 == 17
    assert [s.index for s in stages] == list(range(17))
    assert stages[-1].module is backbone.conv and stages[0].module is backbone.features[0]
    params = [id(p) for s in stages for m in s.modules() for p in m.parameters()]
    assert sorted(params) == sorted(id(p) for p in backbone.parameters())  # each exactly once
    if backbone.lgd:
        assert stages[0].pool is backbone.lgd_pool["pooling_0"] and stages[0].glob_transform is None
        assert stages[14].upsample is backbone.lgd_upsample["upsample_14"] and stages[14].pool is None
    else:
        assert all(s.modules() == [s.module] for s in stages)
    # Stages hold references only: the state-dict keys are the original's.
    assert not any(".stages" in k or "module." in k for k in backbone.state_dict())
