"""EPIC-Kitchens-100 (Damen et al. 2022) verb classification on action segments.

Layout (``root``)::

    annotations/EPIC_100_{train,validation}.csv   official columns, at least
        participant_id, video_id, start_frame, stop_frame, verb_class (and verb)
    annotations/EPIC_100_verb_classes.csv         optional: id, key, ... (class names)
    videos/<participant_id>/<video_id>.MP4

``start_frame``/``stop_frame`` are the official 1-based, inclusive frame numbers; the
segment read is source frames ``start_frame - 1 .. stop_frame - 1``. Classes: the verb
classes file when present, else ``num_classes`` (default: inferred as the largest
``verb_class`` + 1 over train and the split), named by the CSV's ``verb`` column.
Splits: ``train``, ``val``/``test`` -> validation. Options: ``video_ext`` (default
``MP4``), ``num_classes``.

Nouns: when the CSV has the official ``noun_class`` column, every sample also carries
``noun`` (the authors train verb and noun heads jointly); ``dataset.num_nouns`` comes from
``EPIC_100_noun_classes.csv`` when present, else the largest ``noun_class`` + 1 over train
and the split.
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoClipDataset, VideoRecord
from vidssl.data.datasets.formats import official_split, parse_int, read_csv

SPLITS = {"train": "train", "val": "validation", "test": "validation"}
OPTIONS = ("video_ext", "num_classes")
COLUMNS = ("participant_id", "video_id", "start_frame", "stop_frame", "verb_class")


def _csv_path(root: str, split: str) -> str:
    return os.path.join(root, "annotations", f"EPIC_100_{split}.csv")


def _read_segments(path: str, root: str, video_ext: str) -> tuple[list[VideoRecord], dict]:
    records, verbs = [], {}
    for number, row in read_csv(path, COLUMNS):
        label = parse_int(row["verb_class"], path, number, "verb_class")
        first = parse_int(row["start_frame"], path, number, "start_frame")
        last = parse_int(row["stop_frame"], path, number, "stop_frame")
        if label < 0 or first < 1 or last < first:
            raise AnnotationError(
                path, number, f"bad segment: verb_class {label}, frames {first}..{last}"
            )
        video = os.path.join(
            root, "videos", row["participant_id"], f"{row['video_id']}.{video_ext.lstrip('.')}"
        )
        meta = {}
        if row.get("noun_class") not in (None, ""):
            meta["noun"] = parse_int(row["noun_class"], path, number, "noun_class")
        records.append(VideoRecord(video, label, start=first - 1, stop=last, meta=meta))
        verbs.setdefault(label, row.get("verb") or f"verb_{label}")
    return records, verbs


class EpicDataset(VideoClipDataset):
    """Verb clips that also return the segment's ``noun`` class (when annotated)."""

    def __init__(self, annotations: Annotations, *, num_nouns: int = 0, **options):
        super().__init__(annotations, **options)
        self.num_nouns = num_nouns

    def target(self, record, info, views):
        if "noun" not in record.meta:
            return {"label": record.label}
        return {"label": record.label, "noun": record.meta["noun"]}


def _num_nouns(root: str, paths: list[str], video_ext: str) -> int:
    """Rows of ``EPIC_100_noun_classes.csv``, else the largest ``noun_class`` + 1 in ``paths``."""
    classes_file = os.path.join(root, "annotations", "EPIC_100_noun_classes.csv")
    if os.path.isfile(classes_file):
        return len(_read_classes(classes_file))
    nouns = [r.meta["noun"] for path in paths if os.path.isfile(path)
             for r in _read_segments(path, root, video_ext)[0] if "noun" in r.meta]
    return max(nouns, default=-1) + 1


def _read_classes(path: str) -> list[str]:
    names = {}
    for number, row in read_csv(path, ("id", "key")):
        names[parse_int(row["id"], path, number, "id")] = row["key"]
    if sorted(names) != list(range(len(names))):
        raise AnnotationError(path, None, "verb ids are not 0..N-1")
    return [names[i] for i in range(len(names))]


def load(
    root: str, split: str, video_ext: str = "MP4", num_classes: int | None = None
) -> Annotations:
    path = _csv_path(root, official_split("epic100_verbs", split, SPLITS))
    records, verbs = _read_segments(path, root, video_ext)
    sources = [path]
    classes_file = os.path.join(root, "annotations", "EPIC_100_verb_classes.csv")
    if os.path.isfile(classes_file):
        class_names = _read_classes(classes_file)
        sources.append(classes_file)
    else:
        train = _csv_path(root, "train")
        if train != path and os.path.isfile(train):
            verbs = {**_read_segments(train, root, video_ext)[1], **verbs}
        class_names = [verbs.get(i, f"verb_{i}") for i in range(max(verbs, default=-1) + 1)]
    if num_classes is not None:
        if num_classes < len(class_names):
            raise ValueError(
                f"epic100_verbs: num_classes={num_classes} but the annotations "
                f"use {len(class_names)} verb classes"
            )
        class_names += [f"verb_{i}" for i in range(len(class_names), num_classes)]
    highest = max((r.label for r in records), default=-1)
    if highest >= len(class_names):
        raise AnnotationError(path, None, f"verb_class {highest} >= {len(class_names)} classes")
    num_nouns = _num_nouns(root, sorted({path, _csv_path(root, "train")}), video_ext)
    return Annotations(records, class_names, sources=sources, dataset_cls=EpicDataset,
                       dataset_options={"num_nouns": num_nouns})
