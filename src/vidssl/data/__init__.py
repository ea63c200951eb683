"""Clip sampling, clip transforms, dataset adapters and subsets.

Public entry: :func:`build_dataset` (names in ``DATASETS``); :mod:`vidssl.data.sampling`,
:mod:`vidssl.data.transforms`, :mod:`vidssl.data.subsets`, :func:`check_dataset`.
"""

from vidssl.data.build import build_dataset, load_annotations
from vidssl.data.check import check_dataset
from vidssl.data.datasets import ADAPTERS, AnnotationError, VideoClipDataset
from vidssl.data.subsets import balanced_subset, split_train_val

DATASETS = tuple(ADAPTERS)

__all__ = [
    "DATASETS",
    "AnnotationError",
    "VideoClipDataset",
    "balanced_subset",
    "build_dataset",
    "check_dataset",
    "load_annotations",
    "split_train_val",
]
