"""FineGym (Shao et al. 2020) Gym99 / Gym288 and SEVERE's action subsets.

Layout (``root``)::

    annotations/gym99_{train,val}.txt     "<ytid>_E_<s>_<e>_A_<s>_<e>.<ext> <label>"
    annotations/gym288_{train,val}.txt
    annotations/gym{99,288}_categories.txt  optional, "Clabel: 0; set: 1; Glabel: 1; <name>"
    videos/<name>                         trimmed sub-action clips, one flat folder

SEVERE's action subsets keep a Gym99 label range and re-index it from 0 (SEVERE §3):
``gym_vault`` 0-5, ``gym_floor`` 6-40, ``gym_fx_s1`` 6-16, ``gym_ub_s1`` 74-88.
Splits: ``train``, ``val``/``test`` -> val (FineGym has no other test set).
Option: ``video_ext`` (replace the listed extension).
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import (
    official_split,
    parse_int,
    read_lines,
    require_file,
    with_extension,
)

SPLITS = {"train": "train", "val": "val", "test": "val"}
OPTIONS = ("video_ext",)
NUM_CLASSES = {"gym99": 99, "gym288": 288}
# name -> (label file family, first label, last label) in Gym99 labels
VARIANTS = {
    "gym99": ("gym99", 0, 98),
    "gym288": ("gym288", 0, 287),
    "gym_vault": ("gym99", 0, 5),
    "gym_floor": ("gym99", 6, 40),
    "gym_fx_s1": ("gym99", 6, 16),
    "gym_ub_s1": ("gym99", 74, 88),
}


def read_categories(path: str, num_classes: int) -> list[str]:
    """Class names from ``gymNN_categories.txt``; ``class_<i>`` when the file is absent."""
    if not os.path.isfile(path):
        return [f"class_{i}" for i in range(num_classes)]
    names = [f"class_{i}" for i in range(num_classes)]
    with open(require_file(path), encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(";", 3)]
            if len(parts) != 4 or not parts[0].startswith("Clabel:"):
                raise AnnotationError(path, number, "expected 'Clabel: N; set: S; Glabel: G; name'")
            label = parse_int(parts[0].split(":", 1)[1].strip(), path, number, "Clabel")
            if not 0 <= label < num_classes:
                raise AnnotationError(path, number, f"Clabel {label} outside 0..{num_classes - 1}")
            names[label] = parts[3]
    return names


def load(
    root: str, split: str, variant: str = "gym99", video_ext: str | None = None
) -> Annotations:
    family, low, high = VARIANTS[variant]
    annotation_dir = os.path.join(root, "annotations")
    split_file = os.path.join(
        annotation_dir, f"{family}_{official_split(variant, split, SPLITS)}.txt"
    )
    records = []
    for number, fields in read_lines(split_file):
        if len(fields) != 2:
            raise AnnotationError(
                split_file, number, f"expected '<clip> <label>', got {' '.join(fields)!r}"
            )
        label = parse_int(fields[1], split_file, number, "label")
        if not 0 <= label < NUM_CLASSES[family]:
            raise AnnotationError(
                split_file, number, f"label {label} outside 0..{NUM_CLASSES[family] - 1}"
            )
        if low <= label <= high:
            path = os.path.join(root, "videos", with_extension(fields[0], video_ext))
            records.append(VideoRecord(path, label - low))
    names = read_categories(
        os.path.join(annotation_dir, f"{family}_categories.txt"), NUM_CLASSES[family]
    )
    return Annotations(records, names[low : high + 1], sources=[split_file])
