"""Annotation files in the official formats of the real datasets (see docs/architecture.md).

Only the formats live here; which videos go where is decided in :mod:`.parts`.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def write_video_list(path: Path, entries: Sequence[str | tuple[str, int]]) -> None:
    """``video_list``: one ``relative/path [label]`` per line."""
    _write_lines(path, [e if isinstance(e, str) else f"{e[0]} {e[1]}" for e in entries])


def write_ucf101(root: Path, classes: Sequence[str], train: Sequence[tuple[str, int]],
                 test: Sequence[str]) -> None:
    """UCF101 split 1: ``classInd.txt`` ("1 Class", 1-based), ``trainlist01.txt`` ("Class/file
    idx"), ``testlist01.txt`` ("Class/file"); paths relative to ``UCF-101/``."""
    lists = root / "ucfTrainTestlist"
    _write_lines(lists / "classInd.txt", [f"{i + 1} {name}" for i, name in enumerate(classes)])
    _write_lines(lists / "trainlist01.txt", [f"{path} {label + 1}" for path, label in train])
    _write_lines(lists / "testlist01.txt", list(test))


def write_gym99(root: Path, splits: dict[str, Sequence[tuple[str, int]]],
                categories: Sequence[tuple[int, int, str]]) -> None:
    """FineGym: ``annotations/gym99_{split}.txt`` lines "<video file> <label>" and
    ``gym99_categories.txt`` lines "Clabel: label; set: s; Glabel: label; (EVENT) name"."""
    for split, rows in splits.items():
        _write_lines(root / "annotations" / f"gym99_{split}.txt", [f"{n} {lab}" for n, lab in rows])
    _write_lines(root / "annotations" / "gym99_categories.txt",
                 [f"Clabel: {label}; set: {family}; Glabel: {label}; {name}"
                  for label, family, name in categories])


def ssv2_class_name(template: str) -> str:
    """SSv2 class key: the template with the placeholder brackets removed."""
    return template.replace("[", "").replace("]", "")


def write_ssv2(root: Path, templates: Sequence[str],
               splits: dict[str, Sequence[tuple[str, int, list[str]]]]) -> None:
    """SSv2: ``labels/something-something-v2-labels.json`` ({class: "idx"}) and
    ``-{train,validation}.json`` lists of {id, label, template, placeholders}."""
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    index = {ssv2_class_name(t): str(i) for i, t in enumerate(templates)}
    (labels / "something-something-v2-labels.json").write_text(json.dumps(index, indent=1))
    for split, rows in splits.items():
        entries = []
        for video_id, label, placeholders in rows:
            filled = templates[label]
            for word in placeholders[: filled.count("[something]")]:
                filled = filled.replace("[something]", word, 1)
            entries.append({"id": video_id, "label": filled.lower(), "template": templates[label],
                            "placeholders": placeholders[: templates[label].count("[something]")]})
        (labels / f"something-something-v2-{split}.json").write_text(json.dumps(entries, indent=1))


_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by vidssl.data.world".ljust(116)


def write_ucfrep_mat(path: Path, num_frames: int, bounds: Sequence[int]) -> None:
    """UCFRep ``.mat``: struct ``label`` with 1-based frame numbers.

    ``duration`` (frames), ``start_frame``/``end_frame`` (first/last frame of the repeated
    segment), ``temporal_bound_num`` (= count + 1) and ``temporal_bound`` (column of cycle
    boundaries; count = len - 1), and per frame of the segment ``offset_next_estimate`` /
    ``offset_pre_estimate``: the number of frames to the same phase in the next / previous
    cycle. A frame at phase ``f`` of cycle ``j`` (length ``L_j``) is ``(1 - f) L_j + f L_{j+1}``
    frames before its twin in cycle ``j + 1`` and ``f L_j + (1 - f) L_{j-1}`` after the one in
    cycle ``j - 1`` (the first/last cycle stand in for the missing neighbours).
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    frames = np.arange(bounds[0], bounds[-1] + 1)
    cycle = np.clip(np.searchsorted(bounds, frames, side="right") - 1, 0, len(bounds) - 2)
    lengths = np.diff(bounds).astype(float)
    padded = np.concatenate([lengths[:1], lengths, lengths[-1:]])  # L_{-1} := L_0, L_k := L_{k-1}
    f = (frames - bounds[cycle]) / lengths[cycle]
    next_offset = (1 - f) * padded[cycle + 1] + f * padded[cycle + 2]
    pre_offset = f * padded[cycle + 1] + (1 - f) * padded[cycle]
    label = {
        "duration": np.array([[float(num_frames)]]),
        "start_frame": np.array([[float(bounds[0] + 1)]]),
        "end_frame": np.array([[float(bounds[-1] + 1)]]),
        "temporal_bound_num": np.array([[float(len(bounds))]]),
        "temporal_bound": (bounds + 1).astype(float).reshape(-1, 1),
        "offset_next_estimate": next_offset.reshape(1, -1),
        "offset_pre_estimate": pre_offset.reshape(1, -1),
    }
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"label": label})
    content = bytearray(buffer.getvalue())
    # The 116-byte text header carries a "Created on" timestamp: fix it for reproducible bytes.
    content[:116] = _MAT_HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(content))


CHARADES_COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified", "script",
                    "objects", "descriptions", "actions", "length")


def write_charades(root: Path, class_names: Sequence[str],
                   splits: dict[str, Sequence[dict]]) -> None:
    """Charades: ``Charades_v1_classes.txt`` ("c000 name") and ``Charades_v1_{split}.csv`` with
    the official columns; ``actions`` is "cXXX start end;..." in seconds."""
    _write_lines(root / "Charades_v1_classes.txt",
                 [f"c{i:03d} {name}" for i, name in enumerate(class_names)])
    for split, rows in splits.items():
        with open(root / f"Charades_v1_{split}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CHARADES_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


AVA_FRAME_LIST_HEADER = "original_vido_id video_id frame_id path labels"


def write_ava(root: Path, actions: Sequence[str], splits: dict[str, dict],
              excluded: Sequence[tuple[str, int]], version: str = "v2.2") -> None:
    """AVA as PySlowFast prepares it. ``splits[split]`` (``train``/``val``) holds ``videos``
    ({video: frame count}), ``gt`` rows ``(video, second, box, action id, person id)`` and
    ``detections`` rows ``(video, second, box, score)``. Writes ``frame_lists/<split>.csv``
    (space-separated, with its header), ``annotations/ava_<split>_<version>.csv``
    (``video,0902,x1,y1,x2,y2,action,person``), the detected person boxes
    ``annotations/person_box_67091280_iou90/ava_detection_<split>_boxes_and_labels*.csv``
    (``video,0902,x1,y1,x2,y2,,score``: no action), the label map
    ``ava_action_list_<version>_for_activitynet_2019.pbtxt`` (``label { name label_id
    label_type }``) and ``ava_val_excluded_timestamps_<version>.csv``."""
    ann = root / "annotations"
    boxes_dir = ann / "person_box_67091280_iou90"
    boxes_dir.mkdir(parents=True, exist_ok=True)
    coords = lambda box: ",".join(f"{v:.3f}" for v in box)
    detection_names = {"train": "ava_detection_train_boxes_and_labels_include_negative_"
                                f"{version}.csv", "val": "ava_detection_val_boxes_and_labels.csv"}
    for split, data in splits.items():
        lines = [AVA_FRAME_LIST_HEADER]
        for number, (video, frames) in enumerate(data["videos"].items()):
            lines += [f'{video} {number} {i} {video}/{video}_{i + 1:06d}.jpg ""'
                      for i in range(frames)]
        _write_lines(root / "frame_lists" / f"{split}.csv", lines)
        _write_lines(ann / f"ava_{split}_{version}.csv",
                     [f"{v},{s:04d},{coords(b)},{a},{p}" for v, s, b, a, p in data["gt"]])
        _write_lines(boxes_dir / detection_names[split],
                     [f"{v},{s:04d},{coords(b)},,{score:.6f}"
                      for v, s, b, score in data["detections"]])
    _write_lines(ann / f"ava_action_list_{version}_for_activitynet_2019.pbtxt",
                 [f'label {{\n  name: "{name}"\n  label_id: {i + 1}\n  label_type: '
                  'PERSON_MOVEMENT\n}' for i, name in enumerate(actions)])
    _write_lines(ann / f"ava_val_excluded_timestamps_{version}.csv",
                 [f"{v},{s:04d}" for v, s in excluded])


def write_ucf24(path: Path, labels: Sequence[str], tubes: dict[str, dict[int, list]],
                nframes: dict[str, int], resolution: dict[str, tuple[int, int]],
                train: Sequence[str], test: Sequence[str]) -> None:
    """UCF101-24 ``UCF101v2-GT.pkl`` (pickle protocol 2, as distributed): ``labels``,
    ``gttubes`` ({video: {label: [float32 [n, 5] (frame 1-based, x1, y1, x2, y2 pixels)]}}),
    ``nframes``, ``resolution`` ({video: (height, width)}), ``train_videos`` /
    ``test_videos`` (one list per split; split 1 only)."""
    data = {"labels": list(labels),
            "gttubes": {video: {label: [np.asarray(t, dtype=np.float32) for t in label_tubes]
                                for label, label_tubes in by_label.items()}
                        for video, by_label in tubes.items()},
            "nframes": dict(nframes), "resolution": dict(resolution),
            "train_videos": [list(train)], "test_videos": [list(test)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=2))
