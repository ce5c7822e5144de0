"""The flags that a work dir's ``train.py``, ``eval.py`` and ``export.py`` share, declared once.

Each script adds its own flags beside these; declaring the shared ones here keeps their names, defaults
and meaning the same in all three (and in tools that pass them on, such as the quick start).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["TORCH_DEVICE_HELP", "add_script_flags", "add_torch_device_flag"]

TORCH_DEVICE_HELP = "PyTorch device: auto (CUDA when available), cpu, cuda or cuda:N"


def add_torch_device_flag(p: argparse.ArgumentParser) -> None:
    """``--device``, the PyTorch device (default ``auto``); OpenVINO tools have their own ``--device``."""
    p.add_argument("--device", default="auto", help=TORCH_DEVICE_HELP)


def add_script_flags(
    p: argparse.ArgumentParser,
    weights_help: str,
    set_help: str,
    torch_device: bool = True,
    batch_size_help: str | None = None,
) -> None:
    """``--template``, ``--load-weights``, ``--workers``, ``--no-progress`` and ``--set`` (what each
    script reads from ``--load-weights`` and when ``--set`` applies differ: `weights_help`, `set_help`);
    with `torch_device` also ``--device``, with `batch_size_help` also ``--batch-size`` (default: the
    template's ``training.batch_size``)."""
    p.add_argument("--template", type=Path, help="template.yaml (default: the work dir's own)")
    p.add_argument("--load-weights", help=weights_help)
    if torch_device:
        add_torch_device_flag(p)
    if batch_size_help is not None:
        p.add_argument("--batch-size", type=int, help=batch_size_help)
    p.add_argument(
        "--workers",
        type=int,
        help="data loading processes (per training process); default: the template's training.workers",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help=set_help)
