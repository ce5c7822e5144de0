"""Our two models against the ones people would pick instead, timed side by side in one process.

PyTorchVideo's X3D-S and X3D-M and torchvision's S3D are timed beside our S3D and X3D MobileNetV3-Large
models, on the same CPU threads, batch 1, each at its own published input shape and at 16 x 224 x 224,
in PyTorch eager and in OpenVINO after our own export path (``export_onnx`` -> ``convert_onnx`` ->
compiled under the f32 hint; FP32 and NNCF INT8). Then every OpenVINO FP32 model at 16 x 224 x 224 is
profiled per layer (``PERF_COUNT``) to say where the time goes. Writes ``BENCHMARKS.md`` (only what the
run measured), ``bench/peers_plot.png`` and the speed table of ``README.md`` (between its
``<!-- bench:peers:start -->`` and ``end`` lines). What the figures mean is in ``docs/benchmarks.md``.

    venv/bin/python -m bench.peers                      # the full run, ~3 to 10 min on 2 cores
    venv/bin/python -m bench.peers --runs 5 --min-seconds 0 --calib-clips 4 --out /tmp/b.md \\
        --plot /tmp/b.png --no-readme                   # a quick check that leaves the repository alone

Modules: ``candidates`` (the models), ``run`` (prepare and time them), ``layer_profile`` (per-node
times), ``compare`` (which peer each of ours is held against), ``report`` (tables, BENCHMARKS.md, the
README block, the plot). Weights are random (latency does not depend on them); INT8 is calibrated on
random clips, right for speed and meaningless for accuracy. Needs the ``bench`` extra
(``pip install -e .[bench]``).
"""
