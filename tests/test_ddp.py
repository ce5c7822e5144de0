"""DistributedDataParallel on CPU with gloo, 2 processes: the spawn launcher and the torchrun path."""

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from action_rec.data import make_synthetic_dataset
from action_rec.models.checkpoint import read_checkpoint
from action_rec.templates import apply_overrides, load_template
from action_rec.training import cli
from action_rec.training.distributed import free_port
from action_rec.training.launch import run_process
from action_rec.training.logs import read_metrics
from action_rec.training.trainer import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=40", "training.warmup_epochs=1"]

pytestmark = pytest.mark.skipif(not dist.is_gloo_available(), reason="torch built without gloo")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # 10 clips: 5 per process, batches of 2 -> 2 steps per epoch on each rank (the last clip dropped).
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("ddp") / "data",
        num_classes=2,
        train_per_class=5,
        val_per_class=2,
        frames=8,
        size=40,
    )


def _rank_worker(rank: int, world_size: int, port: int, data: str, out: str) -> None:
    """One torchrun-style process: environment set, group joined by the caller, as torchrun does."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    template = apply_overrides(
        load_template(S3D),
        [*TINY, "training.epochs=2", "training.batch_size=2", "training.base_learning_rate=0.05"],
    )
    options = TrainOptions(
        out_dir=Path(out), train_ann_files=["train.txt"], train_data_roots=[data], val_ann_files=["val3.txt"],
        val_data_roots=[data], device="cpu", world_size=world_size, workers=0, progress=False,
    )  # fmt: skip
    _, model, iterations = run_process(template, options, rank, world_size, rank)
    torch.save({"state_dict": model.state_dict(), "iterations": iterations}, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_take_the_same_steps_and_end_with_the_same_weights(data, tmp_path):
    lines = (data / "val.txt").read_text().splitlines()
    (data / "val3.txt").write_text("\n".join(lines[:3]) + "\n")  # odd: shards of 2 and 1, no padding
    mp.spawn(_rank_worker, args=(2, free_port(), str(data), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["iterations"] == r1["iterations"] == 2 * 2
    for key, value in r0["state_dict"].items():
        assert torch.equal(value, r1["state_dict"][key]), key
    # Only rank 0 wrote the checkpoint, and it holds the same weights.
    saved = read_checkpoint(tmp_path / "latest.pth").raw
    assert saved["iteration"] == 4 and saved["meta"]["world_size"] == 2
    for key, value in r0["state_dict"].items():
        assert torch.equal(value, saved["state_dict"][key]), key
    # Validation counted every clip exactly once over both ranks.
    epochs = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "epoch"]
    assert len(epochs) == 2
    assert all(round(r["val_top1"] * 3 / 100, 6) in (0, 1, 2, 3) for r in epochs)  # thirds, not quarters


def test_cli_spawns_cpu_processes_with_nproc(data, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "--template", str(S3D), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
        "--val-ann-files", "val.txt", "--val-data-roots", str(data), "--save-checkpoints-to", str(out),
        "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--nproc", "2", "--workers", "0",
        "--no-progress", "--set", *TINY,
    ]  # fmt: skip
    assert cli.main(argv) == 0
    saved = read_checkpoint(out / "latest.pth").raw
    assert saved["iteration"] == 2 and saved["meta"]["world_size"] == 2
    assert "2 process(es)" in (out / "train.log").read_text()
