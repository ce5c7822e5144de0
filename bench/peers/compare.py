"""Which peer each of our models is held against: the fastest of similar GFLOPs (at any input, or at
16x224x224), the fastest at the same input, and those that take less time per GFLOP."""

from __future__ import annotations

from collections.abc import Sequence

from bench.peers.candidates import COMMON_SHAPE, OV_FP32, OV_INT8, SIMILAR_GFLOPS
from bench.peers.run import Result


def similar_peers(
    results: Sequence[Result], reference: Result, factor: float = SIMILAR_GFLOPS
) -> list[Result]:
    """Peer results in `reference`'s runtime whose GFLOPs are within `factor` of its GFLOPs."""
    return [
        r
        for r in results
        if not r.ours
        and r.runtime == reference.runtime
        and 1 / factor <= r.gflops / reference.gflops <= factor
    ]


def comparisons(
    results: Sequence[Result], shape: tuple[int, int, int] | None = None
) -> list[tuple[Result, Result | None]]:
    """For each OpenVINO runtime: (our faster model, the fastest peer of similar GFLOPs or None); peers
    at any of their shapes, or only at `shape`."""
    pairs = []
    for runtime in (OV_FP32, OV_INT8):
        ours = [r for r in results if r.ours and r.published and r.runtime == runtime]
        if ours:
            best = min(ours, key=lambda r: r.median_ms)
            peers = [r for r in similar_peers(results, best) if shape is None or r.shape == shape]
            pairs.append((best, min(peers, key=lambda r: r.median_ms, default=None)))
    return pairs


def equal_input_comparisons(results: Sequence[Result]) -> list[tuple[Result, Result]]:
    """(our faster model, the fastest peer), per OpenVINO runtime and per input at which both ran."""
    pairs = []
    for runtime in (OV_FP32, OV_INT8):
        shapes = dict.fromkeys(r.shape for r in results if not r.ours and r.runtime == runtime)
        for shape in shapes:
            at = [r for r in results if r.runtime == runtime and r.shape == shape]
            ours, peers = [r for r in at if r.ours], [r for r in at if not r.ours]
            if ours and peers:
                pairs.append((min(ours, key=lambda r: r.median_ms), min(peers, key=lambda r: r.median_ms)))
    return pairs


def faster_per_gflop(results: Sequence[Result], runtime: str = OV_FP32) -> dict[str, list[Result]]:
    """Our model -> the peers (at 16x224x224, in `runtime`) that take less time per GFLOP than it."""
    common = [r for r in results if r.runtime == runtime and r.shape == COMMON_SHAPE]
    return {
        ours.model: [r for r in common if not r.ours and r.ms_per_gflop < ours.ms_per_gflop]
        for ours in common
        if ours.ours
    }
