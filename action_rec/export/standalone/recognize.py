#!/usr/bin/env python3
"""Recognize actions in cameras, video files or RTSP streams with the exported model beside this file.

    python recognize.py --input 0                                       # camera 0, window on screen
    python recognize.py --input video.mp4 --no-show --timeline t.json   # headless timeline of a file
    python recognize.py --input door=rtsp://cam1/s --input hall=rtsp://cam2/s --no-show --events -

Needs only openvino, opencv-python and numpy (requirements.txt). Everything is done by
`action_rec/runtime/` beside this file: the training toolkit's own runtime, shipped byte for byte, and
this command line is the toolkit's `tools/demo.py` (action_rec/runtime/cli.py), so both give the same
labels, timelines and events on the same input. `python recognize.py --help` lists the options.
Exit status: 0 done, 1 a stream stopped on an error, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path

from action_rec.runtime.cli import main as _main

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="recognize.py", default_model=HERE / "model.xml")


if __name__ == "__main__":
    sys.exit(main())
