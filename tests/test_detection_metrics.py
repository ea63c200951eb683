"""AVA frame mAP (official ActivityNet evaluator semantics) and UCF101-24 frame / video mAP."""
import csv
import math
import random

import numpy as np
import pytest

from vidssl.evaluation.detection import (
    ava_frame_map,
    box_iou,
    frame_map,
    link_tubes,
    read_ava_labelmap,
    trapezoid_average_precision,
    tube_iou,
    tubes_from_detections,
    video_map,
    voc_average_precision,
)

LABELMAP = """item {
  name: "stand"
  id: 1
}
item {
  name: "sit"
  id: 2
}
item {
  name: "walk"
  id: 4
}
item {
  name: "talk to"
  id: 7
}
"""
NAMES = {1: "stand", 2: "sit", 4: "walk", 7: "talk to"}


# ----------------------------------------------------------------------------- reference
def reference_ava_map(gt_rows, det_rows, class_ids, excluded, capacity):
    """The published algorithm as plain loops: PASCAL matching per keyframe and class at
    IoU >= 0.5 (highest-IoU ground truth only, each claimed once), top-``capacity``
    detections per keyframe, VOC every-point AP, mean over classes with ground truth."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    gt, dets, order = {}, {}, []
    for video, t, x1, y1, x2, y2, action, *_ in gt_rows:
        key = (video, int(t))
        if int(action) in class_ids and key not in excluded:
            gt.setdefault(key, []).append((int(action), (x1, y1, x2, y2)))
    for video, t, x1, y1, x2, y2, action, score in det_rows:
        key = (video, int(t))
        if int(action) in class_ids:
            if key not in dets:
                order.append(key)
            dets.setdefault(key, []).append((score, int(action), (x1, y1, x2, y2)))
    aps = []
    for c in sorted(class_ids):
        num_gt = sum(a == c for boxes in gt.values() for a, _ in boxes)
        if num_gt == 0:
            continue
        ranked = []
        for key in order:
            if key in excluded:
                continue
            kept = sorted(dets[key], key=lambda d: -d[0])
            if capacity > 0:
                kept = kept[:capacity]
            kept = [d for d in kept if d[2][0] < d[2][2] and d[2][1] < d[2][3]]
            gt_boxes = [b for a, b in gt.get(key, []) if a == c]
            claimed = [False] * len(gt_boxes)
            for score, action, box in kept:
                if action != c:
                    continue
                tp = False
                if gt_boxes:
                    overlaps = [iou(box, g) for g in gt_boxes]
                    best = overlaps.index(max(overlaps))
                    if overlaps[best] >= 0.5 and not claimed[best]:
                        claimed[best] = tp = True
                ranked.append((score, tp))
        ranked.sort(key=lambda r: -r[0])
        tp = 0
        recall, precision = [0.0], [0.0]
        for rank, (_, hit) in enumerate(ranked, start=1):
            tp += hit
            recall.append(tp / num_gt)
            precision.append(tp / rank)
        if not ranked:
            aps.append(0.0)
            continue
        recall.append(1.0)
        precision.append(0.0)
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = max(precision[i], precision[i + 1])
        aps.append(sum((recall[i] - recall[i - 1]) * precision[i]
                       for i in range(1, len(recall)) if recall[i] != recall[i - 1]))
    return sum(aps) / len(aps)


# ----------------------------------------------------------------------------- helpers
def _write(tmp_path, name, rows):
    path = tmp_path / name
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow([f"{v:04d}" if i == 1 and isinstance(v, int) else
                             (f"{v:.6f}" if isinstance(v, float) else v)
                             for i, v in enumerate(row)])
    return path


def _files(tmp_path, gt_rows, det_rows, excluded=None, labelmap=LABELMAP):
    (tmp_path / "labels.pbtxt").write_text(labelmap)
    paths = [_write(tmp_path, "gt.csv", gt_rows), _write(tmp_path, "det.csv", det_rows),
             tmp_path / "labels.pbtxt"]
    if excluded is not None:
        paths.append(_write(tmp_path, "excluded.csv", excluded))
    return paths


def _random_case(seed):
    """AVA-like keyframes: persons with 1-3 actions (ids 1..9, some not in the label map),
    jittered and random detections, duplicates, detections on keyframes without ground
    truth, a few invalid detection boxes, excluded keyframes."""
    rng = random.Random(seed)
    gt_rows, det_rows = [], []
    keys = [(f"vid{v}", t) for v in range(3) for t in range(902, 902 + 6)]
    for video, t in keys:
        for person in range(rng.randint(0, 3)):
            x1, y1 = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
            box = (x1, y1, x1 + rng.uniform(0.1, 0.4), y1 + rng.uniform(0.1, 0.4))
            for action in rng.sample(range(1, 10), rng.randint(1, 3)):
                gt_rows.append((video, t, *box, action, person))
            for _ in range(rng.randint(1, 3)):          # jittered copies: TPs, duplicates
                jitter = [min(1.0, max(0.0, c + rng.gauss(0, 0.04))) for c in box]
                for action in rng.sample(range(1, 10), rng.randint(1, 4)):
                    det_rows.append((video, t, *jitter, action, rng.random()))
        for _ in range(rng.randint(0, 2)):              # background boxes
            x1, y1 = rng.uniform(0, 0.8), rng.uniform(0, 0.8)
            det_rows.append((video, t, x1, y1, x1 + 0.15, y1 + 0.2, rng.randint(1, 9),
                             rng.random()))
    for t in (1500, 1501):                              # keyframes without ground truth
        det_rows.append(("vid9", t, 0.1, 0.1, 0.5, 0.5, 1, rng.random()))
    det_rows.append(("vid9", 1501, 0.6, 0.2, 0.4, 0.5, 1, rng.random()))   # invalid: x2 < x1
    rng.shuffle(det_rows)
    excluded = rng.sample(keys, 3) + [("vid9", 1500)]
    return gt_rows, det_rows, excluded


# ----------------------------------------------------------------------------- AVA
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("capacity", [50, 6, 0])
def test_ava_map_matches_reference_on_random_cases(tmp_path, seed, capacity):
    gt_rows, det_rows, excluded = _random_case(seed)
    paths = _files(tmp_path, gt_rows, det_rows, excluded)
    ours = ava_frame_map(*paths, max_detections_per_image=capacity)
    rounded = [(*r[:2], *(float(f"{c:.6f}") for c in r[2:6]), *r[6:]) for r in det_rows]
    rounded_gt = [(*r[:2], *(float(f"{c:.6f}") for c in r[2:6]), *r[6:]) for r in gt_rows]
    reference = reference_ava_map(rounded_gt, rounded, set(NAMES), set(excluded), capacity)
    assert ours["mAP"] == pytest.approx(reference, abs=1e-6)
    assert 0.0 < ours["mAP"] < 1.0
    assert ours["skipped_gt_rows_unknown_action"] == sum(r[6] not in NAMES for r in gt_rows)
    if capacity == 0:
        invalid = [r for r in rounded if r[6] in NAMES and (r[0], r[1]) not in excluded
                   and (r[4] <= r[2] or r[5] <= r[3])]
        assert ours["invalid_detection_boxes"] == len(invalid) >= 1


def _box_rows(key, boxes, action, scores=None):
    return [(key[0], key[1], *box, action, *(() if scores is None else (scores[i],)))
            for i, box in enumerate(boxes)]


A, B, C = (0.1, 0.1, 0.4, 0.5), (0.5, 0.2, 0.9, 0.9), (0.0, 0.6, 0.3, 0.95)


def test_ava_perfect_detector_scores_one(tmp_path):
    gt = _box_rows(("v", 902), [A, B], 1) + _box_rows(("v", 903), [C], 2) \
        + _box_rows(("w", 902), [A], 4)
    det = [(*row, 0.9) for row in gt]
    result = ava_frame_map(*_files(tmp_path, gt, det))
    assert result["mAP"] == 1.0
    assert result["per_class"]["stand"] == 1.0 and math.isnan(result["per_class"]["talk to"])
    assert result["num_classes_evaluated"] == 3


def test_ava_false_positive_ranked_first(tmp_path):
    gt = _box_rows(("v", 902), [A, B], 1)
    det = _box_rows(("v", 902), [C, A, B], 1, scores=[0.9, 0.8, 0.7])
    # precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> envelope 2/3 on both halves
    assert ava_frame_map(*_files(tmp_path, gt, det))["mAP"] == pytest.approx(2 / 3)


def test_ava_duplicates_are_false_positives(tmp_path):
    gt = _box_rows(("v", 902), [A], 1) + _box_rows(("v", 903), [B], 1)
    det = (_box_rows(("v", 902), [A, A], 1, scores=[0.9, 0.8])
           + _box_rows(("v", 903), [B], 1, scores=[0.7]))
    # TP, FP (duplicate), TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    assert ava_frame_map(*_files(tmp_path, gt, det))["mAP"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ava_detection_only_looks_at_its_best_ground_truth(tmp_path):
    # Official rule: a detection whose highest-IoU box is already claimed is a false
    # positive even when another box overlaps it enough.
    first, second = (0.1, 0.1, 0.5, 0.5), (0.14, 0.1, 0.54, 0.5)
    near_first = (0.11, 0.1, 0.51, 0.5)
    assert box_iou(np.array([near_first]), np.array([second]))[0, 0] > 0.5
    gt = _box_rows(("v", 902), [first, second], 1)
    det = _box_rows(("v", 902), [first, near_first], 1, scores=[0.9, 0.8])
    assert ava_frame_map(*_files(tmp_path, gt, det))["mAP"] == pytest.approx(0.5)


def test_ava_excluded_timestamps_leave_both_files(tmp_path):
    gt = _box_rows(("v", 902), [A], 1) + _box_rows(("v", 905), [B], 1)
    det = _box_rows(("v", 902), [A], 1, [0.5]) + _box_rows(("v", 905), [C], 1, [0.9])
    # false positive first, then one of the two boxes found: AP = 1/2 * 1/2
    assert ava_frame_map(*_files(tmp_path, gt, det))["mAP"] == pytest.approx(0.25)
    result = ava_frame_map(*_files(tmp_path, gt, det, excluded=[("v", 905)]))
    assert result["mAP"] == 1.0 and result["groundtruth_keyframes"] == 1


def test_ava_detections_without_ground_truth_keyframe_are_false_positives(tmp_path):
    gt = _box_rows(("v", 902), [A], 1)
    det = _box_rows(("v", 902), [A], 1, [0.5]) + _box_rows(("u", 1000), [A], 1, [0.9])
    assert ava_frame_map(*_files(tmp_path, gt, det))["mAP"] == pytest.approx(0.5)


def test_ava_unknown_action_ids_are_counted_and_skipped(tmp_path):
    gt = _box_rows(("v", 902), [A], 1) + _box_rows(("v", 902), [B], 99)
    det = _box_rows(("v", 902), [A], 1, [0.5]) + _box_rows(("v", 902), [B, C], 3, [0.9, 0.8])
    result = ava_frame_map(*_files(tmp_path, gt, det))
    assert result["mAP"] == 1.0
    assert result["skipped_gt_rows_unknown_action"] == 1
    assert result["skipped_detection_rows_unknown_action"] == 2


def test_ava_keeps_the_top_detections_of_each_keyframe(tmp_path):
    gt = _box_rows(("v", 902), [A], 1)
    det = _box_rows(("v", 902), [C] * 50 + [A], 1, scores=[0.9] * 50 + [0.1])
    assert ava_frame_map(*_files(tmp_path, gt, det))["mAP"] == 0.0        # official cap 50
    result = ava_frame_map(*_files(tmp_path, gt, det), max_detections_per_image=0)
    assert result["mAP"] == pytest.approx(1 / 51) and result["capped_detections"] == 0


def test_ava_class_with_ground_truth_but_no_detection_scores_zero(tmp_path):
    gt = _box_rows(("v", 902), [A], 1) + _box_rows(("v", 902), [B], 2)
    det = _box_rows(("v", 902), [A], 1, [0.5])
    result = ava_frame_map(*_files(tmp_path, gt, det))
    assert result["per_class"]["sit"] == 0.0 and result["mAP"] == 0.5


@pytest.mark.parametrize("row, message", [
    (("v", "0902", "0.1", "0.1", "0.5"), r"gt.csv:2: expected 7 or 8 columns"),
    (("v", "09x2", "0.1", "0.1", "0.5", "0.5", "1"), r"gt.csv:2: timestamp"),
    (("v", "0902", "0.1", "0.1", "1.5", "0.5", "1"), r"gt.csv:2: .*outside the frame"),
    (("v", "0902", "0.1", "0.1", "abc", "0.5", "1"), r"gt.csv:2: unreadable number"),
    (("v", "0902", "0.5", "0.1", "0.5", "0.5", "1"), r"gt.csv:2: empty ground-truth box"),
])
def test_ava_malformed_lines_name_file_and_line(tmp_path, row, message):
    gt = [("v", 902, *A, 1), row]
    with pytest.raises(ValueError, match=message):
        ava_frame_map(*_files(tmp_path, gt, []))


def test_ava_labelmap_variants(tmp_path):
    path = tmp_path / "full.pbtxt"
    path.write_text('label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n'
                    '  label_type: PERSON_MOVEMENT\n}\nitem { name: "ride" id: 3 }\n')
    assert read_ava_labelmap(path) == {1: "bend/bow (at the waist)", 3: "ride"}
    path.write_text('item {\n  name: "x"\n}\n')
    with pytest.raises(ValueError, match=r"full.pbtxt:1: label-map item without"):
        read_ava_labelmap(path)
    with pytest.raises(FileNotFoundError, match="missing.pbtxt"):
        read_ava_labelmap(tmp_path / "missing.pbtxt")


def test_ava_no_ground_truth_is_an_error(tmp_path):
    gt = _box_rows(("v", 902), [A], 99)
    with pytest.raises(ValueError, match="no ground-truth box"):
        ava_frame_map(*_files(tmp_path, gt, []))


# ----------------------------------------------------------------------------- AP rules
def test_voc_and_trapezoid_average_precision_by_hand():
    # false positive then true positive, one ground truth
    precision, recall = np.array([0.0, 0.5]), np.array([0.0, 1.0])
    assert voc_average_precision(precision, recall) == pytest.approx(0.5)
    assert trapezoid_average_precision(precision, recall) == pytest.approx(0.25)
    assert voc_average_precision(np.array([]), np.array([])) == 0.0


def test_box_iou_continuous_and_pixel_conventions():
    a, b = np.array([[0, 0, 9, 9]]), np.array([[0, 0, 9, 4]])
    assert box_iou(a, b)[0, 0] == pytest.approx(36 / 81)
    assert box_iou(a, b, pixel_boxes=True)[0, 0] == pytest.approx(50 / 100)


# ----------------------------------------------------------------------------- UCF101-24
def _tube(first, last, box):
    return np.array([[f, *box] for f in range(first, last + 1)], dtype=float)


GT_TUBES = {"v1": {0: [_tube(1, 2, (10, 10, 50, 50))]},
            "v2": {0: [_tube(1, 1, (0, 0, 20, 20))], 1: [_tube(3, 4, (5, 5, 30, 40))]}}


def test_frame_map_by_hand():
    perfect = [(v, int(row[0]), label, 0.9, *row[1:])
               for v, labels in GT_TUBES.items() for label, tubes in labels.items()
               for tube in tubes for row in tube]
    assert frame_map(GT_TUBES, perfect)["mAP"] == 1.0
    # class 0 (3 boxes): a false positive ranked first -> precision 0, 1/2, 2/3, 3/4 at recall
    # 0, 1/3, 2/3, 1 -> VOC AP 3/4; class 1 perfect
    noisy = perfect + [("v1", 1, 0, 0.95, 100, 100, 120, 120)]
    result = frame_map(GT_TUBES, noisy)
    assert result["per_class"] == {0: pytest.approx(0.75), 1: 1.0}
    assert result["mAP"] == pytest.approx(0.875)
    # trapezoids from (0, 1): 0 + (1/3)(1/2+0)/2 + (1/3)(2/3+1/2)/2 + (1/3)(3/4+2/3)/2
    act = frame_map(GT_TUBES, noisy, convention="act")["per_class"][0]
    assert act == pytest.approx((0.5 + 7 / 6 + 17 / 12) / 6)


def test_frame_map_conventions_differ_in_iou_and_matching():
    gt = {"v": {0: [_tube(1, 1, (0, 0, 9, 9))]}}
    half = [("v", 1, 0, 0.9, 0, 0, 9, 4)]           # continuous IoU 0.44, pixel IoU 0.5
    assert frame_map(gt, half)["mAP"] == 0.0
    assert frame_map(gt, half, convention="act")["mAP"] == 1.0


def test_frame_map_rejects_detections_outside_the_evaluated_videos():
    with pytest.raises(ValueError, match="'v3'"):
        frame_map(GT_TUBES, [("v3", 1, 0, 0.5, 0, 0, 1, 1)])
    with pytest.raises(ValueError, match="'v2'"):
        frame_map(GT_TUBES, [("v2", 1, 0, 0.5, 0, 0, 20, 20)], videos=["v1"])
    with pytest.raises(ValueError, match="x2 < x1"):
        frame_map(GT_TUBES, [("v1", 1, 0, 0.5, 10, 0, 5, 1)])
    only_v1 = frame_map(GT_TUBES, [("v1", f, 0, 0.5, 10, 10, 50, 50) for f in (1, 2)],
                        videos=["v1"])
    assert only_v1["mAP"] == 1.0 and only_v1["num_classes_evaluated"] == 1


def test_tube_iou_by_hand():
    a = _tube(1, 4, (0, 0, 10, 10))
    assert tube_iou(a, a) == 1.0
    assert tube_iou(a, _tube(3, 6, (0, 0, 10, 10))) == pytest.approx(2 / 6)
    assert tube_iou(a, _tube(3, 6, (0, 0, 10, 5))) == pytest.approx(1 / 6)
    assert tube_iou(a, _tube(5, 6, (0, 0, 10, 10))) == 0.0


def test_video_map_by_hand():
    gt = {"v": {0: [_tube(1, 4, (0, 0, 10, 10))]}}
    detected = [("v", 0, 0.95, _tube(3, 6, (0, 0, 10, 10))),     # tube IoU 1/3
                ("v", 0, 0.90, _tube(1, 4, (0, 0, 10, 10)))]     # exact
    result = video_map(gt, detected)
    # @0.2 the first tube claims the ground truth, the exact one is a duplicate -> AP 1
    # @0.5 the first is a false positive, the exact one a true positive -> VOC AP 1/2
    assert result["mAP@0.2"] == 1.0 and result["mAP@0.5"] == pytest.approx(0.5)
    assert result["per_class"][0.5] == {0: pytest.approx(0.5)}


def test_link_tubes_follows_overlapping_boxes():
    per_frame = {
        1: np.array([[0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.5]]),
        2: np.array([[1, 0, 11, 10, 0.7], [51, 50, 61, 60, 0.6], [0, 0, 10, 10, 0.2]]),
        3: np.array([[2, 0, 12, 10, 0.8]]),
        4: np.array([[52, 50, 62, 60, 0.4]]),
    }
    tubes = link_tubes(per_frame, iou_threshold=0.5)
    scores = [score for score, _ in tubes]
    frames = [tube[:, 0].tolist() for _, tube in tubes]
    # tube 1 takes the best overlapping box (0.7, not 0.2); tube 2 ends at frame 2; the box
    # left in frame 2 and the one in frame 4 start their own tubes
    assert frames == [[1, 2, 3], [1, 2], [4], [2]]
    assert scores == pytest.approx([0.8, 0.55, 0.4, 0.2])
    assert tubes[0][1][:, 1].tolist() == [0, 1, 2]
    assert len(link_tubes(per_frame, iou_threshold=0.5, min_length=2)) == 2


def test_linked_perfect_frame_detections_give_video_map_one():
    rows = [(v, int(r[0]), label, 0.8, *r[1:]) for v, labels in GT_TUBES.items()
            for label, tubes in labels.items() for tube in tubes for r in tube]
    result = video_map(GT_TUBES, tubes_from_detections(rows))
    assert result["mAP@0.2"] == 1.0 and result["mAP@0.5"] == 1.0


# ----------------------------------------------------------------------------- CLI
def test_cli_ava_map_prints_map_and_per_class(tmp_path, capsys):
    from vidssl.cli import main

    gt = _box_rows(("v", 902), [A, B], 1) + _box_rows(("v", 903), [C], 2)
    det = _box_rows(("v", 902), [C, A, B], 1, scores=[0.9, 0.8, 0.7]) \
        + _box_rows(("v", 903), [C], 2, [0.5]) + _box_rows(("v", 903), [C], 5, [0.5])
    gt_path, det_path, labelmap = _files(tmp_path, gt, det, excluded=[("v", 999)])[:3]
    code = main(["evaluate", "ava-map", "--groundtruth", str(gt_path), "--detections",
                 str(det_path), "--labelmap", str(labelmap), "--excluded",
                 str(tmp_path / "excluded.csv")])
    out = capsys.readouterr().out
    assert code == 0
    assert "AP@0.5IOU stand: 0.6667" in out and "AP@0.5IOU sit: 1.0000" in out
    assert "AP@0.5IOU walk: no ground truth" in out
    assert "skipped_detection_rows_unknown_action=1" in out
    assert out.strip().endswith("mAP@0.5IOU: 0.8333 (2 classes)")


def test_cli_ava_map_reports_bad_files_without_traceback(tmp_path, capsys):
    from vidssl.cli import main

    gt_path, det_path, labelmap = _files(tmp_path, [("v", 902, *A, 1), ("v", "x")], [])
    code = main(["evaluate", "ava-map", "--groundtruth", str(gt_path), "--detections",
                 str(det_path), "--labelmap", str(labelmap)])
    assert code == 2
    assert "gt.csv:2: timestamp must be an integer" in capsys.readouterr().err


def test_written_detections_round_trip_through_the_evaluator(tmp_path):
    from vidssl.evaluation.detection import write_ava_detections

    gt = _box_rows(("v", 902), [A, B], 1) + _box_rows(("v", 903), [C], 2)
    _, _, labelmap = _files(tmp_path, gt, [])
    scores = np.zeros((3, 80))
    scores[[0, 1], 0] = 0.9                         # action 1 on the two boxes of 0902
    scores[2, 1] = 0.8                              # action 2 on the box of 0903
    scores[2, 0] = 0.95                             # a confident false positive of action 1
    path = tmp_path / "written.csv"
    rows = write_ava_detections(path, [("v", 902), ("v", 902), ("v", 903)], [A, B, C], scores,
                                action_ids=NAMES)
    assert rows == 3 * len(NAMES)
    assert path.read_text().splitlines()[0] == "v,0902,0.100000,0.100000,0.400000,0.500000,1,0.900000"
    result = ava_frame_map(tmp_path / "gt.csv", path, labelmap)
    assert result["per_class"]["sit"] == 1.0
    assert result["per_class"]["stand"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="normalized"):
        write_ava_detections(path, [("v", 902)], [(0.1, 0.1, 1.2, 0.5)], scores[:1])
