"""FineGym (Shao et al. 2020) Gym99 / Gym288 and SEVERE's action subsets.

Layout (``root``)::

    annotations/gym99_{train,val}.txt     "<ytid>_E_<s>_<e>_A_<s>_<e>.<ext> <label>"
    annotations/gym288_{train,val}.txt
    annotations/gym{99,288}_categories.txt  optional, "Clabel: 0; set: 1; Glabel: 1; <name>"
    videos/<name>                         trimmed sub-action clips, one flat folder
                                          (or subactions/, mmaction2's trimming output)

The split list is the first of these that exists (``LIST_NAMES``): SEVERE's renamed copy
``gym99_train.txt`` (names with ``.avi``), mmaction2's ``gym99_train_org.txt``, or FineGym's
own files as distributed, ``gym99_train_element_v1.0.txt`` (the version SEVERE used),
``gym99_train_element_v1.1.txt``, ``gym99_val_element.txt`` (names without extension). A
listed name that is not a file is looked up by its stem in the video folder, so extension-less
names and SEVERE's ``.avi`` names both find clips stored as ``.mp4``.

SEVERE's action subsets keep a Gym99 label range and re-index it from 0 (SEVERE §3):
``gym_vault`` 0-5, ``gym_floor`` 6-40, ``gym_fx_s1`` 6-16, ``gym_ub_s1`` 74-88.
Splits: ``train``, ``val``/``test`` -> val (FineGym has no other test set).
Option: ``video_ext`` (replace the listed extension).
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import (
    VIDEO_EXTENSIONS,
    official_split,
    parse_int,
    read_lines,
    require_file,
    with_extension,
)

SPLITS = {"train": "train", "val": "val", "test": "val"}
LIST_NAMES = (
    "{family}_{split}.txt",  # SEVERE (names end in .avi)
    "{family}_{split}_org.txt",  # mmaction2's download of FineGym's list
    "{family}_{split}_element_v1.0.txt",  # FineGym as distributed
    "{family}_{split}_element_v1.1.txt",
    "{family}_{split}_element.txt",
)
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


def list_file(annotation_dir: str, family: str, split: str) -> str:
    """The split list to read: the first of ``LIST_NAMES`` present in ``annotation_dir``."""
    names = [pattern.format(family=family, split=split) for pattern in LIST_NAMES]
    for name in names:
        if os.path.isfile(os.path.join(annotation_dir, name)):
            return os.path.join(annotation_dir, name)
    raise FileNotFoundError(
        f"annotation file not found: none of {names} in {annotation_dir}"
    )


def video_resolver(root: str, video_ext: str | None):
    """``listed name -> clip path``: the listed name (``video_ext`` replacing its extension),
    or, when that file does not exist, the clip of the same stem in the video folder."""
    video_dir = os.path.join(root, "videos")
    if not os.path.isdir(video_dir) and os.path.isdir(os.path.join(root, "subactions")):
        video_dir = os.path.join(root, "subactions")
    by_stem: dict[str, str] | None = None

    def resolve(name: str) -> str:
        nonlocal by_stem
        stem, ext = os.path.splitext(name)
        if ext.lower() not in VIDEO_EXTENSIONS:
            stem = name  # FineGym's names have no extension (and may contain dots)
        path = os.path.join(video_dir, with_extension(name, video_ext))
        if video_ext or os.path.exists(path):
            return path
        if by_stem is None:
            files = os.listdir(video_dir) if os.path.isdir(video_dir) else []
            by_stem = {os.path.splitext(f)[0]: f for f in sorted(files, reverse=True)}
        return os.path.join(video_dir, by_stem.get(stem, name))

    return resolve


def load(
    root: str, split: str, variant: str = "gym99", video_ext: str | None = None
) -> Annotations:
    family, low, high = VARIANTS[variant]
    annotation_dir = os.path.join(root, "annotations")
    split_file = list_file(annotation_dir, family, official_split(variant, split, SPLITS))
    resolve = video_resolver(root, video_ext)
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
            records.append(VideoRecord(resolve(fields[0]), label - low))
    names = read_categories(
        os.path.join(annotation_dir, f"{family}_categories.txt"), NUM_CLASSES[family]
    )
    return Annotations(records, names[low : high + 1], sources=[split_file])
