"""NTU RGB+D 60, SEVERE's cross-subject lists (UCF101-style).

Layout (``root``)::

    ntu_60_cross_subject_TrainTestlist/classInd.txt     "1 drink_water" (1-based)
    ntu_60_cross_subject_TrainTestlist/trainlist01.txt
        "drink_water/S001C001P001R001A001_rgb.avi [label]"
    ntu_60_cross_subject_TrainTestlist/testlist01.txt
    videos/<class>/<file>

Labels come from the class folder. Splits: ``train``, ``val``/``test`` -> testlist01.
Option: ``video_ext``.
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import Annotations
from vidssl.data.datasets.formats import official_split, read_class_index
from vidssl.data.datasets.ucf101 import read_split_list

SPLITS = {"train": "trainlist01", "val": "testlist01", "test": "testlist01"}
OPTIONS = ("video_ext",)
LIST_DIR = "ntu_60_cross_subject_TrainTestlist"
VIDEO_DIR = "videos"


def load(root: str, split: str, video_ext: str | None = None) -> Annotations:
    list_dir = os.path.join(root, LIST_DIR)
    class_file = os.path.join(list_dir, "classInd.txt")
    class_names = read_class_index(class_file)
    split_file = os.path.join(list_dir, official_split("ntu60", split, SPLITS) + ".txt")
    records = read_split_list(split_file, class_names, os.path.join(root, VIDEO_DIR), video_ext)
    return Annotations(records, class_names, sources=[class_file, split_file])
