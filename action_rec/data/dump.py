"""Videos to raw frames: decode with OpenCV, write ``rawframes/<video>/00001.jpg ...`` and annotations.

Each video is written to a hidden temporary folder beside its final one, with a ``.dump.json`` marker
(frame count, fps, the video's size and mtime) written last, and the folder is then renamed into
place. So a finished folder is always complete: a rerun skips it (unless the video changed), and a
video interrupted half way leaves only a temporary folder, which the rerun removes and redoes.

A video that cannot be opened, decodes no frame, or decodes clearly fewer frames than its container
promises (a truncated or corrupt file) is reported by name and skipped; the others go on. The frame
count written to the annotation is the number of frames OpenCV actually decoded.

A job may keep only a time range of its video (a Kinetics row's ``time_start..time_end``): frames are
counted from the start (the frame index is time x fps) and only those of the range are written, so the
cut is exact to the frame whatever the container's seeking. A dump is redone when its video, time
range or short side changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from tqdm import tqdm

from action_rec.errors import UserError
from action_rec.fileio import atomic_write, swap_in_directory

from .annotations import AnnotationError, read_video_list

__all__ = [
    "DONE_MARKER",
    "VideoError",
    "VideoJob",
    "VideoResult",
    "DumpSummary",
    "dump_jobs",
    "frame_dir_name",
    "dump_video",
    "dump_videos",
    "decoded_frame_count",
]

DONE_MARKER = ".dump.json"
TMP_PREFIX = ".tmp-"
DEFAULT_FPS = 30.0


class VideoError(UserError):
    """A video that cannot be dumped (unreadable, empty, truncated)."""


@dataclass(frozen=True)
class VideoJob:
    video: Path  # the video file
    frame_dir: Path  # <output_dir>/rawframes/<rel_dir>
    rel_dir: str
    time_range: tuple[float, float] | None = None  # seconds [start, end) to keep; None: the whole video


@dataclass(frozen=True)
class VideoResult:
    rel_dir: str
    status: str  # done | skipped | failed
    frames: int = 0
    fps: float = 0.0
    error: str = ""
    fps_guessed: bool = False


@dataclass
class DumpSummary:
    done: int
    skipped: int
    failed: list[tuple[str, str]]  # (video, reason)
    written: list[Path]  # annotation files
    fps_guessed: list[str]

    def lines(self) -> list[str]:
        total = self.done + self.skipped + len(self.failed)
        out = [
            f"dump_frames: {total} videos: {self.done} done, {self.skipped} skipped (already dumped), "
            f"{len(self.failed)} failed"
        ]
        out += [f"  failed: {video}: {reason}" for video, reason in self.failed]
        if self.fps_guessed:
            out.append(f"  no fps in the file, {DEFAULT_FPS:g} written for: {', '.join(self.fps_guessed)}")
        out += [f"  wrote {path}" for path in self.written]
        return out


def frame_dir_name(rel_video: str) -> str:
    """The frame folder of a video: its path relative to the videos dir, without the extension."""
    path = PurePosixPath(rel_video.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


def _video_stamp(video: Path) -> dict:
    st = video.stat()
    return {"video_bytes": st.st_size, "video_mtime_ns": st.st_mtime_ns}


def _read_marker(job: VideoJob, short_side: int | None) -> dict | None:
    """The marker of a complete, up-to-date frame folder, else ``None``."""
    frame_dir, video = job.frame_dir, job.video
    try:
        meta = json.loads((frame_dir / DONE_MARKER).read_text(encoding="utf-8"))
        if (
            meta.get("video_bytes") != video.stat().st_size
            or meta.get("video_mtime_ns") != video.stat().st_mtime_ns
            or meta.get("time_range") != (list(job.time_range) if job.time_range else None)
            or meta.get("short_side") != short_side
        ):
            return None
        last = frame_dir / meta["frame_pattern"].format(meta["frames"])
        return meta if last.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _resize_short(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Shrink a frame so its short side is ``short_side`` pixels; a smaller frame is kept as it is
    (enlarging would cost disk and decoding time and add nothing: training resizes clips itself).

    Halving with INTER_AREA (its fast integer path, anti-aliased) while the frame is over twice too
    big, then INTER_LINEAR to the exact size, is several times faster than one INTER_AREA resize by a
    non-integer factor (768 x 576 to 341 x 256: 0.6 ms against 2.2 ms) and within about 1.5 grey levels.
    """
    h, w = frame.shape[:2]
    if min(h, w) <= short_side:
        return frame
    scale = short_side / min(h, w)
    size = (int(w * scale + 0.5), int(h * scale + 0.5))
    while min(frame.shape[:2]) >= 2 * short_side:
        frame = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)


def _write_frame(path: Path, frame: np.ndarray, quality: int) -> None:
    if not cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"cannot write {path}")


def decoded_frame_count(video: str | Path) -> int:
    """How many frames OpenCV decodes from a video (0 when it cannot be opened)."""
    cap = cv2.VideoCapture(str(video))
    count = 0
    try:
        while cap.grab():
            count += 1
    finally:
        cap.release()
    return count


def dump_video(
    job: VideoJob,
    short_side: int | None = None,
    quality: int = 90,
    frame_pattern: str = "{:05d}.jpg",
) -> VideoResult:
    """Dump one video (or skip it when its folder is complete); never raises for a bad video.

    An interruption (KeyboardInterrupt, a killed process) leaves only the hidden temporary folder.
    """
    video, frame_dir = job.video, job.frame_dir
    if not video.is_file():
        return VideoResult(job.rel_dir, "failed", error=f"video file {video} not found")
    meta = _read_marker(job, short_side)
    if meta is not None:
        return VideoResult(
            job.rel_dir, "skipped", meta["frames"], meta["fps"], fps_guessed=meta.get("fps_guessed", False)
        )

    frame_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(frame_dir)
    tmp = frame_dir.parent / f"{TMP_PREFIX}{frame_dir.name}.{os.getpid()}"
    tmp.mkdir()
    try:
        frames, fps, guessed = _decode_to(video, tmp, short_side, quality, frame_pattern, job.time_range)
        marker = {
            "frames": frames,
            "fps": fps,
            "fps_guessed": guessed,
            "frame_pattern": frame_pattern,
            "short_side": short_side,
            "time_range": list(job.time_range) if job.time_range else None,
            "video": str(video),
            **_video_stamp(video),
        }
        (tmp / DONE_MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        swap_in_directory(tmp, frame_dir)  # over an older, incomplete or outdated dump
    except VideoError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return VideoResult(job.rel_dir, "failed", error=str(e))
    except Exception as e:  # an unexpected decoder or disk error: report it, keep going
        shutil.rmtree(tmp, ignore_errors=True)
        return VideoResult(job.rel_dir, "failed", error=f"{type(e).__name__}: {e}")
    return VideoResult(job.rel_dir, "done", frames, fps, fps_guessed=guessed)


def _remove_stale(frame_dir: Path) -> None:
    """Remove the temporary folders an interrupted run left for this video (and only this one)."""
    prefix = f"{TMP_PREFIX}{frame_dir.name}."
    for entry in frame_dir.parent.iterdir():
        if entry.name.startswith(prefix) and re.fullmatch(r"(old)?\d+", entry.name[len(prefix) :]):
            shutil.rmtree(entry, ignore_errors=True)


def _decode_to(
    video: Path,
    out_dir: Path,
    short_side: int | None,
    quality: int,
    frame_pattern: str,
    time_range: tuple[float, float] | None = None,
) -> tuple[int, float, bool]:
    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            raise VideoError("cannot open the video (unreadable or corrupt file)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        guessed = not (np.isfinite(fps) and fps > 0)
        fps = DEFAULT_FPS if guessed else float(fps)
        promised = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        first, stop = 0, None  # decoded frames first .. stop - 1 are kept
        if time_range is not None:
            first, stop = round(time_range[0] * fps), round(time_range[1] * fps)
        seen = count = 0
        while stop is None or seen < stop:
            if seen < first:  # before the time range: demux and decode, but skip the conversion
                if not cap.grab():
                    break
                seen += 1
                continue
            ok, frame = cap.read()
            if not ok:
                break
            seen += 1
            count += 1
            if short_side:
                frame = _resize_short(frame, short_side)
            _write_frame(out_dir / frame_pattern.format(count), frame, quality)
    finally:
        cap.release()
    if count == 0 and time_range is not None and seen <= first:
        raise VideoError(
            f"the time range {time_range[0]:g}..{time_range[1]:g} s starts after the video's end ({seen} frames)"
        )
    if count == 0:
        raise VideoError("no frame could be decoded (corrupt file?)")
    # Containers may over-count by a frame; a truncated file decodes far fewer frames than promised.
    if promised > 0:
        expected = min(promised, stop) - first if stop is not None else promised
        if count + max(2, promised // 50) < expected:
            raise VideoError(
                f"truncated or corrupt: decoded {count} of the {expected} frames the file promises"
            )
    return count, fps, guessed


def _init_worker() -> None:
    cv2.setNumThreads(1)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # failures are reported by name instead


def dump_videos(
    videos_dir: str | Path,
    annotation_files: Sequence[str | Path],
    output_dir: str | Path,
    workers: int = 1,
    short_side: int | None = None,
    quality: int = 90,
    frame_pattern: str = "{:05d}.jpg",
    progress: bool = True,
) -> DumpSummary:
    """Dump every video of the ``<rel_path_to_video> <label_id>`` lists and write, for each list,
    ``<output_dir>/<same file name>`` with lines ``<rel_dir> <label> 0 N 0 N <fps>``.

    Raises :class:`AnnotationError` for a bad list (before any work); bad videos are reported in the
    summary instead.
    """
    videos_dir, output_dir = Path(videos_dir), Path(output_dir)
    lists = []
    for ann in map(Path, annotation_files):
        out = output_dir / ann.name
        if out.resolve() == ann.resolve():
            raise AnnotationError(
                f"{ann}: the output annotation would overwrite this video list; choose another --output-dir "
                "(e.g. a custom_dataset folder beside it)"
            )
        lists.append((ann, out, read_video_list(ann)))
    names = [ann.name for ann, _, _ in lists]
    if len(set(names)) != len(names):
        raise AnnotationError(
            f"two video lists share a file name ({', '.join(names)}); their outputs would collide"
        )

    jobs: dict[str, VideoJob] = {}
    owner: dict[str, tuple[str, Path, int]] = {}
    for ann, _, items in lists:
        for rel_video, _, line in items:
            rel_dir = frame_dir_name(rel_video)
            if rel_dir in owner and owner[rel_dir][0] != rel_video:
                first = owner[rel_dir]
                raise AnnotationError(
                    f"{ann}:{line}: {rel_video} and {first[0]} ({first[1]}:{first[2]}) would both be dumped "
                    f"to rawframes/{rel_dir}"
                )
            owner[rel_dir] = (rel_video, ann, line)
            jobs[rel_dir] = VideoJob(videos_dir / rel_video, output_dir / "rawframes" / rel_dir, rel_dir)

    results = dump_jobs(list(jobs.values()), workers, short_side, quality, frame_pattern, progress)

    written = []
    for _, out, items in lists:
        lines = []
        for rel_video, label, _ in items:
            r = results[frame_dir_name(rel_video)]
            if r.status != "failed":
                lines.append(f"{r.rel_dir} {label} 0 {r.frames} 0 {r.frames} {r.fps:.10g}\n")
        atomic_write(out, "".join(lines))
        written.append(out)
    failed = [(str(owner[r.rel_dir][0]), r.error) for r in results.values() if r.status == "failed"]
    return DumpSummary(
        done=sum(r.status == "done" for r in results.values()),
        skipped=sum(r.status == "skipped" for r in results.values()),
        failed=sorted(failed),
        written=written,
        fps_guessed=sorted(r.rel_dir for r in results.values() if r.fps_guessed),
    )


def dump_jobs(
    jobs: list[VideoJob],
    workers: int = 1,
    short_side: int | None = None,
    quality: int = 90,
    frame_pattern: str = "{:05d}.jpg",
    progress: bool = True,
    desc: str = "dump_frames",
) -> dict[str, VideoResult]:
    """Dump the jobs (``workers`` processes), skipping finished ones; results by ``rel_dir``."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    results: dict[str, VideoResult] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress)
    try:
        if workers <= 1:
            for job in jobs:
                results[job.rel_dir] = dump_video(job, short_side, quality, frame_pattern)
                bar.update()
        else:
            # Largest videos first: a long video started last would leave the other workers idle at the end.
            by_size = sorted(
                jobs, key=lambda j: j.video.stat().st_size if j.video.is_file() else 0, reverse=True
            )
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                futures = {pool.submit(dump_video, j, short_side, quality, frame_pattern): j for j in by_size}
                try:
                    for future in as_completed(futures):
                        job = futures[future]
                        try:
                            results[job.rel_dir] = future.result()
                        except Exception as e:  # a worker that died (e.g. a decoder crash)
                            results[job.rel_dir] = VideoResult(
                                job.rel_dir, "failed", error=f"worker failed: {e}"
                            )
                        bar.update()
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return results
