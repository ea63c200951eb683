"""Diving48 (Li et al. 2018), V2 annotations.

Layout (``root``)::

    Diving48_V2_{train,test}.json   [{"vid_name": "-mmq0PT-u8k_00155", "label": 0,
                                      "start_frame": 0, "end_frame": 184}, ...]
    Diving48_vocab.json             optional: per class [takeoff, somersault, twist, flight]
    rgb/<vid_name>.mp4

The ``rgb/`` videos are already trimmed, so ``start_frame``/``end_frame`` (positions in
the untrimmed source) are not applied. Classes: the vocabulary when present, else the
largest label + 1 over train and the split. Splits: ``train``, ``val``/``test`` -> test.
Option: ``video_ext``.
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import official_split, read_json

SPLITS = {"train": "train", "val": "test", "test": "test"}
OPTIONS = ("video_ext",)


def _read_split(path: str, root: str, video_ext: str) -> list[VideoRecord]:
    entries = read_json(path)
    if not isinstance(entries, list):
        raise AnnotationError(path, None, "expected a list of entries")
    records = []
    for number, entry in enumerate(entries):
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(label, int) or label < 0 or not entry.get("vid_name"):
            raise AnnotationError(
                path, None, f"entry #{number} needs 'vid_name' and an integer 'label' >= 0"
            )
        video = os.path.join(root, "rgb", f"{entry['vid_name']}.{video_ext.lstrip('.')}")
        records.append(VideoRecord(video, label))
    return records


def load(root: str, split: str, video_ext: str = "mp4") -> Annotations:
    path = os.path.join(root, f"Diving48_V2_{official_split('diving48', split, SPLITS)}.json")
    records = _read_split(path, root, video_ext)
    vocab_file = os.path.join(root, "Diving48_vocab.json")
    if os.path.isfile(vocab_file):
        vocab = read_json(vocab_file)
        names = [", ".join(map(str, v)) if isinstance(v, list) else str(v) for v in vocab]
    else:
        labels = [r.label for r in records]
        train = os.path.join(root, "Diving48_V2_train.json")
        if train != path and os.path.isfile(train):
            labels += [r.label for r in _read_split(train, root, video_ext)]
        names = [str(i) for i in range(max(labels, default=-1) + 1)]
    highest = max((r.label for r in records), default=-1)
    if highest >= len(names):
        raise AnnotationError(path, None, f"label {highest} >= {len(names)} classes")
    return Annotations(records, names, sources=[path])
