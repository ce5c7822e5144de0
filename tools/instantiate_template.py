#!/usr/bin/env python3
"""Make a work dir from a model template: template.yaml, train.py, eval.py, export.py, snapshot.pth.

python tools/instantiate_template.py model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml /tmp/my_model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from action_rec.errors import UserError  # noqa: E402
from action_rec.workdir import instantiate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path, help="path to a template.yaml")
    parser.add_argument("work_dir", type=Path, help="directory to create (or fill)")
    parser.add_argument("--snapshot", type=Path, help="copy this local snapshot instead of downloading it")
    parser.add_argument("--no-download", action="store_true", help="do not fetch the pre-trained snapshot")
    parser.add_argument("--force", action="store_true", help="overwrite files already in WORK_DIR")
    args = parser.parse_args(argv)
    if args.snapshot is not None and not args.snapshot.is_file():
        print(f"error: {args.snapshot}: no such snapshot file", file=sys.stderr)
        return 2
    try:
        instantiate(
            args.template,
            args.work_dir,
            snapshot=args.snapshot,
            download=not args.no_download,
            force=args.force,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
