#!/usr/bin/env python3
"""End-to-end cost of an exported model on this CPU (see action_rec/inference/benchmark.py).

python tools/benchmark.py --model export/model.xml
python tools/benchmark.py --model export/model.xml --video clip.mp4 --precision-hint default f32 --json bench.json
"""

import sys

from action_rec.inference.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
