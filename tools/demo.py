#!/usr/bin/env python3
"""Recognize actions live with an exported model (see action_rec/inference/demo.py).

python tools/demo.py --model export/model.xml --input 0
python tools/demo.py --model export/model.xml --input video.mp4 --no-show --output out.mp4 --json out.jsonl
python tools/demo.py --model export/model.xml --input rtsp://camera/stream --no-show --timeline timeline.json
"""

import sys

from action_rec.inference.demo import main

if __name__ == "__main__":
    sys.exit(main())
