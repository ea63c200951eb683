"""HMDB51 (Kuehne et al. 2011), official 70/30 splits.

Layout (``root``)::

    testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   "<video>.avi <0|1|2>"
    videos/<class>/<video>.avi

In a split file ``1`` marks a training video, ``2`` a test video, ``0`` an unused one.
Classes are the sorted class names of the split files. Splits: ``train`` -> 1,
``val``/``test`` -> 2. Options: ``fold`` (1-3), ``video_ext``.
"""

from __future__ import annotations

import glob
import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import official_split, read_lines, with_extension

SPLITS = {"train": "1", "val": "2", "test": "2"}
OPTIONS = ("fold", "video_ext")
SPLIT_DIR = "testTrainMulti_7030_splits"
VIDEO_DIR = "videos"


def load(root: str, split: str, fold: int = 1, video_ext: str | None = None) -> Annotations:
    if fold not in (1, 2, 3):
        raise ValueError(f"hmdb51: fold must be 1, 2 or 3, got {fold}")
    wanted = official_split("hmdb51", split, SPLITS)
    suffix = f"_test_split{fold}.txt"
    split_files = sorted(
        glob.glob(os.path.join(glob.escape(os.path.join(root, SPLIT_DIR)), "*" + suffix))
    )
    if not split_files:
        raise FileNotFoundError(f"hmdb51: no '*{suffix}' files in {os.path.join(root, SPLIT_DIR)}")
    class_names = [os.path.basename(f)[: -len(suffix)] for f in split_files]
    records = []
    for label, (name, path) in enumerate(zip(class_names, split_files)):
        for number, fields in read_lines(path):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise AnnotationError(
                    path, number, f"expected '<video> <0|1|2>', got {' '.join(fields)!r}"
                )
            if fields[1] == wanted:
                video = os.path.join(root, VIDEO_DIR, name, with_extension(fields[0], video_ext))
                records.append(VideoRecord(video, label))
    return Annotations(records, class_names, sources=split_files)
