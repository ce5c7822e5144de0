"""The deployment package: its files (the runtime byte for byte), its standalone recognize.py (same
labels as our recognizer and demo, also on a 1080p video, and in a fresh virtual environment with only
its requirements), the Open Model Zoo input contract, and one-line errors for an export dir, a
model.json or a hint that does not fit."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_model import decode

import action_rec.runtime.compile as compiling
import action_rec.runtime.frames as frames_module
from action_rec.errors import UserError
from action_rec.export.deploy import REQUIREMENTS, DeployError, build_deploy_package
from action_rec.inference import label_runs, recognize_video, windows_inside_segments
from action_rec.runtime.cli import main as demo_main
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.openvino_core import shared_core

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "action_rec" / "runtime"
MODEL_FILES = ["model.bin", "model.json", "model.xml", "model_int8.bin", "model_int8.json", "model_int8.xml"]
RUNTIME_FILES = sorted(f"action_rec/runtime/{p.name}" for p in RUNTIME.glob("*.py"))
NETWORK_FAILURES = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "Could not fetch URL",
    "ConnectTimeout",
)


@pytest.fixture(scope="module")
def package(trained, tmp_path_factory) -> Path:
    """The deployment package of the tiny model's export (FP32 and INT8)."""
    export = tmp_path_factory.mktemp("export")
    for path in trained["xml"].parent.glob("model*"):
        (export / path.name).write_bytes(path.read_bytes())
    return build_deploy_package(export)


def _recognize(python: str | None, script: Path, video: Path, out: Path, *extra: str) -> dict:
    """Run the packaged script on `video` with its per-window log written to `out` and its timeline
    beside it: in this process (python None: quicker), or as a user does with the given interpreter.
    Returns {"windows": the log, "segments": its runs of action labels, "timeline", "printed"}."""
    timeline = out.with_suffix(".timeline.json")
    args = ["--input", str(video), "--no-show", "--json", str(out), "--timeline", str(timeline), *extra]
    if python is None:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert _load_script(script).main(args) == 0
        printed = printed.getvalue()
    else:
        env = {**os.environ, "PYTHONPATH": ""}
        done = subprocess.run(
            [python, str(script), *args], capture_output=True, text=True, timeout=300, env=env, cwd=out.parent
        )
        assert done.returncode == 0, done.stderr
        printed = done.stdout
    windows = [json.loads(line) for line in out.read_text().splitlines()]
    return {
        "windows": windows,
        "segments": [run for run in label_runs(windows) if run["label"] != "no action"],
        "timeline": json.loads(timeline.read_text()),
        "printed": printed,
    }


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location("packaged_recognize", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------ the package
def _files(folder: Path) -> list[str]:
    """The files under `folder` (Python's bytecode caches left out: running the script writes them)."""
    paths = (p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    return sorted(p.as_posix() for p in paths if "__pycache__" not in p.parts)


def test_package_holds_the_models_script_runtime_requirements_and_readme(trained, package):
    deploy = package
    assert deploy.name == "deploy"
    shipped = ["README.md", *MODEL_FILES, "recognize.py", "requirements.txt", "action_rec/__init__.py"]
    shipped += RUNTIME_FILES
    assert _files(deploy) == sorted(shipped)
    for name in MODEL_FILES:  # the exported files, unchanged
        assert (deploy / name).read_bytes() == (trained["xml"].parent / name).read_bytes()
    with zipfile.ZipFile(deploy.with_suffix(".zip")) as archive:
        assert sorted(archive.namelist()) == sorted(f"deploy/{n}" for n in shipped)
        assert archive.read("deploy/recognize.py") == (deploy / "recognize.py").read_bytes()
    assert (deploy / "requirements.txt").read_text().split() == list(REQUIREMENTS)
    readme = (deploy / "README.md").read_text()
    assert all(name in readme for name in trained["class_names"]) and "[1, 3, 8, 32, 32]" in readme
    # The script imports the shipped runtime, the requirements and the standard library, nothing else
    # (tests/test_runtime.py checks that the runtime imports only the requirements).
    script = (deploy / "recognize.py").read_text()
    imports = {line.split()[1] for line in script.splitlines() if line.startswith(("import ", "from "))}
    outside = {name for name in imports if name.split(".")[0] not in sys.stdlib_module_names}
    assert "action_rec" in {name.split(".")[0] for name in outside} <= {"cv2", "numpy", "action_rec"}
    assert all(name.startswith("action_rec.runtime.") for name in outside - {"cv2", "numpy"})
    assert not list(deploy.parent.glob(".deploy*"))  # no temporary folder left behind


def test_package_ships_the_runtime_byte_for_byte(package):
    """The deployed script runs the toolkit's own runtime: the very files, not a copy that can drift."""
    shipped = sorted(p.name for p in (package / "action_rec" / "runtime").glob("*.py"))
    assert shipped == sorted(p.name for p in RUNTIME.glob("*.py")) and "frames.py" in shipped
    for name in shipped:
        assert (package / "action_rec" / "runtime" / name).read_bytes() == (RUNTIME / name).read_bytes(), name
    assert (package / "recognize.py").read_bytes() == (
        REPO / "action_rec" / "export" / "standalone" / "recognize.py"
    ).read_bytes()
    with zipfile.ZipFile(package.with_suffix(".zip")) as archive:
        for name in shipped:
            assert archive.read(f"deploy/action_rec/runtime/{name}") == (RUNTIME / name).read_bytes()
    # The script's imports, in its folder with this interpreter (where the toolkit is installed too),
    # load the shipped files and nothing of the toolkit.
    code = (
        "import runpy, sys; runpy.run_path('recognize.py', run_name='imported');"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'action_rec'))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""},
        cwd=package,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    loaded = probe.stdout.split()
    assert any(path.endswith("runtime/frames.py") for path in loaded)  # the resize rule, loaded
    assert all(Path(path).resolve().is_relative_to(package.resolve()) for path in loaded), loaded


def test_requirements_have_the_lower_bounds_of_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in REQUIREMENTS:
        assert requirement in project
    assert [r.split(">=")[0] for r in REQUIREMENTS] == ["openvino", "opencv-python", "numpy"]


def test_rebuilding_replaces_the_package(trained, tmp_path):
    out = tmp_path / "pkg"
    build_deploy_package(trained["xml"].parent, out)
    (out / "stale.txt").write_text("from an earlier build")
    assert build_deploy_package(trained["xml"].parent, out) == out
    assert not (out / "stale.txt").exists() and (tmp_path / "pkg.zip").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "pkg.zip"]


# ------------------------------------------------------------------ the script: same as ours
@pytest.mark.parametrize("variant", ["model", "model_int8"])
def test_packaged_script_gives_the_recognizers_labels(trained, package, tmp_path, variant):
    """Window by window, the packaged script and action_rec's recognizer agree (both in f32)."""
    xml = trained["xml"].with_name(f"{variant}.xml")
    expected = recognize_video(ExportedModel(xml, precision="f32"), trained["video"], progress=False)
    extra = ["--precision-hint", "f32"] + (["--int8"] if variant == "model_int8" else [])
    got = _recognize(None, package / "recognize.py", trained["video"], tmp_path / "t.jsonl", *extra)
    assert got["printed"].startswith(f"{package / f'{variant}.xml'}: ")  # the model it ran
    keys = ("frame", "start_frame", "label", "window_label")
    assert [tuple(e[k] for k in keys) for e in got["windows"]] == [
        tuple(e[k] for k in keys) for e in expected
    ]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(got["windows"], expected, strict=True)) < 1e-3
    segments = [(s["label"], s["first_frame"], s["last_frame"]) for s in got["segments"]]
    runs = [(s["label"], s["first_frame"], s["last_frame"]) for s in label_runs(expected)]
    assert segments == [run for run in runs if run[0] != "no action"]  # no-action time is in no segment


def test_threshold_and_no_action_classes(trained, package, tmp_path):
    """Below the threshold a window is "no action" and belongs to no segment; model.json's no_action
    block sets the default, --threshold overrides it and 0 disables it (without hysteresis, which would
    keep an action a little below the threshold)."""
    script, video = package / "recognize.py", trained["video"]
    plain = _recognize(None, script, video, tmp_path / "a.json", "--precision-hint", "f32", "--hysteresis", "0",
                       "--threshold", "0")  # fmt: skip
    scores = sorted({e["score"] for e in plain["windows"]})
    threshold = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # halfway between two windows
    cut = _recognize(None, script, video, tmp_path / "b.json", "--precision-hint", "f32", "--hysteresis", "0",
                     "--threshold", str(threshold))  # fmt: skip
    for a, b in zip(plain["windows"], cut["windows"], strict=True):
        assert b["no_action"] == (a["score"] < threshold)
        assert b["label"] == ("no action" if a["score"] < threshold else a["label"])
    kept = {e["frame"] for e in cut["windows"] if not e["no_action"]}
    assert {f for s in cut["segments"] for f in (s["first_frame"], s["last_frame"])} <= kept
    assert sum(s["windows"] for s in cut["segments"]) == len(kept)

    # A package whose model.json names a no-action class and a threshold; --threshold 0 turns it off.
    pkg = build_deploy_package(trained["xml"].parent, tmp_path / "pkg")
    meta = json.loads((pkg / "model.json").read_text())
    meta["no_action"] = {"threshold": 0.99, "classes": [trained["class_names"][2]]}
    (pkg / "model.json").write_text(json.dumps(meta))
    quiet = _recognize(
        None, pkg / "recognize.py", video, tmp_path / "c.json", "--precision-hint", "f32", "--hysteresis", "0"
    )
    for a, b in zip(plain["windows"], quiet["windows"], strict=True):
        assert b["no_action"] == (a["score"] < 0.99 or a["label"] == trained["class_names"][2])
    off = _recognize(None, pkg / "recognize.py", video, tmp_path / "d.json", "--precision-hint", "f32", "--hysteresis", "0",
                     "--threshold", "0")  # fmt: skip
    assert [e["label"] for e in off["windows"]] == [
        "no action" if e["label"] == trained["class_names"][2] else e["label"] for e in plain["windows"]
    ]


def test_a_live_source_never_waits_for_the_model(trained, package, tmp_path, capsys):
    """A camera or stream (here the file read at its frame rate, --realtime) runs its windows
    asynchronously and drops those that went stale while the model was busy; the windows it runs get
    the labels that a file run gives them."""
    script = _load_script(package / "recognize.py")
    args = ["--input", str(trained["video"]), "--no-show", "--precision-hint", "f32", "--stride", "1"]
    assert script.main([*args, "--realtime", "--json", str(tmp_path / "live.jsonl")]) == 0
    live = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    stale = int(capsys.readouterr().out.split("stale dropped: ")[1].split(" windows")[0])
    expected = recognize_video(trained["xml"], trained["video"], stride=1, progress=False)
    by_frame = {e["frame"]: (e["start_frame"], e["window_label"]) for e in expected}
    assert live
    assert all(by_frame[e["frame"]] == (e["start_frame"], e["window_label"]) for e in live)
    assert len(live) + stale == len(expected)


def test_ctrl_c_ends_a_live_run_and_keeps_its_timeline(trained, package, monkeypatch, tmp_path, capsys):
    """Ctrl-C (SIGINT to the process, as a terminal sends it) ends a run as q / Esc do: the outputs
    hold what was recognized until then."""
    import action_rec.runtime.cli as cli

    open_file = cli.open_source

    class Interrupted:  # a camera that the user stops with Ctrl-C after 60 frames
        live, fps, name = True, 30.0, "camera"

        def __init__(self, spec, decode_threads=None):
            self.source, self.frames = open_file(spec, decode_threads), 0

        def read_timed(self, decode=True):
            self.frames += 1
            if self.frames == 61:
                signal.raise_signal(signal.SIGINT)
            if self.frames > 60:  # the camera slows down: the run must end long before its last frame
                time.sleep(0.5)
            return self.source.read_timed(decode)

        def retrieve(self):
            return self.source.retrieve()

        def release(self):
            self.source.release()

    monkeypatch.setattr(cli, "open_source", Interrupted)
    out, timeline = tmp_path / "live.jsonl", tmp_path / "live.json"
    script = _load_script(package / "recognize.py")
    args = ["--input", str(trained["video"]), "--no-show", "--json", str(out), "--timeline", str(timeline)]
    assert script.main([*args, "--reconnect-tries", "0"]) == 0
    windows = [json.loads(line) for line in out.read_text().splitlines()]
    assert windows and all(e["frame"] < 90 for e in windows)  # 160 frames in the video
    assert isinstance(json.loads(timeline.read_text()), list)
    assert f"wrote {timeline}" in capsys.readouterr().out


# ----------------------------------------------------------- a fresh venv with only requirements.txt
@pytest.fixture(scope="module")
def fresh_venv(package, tmp_path_factory) -> Path:
    """A virtual environment with only the package's requirements.txt installed (pip's cache makes it
    quick after the first time); skips when pip cannot reach a package index."""
    venv = tmp_path_factory.mktemp("deploy_venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    requirements = package / "requirements.txt"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    done = subprocess.run([*pip, "-r", str(requirements)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0 and any(marker in done.stdout + done.stderr for marker in NETWORK_FAILURES):
        pytest.skip(f"pip cannot reach a package index: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    assert done.returncode == 0, done.stderr
    return venv / "bin" / "python"


def test_packaged_script_in_a_fresh_venv_recognizes_the_video(trained, package, fresh_venv, tmp_path):
    """No torch, no action_rec: the package alone, as a user runs it (OpenVINO's default settings)."""
    probe = subprocess.run([str(fresh_venv), "-c", "import torch"], capture_output=True, env={}, cwd=tmp_path)
    assert probe.returncode != 0  # the venv really lacks PyTorch
    probe = subprocess.run(
        [str(fresh_venv), "-c", "import action_rec"], capture_output=True, env={}, cwd=tmp_path
    )
    assert probe.returncode != 0
    # The tiny model is judged against the truth as trained: in f32, without a no-action threshold.
    got = _recognize(str(fresh_venv), package / "recognize.py", trained["video"], tmp_path / "t.json",
                     "--precision-hint", "f32", "--threshold", "0")  # fmt: skip
    inside = windows_inside_segments(got["windows"], trained["truth"])
    assert len(inside) >= 8
    assert [e["window_label"] for e, _ in inside] == [seg["name"] for _, seg in inside]
    assert [s["label"] for s in got["segments"] if s["windows"] >= 4] == [s["name"] for s in trained["truth"]]


# -------------------------------------------------------------------- the Open Model Zoo contract
def _omz_clip(frames_bgr: list[np.ndarray], size: int, img_scale: int) -> np.ndarray:
    """What Open Model Zoo's gesture-recognition ActionRecognizer feeds a `1 x 3 x T x H x W` model,
    written from its documented steps: the central square of the person box (here the whole frame)
    of side size / img_scale of the box's short side, resized to the input size, BGR -> RGB, planar
    float 0-255, stacked along time."""
    h, w = frames_bgr[0].shape[:2]
    side = int(size / img_scale * min(h, w))
    x0, y0 = int(w / 2 - side / 2), int(h / 2 - side / 2)
    planes = []
    for frame in frames_bgr:
        roi = cv2.resize(frame[y0 : y0 + side, x0 : x0 + side], (size, size))
        planes.append(cv2.cvtColor(roi, cv2.COLOR_BGR2RGB).transpose(2, 0, 1).astype(np.float32))
    return np.stack(planes)[None].transpose(0, 2, 1, 3, 4)


@pytest.mark.parametrize("variant", ["model", "model_int8"])
def test_open_model_zoo_client_gets_our_labels(trained, variant):
    """FP32 and INT8 IRs driven as Open Model Zoo's demo does (its crop, default compile settings,
    raw output) name the same class as our recognizer in every window that lies inside one segment."""
    xml = trained["xml"].with_name(f"{variant}.xml")
    meta = json.loads(xml.with_suffix(".json").read_text())
    inp = meta["input"]
    assert (inp["format"], inp["layout"], inp["channel_order"]) == ("rgb255", "NCTHW", "RGB")
    assert meta["output"]["kind"] in ("cosine", "logits")
    core = shared_core()
    compiled = core.compile_model(core.read_model(xml), "CPU")  # OpenVINO's defaults, as the demo does
    frames = decode(trained["video"])
    ours = recognize_video(xml, trained["video"], stride=4, average=1, progress=False)
    inside = windows_inside_segments(ours, trained["truth"])
    assert len(inside) >= 8
    for entry, _ in inside:
        window = frames[entry["start_frame"] : entry["frame"] + 1 : inp["frame_interval"]]
        raw = compiled(_omz_clip(window, inp["size"], inp["resize_short"]))[0][0]
        assert meta["class_names"][int(np.argmax(raw))] == entry["window_label"], entry["frame"]


# ----------------------------------------------------------------------------------------- errors
def test_export_dir_without_its_files_names_them(trained, tmp_path):
    with pytest.raises(DeployError, match=r"model\.xml: not found"):
        build_deploy_package(tmp_path)
    for name in ("model.xml", "model.bin"):
        (tmp_path / name).write_bytes((trained["xml"].parent / name).read_bytes())
    with pytest.raises(DeployError, match=r"model\.json: not found beside model\.xml"):
        build_deploy_package(tmp_path)
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(UserError, match=r"model\.json: missing or malformed key"):
        build_deploy_package(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.json", "model.xml"]


def _packaged_copy(trained, tmp_path) -> Path:
    return build_deploy_package(trained["xml"].parent, tmp_path / "pkg")


def test_script_refuses_a_missing_or_mismatched_model_json(trained, tmp_path, capsys):
    pkg = _packaged_copy(trained, tmp_path)
    script = _load_script(pkg / "recognize.py")
    args = ["--input", str(trained["video"]), "--no-show"]
    meta = json.loads((pkg / "model.json").read_text())
    meta["input"]["shape"] = [1, 3, 16, 32, 32]
    (pkg / "model.json").write_text(json.dumps(meta))
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.json: input.shape [1, 3, 16, 32, 32] does not match" in err
    (pkg / "model.json").unlink()
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{pkg / 'model.json'}: metadata file not found" in err
    assert script.main(["--input", str(tmp_path / "missing.mp4"), "--no-show", "--int8"]) == 2
    assert "missing.mp4: no such video file" in capsys.readouterr().err


def test_script_refuses_a_hint_the_cpu_lacks(trained, tmp_path, monkeypatch, capsys):
    script = _load_script(_packaged_copy(trained, tmp_path) / "recognize.py")
    monkeypatch.setattr(compiling, "cpu_capabilities", lambda core=None: ["FP32", "INT8"])
    assert script.main(["--input", str(trained["video"]), "--no-show", "--precision-hint", "bf16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no bf16 execution" in err


# ------------------------------------------------ a 1080p video: the deployed script gives the demo's
def _hd_video(path: Path, frames: int = 36) -> Path:
    """A 1920 x 1080 video at 30 fps: fine noise (detail that bilinear shrinking aliases and area
    averaging does not) with a bright block moving across it."""
    texture = np.random.default_rng(7).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (1920, 1080))
    assert writer.isOpened()
    for t in range(frames):
        frame = np.roll(texture, 16 * t, axis=1)
        frame[300:800, 300 + 30 * t : 700 + 30 * t] = (40, 220, 250)
        writer.write(frame)
    writer.release()
    return path


def test_deployed_script_and_demo_agree_on_a_1080p_video(trained, package, tmp_path, monkeypatch):
    """On 1920 x 1080 frames (shrunk more than 2x: area averaging) the packaged script, run as a user
    runs it (its own folder, no PYTHONPATH: only the shipped runtime), gives the demo's windows: same
    frames and labels, the same scores. Shrunk bilinearly, as the script's former copy of the
    preprocessing did, the scores differ: this test sees the drift it guards against."""
    video = _hd_video(tmp_path / "hd.avi")
    options = ["--stride", "4", "--threshold", "0"]
    deployed = _recognize(sys.executable, package / "recognize.py", video, tmp_path / "deployed.json",
                          "--precision-hint", "f32", *options)["windows"]  # fmt: skip
    log = tmp_path / "demo.jsonl"
    demo_args = ["--model", str(package / "model.xml"), "--input", str(video), "--no-show", *options]
    assert demo_main([*demo_args, "--precision-hint", "f32", "--json", str(log)]) == 0
    demo = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(deployed) == len(demo) >= 4
    keys = ("frame", "start_frame", "time_s", "label", "no_action", "window_label")
    assert [tuple(e[k] for k in keys) for e in deployed] == [tuple(e[k] for k in keys) for e in demo]
    for ours, theirs in zip(deployed, demo, strict=True):
        assert (
            abs(ours["score"] - theirs["score"]) <= 2e-4
            and abs(ours["window_score"] - theirs["window_score"]) <= 2e-4
        )
        assert [n for n, _ in ours["top_k"]] == [n for n, _ in theirs["top_k"]]
        assert np.allclose([s for _, s in ours["top_k"]], [s for _, s in theirs["top_k"]], atol=2e-4)

    monkeypatch.setattr(frames_module, "resize_interpolation", lambda src, dst: cv2.INTER_LINEAR)
    model = ExportedModel(package / "model.xml", precision="f32")
    bilinear = recognize_video(model, video, stride=4, threshold=0, progress=False)
    drift = max(abs(a["window_score"] - b["window_score"]) for a, b in zip(bilinear, demo, strict=True))
    assert drift > 1e-3, drift
