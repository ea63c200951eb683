"""Kinetics-400 (Kay et al. 2017): the official CSVs or "path label" lists.

Layout (``root``), either::

    <split>.csv        header "label,youtube_id,time_start,time_end,split"
    <split>/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4

or::

    <split>.txt        "relative/path label" (or "relative/path num_frames label")

with ``<split>`` one of ``train``, ``val``, ``test``; ``test`` falls back to ``val``
when no test annotations exist (the usual K400 protocol). CSV classes are the sorted
labels of ``train.csv`` (of the split itself when absent); list labels are integers.
Option: ``video_ext`` (default ``mp4``, CSV layout only).
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import (
    canonical_split,
    official_split,
    parse_float,
    parse_int,
    read_csv,
    read_lines,
)

SPLITS = {"train": "train", "val": "val", "test": "test"}
OPTIONS = ("video_ext",)
CSV_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def _annotation_file(root: str, split: str) -> str | None:
    for ext in (".csv", ".txt"):
        path = os.path.join(root, split + ext)
        if os.path.isfile(path):
            return path
    return None


def _csv_labels(path: str) -> list[str]:
    return sorted({row["label"] for _, row in read_csv(path, CSV_COLUMNS)})


def _read_csv(
    path: str, root: str, split: str, class_names: list[str], video_ext: str
) -> list[VideoRecord]:
    lookup = {name: i for i, name in enumerate(class_names)}
    records = []
    for number, row in read_csv(path, CSV_COLUMNS):
        label = row["label"]
        if label not in lookup:
            raise AnnotationError(path, number, f"label {label!r} is not a training class")
        start = int(parse_float(row["time_start"], path, number, "time_start"))
        end = int(parse_float(row["time_end"], path, number, "time_end"))
        if not row["youtube_id"]:
            raise AnnotationError(path, number, "empty youtube_id")
        name = f"{row['youtube_id']}_{start:06d}_{end:06d}.{video_ext.lstrip('.')}"
        records.append(VideoRecord(os.path.join(root, split, label, name), lookup[label]))
    return records


def _read_list(path: str, root: str) -> list[VideoRecord]:
    records = []
    for number, fields in read_lines(path):
        if len(fields) not in (2, 3):
            raise AnnotationError(
                path, number, f"expected 'path [num_frames] label', got {' '.join(fields)!r}"
            )
        label = parse_int(fields[-1], path, number, "label")
        if label < 0:
            raise AnnotationError(path, number, f"negative label {label}")
        records.append(VideoRecord(os.path.join(root, fields[0]), label))
    return records


def load(root: str, split: str, video_ext: str = "mp4") -> Annotations:
    name = official_split("kinetics400", split, SPLITS)
    path = _annotation_file(root, name)
    if path is None and canonical_split(split) == "test":
        name, path = "val", _annotation_file(root, "val")
    if path is None:
        raise FileNotFoundError(f"kinetics400: no {name}.csv or {name}.txt in {root}")
    train_file = _annotation_file(root, "train")
    sources = [path] if train_file in (None, path) else [train_file, path]
    if path.endswith(".csv"):
        use = train_file if train_file and train_file.endswith(".csv") else path
        class_names = _csv_labels(use)
        records = _read_csv(path, root, name, class_names, video_ext)
    else:
        records = _read_list(path, root)
        labels = [r.label for r in records]
        if train_file and train_file.endswith(".txt") and train_file != path:
            labels += [r.label for r in _read_list(train_file, root)]
        class_names = [str(i) for i in range(max(labels, default=-1) + 1)]
    return Annotations(records, class_names, sources=sources)
