"""UCF101-24 spatio-temporal action detection (Soomro et al. 2012; the corrected
annotations of Singh et al. 2017 as the ACT / MOC detectors distribute them).

Layout (``root``)::

    UCF101v2-GT.pkl                     a pickle (Python 2, read with latin-1) holding
        labels        24 class names
        gttubes       {video: {label: [array [n, 5] (frame, x1, y1, x2, y2)]}}  frames
                      1-based, boxes in pixels
        nframes       {video: number of frames}
        resolution    {video: (height, width)}
        train_videos, test_videos   [[videos of split 1], ...] (or one flat list)
    rgb-images/<Class>/<video>/%05d.jpg  frames (first: 00001.jpg), or
    videos/<Class>/<video>.<video_ext>   videos                 (<video> = "Class/v_..._c01")

One sample per annotated frame ``f`` with ``(f - 1) % keyframe_stride == 0`` (stride 1:
every annotated frame, the frame-mAP protocol): a clip centred on it (:mod:`.keyframes`),
the boxes of every tube that covers ``f`` (normalized by the video's resolution) and each
box's label. The test split's ``evaluation`` holds the ground-truth tubes restricted to the
sampled frames, which ``vidssl.evaluation.detection.frame_map`` scores against.

Bad input: a missing key or an unknown label is an ``AnnotationError`` naming the pickle;
boxes outside the frame are clipped and counted; tube frames outside ``1..nframes`` are
skipped and counted (``dataset.skipped``).
"""

from __future__ import annotations

import os
import pickle
from collections import defaultdict

import numpy as np

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import official_split, require_file
from vidssl.data.datasets.keyframes import KeyframeDataset, clip_boxes

SPLITS = {"train": "train_videos", "val": "test_videos", "test": "test_videos"}
OPTIONS = ("keyframe_stride", "split_index", "video_ext", "annotation_file")
KEYS = ("labels", "gttubes", "nframes", "resolution", "train_videos", "test_videos")
ANNOTATION_FILE = "UCF101v2-GT.pkl"


def read_annotations(path: str) -> dict:
    """The ground-truth pickle, checked for the keys the detectors use."""
    require_file(path, "UCF101-24 annotation pickle")
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise AnnotationError(path, None, f"not a readable pickle ({exc})") from None
    missing = [k for k in KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise AnnotationError(path, None, f"missing key(s) {missing}; expected {list(KEYS)}")
    return data


def split_videos(data: dict, key: str, split_index: int, path: str) -> list[str]:
    """Videos of split ``split_index`` (1-based): ``data[key]`` is a list of lists (or flat)."""
    videos = data[key]
    if videos and isinstance(videos[0], (list, tuple)):
        if not 1 <= split_index <= len(videos):
            raise AnnotationError(path, None, f"{key} has {len(videos)} split(s), asked for "
                                  f"split {split_index}")
        videos = videos[split_index - 1]
    return list(videos)


def _video_path(root: str, video: str, video_ext: str) -> str:
    frames = os.path.join(root, "rgb-images", video)
    if os.path.isdir(frames):
        return frames
    return os.path.join(root, "videos", f"{video}.{video_ext.lstrip('.')}")


def _frame_boxes(tubes: dict, nframes: int, num_classes: int, path: str, video: str,
                 counts: dict) -> dict[int, list]:
    """``{frame: [(box_pixels, label), ...]}`` over every tube of a video."""
    frames: dict[int, list] = defaultdict(list)
    for label, label_tubes in tubes.items():
        if not 0 <= int(label) < num_classes:
            raise AnnotationError(path, None, f"video {video}: label {label} is not in "
                                  f"0..{num_classes - 1}")
        for tube in label_tubes:
            rows = np.asarray(tube, dtype=np.float64).reshape(-1, 5)
            for frame, *box in rows:
                if not 1 <= frame <= nframes:
                    counts["tube_frames_outside_video"] += 1
                    continue
                frames[int(frame)].append((box, int(label)))
    return frames


def load(root: str, split: str, keyframe_stride: int = 1, split_index: int = 1,
         video_ext: str = "avi", annotation_file: str = ANNOTATION_FILE) -> Annotations:
    if keyframe_stride < 1:
        raise ValueError(f"ucf24: keyframe_stride must be >= 1, got {keyframe_stride}")
    path = os.path.join(root, annotation_file)
    data = read_annotations(path)
    names = [str(n) for n in data["labels"]]
    videos = split_videos(data, official_split("ucf24", split, SPLITS), split_index, path)
    counts: dict = defaultdict(int)
    records, evaluated = [], {}
    for video in videos:
        for key in ("gttubes", "nframes", "resolution"):
            if video not in data[key]:
                raise AnnotationError(path, None, f"video {video!r} has no entry in {key}")
        height, width = (int(v) for v in data["resolution"][video])
        frames = _frame_boxes(data["gttubes"][video], int(data["nframes"][video]), len(names),
                              path, video, counts)
        kept = sorted(f for f in frames if (f - 1) % keyframe_stride == 0)
        scale = np.array([width, height, width, height], dtype=np.float64)
        tubes: dict = defaultdict(list)
        for frame in kept:
            boxes, clipped = clip_boxes(np.array([b for b, _ in frames[frame]]) / scale)
            counts["boxes_clipped"] += clipped
            labels = tuple((label,) for _, label in frames[frame])
            meta = {"video": video, "timestamp": frame, "center": frame - 1,
                    "boxes": tuple(map(tuple, boxes.tolist())), "labels": labels,
                    "resolution": (height, width)}
            union = tuple(sorted({label for (label,) in labels}))
            records.append(VideoRecord(_video_path(root, video, video_ext), union, meta=meta))
            for box, (label,) in zip(boxes * scale, labels):
                tubes[label].append([frame, *box])
        evaluated[video] = {label: [np.array(rows)] for label, rows in tubes.items()}
    evaluation = {"format": "ucf24", "gt_tubes": evaluated, "videos": list(evaluated),
                  "resolution": {v: tuple(data["resolution"][v]) for v in evaluated}}
    return Annotations(
        records, names, task="detection", sources=[path], dataset_cls=KeyframeDataset,
        dataset_options={"evaluation": evaluation, "skipped": dict(counts)})
