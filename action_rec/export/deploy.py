"""The deployment package: an export dir's IRs with a standalone recognizer, ready to copy to a device.

    <export_dir>/deploy/       model.xml/.bin/.json [model_int8.xml/.bin/.json] recognize.py
                               action_rec/runtime/*.py requirements.txt README.md
    <export_dir>/deploy.zip    the same folder, zipped

`recognize.py` (standalone/recognize.py) is a command line over `action_rec.runtime`, the code that runs
an exported model everywhere in the toolkit; both are shipped byte for byte (with an `action_rec/
__init__.py` of their own), so the deployed script cannot drift from the demo and eval.py: it resizes,
samples and decides as they do. They need only openvino, opencv-python and numpy: the device needs
neither PyTorch nor the rest of this toolkit. The folder is built in a temporary directory beside its
destination and moved in only when complete; the zip is written atomically.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

from action_rec.errors import UserError
from action_rec.fileio import atomic_path, swap_in_directory
from action_rec.runtime.metadata import read_metadata

__all__ = ["DeployError", "REQUIREMENTS", "runtime_files", "build_deploy_package"]

# What recognize.py imports, with the lower bounds of pyproject.toml (a test keeps them in step).
REQUIREMENTS = ("openvino>=2024.4", "opencv-python>=4.8", "numpy>=1.26")
MODELS = ("model", "model_int8")  # model.xml is required, model_int8.xml optional
# The shipped `action_rec` package holds nothing but the runtime (the toolkit's own __init__ is not needed).
PACKAGE_INIT = (
    '"""The runtime of the action_rec toolkit, shipped with an exported model: `action_rec.runtime` (the\n'
    'toolkit\'s own files, byte for byte) is all there is here; recognize.py imports it."""\n'
)


class DeployError(UserError):
    """An export dir that cannot be packaged; the message names the missing file."""


def _model_files(export_dir: Path) -> list[Path]:
    """The IR files to ship, each pair checked for its .bin and .json."""
    files = []
    for stem in MODELS:
        xml = export_dir / f"{stem}.xml"
        if not xml.is_file():
            if stem == "model":
                raise DeployError(f"{xml}: not found; export the model first (export.py)")
            continue
        for path in (xml, xml.with_suffix(".bin"), xml.with_suffix(".json")):
            if not path.is_file():
                raise DeployError(f"{path}: not found beside {xml.name}; re-export the model")
            files.append(path)
        read_metadata(xml)  # a malformed model.json is refused here, not on the device
    return files


def runtime_files() -> dict[str, bytes]:
    """The package's copy of `action_rec/runtime/*.py`: path in the package -> the files' bytes."""
    folder = resources.files("action_rec.runtime")
    return {
        f"action_rec/runtime/{entry.name}": entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py")
    }


def _readme(meta: dict[str, Any], has_int8: bool) -> str:
    inp, names = meta["input"], meta["class_names"]
    rate = (
        f"{inp['target_fps']} frames per second"
        if inp.get("target_fps")
        else f"every {inp['frame_interval']} source frame(s)"
    )
    no_action = meta.get("no_action") or {}
    quiet = (
        f"below an averaged score of {no_action.get('threshold')}, or when the best class is one of "
        f"{no_action.get('classes') or []}"
        if no_action.get("threshold") is not None or no_action.get("classes")
        else "not set in model.json; `--threshold` sets one"
    )
    int8 = "- `model_int8.xml`: INT8 (NNCF), faster; `--int8` picks it\n" if has_int8 else ""
    verification = meta.get("verification", {}).get("accuracy_top1")
    accuracy = (
        f"Top-1 on {verification['clips']} of your clips at export: "
        f"{verification['this_model']['default']:.2f} % with OpenVINO's default settings, "
        f"{verification['this_model']['f32']:.2f} % in f32 (PyTorch {verification['pytorch']:.2f} %).\n\n"
        if verification
        else ""
    )
    return f"""# {meta.get("model_name", "action model")}: action recognition with OpenVINO

Needs Python 3.10+ and nothing else of the training toolkit than `action_rec/runtime/` (its code that
runs an exported model, the same files the toolkit's demo and eval tools use):

```bash
python -m venv venv && venv/bin/pip install -r requirements.txt
venv/bin/python recognize.py --input 0                                          # camera 0
venv/bin/python recognize.py --input video.mp4 --no-show --timeline t.json      # a file, headless
venv/bin/python recognize.py --input door=rtsp://cam1/s --input hall=rtsp://cam2/s --no-show \\
    --timeline 'out/{{name}}.json' --events events.jsonl --events-url http://host:8080/actions
```

One process serves any number of inputs (`--input` repeated, or `--inputs cameras.txt` with one
`NAME=SOURCE` per line) with one compiled model, and shows them all in one window (a mosaic) unless
`--no-show` is given. Each input has its own window, timeline and outputs (`--json` per-window
log, `--timeline` segments, `--output` annotated video; `{{name}}` in the path, one file per input). A
camera or stream that drops is reopened with growing waits while the others go on. `--events FILE`
(or `-`) writes a JSON line as each action starts and ends (stream, label, score, stream time, wall
time); `--events-url URL` POSTs the same JSON, retried while the endpoint is down, never holding up
recognition. `--int8` runs the INT8 model; `--threshold`, `--min-segment`, `--hysteresis` and
`--average` override the settings in model.json; `--precision-hint default|f32|bf16` sets the CPU
execution precision (default: OpenVINO's own, bf16 on CPUs that have it); `--device` the OpenVINO
device. q, Esc or Ctrl-C ends the run and keeps what was recognized. `python recognize.py --help`
lists everything.

## The model

- `model.xml`: {meta.get("architecture", "")} {meta.get("precision", "FP32")}
{int8}- classes ({len(names)}): {", ".join(names)}
- input `{inp["name"]}` {inp["shape"]} ({inp["layout"]}): {inp["description"]}
- a clip is {inp["clip_len"]} frames sampled {rate}, short side resized to {inp["resize_short"]}, centre
  crop {inp["size"]} x {inp["size"]}; `recognize.py` does all of it
- output `{meta["output"]["name"]}` {meta["output"]["shape"]}: {meta["output"]["kind"]} scores;
  probabilities = softmax({meta["output"]["softmax_scale"]:g} * output)
- "no action": {quiet}

{accuracy}Everything `recognize.py` knows about the model is in `model.json`; keep `action_rec/` beside it.

## Speed

The cost on your CPU (per window, per video frame, and throughput with several requests) is measured
by the training toolkit's `tools/benchmark.py --model model.xml`; the toolkit's README lists the figures
of its own machine and how to read them.
"""


def build_deploy_package(export_dir: Path, out_dir: Path | None = None) -> Path:
    """Package `export_dir`'s IRs into `out_dir` (default `<export_dir>/deploy`) and `<out_dir>.zip`;
    returns `out_dir`. Raises DeployError naming a missing file."""
    export_dir = Path(export_dir)
    out_dir = Path(out_dir) if out_dir is not None else export_dir / "deploy"
    files = _model_files(export_dir)
    meta = read_metadata(export_dir / "model.xml")
    script = resources.files("action_rec.export.standalone").joinpath("recognize.py").read_bytes()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for path in files:
            shutil.copy2(path, tmp / path.name)
        (tmp / "recognize.py").write_bytes(script)
        (tmp / "recognize.py").chmod(0o755)
        (tmp / "action_rec" / "runtime").mkdir(parents=True)
        (tmp / "action_rec" / "__init__.py").write_text(PACKAGE_INIT, encoding="utf-8")
        for name, data in runtime_files().items():
            (tmp / name).write_bytes(data)
        (tmp / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n", encoding="utf-8")
        has_int8 = any(p.name == "model_int8.xml" for p in files)
        (tmp / "README.md").write_text(_readme(meta, has_int8), encoding="utf-8")
        tmp.chmod(0o755)
        with atomic_path(out_dir.with_name(f"{out_dir.name}.zip")) as zip_tmp:
            with zipfile.ZipFile(zip_tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
                    archive.write(path, f"{out_dir.name}/{path.relative_to(tmp).as_posix()}")
            zip_tmp.chmod(0o644)
        swap_in_directory(tmp, out_dir)  # an earlier package is replaced whole
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
