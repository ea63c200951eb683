"""A generic class-folder dataset: ``<split>/<class>/<file>``.

Classes are the sorted sub-folders of ``<root>/train`` when it exists (so every split
shares one class order), else of the split's folder. Files are the videos with a known
extension (``video_ext`` restricts it to one), sorted. Any split name is accepted;
``val`` falls back to ``validation/`` and vice versa.
"""

from __future__ import annotations

import os

from vidssl.data.datasets.base import Annotations, VideoRecord
from vidssl.data.datasets.formats import VIDEO_EXTENSIONS
from vidssl.data.datasets.video_list import split_file

OPTIONS = ("video_ext",)


def _class_dirs(folder: str) -> list[str]:
    return sorted(
        d
        for d in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, d)) and not d.startswith(".")
    )


def load(root: str, split: str, video_ext: str | None = None) -> Annotations:
    folder = split_file(root, split, "")
    train = os.path.join(root, "train")
    class_names = _class_dirs(train if os.path.isdir(train) else folder)
    unknown = sorted(set(_class_dirs(folder)) - set(class_names))
    if unknown:
        raise ValueError(
            f"video_folder: {folder} has class folders missing from {train}: {unknown[:5]}"
        )
    extensions = ("." + video_ext.lstrip(".").lower(),) if video_ext else VIDEO_EXTENSIONS
    records = []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(folder, name)
        if not os.path.isdir(class_dir):
            continue
        for file in sorted(os.listdir(class_dir)):
            if os.path.splitext(file)[1].lower() in extensions and not file.startswith("."):
                records.append(VideoRecord(os.path.join(class_dir, file), label))
    if not records:
        raise FileNotFoundError(
            f"video_folder: no videos with extensions {extensions} under {folder}/<class>/"
        )
    return Annotations(records, class_names, sources=[folder])
