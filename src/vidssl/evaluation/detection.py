"""Action-detection metrics: AVA frame mAP and UCF101-24 frame / video mAP.

AVA (``ava_frame_map``) follows the official ActivityNet evaluator of the AVA v2.x challenge
(``get_ava_performance.py`` with excluded timestamps, the TF object-detection
``PascalDetectionEvaluator``): every (video, timestamp) keyframe is an image; per image the
detections of a class are matched in descending score order to that class's ground-truth
boxes at IoU >= 0.5; the per-class AP is the PASCAL VOC every-point area under the
precision envelope; the mAP is the mean over label-map classes with ground truth.

UCF101-24 (``frame_map``, ``video_map``) follows the frame-AP / video-AP protocol of the
ACT / MOC detectors on the ``UCF101v2-GT.pkl`` tubes, with VOC every-point AP by default.

Boxes are ``x1, y1, x2, y2``; AVA coordinates are normalized to [0, 1], UCF101-24 ones are
pixels. Bad input is a ``ValueError`` naming the file and line; action ids outside the
label map are counted and skipped (the result says how many).
"""
from __future__ import annotations

import csv
import heapq
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

IOU_THRESHOLD = 0.5
AVA_MAX_DETECTIONS_PER_IMAGE = 50  # official: read_csv(detections, class_whitelist, 50)
CONVENTIONS = ("voc", "act")


# ----------------------------------------------------------------------------- boxes and AP
def box_iou(boxes1: np.ndarray, boxes2: np.ndarray, pixel_boxes: bool = False) -> np.ndarray:
    """Pairwise IoU ``[N, M]`` of ``x1, y1, x2, y2`` boxes.

    ``pixel_boxes=False``: continuous coordinates, ``area = (x2-x1)(y2-y1)`` (AVA's
    ``np_box_ops.iou``). ``pixel_boxes=True``: inclusive pixel indices,
    ``area = (x2-x1+1)(y2-y1+1)`` (ACT's ``iou2d``).
    """
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    one = 1.0 if pixel_boxes else 0.0
    width = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
             + one).clip(min=0.0)
    height = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
              + one).clip(min=0.0)
    intersection = width * height
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    return intersection / (area_a[:, None] + area_b[None, :] - intersection)


def precision_recall(scores: np.ndarray, is_true_positive: np.ndarray, num_gt: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, highest score first.

    ``precision_k = TP_k / k``, ``recall_k = TP_k / num_gt``; the order is
    ``argsort(scores)[::-1]`` as in the official ``metrics.compute_precision_recall``
    (equal scores are an arbitrary, numpy-defined order there too).
    """
    order = np.argsort(np.asarray(scores, dtype=np.float64))[::-1]
    return _ranked_precision_recall(np.asarray(is_true_positive)[order], num_gt)


def _ranked_precision_recall(is_true_positive: np.ndarray, num_gt: int
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection of an already ranked list."""
    true_positives = np.cumsum(np.asarray(is_true_positive, dtype=np.int64))
    ranks = np.arange(1, len(true_positives) + 1)
    return true_positives / ranks, true_positives / num_gt


def voc_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """PASCAL VOC every-point AP: area under the precision envelope.

    ``AP = sum_i (r_i - r_{i-1}) * max_{j >= i} p_j`` over the points where recall changes,
    with ``(r, p) = (0, 0)`` prepended and ``(1, 0)`` appended (VOCdevkit ``voc_ap``, the
    official AVA ``compute_average_precision``). No detections: 0.
    """
    if len(precision) == 0:
        return 0.0
    recall = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.concatenate([[0.0], precision, [0.0]])
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]
    changes = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[changes] - recall[changes - 1]) * envelope[changes]))


def trapezoid_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """ACT's ``pr_to_ap``: trapezoids under the raw precision-recall curve from ``(r, p) =
    (0, 1)``."""
    recall = np.concatenate([[0.0], recall])
    precision = np.concatenate([[1.0], precision])
    return float(np.sum((recall[1:] - recall[:-1]) * (precision[1:] + precision[:-1]) * 0.5))


def _claims_ground_truth(iou: np.ndarray, threshold: float, claimed: np.ndarray | None,
                         among_unclaimed: bool) -> bool:
    """Whether a detection (its IoU row) claims a ground truth (true positive); marks it.

    VOC / AVA (``among_unclaimed=False``): the detection looks only at its highest-IoU ground
    truth; if that one is taken, it is a false positive. ACT: the best ground truth still
    unclaimed.
    """
    if iou.size == 0:
        return False
    if among_unclaimed:
        iou = np.where(claimed, -np.inf, iou)
    best = int(np.argmax(iou))
    if iou[best] >= threshold and not claimed[best]:
        claimed[best] = True
        return True
    return False


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


# ----------------------------------------------------------------------------- AVA files
def _lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path.read_text().splitlines()


def read_ava_labelmap(path: str | Path) -> dict[int, str]:
    """``{action id: name}`` from an AVA label map ``.pbtxt``.

    Blocks ``item { name: "..." id: N }`` or, as in the full AVA action list,
    ``label { name: "..." label_id: N label_type: PERSON_MOVEMENT }``; fields on one line or
    several.
    """
    path = Path(path)
    text = "\n".join(_lines(path))
    items: dict[int, str] = {}
    for block in re.finditer(r"\b(?:item|label)\s*\{(.*?)\}", text, flags=re.DOTALL):
        line = text.count("\n", 0, block.start()) + 1
        body = block.group(1)
        name = re.search(r'\bname\s*:\s*"([^"]*)"', body)
        number = re.search(r"\b(?:label_)?id\s*:\s*(-?\d+)", body)
        if name is None or number is None:
            raise ValueError(f"{path}:{line}: label-map item without a name or an id")
        action_id = int(number.group(1))
        if action_id < 1:
            raise ValueError(f"{path}:{line}: action ids are 1-indexed, got {action_id}")
        if action_id in items:
            raise ValueError(f"{path}:{line}: action id {action_id} appears twice")
        items[action_id] = name.group(1)
    if not items:
        raise ValueError(f"{path}: no 'item {{ name: ... id: ... }}' entries")
    return items


def _image_key(path: Path, line: int, video_id: str, timestamp: str) -> tuple[str, int]:
    try:
        return video_id.strip(), int(timestamp)
    except ValueError:
        raise ValueError(f"{path}:{line}: timestamp must be an integer second, "
                         f"got {timestamp!r}") from None


def read_ava_excluded(path: str | Path) -> set[tuple[str, int]]:
    """Excluded keyframes ``{(video_id, timestamp)}`` from ``video_id,timestamp`` rows."""
    path = Path(path)
    keys = set()
    for line, row in enumerate(csv.reader(_lines(path)), start=1):
        if not row:
            continue
        if len(row) != 2:
            raise ValueError(f"{path}:{line}: expected 'video_id,timestamp', got {len(row)} "
                             f"columns")
        keys.add(_image_key(path, line, *row))
    return keys


def read_ava_csv(path: str | Path, action_ids: Iterable[int], with_scores: bool,
                 max_per_image: int = 0
                 ) -> tuple[dict[tuple[str, int], list[tuple]], dict[str, int]]:
    """Boxes of an AVA CSV, per keyframe, highest score first.

    Rows ``video_id, timestamp, x1, y1, x2, y2, action_id[, person_id | score]`` (normalized
    coordinates; a 2-column row marks a keyframe without actions and adds nothing). Returns
    ``{(video, timestamp): [(score, action_id, y1, x1, y2, x2), ...]}`` and counts. Rows
    whose action is not in ``action_ids`` are counted (``skipped_unknown_action``) and
    skipped. Ground truth (``with_scores=False``) gets score 1; detections read column 8
    (1 when absent). ``max_per_image > 0`` keeps the top scores of each keyframe, with the
    official heap (ties at the cut keep the earlier rows).
    """
    path = Path(path)
    known = set(action_ids)
    entries: dict[tuple[str, int], list[tuple]] = defaultdict(list)
    counts = {"rows": 0, "skipped_unknown_action": 0, "capped": 0}
    for line, row in enumerate(csv.reader(_lines(path)), start=1):
        if not row:
            continue
        if len(row) == 2:
            _image_key(path, line, *row)
            continue
        if len(row) not in (7, 8):
            raise ValueError(f"{path}:{line}: expected 7 or 8 columns (video_id, timestamp, "
                             f"x1, y1, x2, y2, action_id[, person_id|score]), got {len(row)}")
        key = _image_key(path, line, row[0], row[1])
        try:
            x1, y1, x2, y2 = (float(value) for value in row[2:6])
            action_id = int(row[6])
            score = float(row[7]) if with_scores and len(row) == 8 else 1.0
        except ValueError:
            raise ValueError(f"{path}:{line}: unreadable number in {','.join(row)!r}") from None
        if not all(0.0 <= c <= 1.0 for c in (x1, y1, x2, y2)):
            raise ValueError(f"{path}:{line}: box ({x1}, {y1}, {x2}, {y2}) lies outside the "
                             f"frame; AVA coordinates are normalized to [0, 1] (clip them)")
        if not math.isfinite(score):
            raise ValueError(f"{path}:{line}: score {row[7]!r} is not a finite number")
        if not with_scores and (x2 <= x1 or y2 <= y1):
            raise ValueError(f"{path}:{line}: empty ground-truth box ({x1}, {y1}, {x2}, {y2})")
        counts["rows"] += 1
        if action_id not in known:
            counts["skipped_unknown_action"] += 1
            continue
        entry = (score, action_id, y1, x1, y2, x2)
        kept = entries[key]
        if max_per_image < 1 or len(kept) < max_per_image:
            heapq.heappush(kept, entry)
        else:
            counts["capped"] += 1
            if score > kept[0][0]:
                heapq.heapreplace(kept, entry)
    return {key: sorted(kept, key=lambda entry: -entry[0]) for key, kept in entries.items()}, counts


def write_ava_detections(path: str | Path, keyframes: Sequence[tuple[str, int]],
                         boxes: np.ndarray, scores: np.ndarray,
                         action_ids: Iterable[int] | None = None) -> int:
    """Write per-box action scores as an AVA detections CSV; returns the number of rows.

    ``keyframes[k] = (video_id, timestamp)`` and ``boxes[k]`` (normalized ``x1, y1, x2, y2``)
    describe box ``k``; ``scores[k, j]`` is the score of action id ``j + 1`` (PySlowFast's
    80 outputs). One row ``video_id,timestamp,x1,y1,x2,y2,action_id,score`` per box and
    action of ``action_ids`` (default: every output), with 6 decimals so that scores do not
    tie by rounding.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(len(boxes), -1)
    if len(keyframes) != len(boxes):
        raise ValueError(f"{len(keyframes)} keyframes for {len(boxes)} boxes")
    if ((boxes < 0.0) | (boxes > 1.0)).any():
        raise ValueError("boxes must be normalized to [0, 1] (clip them before writing)")
    ids = range(1, scores.shape[1] + 1) if action_ids is None else sorted(set(action_ids))
    if any(not 1 <= action_id <= scores.shape[1] for action_id in ids):
        raise ValueError(f"action ids must lie in 1..{scores.shape[1]} (one per score column)")
    lines = [f"{video},{int(timestamp):04d},{x1:.6f},{y1:.6f},{x2:.6f},{y2:.6f},{action_id},"
             f"{scores[k, action_id - 1]:.6f}"
             for k, ((video, timestamp), (x1, y1, x2, y2)) in enumerate(zip(keyframes, boxes))
             for action_id in ids]
    Path(path).write_text("".join(line + "\n" for line in lines))
    return len(lines)


# ----------------------------------------------------------------------------- AVA mAP
def _ava_image_matches(detections: list[tuple], groundtruth: list[tuple], threshold: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Actions, scores and true-positive flags of one keyframe's valid detections (rank
    order), and the count of invalid ones (``x2 <= x1`` or ``y2 <= y1``: dropped, as the
    official evaluator does).

    Entries are ``(score, action, y1, x1, y2, x2)`` as the official reader stores them (IoU
    does not mind the swapped axes). The PASCAL rule, vectorized: each detection looks only
    at its highest-IoU ground-truth box of the same action (the first on ties); among the
    detections whose IoU passes the threshold, the first in rank order claims the box (true
    positive), the others are false positives.
    """
    det = np.array(detections, dtype=np.float64).reshape(-1, 6)
    valid = (det[:, 2] < det[:, 4]) & (det[:, 3] < det[:, 5])
    det = det[valid]
    gt = np.array(groundtruth, dtype=np.float64).reshape(-1, 6)
    is_true_positive = np.zeros(len(det), dtype=bool)
    if len(gt) and len(det):
        iou = box_iou(det[:, 2:], gt[:, 2:])
        iou[det[:, 1, None] != gt[None, :, 1]] = -1.0
        best = iou.argmax(axis=1)
        passes = np.flatnonzero(iou[np.arange(len(det)), best] >= threshold)
        _, first_claims = np.unique(best[passes], return_index=True)
        is_true_positive[passes[first_claims]] = True
    return det[:, 1].astype(np.int64), det[:, 0], is_true_positive, int((~valid).sum())


def ava_frame_map(groundtruth_csv: str | Path, detections_csv: str | Path,
                  labelmap_pbtxt: str | Path, excluded_csv: str | Path | None = None,
                  iou_threshold: float = IOU_THRESHOLD,
                  max_detections_per_image: int = AVA_MAX_DETECTIONS_PER_IMAGE) -> dict:
    """Frame-level AVA mAP, as the official ActivityNet evaluator computes it.

    1. Keep rows whose action is in the label map (others counted); keep the
       ``max_detections_per_image`` highest-scoring detections of each keyframe (official:
       50; PySlowFast's evaluator keeps all: pass 0); drop excluded keyframes from both.
    2. Per keyframe and class, detections in descending score order each look at their
       highest-IoU ground-truth box of that class: IoU >= threshold and not yet claimed ->
       true positive, else false positive (duplicates are false positives). Detections on
       keyframes without ground truth are false positives.
    3. Per class with ground truth: VOC every-point AP over all its detections;
       ``mAP`` = mean over those classes. Classes without ground truth get NaN in
       ``per_class`` and stay out of the mean.

    Returns ``{"mAP", "per_class": {name: AP}, "num_classes_evaluated", counts...}``.
    """
    labelmap = read_ava_labelmap(labelmap_pbtxt)
    excluded = read_ava_excluded(excluded_csv) if excluded_csv is not None else set()
    groundtruth, gt_counts = read_ava_csv(groundtruth_csv, labelmap, with_scores=False)
    detections, det_counts = read_ava_csv(detections_csv, labelmap, with_scores=True,
                                          max_per_image=max_detections_per_image)
    groundtruth = {key: rows for key, rows in groundtruth.items() if key not in excluded}
    num_gt = defaultdict(int)
    for rows in groundtruth.values():
        for row in rows:
            num_gt[row[1]] += 1
    if not num_gt:
        raise ValueError(f"{groundtruth_csv}: no ground-truth box of a label-map action "
                         f"outside the excluded keyframes")
    matches = [_ava_image_matches(rows, groundtruth.get(key, []), iou_threshold)
               for key, rows in detections.items() if key not in excluded]
    actions, scores, hits = (np.concatenate([m[i] for m in matches] + [np.zeros(0)])
                             for i in range(3))
    per_class = {}
    for action, name in sorted(labelmap.items()):
        if num_gt[action] == 0:
            per_class[name] = float("nan")
            continue
        mine = actions == action        # keyframes in file order, rank order within each
        precision, recall = precision_recall(scores[mine], hits[mine], num_gt[action])
        per_class[name] = voc_average_precision(precision, recall)
    evaluated = [ap for ap in per_class.values() if not math.isnan(ap)]
    return {
        "mAP": float(np.mean(evaluated)),
        "per_class": per_class,
        "num_classes_evaluated": len(evaluated),
        "groundtruth_keyframes": len(groundtruth),
        "groundtruth_boxes": sum(num_gt.values()),
        "detection_keyframes": sum(key not in excluded for key in detections),
        "excluded_keyframes": len(excluded),
        "skipped_gt_rows_unknown_action": gt_counts["skipped_unknown_action"],
        "skipped_detection_rows_unknown_action": det_counts["skipped_unknown_action"],
        "capped_detections": det_counts["capped"],
        "invalid_detection_boxes": sum(m[3] for m in matches),
    }


# ----------------------------------------------------------------------------- UCF101-24
def _frame_groundtruth(gt_tubes: Mapping, videos: Sequence
                       ) -> dict[int, dict[tuple, np.ndarray]]:
    """``{label: {(video, frame): boxes [n, 4]}}`` of every annotated frame."""
    boxes: dict[int, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    for video in videos:
        for label, tubes in gt_tubes[video].items():
            for tube in tubes:
                for frame, *box in np.asarray(tube, dtype=np.float64).reshape(-1, 5):
                    boxes[label][(video, int(frame))].append(box)
    return {label: {key: np.array(b) for key, b in frames.items()}
            for label, frames in boxes.items()}


def _average_precision(ranked_hits: list[bool], num_gt: int, convention: str) -> float:
    precision, recall = _ranked_precision_recall(np.array(ranked_hits, dtype=bool), num_gt)
    if convention == "act":
        return trapezoid_average_precision(precision, recall)
    return voc_average_precision(precision, recall)


def _videos(gt_tubes: Mapping, videos: Sequence | None) -> list:
    videos = list(gt_tubes) if videos is None else list(videos)
    missing = [video for video in videos if video not in gt_tubes]
    if missing:
        raise ValueError(f"{len(missing)} evaluated videos have no entry in gt_tubes, "
                         f"e.g. {missing[0]!r}")
    return videos


def frame_map(gt_tubes: Mapping, detections: Iterable[Sequence], iou: float = IOU_THRESHOLD,
              videos: Sequence | None = None, convention: str = "voc") -> dict:
    """Frame-mAP on UCF101-24: per-class AP over every annotated frame of ``videos``.

    ``gt_tubes[video][label]`` is a list of ``[n, 5]`` arrays ``(frame, x1, y1, x2, y2)``
    (``UCF101v2-GT.pkl`` ``gttubes``; frames 1-based, pixels). ``detections`` are
    ``(video, frame, label, score, x1, y1, x2, y2)`` rows. Per class, detections in
    descending score order claim ground-truth boxes of their frame at IoU >= ``iou``;
    unclaimed detections are false positives. ``convention="voc"`` (default): continuous
    IoU, a detection looks only at its best ground truth, VOC every-point AP.
    ``convention="act"``: ACT/MOC's ``frameAP`` (pixel IoU with +1, best *unclaimed* ground
    truth, trapezoidal AP). ``videos`` (default: all of ``gt_tubes``) are the evaluated
    videos; a detection in another video is an error. Classes without ground truth are not
    evaluated; their detections are counted in ``skipped_detections``.
    """
    _check_convention(convention)
    videos = _videos(gt_tubes, videos)
    evaluated = set(videos)
    groundtruth = _frame_groundtruth(gt_tubes, videos)
    by_label: dict[int, list[tuple]] = defaultdict(list)
    skipped = 0
    for row in detections:
        video, frame, label, score, *box = row
        if video not in evaluated:
            raise ValueError(f"detection in video {video!r}, which is not among the "
                             f"evaluated videos")
        if not box[0] <= box[2] or not box[1] <= box[3]:
            raise ValueError(f"detection box {box} in {video!r} frame {frame} has x2 < x1 or "
                             f"y2 < y1")
        if int(label) not in groundtruth:
            skipped += 1
            continue
        by_label[int(label)].append((float(score), (video, int(frame)), box))
    per_class = {}
    for label, frames in sorted(groundtruth.items()):
        per_class[label] = _class_average_precision(
            by_label[label], frames, lambda box, boxes: box_iou(
                np.array([box]), boxes, convention == "act")[0], iou, convention)
    return {"mAP": float(np.mean(list(per_class.values()))), "per_class": per_class,
            "num_classes_evaluated": len(per_class), "skipped_detections": skipped}


def _class_average_precision(detections: list[tuple], groundtruth: Mapping, overlap: Callable,
                             iou: float, convention: str) -> float:
    """AP of one class: ``(score, key, item)`` detections, best score first, each matched to
    the ground truth of its key (a frame, or a video) through ``overlap(item, ground truths)
    -> [n]`` (``_claims_ground_truth``'s rule), then ``_average_precision``."""
    claimed = {key: np.zeros(len(items), dtype=bool) for key, items in groundtruth.items()}
    hits = []
    for _, key, item in sorted(detections, key=lambda d: -d[0]):
        overlaps = overlap(item, groundtruth[key]) if key in groundtruth else np.zeros(0)
        hits.append(_claims_ground_truth(overlaps, iou, claimed.get(key),
                                         among_unclaimed=convention == "act"))
    num_gt = sum(len(items) for items in groundtruth.values())
    return _average_precision(hits, num_gt, convention)


def tube_iou(tube1: np.ndarray, tube2: np.ndarray, pixel_boxes: bool = False) -> float:
    """Spatio-temporal IoU of two ``[n, 5]`` ``(frame, x1, y1, x2, y2)`` tubes (ACT ``iou3dt``).

    ``temporal IoU x mean spatial IoU``: the temporal IoU of the inclusive frame spans
    ``[first, last]``; the spatial IoU averaged over the frames of the overlapping span
    where both tubes have a box. No temporal overlap: 0.
    """
    a = np.asarray(tube1, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(tube2, dtype=np.float64).reshape(-1, 5)
    start, end = max(a[0, 0], b[0, 0]), min(a[-1, 0], b[-1, 0])
    if end < start:
        return 0.0
    temporal = (end - start + 1) / (max(a[-1, 0], b[-1, 0]) - min(a[0, 0], b[0, 0]) + 1)
    frames, in_a, in_b = np.intersect1d(a[:, 0], b[:, 0], return_indices=True)
    shared = (frames >= start) & (frames <= end)
    if not shared.any():
        return 0.0
    spatial = [box_iou(a[i, 1:], b[j, 1:], pixel_boxes)[0, 0]
               for i, j in zip(in_a[shared], in_b[shared])]
    return float(temporal * np.mean(spatial))


def video_map(gt_tubes: Mapping, detected_tubes: Iterable[Sequence],
              iou_thresholds: Sequence[float] = (0.2, 0.5), videos: Sequence | None = None,
              convention: str = "voc") -> dict:
    """Video-mAP: per-class AP of detected tubes against ground-truth tubes.

    ``detected_tubes`` are ``(video, label, score, tube [n, 5])``; a detected tube claims
    the ground-truth tube of its video and class with the highest ``tube_iou`` if that is
    >= the threshold (``convention`` as in ``frame_map``). Returns ``{"mAP@0.2": ...,
    "mAP@0.5": ..., "per_class": {threshold: {label: AP}}}``.
    """
    _check_convention(convention)
    videos = _videos(gt_tubes, videos)
    groundtruth: dict[int, dict] = defaultdict(dict)
    for video in videos:
        for label, tubes in gt_tubes[video].items():
            if len(tubes):
                groundtruth[label][video] = list(tubes)
    evaluated = set(videos)
    by_label: dict[int, list[tuple]] = defaultdict(list)
    skipped = 0
    for video, label, score, tube in detected_tubes:
        if video not in evaluated:
            raise ValueError(f"detected tube in video {video!r}, which is not among the "
                             f"evaluated videos")
        if int(label) not in groundtruth:
            skipped += 1
            continue
        by_label[int(label)].append((float(score), video, tube))
    result: dict = {"per_class": {}, "skipped_detections": skipped}
    for threshold in iou_thresholds:
        per_class = {}
        for label, tubes_by_video in sorted(groundtruth.items()):
            per_class[label] = _class_average_precision(
                by_label[label], tubes_by_video, lambda tube, tubes: np.array(
                    [tube_iou(gt, tube, convention == "act") for gt in tubes]),
                threshold, convention)
        result[f"mAP@{threshold:g}"] = float(np.mean(list(per_class.values())))
        result["per_class"][threshold] = per_class
    return result


def link_tubes(per_frame_detections: Mapping[int, np.ndarray], iou_threshold: float = 0.3,
               min_length: int = 1) -> list[tuple[float, np.ndarray]]:
    """Greedy online linking of one class's per-frame boxes into tubes (Singh et al., 2017).

    ``per_frame_detections[frame]`` is ``[n, 5]`` ``(x1, y1, x2, y2, score)``. Frames are
    visited in increasing order; the live tubes, best mean score first, each take the
    highest-scoring unclaimed box of the frame whose IoU with the tube's last box is >=
    ``iou_threshold``. Boxes left over start new tubes; a tube that takes no box in a frame
    ends (tubes are contiguous). Returns ``(mean score, tube [n, 5] (frame, x1, y1, x2,
    y2))`` for tubes of at least ``min_length`` frames, best score first.
    """
    live: list[list] = []        # [frames, boxes, scores]
    finished: list[list] = []
    for frame in sorted(per_frame_detections):
        boxes = np.asarray(per_frame_detections[frame], dtype=np.float64).reshape(-1, 5)
        free = np.ones(len(boxes), dtype=bool)
        extended = []
        for tube in sorted(live, key=lambda t: -np.mean(t[2])):
            if tube[0][-1] != frame - 1:
                finished.append(tube)
                continue
            overlaps = box_iou(np.array([tube[1][-1]]), boxes[:, :4])[0]
            candidates = np.flatnonzero(free & (overlaps >= iou_threshold))
            if len(candidates) == 0:
                finished.append(tube)
                continue
            best = candidates[np.argmax(boxes[candidates, 4])]
            free[best] = False
            tube[0].append(frame)
            tube[1].append(boxes[best, :4])
            tube[2].append(boxes[best, 4])
            extended.append(tube)
        live = extended + [[[frame], [boxes[i, :4]], [boxes[i, 4]]] for i in np.flatnonzero(free)]
    tubes = [(float(np.mean(scores)), np.column_stack([frames, np.array(boxes)]))
             for frames, boxes, scores in finished + live if len(frames) >= min_length]
    return sorted(tubes, key=lambda t: -t[0])


def tubes_from_detections(detections: Iterable[Sequence], iou_threshold: float = 0.3,
                          min_length: int = 1) -> list[tuple]:
    """``link_tubes`` per (video, label) on ``frame_map``-style rows -> ``video_map`` input
    ``(video, label, score, tube)``."""
    grouped: dict[tuple, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for video, frame, label, score, *box in detections:
        grouped[(video, int(label))][int(frame)].append([*box, score])
    return [(video, label, score, tube)
            for (video, label), frames in grouped.items()
            for score, tube in link_tubes({f: np.array(b) for f, b in frames.items()},
                                          iou_threshold, min_length)]


__all__ = [
    "AVA_MAX_DETECTIONS_PER_IMAGE", "IOU_THRESHOLD", "ava_frame_map", "box_iou", "frame_map",
    "link_tubes", "precision_recall", "read_ava_csv", "read_ava_excluded", "read_ava_labelmap",
    "trapezoid_average_precision", "tube_iou", "tubes_from_detections", "video_map",
    "voc_average_precision", "write_ava_detections",
]
