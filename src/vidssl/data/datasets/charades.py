"""Charades (Sigurdsson et al. 2016) multi-label action classification.

Layout (``root``)::

    Charades_v1_{train,test}.csv   official columns, at least ``id`` and ``actions``
        actions = "c092 11.90 21.20;c147 0.00 12.60"  (class, start s, end s; may be empty)
    Charades_v1_classes.txt        optional, "c000 Holding some clothes"
    Charades_v1_480/<id>.mp4       videos, or frames Charades_v1_rgb/<id>/<id>-%06d.jpg

The target is a multi-hot float vector over ``num_classes``: by default the length of
the classes file when present, else 157; ``"infer"`` takes the largest class id in the
CSVs + 1; an int fixes it. By default the target holds every action of the video
(Charades' video-level classification); with ``clip_labels=True`` a train-mode clip's target
holds only the actions whose interval overlaps the span from its first to its last frame
(PySlowFast's ``aggregate_labels`` over the clip's frames), while test-mode targets stay
video-level, as in PySlowFast. Train clips are taken anywhere in the video. Frame folders are
read at ``frames_fps`` (24, Charades' extraction rate). Splits: ``train``, ``val``/``test``
-> test.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from vidssl.data.datasets.base import (
    AnnotationError,
    Annotations,
    VideoClipDataset,
    VideoRecord,
    multi_hot_targets,
)
from vidssl.data.datasets.formats import official_split, parse_float, read_csv, read_lines

SPLITS = {"train": "train", "val": "test", "test": "test"}
OPTIONS = ("num_classes", "clip_labels", "frames_fps", "video_ext")
NUM_CLASSES = 157


def parse_actions(text: str, path: str, line: int) -> list[tuple[int, float, float]]:
    """``"c092 11.90 21.20;c147 0.00 12.60"`` -> ``[(92, 11.9, 21.2), (147, 0.0, 12.6)]``."""
    actions = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        fields = item.split()
        if len(fields) != 3 or not fields[0].startswith("c") or not fields[0][1:].isdigit():
            raise AnnotationError(path, line, f"action {item!r} is not 'cXXX start end'")
        start = parse_float(fields[1], path, line, "action start")
        end = parse_float(fields[2], path, line, "action end")
        actions.append((int(fields[0][1:]), start, end))
    return actions


def read_class_names(path: str) -> list[str]:
    """``Charades_v1_classes.txt``: ``cXXX description`` in class order."""
    names = []
    for number, fields in read_lines(path):
        if fields[0] != f"c{len(names):03d}":
            raise AnnotationError(
                path, number, f"expected class c{len(names):03d}, got {fields[0]!r}"
            )
        names.append(" ".join(fields[1:]))
    return names


def _video_path(root: str, video_id: str, video_ext: str, frames_fps: float) -> tuple[str, dict]:
    """The video file, or its frame folder (read at ``frames_fps``) when only that exists."""
    video = os.path.join(root, "Charades_v1_480", f"{video_id}.{video_ext.lstrip('.')}")
    frames = os.path.join(root, "Charades_v1_rgb", video_id)
    if not os.path.exists(video) and os.path.isdir(frames):
        return frames, {"fps": frames_fps}
    return video, {}


def _read_split(path: str, root: str, video_ext: str, frames_fps: float) -> list[VideoRecord]:
    records = []
    for number, row in read_csv(path, ("id", "actions")):
        if not row["id"]:
            raise AnnotationError(path, number, "empty id")
        actions = parse_actions(row["actions"], path, number)
        video, meta = _video_path(root, row["id"], video_ext, frames_fps)
        meta["actions"] = tuple(actions)
        records.append(VideoRecord(video, tuple(sorted({a[0] for a in actions})), meta=meta))
    return records


class CharadesDataset(VideoClipDataset):
    """Clips with multi-hot targets (``label``: float ``[num_classes]``)."""

    def __init__(self, annotations: Annotations, *, clip_labels: bool = False, **options):
        super().__init__(annotations, **options)
        self.clip_labels = clip_labels

    @property
    def targets(self) -> torch.Tensor:
        """Video-level multi-hot targets ``[N, num_classes]``."""
        return multi_hot_targets(self.records, self.num_classes)

    def target(self, record, info, views):
        label = torch.zeros(self.num_classes)
        if not self.clip_labels or self.mode != "train":
            label[list(record.label)] = 1.0
            return {"label": label}
        fps = record.meta.get("fps", info.fps)
        first = float(np.min(np.concatenate(views))) / fps
        last = float(np.max(np.concatenate(views)) + 1) / fps
        for cls, start, end in record.meta["actions"]:
            if start < last and end > first:
                label[cls] = 1.0
        return {"label": label}


def _infer_num_classes(root: str, video_ext: str, frames_fps: float) -> int:
    """Largest class id + 1 over the train and test CSVs."""
    seen = [-1]
    for split in ("train", "test"):
        path = os.path.join(root, f"Charades_v1_{split}.csv")
        if os.path.isfile(path):
            seen += [c for r in _read_split(path, root, video_ext, frames_fps) for c in r.label]
    return max(seen) + 1


def load(
    root: str,
    split: str,
    num_classes: int | str | None = None,
    clip_labels: bool = False,
    frames_fps: float = 24.0,
    video_ext: str = "mp4",
) -> Annotations:
    """``num_classes``: an int, ``None`` (the classes file's length when present, else 157)
    or ``"infer"`` (largest class id in the CSVs + 1)."""
    path = os.path.join(root, f"Charades_v1_{official_split('charades', split, SPLITS)}.csv")
    records = _read_split(path, root, video_ext, frames_fps)
    classes_file = os.path.join(root, "Charades_v1_classes.txt")
    names = read_class_names(classes_file) if os.path.isfile(classes_file) else None
    if num_classes == "infer":
        num_classes = _infer_num_classes(root, video_ext, frames_fps)
    elif num_classes is None:
        num_classes = len(names) if names is not None else NUM_CLASSES
    if names is None or len(names) != num_classes:
        names = [f"c{i:03d}" for i in range(num_classes)]
    highest = max((c for r in records for c in r.label), default=-1)
    if highest >= num_classes:
        raise AnnotationError(path, None, f"class c{highest:03d} >= num_classes={num_classes}")
    return Annotations(
        records,
        names,
        task="multilabel",
        sources=[path],
        dataset_cls=CharadesDataset,
        dataset_options={"clip_labels": clip_labels},
    )
