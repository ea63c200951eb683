"""The clip dataset shared by every adapter, and the records adapters produce.

An adapter parses a dataset's official annotation files into :class:`Annotations` (one
:class:`VideoRecord` per video or segment); :class:`VideoClipDataset` turns a record into
a sample: it samples frame indices, decodes them with :func:`vidssl.io.read_clip`,
transforms them and returns ``{"video", "label", "index", "bad"}``.

Randomness. Test mode is deterministic. In train mode, with ``seed`` set, a sample's
clip and augmentation depend only on ``(seed, epoch, index)`` (call ``set_epoch`` every
epoch); with ``seed=None`` they come from torch's global RNG, which DataLoader seeds per
worker and per epoch, so runs repeat given ``torch.manual_seed``.

Bad videos. ``build_dataset`` drops listed files that are missing or whose metadata cannot
be read, with a warning. A file that fails later (e.g. truncated), or a video shorter than
the clip when ``short_videos="replace"``, is replaced by another record drawn with a seeded
RNG; the sample's ``bad`` field counts the failed attempts (sum it over an epoch) and
each bad file is logged once per process by name. ``loop`` and ``last`` pad a short video
instead (SEVERE's loaders loop, PySlowFast's clamp; ``build_dataset`` picks the dataset's).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vidssl.data import sampling
from vidssl.data.transforms import test_transform, train_transform
from vidssl.io import VideoInfo, VideoReadError, read_clip

logger = logging.getLogger("vidssl.data")

MODES = ("train", "test")
SHORT_VIDEO_POLICIES = ("replace", "loop", "last")
SAMPLINGS = ("clip", "segments")


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file and the line."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str):
        self.path, self.line = os.fspath(path), line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class VideoRecord:
    """One sample source: a video file or frame folder, its target and optional segment.

    ``start``/``stop`` are 0-based source frames (``stop`` exclusive, ``None`` = end of
    video). ``label`` is a class index, a tuple of class indices (multi-label) or a count.
    ``meta`` carries adapter-specific annotations (e.g. cycle boundaries) and ``fps`` for
    frame folders, whose rate is not stored on disk.
    """

    path: str
    label: Any
    start: int = 0
    stop: int | None = None
    meta: dict = field(default_factory=dict, compare=False)


@dataclass
class Annotations:
    """What an adapter reads from disk for one split."""

    records: list[VideoRecord]
    class_names: list[str]
    task: str = "classification"
    sources: list[str] = field(default_factory=list)  # annotation files read
    dataset_cls: type | None = None  # a VideoClipDataset subclass with task-specific targets
    dataset_options: dict = field(default_factory=dict)


class VideoClipDataset(Dataset):
    """Map-style dataset of clips sampled from :class:`VideoRecord` s.

    Args:
        num_frames: frames per clip (``T``); with ``sampling="segments"`` the number of
            TSN segments.
        frame_stride: step between clip frames on the (resampled) timeline.
        stride_jitter: train-time stride drawn from ``stride +- stride_jitter``.
        target_fps: resample every video to this rate first (SEVERE: 16); ``None`` keeps it.
        size: output crop size; ``decode_size`` is the short side frames are decoded to
            (default ``round(size / 0.875)``, ``0`` = native).
        mode: ``train`` (random clips, ``train_transform``) or ``test`` (evenly spaced
            clips, ``test_transform``).
        num_views: ``V`` clips per video: independent random clips in train (contrastive
            pairs), evenly spaced test views in test; ``video`` is ``[V,C,T,H,W]`` if V > 1.
        num_crops: 1 or 3 spatial test crops per temporal view (views = V * crops).
        short_videos: ``replace`` a video shorter than the clip (counted as bad), or pad it
            by repeating frames (``loop`` wraps around, ``last`` repeats the last frame).
        transform: callable ``(uint8 [T,H,W,C], torch.Generator) -> float [C,T,H,W]``
            (or ``[N,C,T,H,W]`` views) replacing the default preset.
        index: a metadata lookup ``path -> VideoInfo`` (see :mod:`vidssl.data.metadata`).
    """

    def __init__(
        self,
        annotations: Annotations,
        *,
        index: Callable[[str], VideoInfo],
        name: str = "",
        split: str = "",
        num_frames: int = 16,
        frame_stride: int = 1,
        stride_jitter: int = 0,
        target_fps: float | None = None,
        size: int = 112,
        decode_size: int | None = None,
        mode: str = "train",
        num_views: int = 1,
        num_crops: int = 1,
        sampling: str = "clip",
        short_videos: str = "replace",
        backend: str = "pyav",
        transform: Callable | None = None,
        seed: int | None = None,
        max_attempts: int = 10,
    ):
        _check_choice("mode", mode, MODES)
        _check_choice("short_videos", short_videos, SHORT_VIDEO_POLICIES)
        _check_choice("sampling", sampling, SAMPLINGS)
        if num_frames < 1 or frame_stride < 1 or num_views < 1:
            raise ValueError("num_frames, frame_stride and num_views must be >= 1")
        if num_crops != 1 and mode != "test":
            raise ValueError("num_crops > 1 is a test-mode option")
        self.records = list(annotations.records)
        self.class_names = list(annotations.class_names)
        self.task = annotations.task
        self.name, self.split = name, split
        self.index = index
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.stride_jitter = stride_jitter
        self.target_fps = target_fps
        self.size = size
        self.decode_size = round(size / 0.875) if decode_size is None else decode_size
        self.mode, self.num_views, self.num_crops = mode, num_views, num_crops
        self.sampling = sampling
        self.pad = None if short_videos == "replace" else short_videos
        self.backend = backend
        if transform is None:
            transform = (
                train_transform(size)
                if mode == "train"
                else test_transform(size, num_crops=num_crops)
            )
        self.transform = transform
        self.seed = seed
        self.max_attempts = max_attempts
        self.epoch = 0
        self._logged_bad: set[str] = set()

    # ------------------------------------------------------------------ attributes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def targets(self) -> list:
        """Per-record targets: class ids (classification), counts (counting)."""
        return [record.label for record in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Vary train-time clips and augmentation per epoch when ``seed`` is set."""
        self.epoch = int(epoch)

    def subset(self, indices: Sequence[int]) -> VideoClipDataset:
        """The same dataset restricted to ``indices`` (records re-numbered from 0)."""
        view = copy.copy(self)
        view.records = [self.records[int(i)] for i in indices]
        view._logged_bad = set()
        return view

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
            f"mode={self.mode!r}, videos={len(self)}, classes={self.num_classes}, "
            f"task={self.task!r})"
        )

    # ------------------------------------------------------------------ sampling

    def _generators(self, index: int, attempt: int) -> tuple[np.random.Generator, torch.Generator]:
        if self.mode == "train" and self.seed is None:
            entropy: Any = int(torch.randint(0, 2**63 - 1, (1,)).item())
        else:
            entropy = [self.seed or 0, self.epoch, index, attempt]
        seeds = np.random.SeedSequence(entropy)
        torch_seed = int(seeds.generate_state(1, np.uint64)[0] >> np.uint64(1))
        return np.random.default_rng(seeds), torch.Generator().manual_seed(torch_seed)

    def timeline(self, record: VideoRecord, info: VideoInfo) -> np.ndarray:
        """Source frames of the record's segment, resampled to ``target_fps``."""
        stop = info.num_frames if record.stop is None else min(record.stop, info.num_frames)
        start = max(record.start, 0)
        if stop <= start:
            raise VideoReadError(
                record.path,
                f"segment frames {record.start}..{record.stop} lie outside its "
                f"{info.num_frames} frames",
            )
        fps = record.meta.get("fps", info.fps)
        return start + sampling.fps_timeline(stop - start, fps, self.target_fps)

    def sample_positions(self, length: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Timeline positions of each temporal view."""
        views, frames, stride = self.num_views, self.num_frames, self.frame_stride
        if self.sampling == "segments":
            if self.mode == "train":
                return [sampling.segment_indices(length, frames, rng=rng) for _ in range(views)]
            return [
                sampling.segment_indices(length, frames, offset=(v + 0.5) / views)
                for v in range(views)
            ]
        if self.mode == "train":
            return [
                sampling.random_clip(
                    length, frames, stride, rng=rng, stride_jitter=self.stride_jitter, pad=self.pad
                )
                for _ in range(views)
            ]
        return list(sampling.uniform_clips(length, frames, stride, views, pad=self.pad))

    def clip_indices(
        self, record: VideoRecord, info: VideoInfo, rng: np.random.Generator
    ) -> list[np.ndarray]:
        """Source frame indices of each temporal view of ``record``."""
        timeline = self.timeline(record, info)
        return [timeline[p] for p in self.sample_positions(len(timeline), rng)]

    def target(self, record: VideoRecord, info: VideoInfo, views: list[np.ndarray]) -> dict:
        """Target fields of the sample (``label`` and task-specific keys)."""
        return {"label": record.label}

    # ------------------------------------------------------------------ loading

    def load(self, index: int, attempt: int = 0) -> dict:
        """Sample ``index`` itself (no replacement); raises on a bad video."""
        record = self.records[index]
        rng, generator = self._generators(index, attempt)
        info = self.index(record.path)
        views = self.clip_indices(record, info, rng)
        wanted = np.concatenate(views)
        frames = read_clip(
            record.path, wanted.tolist(), backend=self.backend, size=self.decode_size or None
        )
        clips, offset = [], 0
        for view in views:
            out = self.transform(frames[offset : offset + len(view)], generator)
            clips.extend(out.unbind(0) if out.dim() == 5 else [out])
            offset += len(view)
        video = clips[0] if len(clips) == 1 else torch.stack(clips)
        return {"video": video, **self.target(record, info, views), "index": index}

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        failures = []
        for attempt in range(self.max_attempts):
            try:
                sample = self.load(index, attempt)
            except (VideoReadError, sampling.ClipTooShortError) as exc:
                failures.append(self._report_bad(index, exc))
                index = self._replacement(index, attempt)
                continue
            sample["bad"] = attempt
            return sample
        raise RuntimeError(
            f"{self.name or 'dataset'}: {self.max_attempts} bad videos in a row; "
            "last ones:\n  " + "\n  ".join(failures[-3:])
        )

    def _replacement(self, index: int, attempt: int) -> int:
        rng = np.random.default_rng([self.seed or 0, index, attempt, 0x5EED])
        return int(rng.integers(len(self.records)))

    def _report_bad(self, index: int, exc: Exception) -> str:
        path = self.records[index].path
        reason = exc.reason if isinstance(exc, VideoReadError) else str(exc)
        message = f"{path}: {reason}"
        if path not in self._logged_bad:
            self._logged_bad.add(path)
            logger.warning(
                "%s/%s: replacing bad sample %d (%s)", self.name, self.split, index, message
            )
        return message


def multi_hot_targets(records: Sequence[VideoRecord], num_classes: int) -> torch.Tensor:
    """``[N, num_classes]`` with a 1 at every class of each record's label set."""
    out = torch.zeros(len(records), num_classes)
    for row, record in enumerate(records):
        out[row, list(record.label)] = 1.0
    return out


def _check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{option} must be one of {list(choices)}, got {value!r}")
