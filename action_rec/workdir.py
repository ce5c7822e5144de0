"""Work dirs: a template instantiated with its thin scripts and its pre-trained snapshot.

A work dir is where a user's training happens. It holds a copy of the template (so later edits to the
toolkit's templates do not change a running experiment), `train.py`, `eval.py`, `export.py` that call
the shared package, and `snapshot.pth` to fine-tune from.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from action_rec.errors import UserError
from action_rec.fileio import atomic_path, atomic_write
from action_rec.templates import TemplateError, load_template

__all__ = ["WorkDirError", "DownloadError", "instantiate", "download_file", "script_template", "SCRIPTS"]

SNAPSHOT_NAME = "snapshot.pth"


class WorkDirError(UserError):
    """The work dir cannot be made as asked (it would overwrite a user's files, say)."""


class DownloadError(UserError):
    """A file could not be downloaded; nothing was written at the destination."""


_SCRIPT = '''#!/usr/bin/env python3
"""{doc}

Run it from anywhere: `python {name} --help` lists the flags; defaults come from template.yaml.
"""

import sys
from pathlib import Path

from action_rec.{module}.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], template_path=Path(__file__).resolve().with_name("template.yaml")))
'''

SCRIPTS = {
    "train.py": ("training", "Train or fine-tune this work dir's model (see template.yaml)."),
    "eval.py": ("evaluation", "Evaluate a checkpoint: accuracy, complexity, metrics.yaml and plots."),
    "export.py": ("export", "Export a checkpoint to OpenVINO IR (model.xml + model.bin) through ONNX."),
}


def script_template(explicit: str | Path | None, work_dir_template: str | Path | None, script: str) -> Path:
    """The template file a work-dir script runs with: ``--template`` when given, else the work dir's
    template.yaml (the same rule for train.py, eval.py and export.py)."""
    path = explicit if explicit is not None else work_dir_template
    if path is None:
        raise TemplateError(f"no template: run the work dir's {script}, or give --template PATH")
    return Path(path)


def default_out_dir(explicit: str | Path | None, work_dir_template: str | Path | None) -> Path:
    """Where train.py writes checkpoints unless told: the work dir's outputs/ (also when --template is
    given), else outputs/ beside --template."""
    template = work_dir_template if work_dir_template is not None else explicit
    if template is None:
        raise TemplateError("no template: run the work dir's script, or give --template PATH")
    return Path(template).resolve().parent / "outputs"


def default_weights(out_dir: Path, script: str) -> Path:
    """The checkpoint eval.py and export.py use without --load-weights: the best on validation
    (best.pth), else the last epoch (latest.pth, written by runs without validation)."""
    for name in ("best.pth", "latest.pth"):
        if (out_dir / name).is_file():
            return out_dir / name
    raise TemplateError(
        f"{script}: no --load-weights given and {out_dir} holds neither best.pth nor latest.pth "
        "(train first, or name a checkpoint or snapshot)"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, dest: Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download `url` to `dest` with a progress bar, atomically: a broken download leaves no file.

    Raises DownloadError with a one-line reason when the URL cannot be reached or the checksum differs.
    """
    dest = Path(dest)
    try:
        with atomic_path(dest, suffix=".part") as tmp:
            request = urllib.request.Request(url, headers={"User-Agent": "action_rec"})
            with open(tmp, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        bar.update(len(block))
            if sha256 and _sha256(tmp) != sha256.lower():
                raise DownloadError(f"{url}: downloaded file does not match sha256 {sha256}")
        return dest
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"cannot download {url}: {reason}") from None


def _copy_atomic(src: Path, dest: Path) -> None:
    with atomic_path(dest, suffix=".part") as tmp:
        shutil.copyfile(src, tmp)


def instantiate(
    template_path: str | Path,
    work_dir: str | Path,
    *,
    snapshot: str | Path | None = None,
    download: bool = True,
    force: bool = False,
    log=print,
) -> Path:
    """Make `work_dir` from a template: template.yaml, train.py, eval.py, export.py, snapshot.pth.

    The template is validated first, so nothing is written for a broken one. Existing files are never
    overwritten unless `force`. The snapshot comes from `snapshot` (a local file) or is downloaded from
    the template's URL; when that fails the work dir is still complete and the message says how to
    place the file by hand. Returns the work dir.
    """
    template_path = Path(template_path)
    template = load_template(template_path)
    work_dir = Path(work_dir).resolve()

    targets = ["template.yaml", *SCRIPTS]
    if snapshot is not None or download:
        targets.append(SNAPSHOT_NAME)
    existing = [name for name in targets if (work_dir / name).exists()]
    if existing and not force:
        raise WorkDirError(
            f"{work_dir}: already holds {', '.join(existing)}; use --force to overwrite (your files would be lost)"
        )
    work_dir.mkdir(parents=True, exist_ok=True)

    _copy_atomic(template_path, work_dir / "template.yaml")
    for name, (module, doc) in SCRIPTS.items():
        atomic_write(work_dir / name, _SCRIPT.format(doc=doc, name=name, module=module), mode=0o755)
    log(f"Instantiated '{template.name}' in {work_dir}")

    dest = work_dir / SNAPSHOT_NAME
    url = template.snapshot.url
    if snapshot is not None:
        _copy_atomic(Path(snapshot), dest)
        log(f"Copied snapshot {snapshot} -> {dest}")
    elif download:
        try:
            download_file(url, dest, sha256=template.snapshot.sha256)
            log(f"Downloaded snapshot -> {dest}")
        except DownloadError as exc:
            log(
                f"WARNING: {exc}\n"
                f"  The work dir is ready, but without the pre-trained snapshot. To fine-tune from it,\n"
                f"  download {url}\n"
                f"  on a machine with internet and place it at {dest}\n"
                f"  (or run again with --snapshot PATH --force). Training from scratch works without it."
            )
    return work_dir
