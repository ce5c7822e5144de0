"""Export: checkpoint -> ONNX -> OpenVINO IR, checked here against PyTorch independently of the
export's own verification, in every input format; INT8; metadata; atomic output; clear errors.

Models are the real architectures on tiny clips (4 x 32 x 32) so that an export takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_checkpoints import NAMES, TEMPLATES, TINY, tiny_template

from action_rec.export.cli import main as export_main
from action_rec.models import build_model
from action_rec.runtime.compile import available_hints
from action_rec.runtime.openvino_core import shared_core


def _ir_input(frames_rgb: np.ndarray, fmt: str, mean, std) -> np.ndarray:
    """Written out here, independently of the package, from each format's documented contract."""
    if fmt == "bgr8":
        return frames_rgb[None, :, :, :, ::-1].copy()  # 1 x T x H x W x 3, BGR, uint8
    planar = frames_rgb.astype(np.float32).transpose(3, 0, 1, 2)[None].copy()  # 1 x 3 x T x H x W
    if fmt == "normalized":
        planar = (planar - np.float32(mean).reshape(1, 3, 1, 1, 1)) / np.float32(std).reshape(1, 3, 1, 1, 1)
    return planar


def _compare(xml: Path, checkpoint: Path, arch: str, seed: int = 1) -> tuple[float, dict]:
    meta = json.loads(xml.with_suffix(".json").read_text())
    template = tiny_template(arch)
    model = build_model(template, num_classes=len(NAMES)).eval()
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    frames = np.random.default_rng(seed).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    mean, std = template.input.mean, template.input.std
    x = torch.from_numpy(_ir_input(frames, "normalized", mean, std))
    with torch.no_grad():
        expected = model.probabilities(model(x)).numpy()
    core = shared_core()
    compiled = core.compile_model(core.read_model(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    scores = compiled(_ir_input(frames, meta["input"]["format"], mean, std))[0]
    got = torch.softmax(torch.from_numpy(scores) * meta["output"]["softmax_scale"], dim=1).numpy()
    return float(np.abs(got - expected).max()), meta


@pytest.mark.parametrize(
    "arch, fmt",
    [
        ("s3d-rgb-mobilenet-v3", "rgb255"),
        ("s3d-rgb-mobilenet-v3", "bgr8"),
        ("x3d-rgb-mobilenet-v3-lgd-gc", "normalized"),
    ],
)
def test_exported_ir_matches_pytorch(tmp_path, checkpoints, arch, fmt, capsys):
    out = tmp_path / "export"
    rc = export_main(["--load-weights", str(checkpoints[arch]), "--save-model-to", str(out), "--input-format", fmt,
                      "--no-progress"], template_path=TEMPLATES / arch / "template.yaml")  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "model.json", "model.onnx", "model.xml"]
    diff, meta = _compare(out / "model.xml", checkpoints[arch], arch)
    assert diff < 1e-4
    assert meta["class_names"] == NAMES and meta["precision"] == "FP32"
    assert meta["input"]["format"] == fmt and meta["input"]["clip_len"] == 4 and meta["input"]["size"] == 32
    expected_shape = [1, 4, 32, 32, 3] if fmt == "bgr8" else [1, 3, 4, 32, 32]
    assert meta["input"]["shape"] == expected_shape
    assert meta["input"]["element_type"] == ("u8" if fmt == "bgr8" else "f32")
    assert meta["output"] == {
        **meta["output"],
        "kind": "cosine",
        "softmax_scale": 5.0,
        "shape": [1, len(NAMES)],
    }
    ir = shared_core().read_model(out / "model.xml")
    assert [list(ir.inputs[0].shape), ir.inputs[0].any_name, ir.outputs[0].any_name] == [
        expected_shape,
        "input",
        "output",
    ]
    assert max(meta["verification"]["max_prob_diff_vs_pytorch"].values()) < 1e-4
    printed = capsys.readouterr().out
    assert "FP32 IR compiles with default" in printed and "0 BatchNormalization left" in printed


def test_int8_export_with_loader_workers_exits_cleanly(tmp_path, checkpoints, synthetic_dataset):
    """Regression: the calibration pass left its DataLoader workers running (NNCF stops at the last
    clip without ending the pass); shut down after OpenVINO had compiled models, they took the process
    down with SIGSEGV. Run as a user would, in its own process, with workers."""
    arch = "s3d-rgb-mobilenet-v3"
    out = tmp_path / "export"
    args = ["--load-weights", str(checkpoints[arch]), "--save-model-to", str(out), "--int8",
            "--calib-ann-files", "val.txt", "--calib-data-roots", str(synthetic_dataset), "--workers", "2",
            "--no-progress", "--class-names", str(synthetic_dataset / "label_map.txt")]  # fmt: skip
    code = (
        "import sys\nfrom action_rec.export.cli import main\n"
        f"sys.exit(main({args!r}, template_path={str(TEMPLATES / arch / 'template.yaml')!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "model_int8.xml").is_file() and "Exported to" in done.stdout


def test_fp16_int8_and_accuracy_on_calibration_clips(tmp_path, checkpoints, synthetic_dataset, capsys):
    arch = "s3d-rgb-mobilenet-v3"
    out = tmp_path / "export"
    args = ["--load-weights", str(checkpoints[arch]), "--save-model-to", str(out), "--precision", "FP16", "--int8",
            "--calib-ann-files", "val.txt", "--calib-data-roots", str(synthetic_dataset), "--workers", "0", "--no-progress",
            "--class-names", str(synthetic_dataset / "label_map.txt")]  # fmt: skip
    assert export_main(args, template_path=TEMPLATES / arch / "template.yaml") == 0, capsys.readouterr().err
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(
        [
            "model.onnx",
            "model.xml",
            "model.bin",
            "model.json",
            "model_int8.xml",
            "model_int8.bin",
            "model_int8.json",
        ]
    )
    meta = json.loads((out / "model.json").read_text())
    meta8 = json.loads((out / "model_int8.json").read_text())
    assert meta["precision"] == "FP16" and meta8["precision"] == "INT8"
    assert meta["class_names"] == (synthetic_dataset / "label_map.txt").read_text().split()
    # FP16 weights are about half the size of FP32's; INT8 smaller still.
    fp32_bytes = sum(p.numel() * 4 for p in build_model(tiny_template(arch), 6).parameters())
    assert (out / "model.bin").stat().st_size < 0.6 * fp32_bytes
    assert (out / "model_int8.bin").stat().st_size < 0.4 * fp32_bytes
    acc = meta8["verification"]["accuracy_top1"]
    assert acc["clips"] == 12  # the whole (tiny) validation set
    printed = capsys.readouterr().out
    assert "Top-1 accuracy on 12 calibration clips" in printed and "INT8" in printed and "FP16" in printed
    # The FP32 IR's top-1 in f32 equals PyTorch's on the same clips (printed table: pytorch / FP32 rows,
    # columns f32 and OpenVINO's defaults).
    rows = {
        line.split()[0]: [float(v.rstrip("%")) for v in line.split()[1:3] if v.endswith("%")]
        for line in printed.splitlines()
        if line.startswith("  ") and "%" in line
    }
    assert rows["FP32"][0] == rows["pytorch"][0]
    assert set(rows) == {"pytorch", "FP32", "FP16", "INT8"} and all(
        len(rows[k]) == 2 for k in ("FP32", "INT8")
    )
    # Every written IR was compiled under OpenVINO's defaults and each hint this CPU has, and says so.
    for m in (meta, meta8):
        assert set(m["verification"]["compiles_with"]) == set(available_hints())
    assert set(acc["this_model"]) == {"f32", "default"}
    # An INT8 IR that runs and gives probabilities close to FP32's.
    diff, _ = _compare(out / "model_int8.xml", checkpoints[arch], arch)
    assert diff < 0.5

    # Exporting again without --int8 removes the stale INT8 files: the dir describes one export.
    args = ["--load-weights", str(checkpoints[arch]), "--save-model-to", str(out), "--no-progress"]
    assert export_main(args, template_path=TEMPLATES / arch / "template.yaml") == 0
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "model.json", "model.onnx", "model.xml"]


def test_failed_export_keeps_the_earlier_model(tmp_path, checkpoints, capsys):
    arch = "s3d-rgb-mobilenet-v3"
    out = tmp_path / "export"
    base = ["--load-weights", str(checkpoints[arch]), "--save-model-to", str(out), "--no-progress"]
    assert export_main(base, template_path=TEMPLATES / arch / "template.yaml") == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    # A tolerance nothing can meet: verification fails after the IR was built, before anything is moved.
    rc = export_main(
        [*base, "--tolerance", "1e-30", "--input-format", "bgr8"],
        template_path=TEMPLATES / arch / "template.yaml",
    )
    err = capsys.readouterr().err
    assert (
        rc == 2
        and err.startswith("error: FP32 IR differs from PyTorch")
        and len(err.strip().splitlines()) == 1
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary directory left behind


def test_bare_published_snapshot_exports_with_a_warning(tmp_path, checkpoints, capsys):
    """A snapshot in mmcv form: 'module.' prefixes, two heads, no template or class names."""
    arch = "x3d-rgb-mobilenet-v3-lgd-gc"
    state = torch.load(checkpoints[arch], weights_only=True)["state_dict"]
    mmcv = {f"module.{k}": v for k, v in state.items() if not k.startswith("cls_head.")}
    for i, n in enumerate((7, 5)):
        mmcv[f"module.cls_head.{i}.fc_angular.weight"] = torch.randn(256, n)
    torch.save({"meta": {}, "state_dict": mmcv, "optimizer": {}}, tmp_path / "snapshot.pth")
    out = tmp_path / "export"
    args = [
        "--load-weights",
        str(tmp_path / "snapshot.pth"),
        "--save-model-to",
        str(out),
        "--no-progress",
        "--set",
        *TINY,
    ]
    assert export_main(args, template_path=TEMPLATES / arch / "template.yaml") == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "head re-initialised" in printed and "WARNING: the classifier head" in printed
    meta = json.loads((out / "model.json").read_text())
    assert meta["class_names"] == [f"class_{i}" for i in range(27)]  # the template's num_classes


def test_work_dir_export_script(tmp_path, checkpoints, capsys, monkeypatch):
    """The thin export.py of a work dir runs the same export, as a user runs it (`python export.py ...`).

    Run in this process with runpy: forking the test process after it has loaded OpenVINO crashed a
    full test run (SIGSEGV in the parent), while the script itself is plain Python either way.
    """
    import runpy

    from action_rec.workdir import instantiate

    arch = "s3d-rgb-mobilenet-v3"
    work = instantiate(
        TEMPLATES / arch / "template.yaml", tmp_path / "work", download=False, log=lambda *_: None
    )
    argv = [str(work / "export.py"), "--load-weights", str(checkpoints[arch]), "--save-model-to",
            str(work / "export"), "--no-progress"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(argv[0], run_name="__main__")
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    assert (work / "export" / "model.xml").is_file() and "Exported to" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--load-weights", "missing.pth"], "missing.pth: no such checkpoint file"),
        (["--int8"], "--int8 needs calibration clips"),
        (["--calib-ann-files", "val.txt"], "--calib-ann-files needs --calib-data-roots"),
        (["--set", "input.clip_len=0"], "input.clip_len' must be positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, checkpoints, capsys, extra, message):
    arch = "s3d-rgb-mobilenet-v3"
    args = ["--load-weights", str(checkpoints[arch]), "--save-model-to", str(tmp_path / "export"), *extra]
    assert export_main(args, template_path=TEMPLATES / arch / "template.yaml") == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "export").exists()


def test_class_names_that_do_not_fit_the_head(tmp_path, checkpoints, capsys):
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    arch = "s3d-rgb-mobilenet-v3"
    args = [
        "--load-weights",
        str(checkpoints[arch]),
        "--save-model-to",
        str(tmp_path / "e"),
        "--class-names",
        str(names),
    ]
    assert export_main(args, template_path=TEMPLATES / arch / "template.yaml") == 2
    assert "2 class names given, but the checkpoint's head has" in capsys.readouterr().err


def test_template_flag_wins_and_the_checkpoints_settings_win_over_it(
    tmp_path, checkpoints, capsys, monkeypatch
):
    """In a work dir's export.py, --template is the template read (a broken one is reported); the
    checkpoint's own model/input settings still beat it; the checkpoint file is read once."""
    import action_rec.export.pipeline as pipeline

    arch = "s3d-rgb-mobilenet-v3"
    text = (TEMPLATES / arch / "template.yaml").read_text()
    broken, other = tmp_path / "broken.yaml", tmp_path / "other.yaml"
    broken.write_text(text.replace("clip_len: 16", "clip_len: 0", 1))
    other.write_text(text.replace("clip_len: 16", "clip_len: 8", 1).replace("workers: 2", "workers: 1", 1))
    args = ["--load-weights", str(checkpoints[arch]), "--save-model-to", str(tmp_path / "e"), "--no-progress"]
    work_dir_template = TEMPLATES / arch / "template.yaml"
    assert export_main([*args, "--template", str(broken)], template_path=work_dir_template) == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "input.clip_len" in err

    seen, real_load, calls = {}, torch.load, []

    def fake_export(model, template, names, out_dir, *args, **kwargs):
        seen.update(template=template, names=names)
        return pipeline.ExportResult(Path(out_dir), [], {}, None)

    monkeypatch.setattr(pipeline, "export_module", fake_export)  # the checkpoint's part, not the conversion
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a[0]) or real_load(*a, **k))
    assert export_main([*args, "--template", str(other)], template_path=work_dir_template) == 0
    assert seen["template"].input.clip_len == 4 and seen["template"].input.size == 32
    assert seen["template"].training.workers == 1  # the rest is --template's
    assert seen["names"] == NAMES and [str(c) for c in calls] == [str(checkpoints[arch])]
    assert "input.clip_len 4, not 8" in capsys.readouterr().out
    calls.clear()
    assert (
        export_main(
            [*args, "--template", str(other), "--set", "input.clip_len=6"], template_path=work_dir_template
        )
        == 0
    )
    assert seen["template"].input.clip_len == 6  # --set, asked for explicitly, applies last (as in eval.py)
    assert seen["template"].input.size == 32


def test_export_without_load_weights_names_the_missing_checkpoints(tmp_path, capsys):
    """export.py of a work dir defaults to outputs/best.pth (else latest.pth); with neither it says so
    in one line and writes nothing."""
    import shutil

    template = TEMPLATES / "s3d-rgb-mobilenet-v3" / "template.yaml"
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(template, work / "template.yaml")
    assert export_main(["--save-model-to", str(tmp_path / "out")], template_path=work / "template.yaml") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "neither best.pth nor latest.pth" in err
    assert not (tmp_path / "out").exists()
