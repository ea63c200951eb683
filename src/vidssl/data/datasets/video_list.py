"""A generic list of videos: ``<split>.txt`` with lines ``relative/path [label]``.

Layout (``root``)::

    <split>.txt      "clips/a.mp4 3" or, unlabelled (e.g. for pretraining), "clips/a.mp4"
    classes.txt      optional, one class name per line (line i names label i)

Paths are relative to ``root``. Either every line has an integer label or none does
(then ``label`` is -1 and there are no classes). Any split name is accepted;
``val`` falls back to ``validation.txt`` and vice versa.
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import canonical_split, parse_int, read_lines

OPTIONS = ()


def split_file(root: str, split: str, ext: str) -> str:
    """``<root>/<split><ext>``, trying both ``val`` and ``validation``."""
    names = [split, canonical_split(split)]
    if canonical_split(split) == "val":
        names += ["val", "validation"]
    for name in names:
        path = os.path.join(root, name + ext)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {split}{ext} in {root}")


def load(root: str, split: str) -> Annotations:
    path = split_file(root, split, ".txt")
    records, labelled = [], None
    for number, fields in read_lines(path):
        if len(fields) > 2:
            raise AnnotationError(
                path, number, f"expected 'path [label]', got {' '.join(fields)!r}"
            )
        if labelled is None:
            labelled = len(fields) == 2
        elif labelled != (len(fields) == 2):
            raise AnnotationError(path, number, "some lines have a label and others do not")
        label = parse_int(fields[1], path, number, "label") if labelled else -1
        if labelled and label < 0:
            raise AnnotationError(path, number, f"negative label {label}")
        records.append(VideoRecord(os.path.join(root, fields[0]), label))
    classes_file = os.path.join(root, "classes.txt")
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as handle:
            names = [line.strip() for line in handle if line.strip()]
    else:
        names = [str(i) for i in range(max((r.label for r in records), default=-1) + 1)]
    highest = max((r.label for r in records), default=-1)
    if highest >= len(names):
        raise AnnotationError(
            path, None, f"label {highest} >= {len(names)} classes in {classes_file}"
        )
    return Annotations(records, names, sources=[path])
