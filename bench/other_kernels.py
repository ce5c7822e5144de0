"""The quick start trained with other oneDNN kernels: does a recipe hold when the arithmetic changes?

A CPU of another make runs the same training steps in another order of summation (other kernels,
other blocking), and a short schedule from scratch can land elsewhere: before its BatchNorm fix the
fine-tuning quick start gave 93.5 % on one CPU and 63.5 % on another. One machine can stand in for
another: ``ONEDNN_MAX_CPU_ISA`` caps the instruction set of PyTorch's oneDNN kernels, so with ``AVX2``
an AVX-512 CPU runs the same steps with 8-wide instead of 16-wide accumulation. Data, seeds and clips
stay the same; only the arithmetic moves.

The cap applies to the training processes alone (each work dir's ``train.py``, through a
``sitecustomize`` on ``PYTHONPATH``): OpenVINO's CPU plugin obeys it as well, and with it some IRs do
not compile under OpenVINO's defaults on a bf16 CPU (see ``action_rec/runtime/compile.py``), which is
not what users' programs meet. Everything after training (evaluation, export, calibration, timelines)
runs as usual. The quick start prints its own figures; this prints which kernels the training used.

    python -m bench.other_kernels --isa AVX2 -- --recordings 40 --model x3d --out-dir /tmp/qa_x3d --device cpu
    python -m bench.other_kernels --isa AVX2 -- --finetune --seed 0 --out-dir /tmp/qaft0 --device cpu
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.harness import ROOT, bench_command

ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16")

# Runs first in every Python process that the quick start starts; caps oneDNN in training scripts only.
SITECUSTOMIZE = """\
import os
import sys

if sys.argv and os.path.basename(sys.argv[0]) == "train.py":
    os.environ["ONEDNN_MAX_CPU_ISA"] = {isa!r}
"""

# A stand-in training script: one convolution forward and backward, with oneDNN's log on.
PROBE = """\
import torch

torch.nn.Conv3d(8, 8, 3, padding=1)(torch.randn(2, 8, 4, 16, 16, requires_grad=True)).sum().backward()
"""


def capped_environment(isa: str, folder: Path) -> dict[str, str]:
    """The environment for the quick start: `folder` holds the sitecustomize that caps train.py."""
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(isa=isa), encoding="utf-8")
    env = dict(os.environ)
    env.pop("ONEDNN_MAX_CPU_ISA", None)  # the cap is for training only
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return env


def training_isa(env: dict[str, str], folder: Path) -> str:
    """The instruction set oneDNN reports in a process started as a training script under `env`."""
    probe = folder / "probe" / "train.py"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text(PROBE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(probe)], env={**env, "ONEDNN_VERBOSE": "1"}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"other_kernels: the probe failed:\n{done.stderr}")
    found = re.search(r"onednn_verbose,[^\n]*,info,cpu,isa:([^\n]+)", done.stdout)
    return found.group(1).strip() if found else "not reported (oneDNN printed no isa line)"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--isa", default="AVX2", choices=ISAS, help="the cap for training (ONEDNN_MAX_CPU_ISA)")
    p.add_argument("quickstart_args", nargs=argparse.REMAINDER, help="-- then tools/quickstart.py's flags")
    args = p.parse_args(argv)
    passed = args.quickstart_args[1:] if args.quickstart_args[:1] == ["--"] else args.quickstart_args
    with tempfile.TemporaryDirectory(prefix="other_kernels.") as tmp:
        env = capped_environment(args.isa, Path(tmp))
        capped, usual = training_isa(env, Path(tmp)), training_isa(dict(os.environ), Path(tmp))
        print(f"command: {bench_command('bench.other_kernels', argv)}")
        print(f"training with ONEDNN_MAX_CPU_ISA={args.isa}: oneDNN in train.py uses {capped}")
        print(f"everything else as usual: oneDNN uses {usual}", flush=True)
        status = subprocess.call([sys.executable, str(ROOT / "tools" / "quickstart.py"), *passed], env=env)
    return status


if __name__ == "__main__":
    sys.exit(main())
