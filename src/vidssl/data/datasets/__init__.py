"""Dataset adapters, one file per dataset, each reading its official annotation format.

``ADAPTERS`` maps a ``build_dataset`` name to the function that parses a split into
:class:`~vidssl.data.datasets.base.Annotations` and the adapter-specific options it takes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from vidssl.data.datasets import (
    ava,
    charades,
    diving48,
    epic100,
    finegym,
    hmdb51,
    kinetics400,
    ntu60,
    ssv2,
    ucf24,
    ucf101,
    ucfrep,
    video_folder,
    video_list,
)
from vidssl.data.datasets.base import AnnotationError, Annotations, VideoClipDataset, VideoRecord


@dataclass(frozen=True)
class Adapter:
    load: Callable[..., Annotations]  # load(root, split, **options)
    options: tuple[str, ...]


ADAPTERS: dict[str, Adapter] = {
    "ucf101": Adapter(ucf101.load, ucf101.OPTIONS),
    "hmdb51": Adapter(hmdb51.load, hmdb51.OPTIONS),
    "kinetics400": Adapter(kinetics400.load, kinetics400.OPTIONS),
    "ssv2": Adapter(ssv2.load, ssv2.OPTIONS),
    **{
        name: Adapter(functools.partial(finegym.load, variant=name), finegym.OPTIONS)
        for name in finegym.VARIANTS
    },
    "ntu60": Adapter(ntu60.load, ntu60.OPTIONS),
    "epic100_verbs": Adapter(epic100.load, epic100.OPTIONS),
    "charades": Adapter(charades.load, charades.OPTIONS),
    "ucfrep": Adapter(ucfrep.load, ucfrep.OPTIONS),
    "diving48": Adapter(diving48.load, diving48.OPTIONS),
    "ava": Adapter(ava.load, ava.OPTIONS),
    "ucf24": Adapter(ucf24.load, ucf24.OPTIONS),
    "video_list": Adapter(video_list.load, video_list.OPTIONS),
    "video_folder": Adapter(video_folder.load, video_folder.OPTIONS),
}

# How each dataset's official loader fills a clip longer than the video (``short_videos``
# default of ``build_dataset``): SEVERE's action_recognition loaders decode the whole short
# video and loop its frames (``preprocessing.py``, ``pad_missing=True``); the PySlowFast
# loaders (Charades, EPIC-100) clamp frame indices to the last frame. Datasets not listed
# replace a short video with another (``VideoClipDataset``'s default).
SHORT_VIDEOS: dict[str, str] = {
    **dict.fromkeys(
        ("ucf101", "hmdb51", "kinetics400", "ssv2", "ntu60", "diving48", *finegym.VARIANTS),
        "loop",
    ),
    "charades": "last",
    "epic100_verbs": "last",
}

__all__ = [
    "ADAPTERS",
    "SHORT_VIDEOS",
    "Adapter",
    "AnnotationError",
    "Annotations",
    "VideoClipDataset",
    "VideoRecord",
]
