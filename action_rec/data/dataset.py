"""A dataset of raw-frame clips over several annotation files and data roots at once.

Data root layout (the seed README's)::

    <data_root>/rawframes/<rel_dir>/00001.jpg ...
    <data_root>/train.txt, val.txt     annotation files (paths relative to the data root, or absolute)
    <data_root>/label_map.txt          optional: class names, one a line, in label-id order
    <data_root>/mean_std_list.txt      optional: enables CrossNorm

One item is ``(clip, label)``: a normalised ``3 x T x size x size`` float32 tensor and an int, or with
``normalize=False`` the same clip as uint8 before normalisation (the trainer's choice: 4x less to move
between processes; :func:`action_rec.data.transforms.normalize_batch` then normalises the batch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from action_rec.templates import Template, load_template

from .annotations import (
    AnnotationError,
    VideoRecord,
    check_labels,
    parse_annotation_file,
    read_label_map,
    resolve_ann_files,
)
from .crossnorm import MEAN_STD_LIST, read_mean_std_list
from .sampling import sample_clip_indices
from .transforms import EvalTransform, TrainTransform

__all__ = [
    "FrameReadError",
    "RawFrameDataset",
    "decode_frame_data",
    "jpeg_is_complete",
    "load_frames",
    "torch_seeded_rng",
    "worker_init_fn",
    "LABEL_MAP",
]

LABEL_MAP = "label_map.txt"
SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


class FrameReadError(AnnotationError):
    """A frame file that cannot be read; names the file and the annotation line that asked for it."""

    _WORKER_PREFIX = "Caught FrameReadError in DataLoader worker"

    def __init__(self, message: str) -> None:
        # A DataLoader worker's exception is re-raised in the main process as
        # FrameReadError("Caught FrameReadError in DataLoader worker process N.\nOriginal Traceback ...
        # \n<module>.FrameReadError: <message>\n"): keep the one-line message the worker raised.
        if message.startswith(self._WORKER_PREFIX):
            message = message.rstrip().rsplit("\n", 1)[-1].split(": ", 1)[-1]
        super().__init__(message)


JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
# Bytes some writers pad a JPEG with after its end-of-image marker.
JPEG_PADDING = b"\x00\xff\r\n "


def jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG file's bytes end with the end-of-image marker (padding after it allowed).

    OpenCV decodes a truncated JPEG (a partial copy) with only a "Premature end of JPEG file" warning
    on stderr and fills the missing rows with grey; the missing marker is how such a file is caught,
    from the file's tail alone. Other formats (PNG frames) are not checked here.
    """
    if not data.startswith(JPEG_START):
        return True
    return data[-1024:].rstrip(JPEG_PADDING).endswith(JPEG_END)


def decode_frame_data(data: bytes, flags: int | None = None) -> np.ndarray | str:
    """Decode a frame file's bytes as RGB (or with OpenCV ``flags``); a string says why it cannot be."""
    if not jpeg_is_complete(data):
        return "is truncated (no JPEG end-of-image marker: a partial copy?)"
    buffer = np.frombuffer(data, np.uint8)
    if flags is not None:
        image = cv2.imdecode(buffer, flags)
    elif hasattr(cv2, "IMREAD_COLOR_RGB"):  # OpenCV >= 4.11 decodes straight to RGB
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB)
    else:
        bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        image = None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return "cannot be decoded" if image is None else image


def load_frames(record: VideoRecord, indices: Sequence[int]) -> list[np.ndarray]:
    """Decode the 1-based frames ``indices`` of a record as ``H x W x 3`` uint8 RGB arrays.

    Each distinct frame is decoded once, so looped (padded) clips cost no extra decoding. A missing,
    truncated or undecodable frame raises :class:`FrameReadError` naming the annotation line and the
    file, never a silently grey frame.
    """
    decoded: dict[int, np.ndarray] = {}
    frames = []
    for index in indices:
        index = int(index)
        frame = decoded.get(index)
        if frame is None:
            path = record.frame_path(index)
            result = decode_frame_data(path.read_bytes()) if path.is_file() else "not found"
            if isinstance(result, str):
                raise FrameReadError(f"{record.where}: frame file {path} {result}")
            frame = decoded[index] = result
        frames.append(frame)
    return frames


def torch_seeded_rng() -> np.random.Generator:
    """A NumPy generator for one training clip, seeded from torch's generator: DataLoader seeds that per
    worker and ``torch.manual_seed`` fixes it, so clips are reproducible from torch's seed alone."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one OpenCV thread per worker (the workers are the parallelism).

    ``action_rec.data`` already makes OpenCV single-threaded when imported, before any worker is
    forked; reconfiguring OpenCV's thread pool inside a forked worker can deadlock, so this only
    acts when someone turned the threads back on in the parent.
    """
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


class RawFrameDataset(Dataset):
    """Clips from raw frames, with the template's sampling and transforms for ``split``.

    Args:
        ann_files: annotation files: as given (relative to the current directory) when they exist, else
            inside the matching data root (``annotations.resolve_ann_files``).
        data_roots: one data root per annotation file, or a single root for all of them.
        template: a loaded Template (or a path to ``template.yaml``).
        split: ``train`` (random clip, augmentation) or ``val`` / ``test`` (centred clip, centre crop).
        class_names: the classes, in label-id order. When ``None``: the data roots' ``label_map.txt``
            (all present ones must agree), else ``str(id)`` for ids ``0 .. max label``.
        check_frames: check each record's frame directory and clip end frames when parsing.
        normalize: float32 clips normalised with ``input.mean`` / ``input.std``; ``False``: uint8 clips
            (0..255, every augmentation applied), to be normalised per batch with ``normalize_batch``.

    ``records[i].source`` is the index in ``ann_files`` of the file sample ``i`` came from.
    """

    def __init__(
        self,
        ann_files: Sequence[str | Path],
        data_roots: Sequence[str | Path],
        template: Template | str | Path,
        split: str = "train",
        class_names: Sequence[str] | None = None,
        check_frames: bool = True,
        normalize: bool = True,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not ann_files:
            raise AnnotationError("no annotation files given")
        files, roots = resolve_ann_files(ann_files, data_roots)
        self.template = load_template(template)
        self.split = split
        self.data_roots = [Path(r) for r in roots]
        self.ann_files = [Path(f) for f in files]
        pattern = self.template.data.frame_pattern

        self.records: list[VideoRecord] = []
        for source, (ann, root) in enumerate(zip(self.ann_files, self.data_roots, strict=True)):
            records = parse_annotation_file(ann, root, pattern, check_frames=check_frames, source=source)
            if not records:
                raise AnnotationError(f"{ann}: no samples")
            self.records.extend(records)

        self.class_names = list(class_names) if class_names is not None else self._label_map()
        if self.class_names is None:
            self.class_names = [str(i) for i in range(max(r.label for r in self.records) + 1)]
        else:
            origin = "the given class names" if class_names is not None else LABEL_MAP
            check_labels(self.records, len(self.class_names), origin)

        inp = self.template.input
        self.clip_len = inp.clip_len
        self.frame_interval = inp.frame_interval
        self.target_fps = inp.target_fps
        if split == "train":
            self.transform: TrainTransform | EvalTransform = TrainTransform(
                self.template, self._mean_std_pairs(), normalize=normalize
            )
        else:
            self.transform = EvalTransform(self.template, normalize=normalize)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def _label_map(self) -> list[str] | None:
        found: list[tuple[Path, list[str]]] = []
        for root in dict.fromkeys(self.data_roots):
            path = root / LABEL_MAP
            if path.is_file():
                found.append((path, read_label_map(path)))
        for path, names in found[1:]:
            if names != found[0][1]:
                raise AnnotationError(
                    f"{path}: label map differs from {found[0][0]}; give the class names explicitly"
                )
        return found[0][1] if found else None

    def _mean_std_pairs(self) -> np.ndarray | None:
        paths = [root / MEAN_STD_LIST for root in dict.fromkeys(self.data_roots)]
        present = [p for p in paths if p.is_file()]
        wanted = float(self.template.data.colour.crossnorm)
        if not present:
            if wanted > 0:
                log.warning(
                    "CrossNorm disabled: no %s in the data root(s) %s, so the clips drawn for it (p=%.2f) get no "
                    "colour change. Make one with tools/make_mean_std_list.py.",
                    MEAN_STD_LIST,
                    ", ".join(str(r) for r in dict.fromkeys(self.data_roots)),
                    wanted,
                )
            return None
        pairs = np.concatenate([read_mean_std_list(p) for p in present])
        if wanted > 0:
            log.info("CrossNorm enabled: %d mean/std pairs from %s", len(pairs), ", ".join(map(str, present)))
        return pairs

    def __len__(self) -> int:
        return len(self.records)

    def clip_indices(
        self, index: int, rng: np.random.Generator | None = None, offset: int | None = None
    ) -> np.ndarray:
        """The 1-based frame numbers of sample ``index``'s clip (training clips need ``rng``; ``offset``
        fixes where a training clip starts in the segment instead of drawing it)."""
        return sample_clip_indices(
            self.records[index], self.clip_len, self.frame_interval, rng, self.target_fps, offset=offset
        )

    def training_item(self, index: int, offset: int | None = None) -> tuple[torch.Tensor, int]:
        """Sample ``index`` as a training clip: the one training path (clip offset drawn, or ``offset``
        as sample filtering gives it; frames loaded; augmented), random from torch's generator."""
        rng = torch_seeded_rng()
        record = self.records[index]
        frames = load_frames(record, self.clip_indices(index, rng, offset))
        return self.transform(frames, rng), record.label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.split == "train":
            return self.training_item(index)
        record = self.records[index]
        frames = load_frames(record, self.clip_indices(index))
        return self.transform(frames), record.label
