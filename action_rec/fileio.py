"""Atomic file writes: a file is either its old complete self or its new complete self, never half.

Everything the toolkit writes that a user keeps (checkpoints, metrics, plots, annotation lists,
exported models) goes through `atomic_path`: the content is written to a temporary name in the same
directory and renamed over the destination only when complete, so a crash, Ctrl-C or full disk while
writing leaves the previous file intact. Outputs built apart (a staging directory) are moved in with
`move_into_place` or `swap_in_directory`. This module is the one place that renames things into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "swap_in_directory", "move_into_place"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success it replaces `path`, on an
    exception it is removed. `suffix` defaults to the destination's (writers such as matplotlib and
    OpenCV choose the format by it). `fsync` flushes the data to disk before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: str | bytes, mode: int | None = None) -> Path:
    """Write text (UTF-8) or bytes to `path` atomically; `mode` sets the file's permission bits."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        tmp.chmod(0o644 if mode is None else mode)
    return path


def swap_in_directory(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Move the complete directory `tmp` to `dest` (same file system), replacing an earlier `dest`: the
    old one is moved aside first and removed only after the new one is in place, so `dest` is always
    one whole directory. Returns `dest`."""
    tmp, dest = Path(tmp), Path(dest)
    if not dest.exists():
        os.replace(tmp, dest)
        return dest
    old = dest.with_name(f".{dest.name}.old{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def move_into_place(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Move the complete file or directory `src` to `dest` (same file system), replacing whatever is
    there: a file in one atomic rename, a directory through `swap_in_directory`. Returns `dest`."""
    src, dest = Path(src), Path(dest)
    if src.is_dir():
        if dest.is_file() or dest.is_symlink():
            dest.unlink()
        return swap_in_directory(src, dest)
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    os.replace(src, dest)
    return dest
