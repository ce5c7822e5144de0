"""Shared fixtures: a tiny synthetic dataset, the real clips, the model templates, a tiny trained model."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from action_rec.data.synthetic import make_synthetic_dataset
from action_rec.runtime.signal_stack import signal_stack_state
from action_rec.templates import Template, load_template

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TEMPLATE_DIR = REPO / "model_templates" / "custom-action-recognition"
TEMPLATE_NAMES = ("s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc")


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset (do not modify it: it is shared by the whole session).

    6 classes (see ``action_rec.data.synthetic.CLASSES``), 4 train and 2 val videos per class, 32 frames
    of 64 x 64, 30 fps; ``train.txt``, ``val.txt``, ``label_map.txt`` and ``rawframes/`` in the returned
    data root.
    """
    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic_dataset(
        root, num_classes=6, train_per_class=4, val_per_class=2, frames=32, size=64, seed=0
    )


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``../shared/data/real`` (read-only real clips, see its SOURCES.md); skips when it is missing."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real clips not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny checkpoints of S3D and X3D as training writes them (export_checkpoints.py)."""
    from export_checkpoints import make_checkpoints

    return make_checkpoints(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny model of tiny_model.py, trained on its synthetic video and exported to FP32 and INT8
    IRs (do not modify its files: the whole session shares them)."""
    from tiny_model import train_tiny_model  # here: sessions without this fixture never load OpenVINO

    return train_tiny_model(tmp_path_factory.mktemp("tiny_model"), int8=True)


@pytest.fixture
def s3d_template() -> Template:
    """The S3D template (frozen: a test changes it with apply_overrides)."""
    return load_template(TEMPLATE_DIR / TEMPLATE_NAMES[0] / "template.yaml")


@pytest.fixture
def x3d_template() -> Template:
    """The X3D template (frozen: a test changes it with apply_overrides)."""
    return load_template(TEMPLATE_DIR / TEMPLATE_NAMES[1] / "template.yaml")


@pytest.fixture(autouse=True)
def _signal_stack_stays_mapped():
    """Fail the test after which the main thread's alternate signal stack is unmapped.

    OpenVINO Cores that die first in, first out leave it so (action_rec/runtime/signal_stack.py), and
    the next signal handled on it, typically the SIGCHLD of a DataLoader worker, kills the whole run
    with SIGSEGV; where something else was mapped there since, it corrupts that memory instead. The
    objects a test dropped are collected first, so the test that caused it is the one that fails.
    """
    yield
    gc.collect()
    assert signal_stack_state() != "unmapped", (
        "this test left the main thread's alternate signal stack unmapped: an OpenVINO Core made "
        "outside action_rec.runtime.openvino_core.shared_core, or NNCF run without use_own_signal_stack"
    )
