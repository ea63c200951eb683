"""``build_dataset``: one entry point from a dataset name to a map-style clip dataset."""

from __future__ import annotations

import inspect
import os

from vidssl.data.datasets import ADAPTERS, Annotations, VideoClipDataset
from vidssl.data.metadata import DatasetIndex
from vidssl.data.subsets import SEVERE_SUBSET_SEED, balanced_subset, random_subset

BUILD_OPTIONS = ("cache_dir", "index_workers", "subset_seed")


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
    ``subset_seed`` (SEVERE's 99999).

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
    if num_samples:
        seed = build_opts.get("subset_seed", SEVERE_SUBSET_SEED)
        targets = [r.label for r in annotations.records]
        if annotations.task == "classification":
            keep = balanced_subset(targets, num_samples, seed, len(annotations.class_names) or None)
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
    return cls(
        annotations, index=index, name=name, split=split, **annotations.dataset_options, **opts
    )
