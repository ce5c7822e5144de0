#!/usr/bin/env python3
"""Recognize actions live with an exported model, in one or many streams (action_rec/runtime/cli.py).

python tools/demo.py --model export/model.xml --input 0
python tools/demo.py --model export/model.xml --input video.mp4 --no-show --output out.mp4 --json out.jsonl
python tools/demo.py --model export/model.xml --input door=rtsp://cam1/s --input hall=rtsp://cam2/s \
    --no-show --timeline out/{name}.json --events events.jsonl --events-url http://127.0.0.1:8080/actions
"""

import sys

from action_rec.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="demo.py"))
