"""What the peers bench writes: BENCHMARKS.md (tables of what the run measured, under the run's
header and command), the README's speed table, and the latency-against-GFLOPs plot. No explanation is
generated here: that is hand-written, in docs/benchmarks.md."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from action_rec.fileio import atomic_path
from bench.harness import environment_text, markdown_table
from bench.peers.candidates import (
    CANDIDATES,
    COMMON_SHAPE,
    EAGER,
    OV_FP32,
    OV_INT8,
    SIMILAR_GFLOPS,
    fmt_shape,
)
from bench.peers.compare import comparisons, equal_input_comparisons, faster_per_gflop
from bench.peers.layer_profile import Profile, lgd_layers
from bench.peers.run import Result


def rate(gflops: float, ms: float) -> str:
    return f"{gflops / ms * 1000:.0f}" if gflops > 0 and ms > 0 else "-"


def short(label: str) -> str:
    return label.replace(f" {fmt_shape(COMMON_SHAPE)}", "")


def results_table(results: Sequence[Result]) -> str:
    header = ["Model", "From", "Input T x H x W", "Runtime", "Median ms", "Min ms", "Max ms", "Runs",
              "GFLOPs", "Params M", "ms / GFLOP"]  # fmt: skip
    rows = [
        [
            f"**{r.model}**" if r.ours else r.model,
            r.source,
            fmt_shape(r.shape) + (" (published)" if r.published else ""),
            r.runtime,
            f"{r.median_ms:.1f}",
            f"{min(r.times_ms):.1f}",
            f"{max(r.times_ms):.1f}",
            len(r.times_ms),
            f"{r.gflops:.2f}",
            f"{r.params_m:.2f}",
            f"{r.ms_per_gflop:.2f}",
        ]  # fmt: skip
        for r in results
    ]
    return markdown_table(header, rows, "llllrrrrrrr")


def comparison_rows(results: Sequence[Result]) -> list[list[str]]:
    """Our faster model against the fastest peer of similar GFLOPs (at any input, then at 16x224x224),
    then against the fastest peer at each input both ran at; ratio < 1: ours faster."""
    rows = []
    within = f"fastest within {SIMILAR_GFLOPS:g}x of our GFLOPs"
    for shape, where in ((None, "at any input"), (COMMON_SHAPE, f"at {fmt_shape(COMMON_SHAPE)}")):
        for ours, peer in comparisons(results, shape):
            mine = [
                ours.runtime,
                f"{within}, {where}",
                ours.label,
                f"{ours.median_ms:.1f}",
                f"{ours.gflops:.2f}",
            ]
            if peer is None:
                rows.append([*mine, "none", "-", "-", "-", "-"])
                continue
            voxels = math.prod(peer.shape) / math.prod(ours.shape)
            rows.append([*mine, f"{peer.model} ({peer.source}) {fmt_shape(peer.shape)}", f"{peer.median_ms:.1f}",
                         f"{peer.gflops:.2f}", f"{voxels:.2f}", f"**{ours.median_ms / peer.median_ms:.2f}x**"])  # fmt: skip
    for ours, peer in equal_input_comparisons(results):
        published = "" if ours.published else " (not our published input)"
        rows.append([ours.runtime, f"fastest at the same input{published}", ours.label, f"{ours.median_ms:.1f}",
                     f"{ours.gflops:.2f}", f"{peer.model} ({peer.source}) {fmt_shape(peer.shape)}",
                     f"{peer.median_ms:.1f}", f"{peer.gflops:.2f}", "1.00",
                     f"**{ours.median_ms / peer.median_ms:.2f}x**"])  # fmt: skip
    return rows


def comparison_table(results: Sequence[Result]) -> str:
    header = ["Runtime", "Peer", "Ours", "Ours ms", "Ours GFLOPs", "Peer model", "Peer ms", "Peer GFLOPs",
              "Peer input / ours (T x H x W)", "Ours / peer"]  # fmt: skip
    return markdown_table(header, comparison_rows(results), "lllrrlrrrr")


def faster_per_gflop_table(results: Sequence[Result]) -> str:
    by_model = {r.model: r for r in results if r.runtime == OV_FP32 and r.shape == COMMON_SHAPE}
    rows = [
        [
            model,
            f"{by_model[model].ms_per_gflop:.2f}",
            ", ".join(f"{p.model} ({p.source}) {p.ms_per_gflop:.2f}" for p in peers) or "none",
        ]  # fmt: skip
        for model, peers in faster_per_gflop(results).items()
    ]
    return markdown_table(["Ours", "ms / GFLOP", "Peers with fewer ms / GFLOP"], rows, "lrl")


def profile_table(profiles: Sequence[Profile]) -> str:
    """Per op category: ms (share of the model's time), GFLOPs and the GFLOP/s achieved, one column per model."""
    weight: dict[str, float] = defaultdict(float)
    for p in profiles:
        for cat, (ms, _) in p.by_category().items():
            weight[cat] += ms / p.total_ms
    rows = []
    for cat in sorted(weight, key=lambda c: -weight[c]):
        cells = []
        for p in profiles:
            ms, gflops = p.by_category().get(cat, (0.0, 0.0))
            cell = f"{ms:.1f} ms ({100 * ms / p.total_ms:.0f} %)" if ms > 0 else "-"
            cells.append(cell + (f", {gflops:.2f} GF at {rate(gflops, ms)} GF/s" if gflops > 0 else ""))
        rows.append([cat, *cells])
    rows.append(["**all nodes**", *(f"**{p.total_ms:.1f} ms**, {p.conv_gflops:.2f} GF at "
                                    f"{rate(p.conv_gflops, p.total_ms)} GF/s" for p in profiles)])  # fmt: skip
    return markdown_table(
        ["Op category", *(short(p.label) for p in profiles)], rows, "l" + "r" * len(profiles)
    )


def resolution_table(profiles: Sequence[Profile]) -> str:
    """Per output resolution (the stage): share of the time against share of the FLOPs."""
    sizes = sorted({layer.out_hw for p in profiles for layer in p.layers if layer.out_hw}, reverse=True)
    rows = []
    for size in sizes:
        cells = []
        for p in profiles:
            ms, gflops = p.group(lambda layer: layer.out_hw).get(size, (0.0, 0.0))
            cells.append(
                f"{100 * ms / p.total_ms:.0f} % time, {100 * gflops / p.conv_gflops:.0f} % FLOPs, {rate(gflops, ms)} GF/s"
                if ms > 0 else "-"
            )  # fmt: skip
        rows.append([f"{size}x{size}", *cells])
    return markdown_table(
        ["Output H x W", *(short(p.label) for p in profiles)], rows, "l" + "r" * len(profiles)
    )


OP_GROUPS = (("conv pointwise", "1x1x1 convs"), ("conv dense", "dense k>1 convs"),
             ("conv depthwise", "depthwise convs"), ("element-wise", "element-wise ops"),
             ("reorder", "reorders"), ("pooling", "pooling / reduce"))  # fmt: skip


def op_group_table(profiles: Sequence[Profile]) -> str:
    """Per model and kind of op: share of the time, share of the FLOPs and the rate they ran at."""
    rows = []
    for p in profiles:
        cells = []
        for prefix, _ in OP_GROUPS:
            ms, gflops = p.share(prefix)
            flops = (
                f", {100 * gflops / p.conv_gflops:.0f} % FLOPs at {rate(gflops, ms)} GF/s" if gflops else ""
            )
            cells.append(f"{100 * ms / p.total_ms:.0f} % time{flops}" if ms > 0 else "-")
        rows.append([short(p.label), *cells])
    return markdown_table(["Model", *(name for _, name in OP_GROUPS)], rows, "l" + "r" * len(OP_GROUPS))


def lgd_table(profiles: Sequence[Profile]) -> str:
    """Our X3D's local-global diffusion path: its nodes' share of the time and of the FLOPs."""
    rows = []
    for p in profiles:
        nodes = lgd_layers(p)
        if p.ours and nodes:
            ms, gflops = sum(n.ms for n in nodes), sum(n.gflops for n in nodes)
            rows.append([short(p.label), len(nodes), f"{ms:.1f}", f"{100 * ms / p.total_ms:.0f} %",
                         f"{gflops:.3f}", f"{100 * gflops / p.conv_gflops:.1f} %"])  # fmt: skip
    header = ["Model", "Nodes", "ms", "Share of time", "GFLOPs", "Share of FLOPs"]
    return markdown_table(header, rows, "lrrrrr") if rows else ""


def top_layers(profile: Profile, count: int = 10) -> str:
    rows = [
        [
            f"`{layer.name}`",
            layer.category,
            layer.exec_type,
            f"{layer.ms:.2f}",
            f"{layer.gflops:.3f}",
            rate(layer.gflops, layer.ms),
        ]  # fmt: skip
        for layer in sorted(profile.layers, key=lambda layer: -layer.ms)[:count]
    ]
    return markdown_table(["Node", "Category", "Kernel", "ms", "GFLOPs", "GF/s"], rows, "lllrrr")


def render_markdown(
    results: Sequence[Result],
    profiles: Sequence[Profile],
    env: Mapping[str, str],
    command: str,
    plot_name: str,
) -> str:
    """The whole BENCHMARKS.md: the run's header and command, then only tables of what it measured."""
    parts = [
        "# Speed against the models people would pick instead",
        f"Generated by `{command}`; do not edit. What was timed, how, and what the figures mean: "
        "[docs/benchmarks.md](docs/benchmarks.md).",
        "## Run\n\n" + environment_text(env, markdown=True),
        "## Results\n\n" + results_table(results) + f"\n\n![latency against GFLOPs]({plot_name})",
        "## Ours against the peers\n\n"
        + (comparison_table(results) if comparisons(results) else "(not run)"),
        "## Per-layer profile (OpenVINO FP32, 16x224x224)",
    ]
    if profiles:
        parts += [
            "By op category:\n\n" + profile_table(profiles),
            "By stage (output resolution):\n\n" + resolution_table(profiles),
            "By kind of op:\n\n" + op_group_table(profiles),
            "Time per GFLOP:\n\n" + faster_per_gflop_table(results),
        ]
        if lgd := lgd_table(profiles):
            parts.append("Our X3D's local-global diffusion path:\n\n" + lgd)
        parts += [f"Slowest nodes of {p.label}:\n\n{top_layers(p)}" for p in profiles if p.ours]
    else:
        parts.append("(not profiled)")
    return "\n\n".join(parts) + "\n"


def readme_block(results: Sequence[Result], env: Mapping[str, str], command: str) -> str:
    """The README's speed table: every model at each input, median ms per runtime, with the run's date,
    machine, threads, load and command."""
    header = ["Model", "Input", OV_FP32, OV_INT8, EAGER, "GFLOPs"]
    rows = []
    for cand in CANDIDATES:
        for shape in cand.shapes:
            at = {r.runtime: r for r in results if r.model == cand.name and r.shape == shape}
            if not at:
                continue
            name = f"**{cand.name}**" if cand.ours else f"{cand.name} ({cand.source})"
            published = "" if shape == cand.published_shape else " (not its published input)"
            cells = [f"{at[rt].median_ms:.1f} ms" if rt in at else "-" for rt in (OV_FP32, OV_INT8, EAGER)]
            rows.append([name, fmt_shape(shape) + published, *cells, f"{next(iter(at.values())).gflops:.2f}"])
    return (
        f"Measured {env['date']} on {env['machine']}; {env['threads']} threads; {env['precision']}; "
        f"{env['load']}; median of {env['runs']}. Generated by "
        f"`{command}` with [BENCHMARKS.md](BENCHMARKS.md); do not edit between these markers.\n\n"
        + markdown_table(header, rows, "llrrrr")
    )


MARKERS = {EAGER: "o", OV_FP32: "s", OV_INT8: "^"}
NUDGE = {EAGER: 0.985, OV_FP32: 1.0, OV_INT8: 1.015}  # keeps the min-max bars of one model apart


def plot(results: Sequence[Result], path: Path, title: str) -> Path:
    """Latency against GFLOPs (log-log), one marker per model, input and runtime; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    labels = list(dict.fromkeys(r.label for r in results))
    colours = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(11, 6))
    for r in results:
        x = r.gflops * NUDGE[r.runtime]
        ax.scatter(x, r.median_ms, marker=MARKERS[r.runtime], s=90 if r.ours else 60,
                   color=colours[r.label], edgecolors="black" if r.ours else "none", zorder=3)  # fmt: skip
        ax.vlines(x, min(r.times_ms), max(r.times_ms), color=colours[r.label], alpha=0.5, zorder=2)
    handles = [ax.scatter([], [], marker="o", color=colours[label], label=label) for label in labels]
    handles += [ax.scatter([], [], marker=m, color="grey", label=runtime) for runtime, m in MARKERS.items()]
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
    ax.tick_params(which="minor", labelsize=7)
    ax.set_xlabel("GFLOPs (fvcore, multiply-add = 2 FLOPs)")
    ax.set_ylabel("latency ms, median (bar: min to max)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(
        handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="black edge: ours"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
