"""Readers for annotation files that report errors by file and line."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping

from vidssl.data.datasets.base import AnnotationError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")


def canonical_split(split: str) -> str:
    """``validation`` -> ``val``; other names lower-cased."""
    split = str(split).lower()
    return "val" if split == "validation" else split


def official_split(dataset: str, split: str, mapping: Mapping[str, str]) -> str:
    """Map ``train``/``val``/``test`` (and ``validation``) to the dataset's own split name."""
    key = canonical_split(split)
    if key not in mapping:
        raise ValueError(f"{dataset}: unknown split {split!r}; choose from {sorted(mapping)}")
    return mapping[key]


def require_file(path: str, what: str = "annotation file") -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def read_lines(path: str) -> Iterator[tuple[int, list[str]]]:
    """``(line_number, whitespace-split fields)`` of every non-blank line."""
    require_file(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if fields:
                yield number, fields


def read_csv(path: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line_number, row)`` of a CSV with a header holding at least ``required`` columns."""
    require_file(path)
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(
                path, 1, f"header lacks column(s) {missing}; found {reader.fieldnames}"
            )
        for row in reader:
            if None in row or any(row[c] is None for c in required):
                raise AnnotationError(path, reader.line_num, "wrong number of columns")
            yield reader.line_num, row


def read_json(path: str):
    require_file(path)
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as exc:
            raise AnnotationError(path, exc.lineno, f"invalid JSON ({exc.msg})") from None


def parse_int(value: str, path: str, line: int, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnnotationError(path, line, f"{what} must be an integer, got {value!r}") from None


def parse_float(value: str, path: str, line: int, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnnotationError(path, line, f"{what} must be a number, got {value!r}") from None


def read_class_index(path: str) -> list[str]:
    """``classInd.txt``: lines ``<1-based index> <ClassName>``, indices 1..N in order."""
    names = []
    for number, fields in read_lines(path):
        if len(fields) != 2:
            raise AnnotationError(
                path, number, f"expected '<index> <class>', got {' '.join(fields)!r}"
            )
        index = parse_int(fields[0], path, number, "class index")
        if index != len(names) + 1:
            raise AnnotationError(
                path, number, f"class index {index} out of order (expected {len(names) + 1})"
            )
        names.append(fields[1])
    if not names:
        raise AnnotationError(path, None, "no classes")
    return names


def with_extension(name: str, video_ext: str | None) -> str:
    """Replace the file extension of ``name`` with ``video_ext`` (``None`` keeps it)."""
    if not video_ext:
        return name
    return os.path.splitext(name)[0] + "." + video_ext.lstrip(".")
