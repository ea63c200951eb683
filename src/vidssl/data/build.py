"""``build_dataset``: one entry point from a dataset name to a map-style clip dataset."""

from __future__ import annotations

import inspect
import logging
import os

from vidssl.data.datasets import ADAPTERS, SHORT_VIDEOS, Annotations, VideoClipDataset
from vidssl.data.metadata import DatasetIndex
from vidssl.data.subsets import SEVERE_SUBSET_SEED, balanced_subset, random_subset

BUILD_OPTIONS = ("cache_dir", "index_workers", "subset_seed")

logger = logging.getLogger("vidssl.data")


def load_annotations(name: str, root: str | os.PathLike, split: str, **options) -> Annotations:
    """Parse the official annotations of ``name`` at ``root`` for ``split`` (no decoding)."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(ADAPTERS)}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{name}: dataset root {root!r} is not a directory")
    return ADAPTERS[name].load(root, split, **options)


def _dataset_options(cls: type) -> set[str]:
    names = set()
    for klass in cls.__mro__:
        if issubclass(klass, VideoClipDataset):
            params = inspect.signature(klass.__init__).parameters.values()
            names |= {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    return names - {"index", "name", "split"}


def build_dataset(
    name: str, root: str | os.PathLike, split: str, num_samples: int | None = None, **opts
) -> VideoClipDataset:
    """A map-style dataset of clips from the official files of dataset ``name``.

    ``split`` is ``train``, ``val``/``validation`` or ``test``, mapped to each dataset's
    own split (e.g. UCF101 test list, SSv2 validation JSON, FineGym val).
    ``num_samples`` keeps a class-balanced subset of ``ceil(num_samples / num_classes)``
    videos per class (random for multi-label and counting data), seeded by
    ``subset_seed``; the default (99999) gives SEVERE's own subset
    (:func:`~vidssl.data.subsets.balanced_subset`).

    As SEVERE's loaders do, listed videos that do not exist are dropped before the subset is
    drawn, and videos whose metadata cannot be read are dropped after indexing, each with a
    warning (count and an example); ``vidssl data check`` lists them (keyframe detection
    data excepted, whose adapters handle missing frames). ``short_videos``
    defaults to the official loader's padding (``SHORT_VIDEOS``: ``loop`` for SEVERE's
    action-recognition datasets, ``last`` for Charades and EPIC-100).

    Options: those of :class:`~vidssl.data.datasets.base.VideoClipDataset` (``num_frames``,
    ``frame_stride``, ``stride_jitter``, ``target_fps``, ``size``, ``decode_size``, ``mode``,
    ``num_views``, ``num_crops``, ``sampling``, ``short_videos``, ``backend``,
    ``transform``, ``seed``, ``max_attempts``), the adapter's own (e.g. ``fold``,
    ``video_ext``, ``num_classes``, ``clip_labels``), and ``cache_dir`` (where the
    metadata index is kept), ``index_workers``, ``subset_seed``.
    """
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(ADAPTERS)}")
    adapter_opts = {k: opts.pop(k) for k in ADAPTERS[name].options if k in opts}
    build_opts = {k: opts.pop(k) for k in BUILD_OPTIONS if k in opts}
    annotations = load_annotations(name, root, split, **adapter_opts)
    cls = annotations.dataset_cls or VideoClipDataset
    unknown = sorted(set(opts) - _dataset_options(cls))
    if unknown:
        valid = sorted(_dataset_options(cls) | set(ADAPTERS[name].options) | set(BUILD_OPTIONS))
        raise TypeError(f"build_dataset({name!r}): unknown option(s) {unknown}; valid: {valid}")
    if name in SHORT_VIDEOS:
        opts.setdefault("short_videos", SHORT_VIDEOS[name])
    # keyframe detection data (AVA, UCF101-24) keep their records: a missing video is an error
    screen = annotations.task != "detection"
    paths = dict.fromkeys(r.path for r in annotations.records)
    missing = {path for path in paths if screen and not os.path.exists(path)}
    if missing and len(missing) == len(paths):
        raise FileNotFoundError(
            f"{name}/{split}: none of the {len(paths)} listed videos exists (e.g. "
            f"{next(iter(paths))}); check the dataset layout and video_ext"
        )
    annotations.records = drop_records(annotations.records, missing, f"{name}/{split}", "missing")
    if num_samples:
        seed = build_opts.get("subset_seed", SEVERE_SUBSET_SEED)
        targets = [r.label for r in annotations.records]
        if annotations.task == "classification":
            keep = balanced_subset(targets, num_samples, seed)
        else:
            keep = random_subset(len(targets), num_samples, seed)
        annotations.records = [annotations.records[i] for i in keep]
    index = DatasetIndex.scan(
        (r.path for r in annotations.records),
        os.fspath(root),
        cache_dir=build_opts.get("cache_dir"),
        backend=opts.get("backend", "pyav"),
        workers=build_opts.get("index_workers", 4),
    )
    unreadable = set(index.errors) if screen else set()
    annotations.records = drop_records(
        annotations.records, unreadable, f"{name}/{split}", "unreadable"
    )
    options = {**annotations.dataset_options, **opts}
    return cls(annotations, index=index, name=name, split=split, **options)


def drop_records(records: list, bad_paths: set[str], where: str, kind: str) -> list:
    """``records`` without those of ``bad_paths``, with one warning naming how many videos
    were dropped and an example."""
    if not bad_paths:
        return records
    kept = [r for r in records if r.path not in bad_paths]
    logger.warning(
        "%s: dropped %d %s videos (%d of %d samples), e.g. %s",
        where, len(bad_paths), kind, len(records) - len(kept), len(records), min(bad_paths),
    )
    return kept
