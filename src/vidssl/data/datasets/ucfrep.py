"""UCFRep repetition counting (Zhang et al. 2020; 526 UCF101 videos, 23 classes).

Layout (``root``)::

    annotations/{train,val}/<video>.mat   struct ``label`` with ``start_frame``, ``end_frame``,
                                          ``temporal_bound`` (cycle boundaries), ...
    videos/<Class>/<video>.<video_ext>    (avi by default), or frames
    imgs/{train,val}/<Class>/<video>/image_%05d.jpg   (read at ``frames_fps``, 25)

Frame numbers in the ``.mat`` files are 1-based (MATLAB; ``image_00001.jpg`` is the first
frame) and converted to 0-based source frames. Boundaries ``b_0 < ... < b_K`` delimit
``K`` cycles ``[b_i, b_{i+1}]``; the video-level count is ``K``.

Counting rule: a clip is ``num_frames`` frames evenly spread over a window ``[lo, hi]``
(``frame_stride`` and ``target_fps`` do not apply); its ``count`` is the number of
complete cycles inside the window, ``#{i : lo <= b_i and b_{i+1} <= hi}``. Train windows
are random cycle-aligned sub-segments ``[b_i, b_j]`` (``0 <= i < j <= K``, count
``j - i``, as the UCFRep code's augmentation); test windows are the annotated segment
``[start_frame, end_frame]``. Samples carry ``label`` = ``count`` (float) and
``video_count``. Splits: ``train``, ``val``/``test`` -> val.

Records keep ``start``, ``end``, ``bounds`` and, when the file has them, the per-frame
``offset_pre_estimate`` / ``offset_next_estimate`` (rounded; ``-1`` = undefined) as
``offsets_pre`` / ``offsets_next``: the labels of SEVERE's anchor counter
(``vidssl.evaluation.counting_protocol``).
"""

from __future__ import annotations

import os

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from vidssl.data import sampling
from vidssl.data.datasets.base import AnnotationError, Annotations, VideoClipDataset, VideoRecord
from vidssl.data.datasets.formats import official_split

SPLITS = {"train": "train", "val": "val", "test": "val"}
OPTIONS = ("video_ext", "frames_fps")
FIELDS = ("start_frame", "end_frame", "temporal_bound")
OFFSET_FIELDS = {"offset_pre_estimate": "offsets_pre", "offset_next_estimate": "offsets_next"}


def class_of(video: str) -> str:
    """``v_JumpingJack_g01_c02`` -> ``JumpingJack``."""
    return video.removeprefix("v_").rsplit("_", 2)[0]


def read_annotation(path: str) -> dict:
    """``start``, ``end`` and ``bounds`` (0-based source frames) of one ``.mat`` file."""
    try:
        content = scipy.io.loadmat(path)
    except (MatReadError, OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise AnnotationError(path, None, f"not a readable .mat file ({exc})") from None
    try:
        label = content["label"][0, 0]
        values = {name: np.asarray(label[name], dtype=np.float64).ravel() for name in FIELDS}
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise AnnotationError(
            path,
            None,
            f"expected a struct 'label' with fields {FIELDS} ({type(exc).__name__}: {exc})",
        ) from None
    if values["start_frame"].size != 1 or values["end_frame"].size != 1:
        raise AnnotationError(path, None, "start_frame and end_frame must be scalars")
    start, end = int(values["start_frame"][0]) - 1, int(values["end_frame"][0]) - 1
    bounds = values["temporal_bound"].astype(np.int64) - 1
    if start < 0 or end < start:
        raise AnnotationError(
            path, None, f"bad segment start_frame..end_frame = {start + 1}..{end + 1}"
        )
    if np.any(np.diff(bounds) <= 0) or (bounds.size and bounds[0] < 0):
        raise AnnotationError(path, None, "temporal_bound must be increasing frame numbers >= 1")
    meta = {"start": start, "end": end, "bounds": tuple(int(b) for b in bounds)}
    for field, key in OFFSET_FIELDS.items():  # optional: frames to the same phase, -1 = none
        if field in (label.dtype.names or ()):
            offsets = np.rint(np.asarray(label[field], dtype=np.float64).ravel()).astype(int)
            if offsets.size != end - start + 1:
                raise AnnotationError(path, None, f"{field} has {offsets.size} values for the "
                                      f"{end - start + 1} frames of the segment")
            meta[key] = tuple(offsets.tolist())
    return meta


def count_cycles(bounds, low: int, high: int) -> int:
    """Complete cycles ``[b_i, b_{i+1}]`` inside the window ``[low, high]``."""
    b = np.asarray(bounds)
    return int(np.sum((b[:-1] >= low) & (b[1:] <= high))) if b.size > 1 else 0


class UCFRepDataset(VideoClipDataset):
    """Clips with repetition counts (task ``counting``)."""

    def __init__(self, annotations: Annotations, **options):
        super().__init__(annotations, **options)
        if self.num_views != 1:
            raise ValueError("ucfrep samples one window per video: num_views must be 1")

    def window(self, record: VideoRecord, rng: np.random.Generator) -> tuple[int, int]:
        bounds = record.meta["bounds"]
        if self.mode == "train" and len(bounds) > 1:
            first = int(rng.integers(0, len(bounds) - 1))
            last = int(rng.integers(first + 1, len(bounds)))
            return bounds[first], bounds[last]
        return record.meta["start"], record.meta["end"]

    def clip_indices(self, record, info, rng):
        low, high = self.window(record, rng)
        high = min(high, info.num_frames - 1)
        if high < low:
            raise sampling.ClipTooShortError(info.num_frames, low + 1)
        return [sampling.window_positions(low, high, self.num_frames)]

    def target(self, record, info, views):
        count = count_cycles(record.meta["bounds"], int(views[0][0]), int(views[0][-1]))
        return {"label": float(count), "count": float(count), "video_count": float(record.label)}


def load(root: str, split: str, video_ext: str = "avi", frames_fps: float = 25.0) -> Annotations:
    name = official_split("ucfrep", split, SPLITS)
    annotation_dir = os.path.join(root, "annotations", name)
    if not os.path.isdir(annotation_dir):
        raise FileNotFoundError(f"ucfrep: annotation folder not found: {annotation_dir}")
    files = sorted(f for f in os.listdir(annotation_dir) if f.endswith(".mat"))
    records = []
    for file in files:
        video = file[:-4]
        meta = read_annotation(os.path.join(annotation_dir, file))
        path = os.path.join(root, "videos", class_of(video), f"{video}.{video_ext.lstrip('.')}")
        frames = os.path.join(root, "imgs", name, class_of(video), video)
        if not os.path.exists(path) and os.path.isdir(frames):
            path, meta["fps"] = frames, frames_fps
        records.append(VideoRecord(path, max(len(meta["bounds"]) - 1, 0), meta=meta))
    return Annotations(
        records,
        ["count"],
        task="counting",
        sources=[os.path.join(annotation_dir, f) for f in files],
        dataset_cls=UCFRepDataset,
    )
