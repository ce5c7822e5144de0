"""User errors are one line and exit 2; a bug anywhere else keeps its traceback."""

from __future__ import annotations

import subprocess
import sys

from export_checkpoints import TEMPLATES, make_checkpoint

from action_rec.errors import UserError

ARCH = "s3d-rgb-mobilenet-v3"


def _export_in_subprocess(prelude: str, args: list[str]) -> subprocess.CompletedProcess:
    code = (
        f"{prelude}\nimport sys\nfrom action_rec.export.cli import main\n"
        f"sys.exit(main({args!r}, template_path={str(TEMPLATES / ARCH / 'template.yaml')!r}))"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_a_value_error_inside_the_model_keeps_its_traceback(tmp_path):
    ckpt = make_checkpoint(tmp_path / "s3d.pth", ARCH)
    bug = (
        "from action_rec.models.action_model import ActionRecognizer\n"
        "def broken(self, x):\n    raise ValueError('a bug in our own model code')\n"
        "ActionRecognizer.forward = broken"
    )
    done = _export_in_subprocess(bug, ["--load-weights", str(ckpt), "--save-model-to", str(tmp_path / "out")])
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "def broken" not in done.stderr
    assert "ValueError: a bug in our own model code" in done.stderr and "in broken" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_a_user_error_is_one_line_and_exit_2(tmp_path):
    done = _export_in_subprocess("", ["--load-weights", str(tmp_path / "missing.pth"), "--save-model-to",
                                      str(tmp_path / "out")])  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.strip().count("\n") == 0
        and "missing.pth" in done.stderr
        and "Traceback" not in done.stderr
    )


def test_user_errors_are_not_value_errors():
    """The CLIs catch UserError only; a numpy or torch ValueError must never look like bad input."""
    from action_rec.data.annotations import AnnotationError
    from action_rec.export.pipeline import ExportError
    from action_rec.models.weights import CheckpointError
    from action_rec.templates import TemplateError

    for cls in (AnnotationError, ExportError, CheckpointError, TemplateError):
        assert issubclass(cls, UserError) and not issubclass(cls, ValueError)
