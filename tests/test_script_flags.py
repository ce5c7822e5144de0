"""One spelling per concept across the command lines: the flags train.py, eval.py and export.py share
are declared once (same defaults), one world-size flag, one precision-hint flag, dashes only."""

import re
from pathlib import Path

import pytest

from action_rec.evaluation.cli import build_parser as eval_parser
from action_rec.export.cli import build_parser as export_parser
from action_rec.inference.benchmark import build_parser as benchmark_parser
from action_rec.script_flags import TORCH_DEVICE_HELP
from action_rec.training.cli import build_parser as train_parser

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {
    "train": ["--train-ann-files", "a.txt", "--train-data-roots", "d"],
    "eval": ["--test-ann-files", "a.txt", "--test-data-roots", "d"],
    "export": ["--save-model-to", "out"],
}
PARSERS = {"train": train_parser, "eval": eval_parser, "export": export_parser}


def _actions(parser):
    return {a.option_strings[0]: a for a in parser._actions if a.option_strings}


def test_shared_flags_have_the_same_defaults_and_meaning_in_train_eval_export():
    parsed = {name: build().parse_args(REQUIRED[name]) for name, build in PARSERS.items()}
    for name, args in parsed.items():
        assert args.template is None and args.load_weights is None, name
        assert args.workers is None, name  # the template's training.workers everywhere
        assert args.no_progress is False and args.set == [], name
    for name in ("train", "eval"):
        assert parsed[name].device == "auto" and parsed[name].batch_size is None
        assert _actions(PARSERS[name]())["--device"].help == TORCH_DEVICE_HELP
    assert "--device" not in _actions(export_parser())  # exports on the CPU
    helps = [
        {f: _actions(build())[f].help for f in ("--template", "--workers", "--no-progress")}
        for build in PARSERS.values()
    ]
    assert helps[0] == helps[1] == helps[2]


def test_one_world_size_flag():
    train = _actions(train_parser())
    assert "--gpu-num" not in train and train["--nproc"].default == 1
    assert train_parser().parse_args([*REQUIRED["train"], "--nproc", "2"]).nproc == 2
    assert "--gpu-num" not in (REPO / "tools/quickstart.py").read_text()


def test_benchmark_takes_one_or_more_precision_hints():
    actions = _actions(benchmark_parser())
    assert "--hints" not in actions and actions["--device"].default == "CPU"
    args = benchmark_parser().parse_args(["--model", "m.xml", "--precision-hint", "default", "f32"])
    assert args.precision_hint == ["default", "f32"]
    with pytest.raises(SystemExit):
        benchmark_parser().parse_args(["--model", "m.xml", "--precision-hint", "fp8"])


def test_no_command_line_flag_is_spelt_with_an_underscore():
    flag = re.compile(r"""["']--[a-z0-9-]*_[a-z0-9_-]*["']""")
    found = [
        f"{path.relative_to(REPO)}: {match.group()}"
        for folder in ("action_rec", "tools", "bench")
        for path in sorted((REPO / folder).rglob("*.py"))
        for match in flag.finditer(path.read_text())
    ]
    assert not found
