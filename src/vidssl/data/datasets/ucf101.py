"""UCF101 (Soomro et al. 2012), official split lists.

Layout (``root``)::

    ucfTrainTestlist/classInd.txt        "1 ApplyEyeMakeup" (1-based)
    ucfTrainTestlist/trainlist0{1,2,3}.txt  "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ucfTrainTestlist/testlist0{1,2,3}.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    UCF-101/<Class>/<file>.avi

The label comes from the class folder of each line (the test lists have no label).
Splits: ``train`` -> trainlist, ``val``/``test`` -> testlist. Options: ``fold`` (1-3),
``video_ext`` (replace the listed extension, for re-encoded copies).
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import (
    official_split,
    parse_int,
    read_class_index,
    read_lines,
    with_extension,
)

SPLITS = {"train": "trainlist", "val": "testlist", "test": "testlist"}
OPTIONS = ("fold", "video_ext")
LIST_DIR = "ucfTrainTestlist"
VIDEO_DIR = "UCF-101"


def read_split_list(
    path: str, class_names: list[str], video_root: str, video_ext: str | None
) -> list[VideoRecord]:
    """Records of a ``Class/file [label]`` list; labels from the class folder."""
    lookup = {name: i for i, name in enumerate(class_names)}
    records = []
    for number, fields in read_lines(path):
        if len(fields) > 2 or "/" not in fields[0]:
            raise AnnotationError(
                path, number, f"expected '<Class>/<file> [label]', got {' '.join(fields)!r}"
            )
        folder = fields[0].split("/")[0]
        if folder not in lookup:
            raise AnnotationError(path, number, f"unknown class {folder!r}")
        if len(fields) == 2:
            listed = parse_int(fields[1], path, number, "label") - 1
            if listed != lookup[folder]:
                raise AnnotationError(
                    path, number, f"label {fields[1]} disagrees with class folder {folder!r}"
                )
        name = with_extension(fields[0], video_ext)
        records.append(VideoRecord(os.path.join(video_root, name), lookup[folder]))
    return records


def load(root: str, split: str, fold: int = 1, video_ext: str | None = None) -> Annotations:
    if fold not in (1, 2, 3):
        raise ValueError(f"ucf101: fold must be 1, 2 or 3, got {fold}")
    list_dir = os.path.join(root, LIST_DIR)
    class_file = os.path.join(list_dir, "classInd.txt")
    class_names = read_class_index(class_file)
    split_file = os.path.join(list_dir, f"{official_split('ucf101', split, SPLITS)}{fold:02d}.txt")
    records = read_split_list(split_file, class_names, os.path.join(root, VIDEO_DIR), video_ext)
    return Annotations(records, class_names, sources=[class_file, split_file])
