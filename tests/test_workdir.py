"""Work dirs: instantiation, snapshot handling, no overwriting, and scripts that run from anywhere."""

import functools
import hashlib
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from action_rec.workdir import DownloadError, WorkDirError, download_file, instantiate

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((REPO / "model_templates").glob("*/*/template.yaml"))
TOOL = REPO / "tools/instantiate_template.py"

SEED_FLAGS = {
    "train.py": [
        "--load-weights",
        "--train-ann-files",
        "--train-data-roots",
        "--val-ann-files",
        "--val-data-roots",
        "--save-checkpoints-to",
        "--epochs",
        "--batch-size",
        "--nproc",
        "--base-learning-rate",
    ],
    "eval.py": ["--load-weights", "--test-ann-files", "--test-data-roots", "--save-metrics-to"],
    "export.py": ["--load-weights", "--save-model-to"],
}


def _run_tool(*args, cwd=None):
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.parent.name)
def test_work_dir_scripts_list_the_seed_flags_from_any_directory(tmp_path, template):
    snapshot = tmp_path / "local.pth"
    snapshot.write_bytes(b"weights")
    work_dir = tmp_path / "wd"
    result = _run_tool(template, work_dir, "--snapshot", snapshot)
    assert result.returncode == 0, result.stderr
    assert (work_dir / "snapshot.pth").read_bytes() == b"weights"
    assert (work_dir / "template.yaml").read_text() == template.read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for script, flags in SEED_FLAGS.items():
        help_run = subprocess.run(
            [sys.executable, str(work_dir / script), "--help"], capture_output=True, text=True, cwd=elsewhere
        )
        assert help_run.returncode == 0, help_run.stderr
        missing = [flag for flag in flags if flag not in help_run.stdout]
        assert not missing, f"{script} --help lacks {missing}"


def test_unreachable_snapshot_url_still_gives_a_complete_work_dir(tmp_path):
    template = TEMPLATES[0].read_text()
    url_line = next(line for line in template.splitlines() if line.strip().startswith("url:"))
    broken = tmp_path / "template.yaml"
    broken.write_text(template.replace(url_line, "  url: http://127.0.0.1:9/snapshot.pth"))
    result = _run_tool(broken, tmp_path / "wd")
    assert result.returncode == 0, result.stderr
    assert "cannot download http://127.0.0.1:9/snapshot.pth" in result.stdout
    assert "place it at" in result.stdout
    files = sorted(p.name for p in (tmp_path / "wd").iterdir())
    assert files == ["eval.py", "export.py", "template.yaml", "train.py"]


def test_existing_work_dir_is_never_overwritten_without_force(tmp_path):
    work_dir = instantiate(TEMPLATES[0], tmp_path / "wd", download=False, log=lambda *_: None)
    (work_dir / "train.py").write_text("# my edits\n")
    with pytest.raises(WorkDirError, match="--force"):
        instantiate(TEMPLATES[0], work_dir, download=False, log=lambda *_: None)
    assert (work_dir / "train.py").read_text() == "# my edits\n"
    result = _run_tool(TEMPLATES[0], work_dir, "--no-download")
    assert result.returncode == 2 and "--force" in result.stderr
    instantiate(TEMPLATES[0], work_dir, download=False, force=True, log=lambda *_: None)
    assert "action_rec.training.cli" in (work_dir / "train.py").read_text()


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_checks_sha256_and_leaves_no_partial_file(tmp_path, http_dir):
    root, base = http_dir
    payload = b"x" * 300_000
    (root / "snap.pth").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "out" / "snapshot.pth"
    download_file(f"{base}/snap.pth", dest, sha256=good)
    assert dest.read_bytes() == payload

    dest2 = tmp_path / "out" / "other.pth"
    with pytest.raises(DownloadError, match="sha256"):
        download_file(f"{base}/snap.pth", dest2, sha256="0" * 64)
    with pytest.raises(DownloadError, match="cannot download"):
        download_file(f"{base}/missing.pth", dest2)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["snapshot.pth"]
