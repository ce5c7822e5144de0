"""bench/harness.py: rows timed in alternating rounds, the Markdown writer, the README block rewrite
(on a temporary copy), compiling under a hint, the environment header and the command."""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from action_rec.errors import UserError
from bench import harness
from bench.peers.__main__ import main as peers_main

README = Path(__file__).resolve().parents[1] / "README.md"


def runs_of(labels: list[str]) -> list[tuple[str, int]]:
    """Consecutive equal labels collapsed: [("a", 3), ("b", 1), ...]."""
    return [(label, len(list(group))) for label, group in itertools.groupby(labels)]


def test_round_robin_interleaves_rows_and_repeats_fast_ones():
    calls: list[str] = []
    timers = [
        harness.Timer("fast", lambda: calls.append("fast")),
        harness.Timer("slow", lambda: (calls.append("slow"), time.sleep(0.01))),
    ]
    harness.time_round_robin(timers, warmup=2, runs=3, min_seconds=0.06, progress=False)
    assert calls[:4] == ["fast", "fast", "slow", "slow"]  # warm-up: each row on its own
    rounds = runs_of(calls[4:])
    assert [label for label, _ in rounds] == ["fast", "slow"] * 3  # every round calls every row
    repeats = {label: {count for name, count in rounds if name == label} for label in ("fast", "slow")}
    assert len(repeats["fast"]) == len(repeats["slow"]) == 1  # the same number of calls in every round
    assert repeats["fast"].pop() > repeats["slow"].pop()  # the fast row, more times a round
    assert [len(t.times_ms) for t in timers] == [calls.count("fast") - 2, calls.count("slow") - 2]
    assert min(timers[1].times_ms) >= 10


def test_in_rounds_alternates_and_keeps_each_figure():
    calls: list[str] = []
    counter = itertools.count()
    measures = {name: (lambda name=name: calls.append(name) or next(counter)) for name in ("a", "b", "c")}
    figures = harness.in_rounds(measures, rounds=2, progress=False)
    assert calls == ["a", "b", "c", "a", "b", "c"]
    assert figures == {"a": [0.0, 3.0], "b": [1.0, 4.0], "c": [2.0, 5.0]}


def test_timer_summary():
    timer = harness.Timer("t", lambda: None, [float(v) for v in range(10, 0, -1)])
    assert timer.summary() == pytest.approx({"median": 5.5, "p90": 9.1, "min": 1.0, "max": 10.0})
    assert timer.median_ms == 5.5


def test_markdown_table():
    text = harness.markdown_table(["Model", "ms"], [["a|b", 1.5], ["c", "2"]], align="lr")
    assert text.splitlines() == ["| Model | ms |", "|---|--:|", "| a\\|b | 1.5 |", "| c | 2 |"]
    assert harness.markdown_table(["x"], []).splitlines() == ["| x |", "|---|"]
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        harness.markdown_table(["x"], [[1, 2]])


def test_rewrite_block_replaces_only_the_marked_block(tmp_path):
    readme = shutil.copy(README, tmp_path / "README.md")
    before = Path(readme).read_text().splitlines()
    start, end = harness.block_markers("peers")
    first, last = before.index(start), before.index(end)
    harness.rewrite_block(readme, "peers", "\nnew table\n| a |\n")
    after = Path(readme).read_text().splitlines()
    assert after[: first + 1] == before[: first + 1]
    assert after[first + 1 : first + 3] == ["new table", "| a |"]
    assert after[first + 3 :] == before[last:]
    harness.rewrite_block(readme, "peers", "new table\n| a |")
    assert Path(readme).read_text().splitlines() == after  # the same content: the same file


@pytest.mark.parametrize(
    "text, message",
    [
        ("no block here\n", "no line with `<!-- bench:peers:start -->`"),
        ("<!-- bench:peers:start -->\n<!-- bench:peers:start -->\n<!-- bench:peers:end -->\n", "lines 1, 2"),
        ("x\n<!-- bench:peers:end -->\n<!-- bench:peers:start -->\n", ":2: `<!-- bench:peers:end -->` comes"),
    ],
)
def test_a_badly_marked_block_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "README.md"
    path.write_text(text)
    with pytest.raises(harness.MarkerError) as error:
        harness.rewrite_block(path, "peers", "table")
    assert isinstance(error.value, UserError) and str(path) in str(error.value)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert path.read_text() == text


def test_peers_refuses_a_readme_without_the_block_before_running(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# no markers\n")
    assert peers_main(["--readme", str(tmp_path / "README.md"), "--out", str(tmp_path / "b.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "README.md: no line with `<!-- bench:peers:start -->`" in err
    assert not (tmp_path / "b.md").exists()


def test_compile_under_hint_and_infer_request():
    param = ov.opset13.parameter([1, 4], ov.Type.f32)
    model = ov.Model([ov.opset13.relu(param)], [param], "relu")
    compiled = harness.compile_under_hint(model, "f32", threads=1)
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert str(compiled.get_property("PERFORMANCE_HINT")).endswith("LATENCY")
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    request = harness.infer_request(model, x, "f32", threads=1)
    np.testing.assert_array_equal(request.get_output_tensor().data, [[0.0, 2.0, 0.0, 4.0]])
    with pytest.raises(UserError, match="unknown precision hint 'f16'"):
        harness.compile_under_hint(model, "f16")


def test_environment_header_and_command():
    env = harness.environment(2, "OpenVINO in f32", ("openvino", "no-such-package"), runs="20 runs")
    assert list(env) == ["date", "machine", "threads", "precision", "versions", "load", "runs"]
    assert (
        "OpenVINO's CPU default here:" in env["precision"]
        and "no-such-package not installed" in env["versions"]
    )
    assert env["load"].endswith("at the start")
    harness.finish_environment(env, 2)
    assert "at the start, " in env["load"] and env["load"].endswith("accounts for about 2)")
    text = harness.environment_text(env, markdown=True)
    assert text.splitlines()[0].startswith("- date: ") and len(text.splitlines()) == len(env)
    command = harness.bench_command("bench.peers", ["--runs", "5", "--only", "S3D MobileNetV3"])
    assert command.endswith("python -m bench.peers --runs 5 --only 'S3D MobileNetV3'")
