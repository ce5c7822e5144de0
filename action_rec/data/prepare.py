"""From a folder of videos (one folder per class) or a CSV to the training-ready raw-frame layout.

Sources:

- a folder ``SOURCE/<class>/<video file>`` (deeper folders inside a class folder are fine): the class
  name is the folder's, as in UCF-101 or Kinetics downloads and gestures recorded per class;
- a CSV with a header ``path,label[,split]`` (other columns are ignored; without a header the first
  two or three columns are taken as such), paths relative to ``videos_dir`` (default: the CSV's folder);
- a Kinetics-style CSV ``label,youtube_id,time_start,time_end,split``: the video of a row is found in
  ``videos_dir`` (searched recursively) as ``<youtube_id>_<start>_<end>.<ext>`` (``start``/``end`` in
  whole seconds, any zero padding: a clip already cut, as the Kinetics downloaders save them; used
  whole) or else ``<youtube_id>.<ext>`` (the full video, cut to ``time_start..time_end`` while dumping).

Frames are dumped by :func:`action_rec.data.dump.dump_jobs` (parallel, resumable, bad videos listed
and skipped) to ``OUT_DIR/rawframes/<class>/<video>``, and ``train.txt``, ``val.txt`` (and ``test.txt``
for a CSV with test rows) and ``label_map.txt`` are written. Class ids follow the sorted class names.
The split is the CSV's, else stratified by class (``val_fraction`` of each class, at least one video
when a class has two) with a seeded shuffle; ``group_regex`` keeps clips whose file names share its
match (group 1 when it has one: ``_g(\\d+)_`` for UCF-101) in one split.
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from action_rec.errors import UserError
from action_rec.fileio import atomic_path, atomic_write

from .dump import VideoJob, VideoResult, dump_jobs

__all__ = [
    "PrepareError",
    "SourceVideo",
    "ClassSummary",
    "PrepareSummary",
    "VIDEO_EXTENSIONS",
    "scan_class_folders",
    "read_csv_source",
    "assign_splits",
    "prepare_dataset",
]

VIDEO_EXTENSIONS = frozenset(".mp4 .avi .mkv .mov .webm .m4v .mpg .mpeg .wmv .flv .3gp .ogv .ts .gif".split())
SPLIT_NAMES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
}
FEW_VIDEOS = 5  # a class with fewer videos gets a warning
IMBALANCE = 10.0  # largest / smallest class above this gets a warning
SUMMARY_PNG = "dataset_summary.png"


class PrepareError(UserError):
    """A source that cannot be prepared (no class folder, a bad CSV row, ...)."""


@dataclass(frozen=True)
class SourceVideo:
    video: Path | None  # None: a CSV row whose video was not found (``missing`` says why)
    label: str
    rel_dir: str  # its frames go to rawframes/<rel_dir>
    split: str | None = None  # the CSV's; None: assigned by assign_splits
    time_range: tuple[float, float] | None = None
    missing: str = ""


def _safe(text: str) -> str:
    """A path part without whitespace: annotation columns are separated by whitespace."""
    return re.sub(r"\s+", "_", text.strip())


def _unique(rel_dirs: list[str]) -> list[str]:
    """Make frame folder names unique (``a.mp4`` and ``a.avi``, ``a b`` and ``a_b``) by a ``-N`` suffix."""
    seen: dict[str, int] = {}
    out = []
    for rel in rel_dirs:
        n = seen.get(rel, 0)
        seen[rel] = n + 1
        out.append(rel if n == 0 else f"{rel}-{n + 1}")
    return out


def scan_class_folders(root: Path) -> list[SourceVideo]:
    """Videos of ``root/<class>/...``, sorted; files that are not videos are ignored."""
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    items, rel_dirs = [], []
    for class_dir in classes:
        videos = sorted(
            p
            for p in class_dir.rglob("*")
            if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
        )
        for video in videos:
            items.append(SourceVideo(video, class_dir.name, ""))
            rel_dirs.append(
                f"{_safe(class_dir.name)}/{_safe(str(video.relative_to(class_dir).with_suffix('')))}"
            )
    if not items:
        raise PrepareError(
            f"{root}: no videos in class folders (expected {root}/<class>/<video file>, "
            f"video files ending in {', '.join(sorted(VIDEO_EXTENSIONS))})"
        )
    return [SourceVideo(i.video, i.label, rel) for i, rel in zip(items, _unique(rel_dirs), strict=True)]


def _split(value: str, where: str) -> str:
    split = SPLIT_NAMES.get(value.strip().lower())
    if split is None:
        raise PrepareError(f"{where}: split must be train, val or test, got {value!r}")
    return split


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f), start=1)]
    return [(n, row) for n, row in rows if any(row) and not row[0].startswith("#")]


def _video_index(videos_dir: Path) -> tuple[dict[str, Path], dict[tuple[str, int, int], Path]]:
    """Videos of a Kinetics folder by ``<id>`` (full videos) and by ``(id, start, end)`` (cut clips)."""
    full: dict[str, Path] = {}
    cut: dict[tuple[str, int, int], Path] = {}
    for p in sorted(videos_dir.rglob("*")):
        if p.suffix.lower() not in VIDEO_EXTENSIONS or not p.is_file():
            continue
        m = re.fullmatch(r"(.+)_(\d+)_(\d+)", p.stem)
        if m:
            cut.setdefault((m[1], int(m[2]), int(m[3])), p)
        full.setdefault(p.stem, p)
    return full, cut


def read_csv_source(path: Path, videos_dir: Path | None = None) -> list[SourceVideo]:
    """The videos a CSV lists (see the module docstring); a bad row is a ``FILE:LINE`` error."""
    videos_dir = videos_dir or path.parent
    rows = _csv_rows(path)
    if not rows:
        raise PrepareError(f"{path}: the CSV has no rows")
    header = [c.lower() for c in rows[0][1]]
    if "youtube_id" in header:
        return _kinetics_rows(path, rows, header, videos_dir)
    if "path" in header and "label" in header:
        columns = {name: header.index(name) for name in ("path", "label", "split") if name in header}
        rows = rows[1:]
    else:
        columns = {"path": 0, "label": 1, **({"split": 2} if len(rows[0][1]) >= 3 else {})}
    items, rel_dirs = [], []
    for line, row in rows:
        where = f"{path}:{line}"
        if len(row) <= max(columns.values()):
            raise PrepareError(f"{where}: expected the columns path,label[,split], got {len(row)} column(s)")
        rel, label = row[columns["path"]], row[columns["label"]]
        if not rel or not label:
            raise PrepareError(f"{where}: empty path or label")
        split = _split(row[columns["split"]], where) if "split" in columns else None
        items.append(SourceVideo(videos_dir / rel, label, "", split))
        rel_dirs.append(f"{_safe(label)}/{_safe(Path(rel).stem)}")
    return [
        SourceVideo(i.video, i.label, rel, i.split) for i, rel in zip(items, _unique(rel_dirs), strict=True)
    ]


def _kinetics_rows(path: Path, rows: list, header: list[str], videos_dir: Path) -> list[SourceVideo]:
    needed = ("label", "youtube_id", "time_start", "time_end")
    absent = [name for name in needed if name not in header]
    if absent:
        raise PrepareError(f"{path}:{rows[0][0]}: Kinetics-style header lacks {', '.join(absent)}")
    col = {name: header.index(name) for name in (*needed, "split") if name in header}
    full, cut = _video_index(videos_dir)
    items, rel_dirs = [], []
    for line, row in rows[1:]:
        where = f"{path}:{line}"
        if len(row) <= max(col.values()):
            raise PrepareError(f"{where}: expected {len(header)} columns, got {len(row)}")
        label, yid = row[col["label"]], row[col["youtube_id"]]
        try:
            start, end = float(row[col["time_start"]]), float(row[col["time_end"]])
        except ValueError:
            raise PrepareError(f"{where}: time_start and time_end must be numbers (seconds)") from None
        if not label or not yid:
            raise PrepareError(f"{where}: empty label or youtube_id")
        if not 0 <= start < end:
            raise PrepareError(f"{where}: time range {start:g}..{end:g} is empty or negative")
        split = _split(row[col["split"]], where) if "split" in col else None
        video, time_range, missing = cut.get((yid, int(start), int(end))), None, ""
        if video is None and yid in full:
            video, time_range = full[yid], (start, end)
        if video is None:
            missing = f"no video {yid}_{int(start):06d}_{int(end):06d}.* or {yid}.* in {videos_dir}"
        items.append(SourceVideo(video, label, "", split, time_range, missing))
        rel_dirs.append(f"{_safe(label)}/{yid}_{int(start):06d}_{int(end):06d}")
    if not items:
        raise PrepareError(f"{path}: the CSV has a header but no rows")
    return [
        SourceVideo(i.video, i.label, rel, i.split, i.time_range, i.missing)
        for i, rel in zip(items, _unique(rel_dirs), strict=True)
    ]


def assign_splits(
    items: Sequence[SourceVideo], val_fraction: float = 0.2, seed: int = 0, group_regex: str | None = None
) -> list[str]:
    """``train`` / ``val`` per item: ``val_fraction`` of each class (at least one of a class of two or
    more, never all of it), groups of ``group_regex`` kept whole, the same for the same seed."""
    pattern = re.compile(group_regex) if group_regex else None
    rng = random.Random(seed)
    by_class: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, item in enumerate(items):
        name = item.video.name if item.video is not None else item.rel_dir
        m = pattern.search(name) if pattern else None
        key = (m.group(1) if m.re.groups else m.group(0)) if m else f"\0{item.rel_dir}"
        by_class[item.label][key].append(i)
    group_split: dict[str, str] = {}
    for label in sorted(by_class):
        groups = by_class[label]
        n = sum(len(g) for g in groups.values())
        target = min(max(round(n * val_fraction), 1 if val_fraction > 0 else 0), n - 1)
        val = sum(len(g) for k, g in groups.items() if group_split.get(k) == "val")
        free = [k for k in groups if k not in group_split]
        rng.shuffle(free)
        for key in free:
            to_val = val < target and n - val - len(groups[key]) >= 1
            group_split[key] = "val" if to_val else "train"
            val += len(groups[key]) if to_val else 0
    splits = [""] * len(items)
    for groups in by_class.values():
        for key, indices in groups.items():
            for i in indices:
                splits[i] = group_split[key]
    return splits


@dataclass
class ClassSummary:
    name: str
    videos: int = 0
    frames: int = 0
    seconds: float = 0.0
    splits: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0, "test": 0})


@dataclass
class PrepareSummary:
    classes: list[ClassSummary]
    done: int
    skipped: int
    failed: list[tuple[str, str]]  # (video, reason)
    written: list[Path]
    warnings: list[str]
    chart: Path | None = None

    def lines(self) -> list[str]:
        has_test = any(c.splits["test"] for c in self.classes)
        head = ["class", "videos", "frames", "seconds", "train", "val"] + (["test"] if has_test else [])
        rows = [
            [c.name, c.videos, c.frames, f"{c.seconds:.1f}", c.splits["train"], c.splits["val"]]
            + ([c.splits["test"]] if has_test else [])
            for c in self.classes
        ]
        total = ["total", sum(c.videos for c in self.classes), sum(c.frames for c in self.classes)]
        total += [f"{sum(c.seconds for c in self.classes):.1f}"]
        total += [sum(c.splits[s] for c in self.classes) for s in ("train", "val", "test")[: len(head) - 4]]
        table = [head, *rows, total]
        widths = [max(len(str(r[i])) for r in table) for i in range(len(head))]
        out = [
            "  ".join(
                str(v).ljust(w) if i == 0 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in table
        ]
        videos = self.done + self.skipped + len(self.failed)
        out.append(
            f"prepare_dataset: {videos} videos: {self.done} dumped, {self.skipped} already dumped, "
            f"{len(self.failed)} failed"
        )
        out += [f"  failed: {video}: {reason}" for video, reason in self.failed]
        out += [f"warning: {w}" for w in self.warnings]
        out += [f"  wrote {p}" for p in self.written]
        return out


def _warnings(classes: list[ClassSummary], dropped: list[str]) -> list[str]:
    out = [f"class {name!r}: no video could be dumped; left out of label_map.txt" for name in dropped]
    few = [f"{c.name} ({c.videos})" for c in classes if c.videos < FEW_VIDEOS]
    if few:
        out.append(f"fewer than {FEW_VIDEOS} videos in: {', '.join(few)}")
    no_train = [c.name for c in classes if c.splits["train"] == 0]
    if no_train:
        out.append(f"no training video in: {', '.join(no_train)}")
    if classes:
        big, small = max(classes, key=lambda c: c.videos), min(classes, key=lambda c: c.videos)
        if big.videos > IMBALANCE * small.videos:
            out.append(
                f"imbalance: {big.name} has {big.videos} videos, {small.name} {small.videos} "
                f"({big.videos / small.videos:.0f}x); add videos or sample the classes in balance"
            )
    return out


def _plot(classes: list[ClassSummary], path: Path, unit: str = "videos") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c.name for c in classes]
    fig, (ax_videos, ax_seconds) = plt.subplots(
        1, 2, figsize=(10, 1.5 + 0.3 * len(names)), sharey=True, constrained_layout=True
    )
    left = [0] * len(names)
    for split in ("train", "val", "test"):
        counts = [c.splits[split] for c in classes]
        if any(counts):
            ax_videos.barh(names, counts, left=left, label=split)
            left = [a + b for a, b in zip(left, counts, strict=True)]
    ax_videos.set_xlabel(unit)
    ax_videos.legend()
    ax_videos.invert_yaxis()
    ax_seconds.barh(names, [c.seconds for c in classes], color="tab:gray")
    ax_seconds.set_xlabel(f"seconds of {'video' if unit == 'videos' else unit}")
    fig.suptitle(f"{len(names)} classes, {sum(c.videos for c in classes)} {unit}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _class_order(names: set[str]) -> list[str]:
    return sorted(names, key=int) if all(n.isdigit() for n in names) else sorted(names)


def prepare_dataset(
    source: str | Path,
    out_dir: str | Path,
    videos_dir: str | Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    group_regex: str | None = None,
    short_side: int | None = 256,
    workers: int = 1,
    quality: int = 90,
    frame_pattern: str = "{:05d}.jpg",
    progress: bool = True,
    plot: bool = True,
) -> PrepareSummary:
    """Dump ``source`` (a class-folder tree or a CSV) to ``out_dir`` and write its annotations,
    label map and summary chart (see the module docstring). ``short_side`` None keeps the full size."""
    source, out_dir = Path(source), Path(out_dir)
    if source.is_dir():
        if out_dir.resolve().is_relative_to(source.resolve()):
            raise PrepareError(f"{out_dir}: the output must not be inside the source folder {source}")
        items = scan_class_folders(source)
    elif source.is_file():
        items = read_csv_source(source, Path(videos_dir) if videos_dir else None)
    else:
        raise PrepareError(f"{source}: no such folder or CSV file")
    if not 0 <= val_fraction < 1:
        raise PrepareError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if any(i.split is None for i in items):
        splits = assign_splits(items, val_fraction, seed, group_regex)
    else:
        splits = [i.split for i in items]

    jobs = [
        VideoJob(i.video, out_dir / "rawframes" / i.rel_dir, i.rel_dir, i.time_range)
        for i in items
        if i.video is not None
    ]
    results: dict[str, VideoResult] = dump_jobs(
        jobs, workers, short_side, quality, frame_pattern, progress, desc="prepare_dataset"
    )
    failed = [(i.rel_dir, i.missing) for i in items if i.video is None]  # CSV rows without a video
    failed += [
        (str(i.video), results[i.rel_dir].error)
        for i in items
        if i.video and results[i.rel_dir].status == "failed"
    ]
    usable = [(i, s, results[i.rel_dir]) for i, s in zip(items, splits, strict=True) if i.video is not None]
    usable = [(i, s, r) for i, s, r in usable if r.status != "failed"]

    names = _class_order({i.label for i, _, _ in usable})
    dropped = [n for n in _class_order({i.label for i in items}) if n not in set(names)]
    ids = {name: k for k, name in enumerate(names)}
    classes = {name: ClassSummary(name) for name in names}
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for item, split, r in usable:
        c = classes[item.label]
        c.videos, c.frames, c.seconds = c.videos + 1, c.frames + r.frames, c.seconds + r.frames / r.fps
        c.splits[split] += 1
        lines[split].append(f"{r.rel_dir} {ids[item.label]} 0 {r.frames} 0 {r.frames} {r.fps:.10g}\n")

    written = []
    for split, text in lines.items():
        if text or split != "test":
            written.append(atomic_write(out_dir / f"{split}.txt", "".join(text)))
    if names:
        written.append(atomic_write(out_dir / "label_map.txt", "".join(f"{n}\n" for n in names)))
    summary = PrepareSummary(
        classes=list(classes.values()),
        done=sum(r.status == "done" for r in results.values()),
        skipped=sum(r.status == "skipped" for r in results.values()),
        failed=sorted(failed),
        written=written,
        warnings=_warnings(list(classes.values()), dropped),
    )
    if plot and names:
        summary.chart = out_dir / SUMMARY_PNG
        _plot(summary.classes, summary.chart)
        summary.written.append(summary.chart)
    return summary
