"""Everything between a user's videos and a batch of clips.

Follow one clip: :mod:`.annotations` reads the annotation line, :mod:`.sampling` picks its frame
numbers, :mod:`.dataset` decodes them, :mod:`.transforms` (with :mod:`.crossnorm`) turns them into a
normalised ``3 x T x H x W`` tensor (or a uint8 one that :func:`.transforms.normalize_batch`
normalises per batch). :mod:`.dump` makes raw frames from videos, :mod:`.statistics`
makes CrossNorm's list, :mod:`.synthetic` makes the bundled sample data (and
:mod:`.synthetic_recordings` long recordings of it with a segment CSV).
"""

import cv2

from .annotations import AnnotationError, VideoRecord, parse_annotation_file, read_label_map, read_video_list
from .crossnorm import apply_crossnorm, read_mean_std_list, write_mean_std_list
from .dataset import FrameReadError, RawFrameDataset, load_frames, worker_init_fn
from .sampling import sample_clip_indices
from .synthetic import make_synthetic_dataset
from .transforms import EvalTransform, TrainTransform, normalize_batch, preprocess_clip

# OpenCV's thread pool (pthreads) does not survive fork(): a DataLoader worker forked after the parent
# used it can hang in its first OpenCV call. Data loading is parallel across workers, and the main
# process only preprocesses small clips, so OpenCV runs single-threaded from here on.
cv2.setNumThreads(1)

__all__ = [
    "AnnotationError",
    "EvalTransform",
    "FrameReadError",
    "RawFrameDataset",
    "TrainTransform",
    "VideoRecord",
    "apply_crossnorm",
    "load_frames",
    "make_synthetic_dataset",
    "normalize_batch",
    "parse_annotation_file",
    "preprocess_clip",
    "read_label_map",
    "read_mean_std_list",
    "read_video_list",
    "sample_clip_indices",
    "worker_init_fn",
    "write_mean_std_list",
]
