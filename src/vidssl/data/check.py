"""``check_dataset``: validate a dataset on disk before a long run.

For each split: parse the official annotations, count videos per class, and open every
video (metadata, then decode its last frame, which catches truncated files). The report
lists missing and undecodable files by name (``build_dataset`` drops missing files and files
whose metadata cannot be read, as SEVERE's loaders drop missing ones); ``ok`` is False when
any split fails to parse, is empty, or has a missing or undecodable video.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from vidssl.data.build import load_annotations
from vidssl.data.datasets import Annotations
from vidssl.io import VideoReadError, probe, read_clip

DEFAULT_SPLITS = ("train", "test")
SHOWN_PER_KIND = 20


def video_problem(path: str, backend: str = "pyav") -> tuple[str, str] | None:
    """``None`` for a readable video, else ``("missing" | "undecodable", reason)``."""
    if not os.path.exists(path):
        return "missing", "file does not exist"
    try:
        info = probe(path, backend)
        read_clip(path, [info.num_frames - 1], backend=backend)
    except VideoReadError as exc:
        return "undecodable", exc.reason
    return None


def _class_counts(annotations: Annotations) -> list[str]:
    names, records = annotations.class_names, annotations.records
    if annotations.task == "counting":
        counts = Counter(int(r.label) for r in records)
        return [
            "  videos per repetition count: "
            + ", ".join(f"{c}: {n}" for c, n in sorted(counts.items()))
        ]
    if annotations.task == "multilabel":
        counts = Counter(c for r in records for c in r.label)
        title = "  videos per class (multi-label)"
    elif annotations.task == "detection":
        counts = Counter(c for r in records for box in r.meta["labels"] for c in box)
        title = "  boxes per class"
        if not counts:  # AVA's test keyframes: detector boxes, scored against the GT CSV
            boxes = sum(len(r.meta["boxes"]) for r in records)
            return [f"  {boxes} unlabelled (detected) boxes on {len(records)} keyframes"]
    else:
        counts = Counter(r.label for r in records)
        title = "  videos per class"
    if not names:
        return [f"  unlabelled videos: {len(records)}"]
    empty = [name for i, name in enumerate(names) if counts.get(i, 0) == 0]
    values = [counts.get(i, 0) for i in range(len(names))]
    summary = f"{title}: min {min(values)}, max {max(values)}, mean {sum(values) / len(values):.1f}"
    lines = [summary]
    lines += [
        "    " + ", ".join(f"{names[i]}: {values[i]}" for i in range(s, min(s + 6, len(names))))
        for s in range(0, len(names), 6)
    ]
    if empty:
        lines.append(
            f"  classes without videos ({len(empty)}): {', '.join(empty[:10])}"
            + (" ..." if len(empty) > 10 else "")
        )
    return lines


def check_split(
    name: str, root: str, split: str, backend: str = "pyav", workers: int = 4, **options
) -> tuple[bool, list[str]]:
    """``(ok, report lines)`` for one split."""
    try:
        annotations = load_annotations(name, root, split, **options)
    except (OSError, ValueError) as exc:
        return False, [f"[{split}] FAILED to read annotations: {exc}"]
    paths = list(dict.fromkeys(r.path for r in annotations.records))
    sources = ", ".join(os.path.relpath(s, root) for s in annotations.sources[:3])
    if len(annotations.sources) > 3:
        sources += f", ... ({len(annotations.sources)} files)"
    lines = [
        (
            f"[{split}] {len(annotations.records)} samples, {len(paths)} videos, "
            f"{len(annotations.class_names)} classes, task {annotations.task} (from {sources})"
        )
    ]
    lines += _class_counts(annotations)
    skipped = annotations.dataset_options.get("skipped")
    if skipped:  # detection adapters count what they clipped, skipped or added
        lines.append("  " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in skipped.items()))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = dict(zip(paths, pool.map(lambda p: video_problem(p, backend), paths)))
    ok = bool(annotations.records)
    if not ok:
        lines.append("  no samples in this split")
    for kind in ("missing", "undecodable"):
        bad = [(p, problem[1]) for p, problem in problems.items() if problem and problem[0] == kind]
        if bad:
            ok = False
            note = " (dropped when the dataset is built)" if kind == "missing" else ""
            lines.append(f"  {kind} videos: {len(bad)} of {len(paths)}{note}")
            lines += [f"    {path}: {why}" for path, why in bad[:SHOWN_PER_KIND]]
            if len(bad) > SHOWN_PER_KIND:
                lines.append(f"    ... and {len(bad) - SHOWN_PER_KIND} more")
    if ok:
        lines.append(f"  all {len(paths)} videos readable")
    return ok, lines


def check_dataset(
    name: str,
    root: str | os.PathLike,
    splits: Sequence[str] | None = None,
    backend: str = "pyav",
    workers: int = 4,
    **options,
) -> tuple[bool, str]:
    """Validate dataset ``name`` at ``root``: ``(ok, human-readable report)``.

    ``splits`` defaults to ``train`` and ``test``; ``options`` are adapter options
    (e.g. ``fold``, ``video_ext``).
    """
    root = os.fspath(root)
    ok, lines = True, []
    for split in splits or DEFAULT_SPLITS:
        split_ok, split_lines = check_split(name, root, split, backend, workers, **options)
        ok &= split_ok
        lines += split_lines
    header = f"{name} at {root}: {'OK' if ok else 'FAILED'}"
    return ok, "\n".join([header, *lines])
