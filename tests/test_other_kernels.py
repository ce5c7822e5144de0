"""bench.other_kernels: the oneDNN cap reaches the training scripts that the quick start starts, and
nothing else (OpenVINO obeys it too, which users' programs do not meet)."""

from __future__ import annotations

import subprocess
import sys

from bench.other_kernels import capped_environment, training_isa

SHOW = "import os; print(os.environ.get('ONEDNN_MAX_CPU_ISA'))\n"


def test_the_cap_reaches_train_py_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")  # a cap already set is not passed on
    (tmp_path / "site").mkdir()
    env = capped_environment("AVX2", tmp_path / "site")
    seen = {}
    for name in ("train.py", "export.py", "eval_timeline.py"):
        script = tmp_path / "work" / name
        script.parent.mkdir(exist_ok=True)
        script.write_text(SHOW, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, check=True
        )
        seen[name] = done.stdout.strip()
    assert seen == {"train.py": "AVX2", "export.py": "None", "eval_timeline.py": "None"}


def test_onednn_reports_the_capped_instruction_set_in_training(tmp_path):
    env = capped_environment("AVX2", tmp_path)
    assert training_isa(env, tmp_path) == "Intel AVX2"
