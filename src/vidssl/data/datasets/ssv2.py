"""Something-Something v2 (Goyal et al. 2017), official JSON annotations.

Layout (``root``)::

    labels/something-something-v2-labels.json      {"<template without brackets>": "<index>"}
    labels/something-something-v2-{train,validation}.json
        [{"id": "78687", "label": "...", "template": "Holding [something] next to
          [something]", "placeholders": [...]}, ...]
    20bn-something-something-v2/<id>.<video_ext>     (webm officially)

The class of an entry is the labels entry of its template with the brackets removed.
Splits: ``train``, ``val``/``test`` -> validation (SEVERE tests on it). Option:
``video_ext``; by default ``webm``, or the extension of the first listed video when only
a re-encoded copy (e.g. ``mp4``) exists.
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import VIDEO_EXTENSIONS, official_split, read_json

SPLITS = {"train": "train", "val": "validation", "test": "validation"}
OPTIONS = ("video_ext",)
LABEL_DIR = "labels"
VIDEO_DIR = "20bn-something-something-v2"
PREFIX = "something-something-v2-"


def read_labels(path: str) -> list[str]:
    """Class names ordered by index from ``labels.json``."""
    table = read_json(path)
    if not isinstance(table, dict):
        raise AnnotationError(path, None, "expected an object {template: index}")
    by_index = {}
    for template, index in table.items():
        try:
            by_index[int(index)] = template
        except (TypeError, ValueError):
            raise AnnotationError(
                path, None, f"index of {template!r} is not an integer: {index!r}"
            ) from None
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(path, None, "class indices are not 0..N-1")
    return [by_index[i] for i in range(len(by_index))]


def detect_extension(video_dir: str, video_id: str) -> str:
    """The extension the videos were stored with: ``webm`` (official) unless only a
    re-encoded copy of the first video exists."""
    for ext in ("webm", *(e.lstrip(".") for e in VIDEO_EXTENSIONS)):
        if os.path.exists(os.path.join(video_dir, f"{video_id}.{ext}")):
            return ext
    return "webm"


def load(root: str, split: str, video_ext: str | None = None) -> Annotations:
    label_file = os.path.join(root, LABEL_DIR, PREFIX + "labels.json")
    class_names = read_labels(label_file)
    lookup = {name: i for i, name in enumerate(class_names)}
    split_file = os.path.join(
        root, LABEL_DIR, f"{PREFIX}{official_split('ssv2', split, SPLITS)}.json"
    )
    entries = read_json(split_file)
    if not isinstance(entries, list):
        raise AnnotationError(split_file, None, "expected a list of entries")
    records = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise AnnotationError(split_file, None, f"entry #{number} lacks 'id' or 'template'")
        template = str(entry["template"]).replace("[", "").replace("]", "")
        if template not in lookup:
            raise AnnotationError(
                split_file,
                None,
                f"entry #{number} (id {entry['id']}): template {template!r} not in labels",
            )
        if video_ext is None:
            video_ext = detect_extension(os.path.join(root, VIDEO_DIR), str(entry["id"]))
        path = os.path.join(root, VIDEO_DIR, f"{entry['id']}.{video_ext.lstrip('.')}")
        records.append(VideoRecord(path, lookup[template]))
    return Annotations(records, class_names, sources=[label_file, split_file])
