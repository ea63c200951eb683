"""AVA v2.2 action detection (Gu et al. 2018), as prepared for PySlowFast.

Layout (``root``)::

    frames/<video>/<video>_%06d.jpg        30 fps frames of seconds 900-1800 (first: _000001)
    annotations/ava_{train,val}_v2.2.csv   video, timestamp, x1, y1, x2, y2, action, person
    annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt   the 60 evaluated actions
    annotations/ava_val_excluded_timestamps_v2.2.csv              video, timestamp
    annotations/person_box_67091280_iou90/ava_detection_{train,val}_boxes_and_labels*.csv
                                           video, timestamp, x1, y1, x2, y2, action, score

(``frame_lists/{train,val}.csv`` are not needed: frames are read from ``frames/<video>/``.)
One sample per keyframe (``video``, ``timestamp``): its frame is
``(timestamp - start_second) * fps`` (0-based; file ``_%06d`` = that + 1), the clip is
centred on it (:mod:`.keyframes`). Boxes are normalized ``x1, y1, x2, y2``; the rows of one
box (the same four coordinate strings, PySlowFast's box key) merge into its labels, action
ids ``1..num_classes`` (80) -> classes ``0..num_classes-1``.

Boxes (PySlowFast's recipe): ``train`` uses the ground-truth boxes plus each detected box
with score >= ``detection_threshold`` whose IoU with a ground-truth box is >= ``train_iou``
(0.9; it takes that box's labels); ``val``/``test`` use the detected boxes with score >=
``detection_threshold`` (0.9) (``test_boxes="gt"``: the ground-truth boxes) on the
keyframes of the split's videos. The model is scored against the split's ground-truth CSV
with the official evaluator (``vidssl.evaluation.detection.ava_frame_map``).

Bad input: an action id outside ``1..num_classes`` or a malformed row is an
``AnnotationError`` naming the file and line; coordinates outside [0, 1] are clipped and
counted; keyframes left without boxes are skipped and counted (``dataset.skipped``);
missing frames fail when the keyframe is loaded, naming the folder (``vidssl data check``
finds them first).
"""

from __future__ import annotations

import glob
import os
from collections import defaultdict

import numpy as np

from vidssl.data.datasets.base import AnnotationError, Annotations, VideoRecord
from vidssl.data.datasets.formats import official_split, parse_float, parse_int, require_file
from vidssl.data.datasets.keyframes import KeyframeDataset, clip_boxes

SPLITS = {"train": "train", "val": "val", "test": "val"}
OPTIONS = ("num_classes", "fps", "start_second", "detection_threshold", "train_iou",
           "test_boxes", "version")
NUM_CLASSES = 80
LABELMAP = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
DETECTIONS_DIR = "person_box_67091280_iou90"


def read_labelmap(path: str) -> dict[int, str]:
    """``{action id: name}`` of an AVA ``.pbtxt`` (``name:`` with ``id:`` or ``label_id:``)."""
    require_file(path, "AVA label map")
    names, name = {}, None
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if line.startswith("name:"):
                name = line.split(":", 1)[1].strip().strip('"')
            elif line.startswith(("id:", "label_id:")):
                names[parse_int(line.split(":", 1)[1].strip(), path, number, "id")] = name
    if not names:
        raise AnnotationError(path, None, "no 'name:'/'id:' items")
    return names


def read_boxes(path: str, num_classes: int, with_scores: bool, threshold: float = 0.0,
               counts: dict | None = None) -> dict[tuple[str, int], dict[str, list]]:
    """``{(video, timestamp): {box key: [box, labels, score]}}`` of an AVA CSV.

    Ground truth (``with_scores=False``): 8 columns, an action per row. Detections: column 7
    is the action (may be empty) and column 8 the score; rows under ``threshold`` are dropped.
    """
    require_file(path)
    counts = counts if counts is not None else defaultdict(int)
    out: dict = defaultdict(dict)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = [f.strip() for f in line.strip().split(",")]
            if fields == [""]:
                continue
            if len(fields) < (8 if with_scores else 7):
                raise AnnotationError(path, number, f"expected video,timestamp,x1,y1,x2,y2,"
                                      f"action{',score' if with_scores else ',person'}, "
                                      f"got {len(fields)} columns")
            if with_scores and parse_float(fields[7], path, number, "score") < threshold:
                continue
            key = (fields[0], parse_int(fields[1], path, number, "timestamp"))
            box = [parse_float(v, path, number, "box coordinate") for v in fields[2:6]]
            if box[2] < box[0] or box[3] < box[1]:
                raise AnnotationError(path, number, f"box {box} has x2 < x1 or y2 < y1")
            action = None
            if fields[6]:
                action = parse_int(fields[6], path, number, "action id")
                if not 1 <= action <= num_classes:
                    raise AnnotationError(path, number, f"action id {action} is not in "
                                          f"1..{num_classes} (num_classes={num_classes})")
            entry = out[key].setdefault(",".join(fields[2:6]), [box, set(), 0.0])
            if action is not None:
                entry[1].add(action - 1)
            if with_scores:
                entry[2] = max(entry[2], float(fields[7]))
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``[N, M]`` of normalized ``x1, y1, x2, y2`` boxes."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def match_detections(gt: list, detected: list, min_iou: float) -> list:
    """Detected ``[box, labels, score]`` entries with IoU >= ``min_iou`` to a ground-truth
    box, each given the labels of its best-overlapping ground-truth box."""
    if not gt or not detected:
        return []
    iou = box_iou(np.array([d[0] for d in detected]), np.array([g[0] for g in gt]))
    best = iou.argmax(axis=1)
    return [[d[0], set(gt[j][1]), d[2]] for d, j, v in zip(detected, best, iou.max(axis=1))
            if v >= min_iou]


def detection_file(annotations: str, split: str) -> str | None:
    """``person_box_67091280_iou90/ava_detection_<split>_boxes_and_labels*.csv`` if present."""
    pattern = os.path.join(annotations, DETECTIONS_DIR,
                           f"ava_detection_{split}_boxes_and_labels*.csv")
    found = sorted(glob.glob(pattern))
    return found[0] if found else None


def _keyframe_boxes(official: str, gt: dict, detections: dict | None, test_boxes: str,
                    train_iou: float, counts: dict) -> dict:
    """Per keyframe, the ``[box, labels]`` the split trains or tests on."""
    if official == "train":
        chosen = {}
        for key, boxes in gt.items():
            entries = list(boxes.values())
            extra = {k: v for k, v in (detections or {}).get(key, {}).items() if k not in boxes}
            matched = match_detections(entries, list(extra.values()), train_iou)
            counts["detected_boxes_added"] += len(matched)
            chosen[key] = entries + matched
        return chosen
    if test_boxes == "gt":
        return {key: list(boxes.values()) for key, boxes in gt.items()}
    videos = {video for video, _ in gt}
    keys = sorted(set(gt) | {k for k in detections if k[0] in videos})
    return {key: list(detections.get(key, {}).values()) for key in keys}


def load(root: str, split: str, num_classes: int = NUM_CLASSES, fps: float = 30.0,
         start_second: int = 900, detection_threshold: float = 0.9, train_iou: float = 0.9,
         test_boxes: str = "detected", version: str = "v2.2") -> Annotations:
    if test_boxes not in ("detected", "gt"):
        raise ValueError(f"ava: test_boxes must be 'detected' or 'gt', got {test_boxes!r}")
    official = official_split("ava", split, SPLITS)
    annotations = os.path.join(root, "annotations")
    gt_path = os.path.join(annotations, f"ava_{official}_{version}.csv")
    labelmap_path = os.path.join(annotations, LABELMAP)
    counts: dict = defaultdict(int)
    gt = read_boxes(gt_path, num_classes, with_scores=False)
    evaluated = read_labelmap(labelmap_path)
    unknown = sorted(i for i in evaluated if not 1 <= i <= num_classes)
    if unknown:
        raise AnnotationError(labelmap_path, None, f"action id {unknown[0]} is not in "
                              f"1..{num_classes}")
    det_path = detection_file(annotations, official)
    if det_path is None and (official != "train" and test_boxes == "detected"):
        raise FileNotFoundError(f"ava: no detected person boxes for {official}: expected "
                                f"{os.path.join(annotations, DETECTIONS_DIR)}/"
                                f"ava_detection_{official}_boxes_and_labels*.csv "
                                "(or test_boxes='gt')")
    detections = (read_boxes(det_path, num_classes, True, detection_threshold)
                  if det_path else None)
    records = []
    chosen = _keyframe_boxes(official, gt, detections, test_boxes, train_iou, counts)
    for (video, timestamp), entries in sorted(chosen.items()):
        if not entries:
            counts["keyframes_without_boxes"] += 1
            continue
        boxes, clipped = clip_boxes(np.array([e[0] for e in entries], dtype=np.float64))
        counts["boxes_clipped"] += clipped
        labels = tuple(tuple(sorted(e[1])) for e in entries)
        center = round((timestamp - start_second) * fps)
        if center < 0:
            raise AnnotationError(gt_path, None, f"{video} timestamp {timestamp} is before "
                                  f"start_second={start_second}")
        meta = {"video": video, "timestamp": timestamp, "center": center,
                "boxes": tuple(map(tuple, boxes.tolist())), "labels": labels,
                "scores": tuple(float(e[2]) for e in entries), "fps": fps}
        union = tuple(sorted({c for box in labels for c in box}))
        records.append(VideoRecord(os.path.join(root, "frames", video), union, meta=meta))
    excluded = os.path.join(annotations, f"ava_{official}_excluded_timestamps_{version}.csv")
    names = [evaluated.get(i + 1, f"action_{i + 1}") for i in range(num_classes)]
    evaluation = {"format": "ava", "groundtruth": gt_path, "labelmap": labelmap_path,
                  "excluded": excluded if os.path.isfile(excluded) else None}
    return Annotations(
        records, names, task="detection",
        sources=[p for p in (gt_path, labelmap_path, det_path) if p],
        dataset_cls=KeyframeDataset,
        dataset_options={"evaluation": evaluation, "skipped": dict(counts)})

