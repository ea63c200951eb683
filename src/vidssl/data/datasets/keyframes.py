"""Keyframe datasets for action detection (AVA, UCF101-24): a clip centred on an annotated
frame, its person boxes and their per-box action labels.

An adapter (``ava``, ``ucf24``) gives one :class:`VideoRecord` per keyframe with
``meta = {"video", "timestamp", "center", "boxes", "labels"}``: ``center`` is the 0-based
source frame of the keyframe, ``boxes`` normalized ``x1, y1, x2, y2`` in [0, 1] and
``labels`` a tuple of 0-based class ids per box. ``record.label`` is the union of the
labels (the keyframe's multi-hot ``targets``, used for subsets and class counts).

Clip (PySlowFast ``get_sequence``): frames ``center + frame_stride * (k - T // 2)``,
``k = 0..T-1``, clamped to the video. Spatial views move the boxes with the pixels:

- train: short side drawn from ``jitter_scales``, a random ``size`` square, horizontal
  flip with p = 0.5 (PySlowFast's AVA training view); boxes are clipped to the crop, a box
  outside it becomes a zero-area box that still carries its labels, as in PySlowFast;
- test, ``test_view="full"``: short side scaled to ``size``, the whole frame (PySlowFast's
  AVA test view); ``"center"``: then the centre ``size`` square (backbones with a fixed
  input grid, e.g. ViTs), boxes clipped to it.

A sample holds, besides ``video`` and ``index``, fixed-size (so batches collate) box
tensors padded to ``max_boxes`` (the most boxes of any keyframe of the split):
``boxes`` ``[M,4]`` in the clip's normalized coordinates, ``source_boxes`` ``[M,4]`` as
annotated (what detections are reported with), ``box_labels`` ``[M,K]`` multi-hot,
``box_mask`` ``[M]`` (True for real boxes), and ``label`` ``[K]`` the keyframe's union.
In train mode a keyframe whose frames cannot be read is replaced and counted (``bad``);
in test mode it raises, naming the file (a replaced test keyframe would be scored twice).
"""

from __future__ import annotations

import numpy as np
import torch

from vidssl.data import clip_ops as ops
from vidssl.data.datasets.base import (
    Annotations,
    VideoClipDataset,
    VideoRecord,
    multi_hot_targets,
)
from vidssl.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomHorizontalFlip,
    ShortSideJitterCrop,
)
from vidssl.io import VideoInfo, VideoReadError, read_clip

TEST_VIEWS = ("full", "center")


def clip_boxes(boxes: np.ndarray) -> tuple[np.ndarray, int]:
    """Boxes clipped to [0, 1] and the number of boxes that had to be changed."""
    clipped = np.clip(boxes, 0.0, 1.0)
    changed = int(np.any(np.abs(clipped - boxes) > 1e-9, axis=1).sum()) if len(boxes) else 0
    return clipped, changed


def centered_clip(center: int, num_frames: int, stride: int, length: int) -> np.ndarray:
    """``center + stride * (k - num_frames // 2)``, clamped to ``[0, length - 1]``."""
    offsets = stride * (np.arange(num_frames) - num_frames // 2)
    return np.clip(center + offsets, 0, length - 1)


def crop_boxes(boxes: torch.Tensor, crop: tuple[int, int, int, int], height: int, width: int
               ) -> torch.Tensor:
    """Normalized boxes of an ``H x W`` frame -> normalized in the crop ``(top, left, h, w)``,
    clipped to it."""
    top, left, crop_h, crop_w = crop
    scale = boxes.new_tensor([width, height, width, height])
    shift = boxes.new_tensor([left, top, left, top])
    size = boxes.new_tensor([crop_w, crop_h, crop_w, crop_h])
    return ((boxes * scale - shift) / size).clamp(0.0, 1.0)


def flip_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Mirror normalized ``x1, y1, x2, y2`` boxes left-right."""
    return torch.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], dim=1)


class KeyframeDataset(VideoClipDataset):
    """Clips centred on keyframes with their boxes (task ``detection``)."""

    def __init__(self, annotations: Annotations, *, evaluation: dict | None = None,
                 skipped: dict | None = None, jitter_scales=(256, 320), flip: bool = True,
                 test_view: str = "full", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 bgr: bool = False, transform=None,
                 decode_size: int | None = 0, **options):
        if transform is not None:
            raise ValueError("detection datasets move boxes with the pixels: set size, "
                             "jitter_scales, flip, test_view, mean/std instead of a transform")
        if test_view not in TEST_VIEWS:
            raise ValueError(f"test_view must be one of {TEST_VIEWS}, got {test_view!r}")
        super().__init__(annotations, transform=_unused, decode_size=decode_size, **options)
        if self.num_views != 1:
            raise ValueError("detection datasets sample one clip per keyframe: num_views=1")
        self.evaluation = dict(evaluation or {})
        self.skipped = dict(skipped or {})
        self.jitter_scales, self.flip, self.test_view = tuple(jitter_scales), flip, test_view
        self.mean, self.std, self.bgr = mean, std, bgr
        self.max_boxes = max((len(r.meta["boxes"]) for r in self.records), default=1) or 1

    @property
    def targets(self) -> torch.Tensor:
        """Keyframe-level multi-hot targets ``[N, num_classes]`` (union over boxes)."""
        return multi_hot_targets(self.records, self.num_classes)

    def keyframe(self, index: int) -> VideoRecord:
        return self.records[index]

    def clip_indices(self, record, info: VideoInfo, rng):
        center = record.meta["center"]
        if center >= info.num_frames:
            raise VideoReadError(record.path, f"keyframe {record.meta['video']} @ "
                                 f"{record.meta['timestamp']} needs frame {center + 1}, but the "
                                 f"video has {info.num_frames} frames")
        return [centered_clip(center, self.num_frames, self.frame_stride, info.num_frames)]

    # ------------------------------------------------------------------ spatial views
    def _view(self, frames: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        video = frames.permute(3, 0, 1, 2)  # [C,T,H,W]
        height, width = video.shape[-2:]
        if self.mode == "train":
            jitter = ShortSideJitterCrop(self.size, self.jitter_scales)
            crop = tuple(int(v) for v in jitter.get_params(video, generator)[0])
            video = jitter.apply(video, torch.tensor([crop]))
            boxes = crop_boxes(boxes, crop, height, width)
            if self.flip and bool(RandomHorizontalFlip().get_params(video, generator)[0]):
                video, boxes = video.flip(-1), flip_boxes(boxes)
        else:
            out_h, out_w = ops.short_side_size(height, width, self.size)
            video = ops.resize(video, (out_h, out_w))
            if self.test_view == "center":
                crop = ops.center_crop_box(out_h, out_w, (self.size, self.size))
                video = video[..., crop[0]:crop[0] + crop[2], crop[1]:crop[1] + crop[3]]
                boxes = crop_boxes(boxes, crop, out_h, out_w)
        video = ops.to_float(video)
        if self.mean is not None:
            video = ops.normalize(video, self.mean, self.std)
        if self.bgr:
            video = video.flip(0)
        return video.contiguous(), boxes

    # ------------------------------------------------------------------ loading
    def load(self, index: int, attempt: int = 0) -> dict:
        record = self.records[index]
        rng, generator = self._generators(index, attempt)
        info = self.index(record.path)
        [positions] = self.clip_indices(record, info, rng)
        frames = read_clip(record.path, positions.tolist(), backend=self.backend,
                           size=self.decode_size or None)
        source = torch.tensor(record.meta["boxes"], dtype=torch.float32).reshape(-1, 4)
        video, boxes = self._view(frames, source, generator)
        count, pad = len(source), self.max_boxes
        labels = torch.zeros(pad, self.num_classes)
        for row, box_labels in enumerate(record.meta["labels"]):
            labels[row, list(box_labels)] = 1.0
        union = torch.zeros(self.num_classes)
        union[list(record.label)] = 1.0
        return {"video": video, "boxes": _pad(boxes, pad), "source_boxes": _pad(source, pad),
                "box_labels": labels, "box_mask": torch.arange(pad) < count, "label": union,
                "index": index}

    def __getitem__(self, index: int) -> dict:
        if self.mode == "train":
            return super().__getitem__(index)
        return {**self.load(int(index)), "bad": 0}


def _pad(boxes: torch.Tensor, rows: int) -> torch.Tensor:
    out = torch.zeros(rows, 4)
    out[: len(boxes)] = boxes
    return out


def _unused(frames, generator=None):  # the parent's transform slot; _view replaces it
    raise AssertionError("KeyframeDataset transforms clips in _view")
