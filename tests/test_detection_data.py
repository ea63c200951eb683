"""AVA and UCF101-24 adapters on small official-format fixtures, bad input included."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidssl.data import build_dataset
from vidssl.data.check import check_dataset
from vidssl.data.datasets import AnnotationError
from vidssl.data.datasets.keyframes import centered_clip, crop_boxes, flip_boxes
from vidssl.io import VideoReadError

torch.set_num_threads(1)

FPS, FRAMES = 4, 24  # fixture videos: 24 frames at 4 fps = seconds 900..905
LABELMAP = 'label {\n  name: "stand"\n  label_id: 1\n}\nlabel {\n  name: "walk"\n  label_id: 3\n}\n'


def _frames(folder: Path, name: str, count: int, height=24, width=32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):  # frame i is a flat grey of value 10 * i: the clip's order shows
        Image.fromarray(np.full((height, width, 3), 10 * i, np.uint8)).save(
            folder / name.format(i + 1), quality=100)


def make_ava(root: Path, gt_rows: list[str], det_rows: list[str] | None = None,
             train_det_rows: list[str] | None = None) -> Path:
    ann = root / "annotations"
    (ann / "person_box_67091280_iou90").mkdir(parents=True, exist_ok=True)
    for video in ("vidA", "vidB"):
        _frames(root / "frames" / video, video + "_{:06d}.jpg", FRAMES)
    (ann / "ava_train_v2.2.csv").write_text("\n".join(gt_rows) + "\n")
    (ann / "ava_val_v2.2.csv").write_text("\n".join(gt_rows) + "\n")
    (ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").write_text(LABELMAP)
    (ann / "ava_val_excluded_timestamps_v2.2.csv").write_text("vidB,904\n")
    det = ann / "person_box_67091280_iou90"
    (det / "ava_detection_val_boxes_and_labels.csv").write_text(
        "\n".join(det_rows or []) + "\n")
    if train_det_rows is not None:
        (det / "ava_detection_train_boxes_and_labels_include_negative_v2.2.csv").write_text(
            "\n".join(train_det_rows) + "\n")
    return root


GT = ["vidA,902,0.1,0.2,0.5,0.9,1,0", "vidA,902,0.1,0.2,0.5,0.9,3,0",
      "vidA,902,0.6,0.1,0.9,0.8,3,1", "vidA,903,0.1,0.2,0.5,0.9,1,0",
      "vidB,904,0.2,0.2,0.4,0.6,1,0"]
DET = ["vidA,902,0.11,0.2,0.5,0.9,,0.95", "vidA,902,0.6,0.1,0.9,0.8,,0.5",
       "vidB,904,0.2,0.2,0.4,0.6,,0.99", "vidB,905,0.0,0.0,0.3,0.3,,0.97"]


def _ava(root, split, **opts):
    opts = {"num_frames": 4, "frame_stride": 2, "size": 16, "fps": FPS, "mode": "test",
            "index_workers": 1, **opts}
    return build_dataset("ava", root, split, **opts)


def test_ava_train_merges_rows_per_box_and_adds_matched_detections(tmp_path):
    root = make_ava(tmp_path, GT, DET, train_det_rows=[
        "vidA,902,0.1,0.2,0.5,0.91,,0.95",   # IoU ~0.99 with the first GT box: added
        "vidA,902,0.1,0.2,0.3,0.5,,0.95",    # IoU < 0.9: dropped
        "vidA,903,0.1,0.2,0.5,0.9,,0.5"])    # score under 0.9: dropped
    ds = _ava(root, "train", mode="train", seed=0)
    keys = [(r.meta["video"], r.meta["timestamp"]) for r in ds.records]
    assert keys == [("vidA", 902), ("vidA", 903), ("vidB", 904)]
    first = ds.records[0].meta
    assert first["labels"] == ((0, 2), (2,), (0, 2))  # action ids 1, 3 -> classes 0, 2
    assert ds.skipped["detected_boxes_added"] == 1
    assert first["center"] == (902 - 900) * FPS  # file _000009.jpg
    assert ds.num_classes == 80 and ds.class_names[2] == "walk" and ds.task == "detection"
    sample = ds[0]
    assert sample["video"].shape == (3, 4, 16, 16)
    assert sample["boxes"].shape == (3, 4) and sample["box_mask"].tolist() == [True] * 3
    assert sample["box_labels"][0, [0, 2]].tolist() == [1.0, 1.0]
    assert sample["label"].sum() == 2


def test_ava_test_uses_detected_boxes_over_threshold_and_counts_empty_keyframes(tmp_path):
    root = make_ava(tmp_path, GT, DET)
    ds = _ava(root, "test")
    keys = [(r.meta["video"], r.meta["timestamp"]) for r in ds.records]
    # vidA@903 has no detection >= 0.9: skipped and counted; vidB@905 has no GT: still tested
    assert keys == [("vidA", 902), ("vidB", 904), ("vidB", 905)]
    assert ds.skipped["keyframes_without_boxes"] == 1
    assert [len(r.meta["boxes"]) for r in ds.records] == [1, 1, 1]
    assert ds.evaluation["excluded"].endswith("ava_val_excluded_timestamps_v2.2.csv")
    sample = ds[0]
    # test view: short side to 16, whole 24x32 frame -> 16x21; boxes stay as annotated
    assert sample["video"].shape == (3, 4, 16, 21)
    assert torch.allclose(sample["boxes"][0], torch.tensor([0.11, 0.2, 0.5, 0.9]))
    assert torch.allclose(sample["source_boxes"], sample["boxes"])
    gt_boxes = _ava(root, "test", test_boxes="gt")
    assert len(gt_boxes) == 3 and len(gt_boxes.records[0].meta["boxes"]) == 2


def test_ava_clip_is_centred_on_the_keyframe_and_clamped(tmp_path):
    assert centered_clip(8, 4, 2, 24).tolist() == [4, 6, 8, 10]
    assert centered_clip(1, 4, 2, 24).tolist() == [0, 0, 1, 3]
    assert centered_clip(22, 4, 2, 24).tolist() == [18, 20, 22, 23]
    root = make_ava(tmp_path, GT, DET)
    ds = _ava(root, "test", mean=None)
    grey = ds[0]["video"][0, :, 0, 0] * 255  # frame i has value 10 * i
    assert torch.allclose(grey, torch.tensor([40.0, 60.0, 80.0, 100.0]), atol=2)


def test_box_transforms_follow_the_pixels():
    boxes = torch.tensor([[0.25, 0.5, 0.75, 1.0]])
    # crop the right half of a 100x200 frame: x 100..200 -> the box keeps its right half
    cropped = crop_boxes(boxes, (0, 100, 100, 100), 100, 200)
    assert torch.allclose(cropped, torch.tensor([[0.0, 0.5, 0.5, 1.0]]))
    assert torch.allclose(flip_boxes(boxes), torch.tensor([[0.25, 0.5, 0.75, 1.0]]))
    assert torch.allclose(flip_boxes(torch.tensor([[0.0, 0.0, 0.2, 1.0]])),
                          torch.tensor([[0.8, 0.0, 1.0, 1.0]]))


def test_ava_train_crop_and_flip_move_boxes_with_pixels(tmp_path):
    root = make_ava(tmp_path, ["vidA,902,0.0,0.0,0.5,1.0,1,0"], DET)
    frames = root / "frames" / "vidA"
    for i in range(FRAMES):  # left half white, right half black
        image = np.zeros((24, 32, 3), np.uint8)
        image[:, :16] = 255
        Image.fromarray(image).save(frames / f"vidA_{i + 1:06d}.jpg", quality=100)
    ds = _ava(root, "train", mode="train", seed=1, mean=None, jitter_scales=[16, 16], size=16)
    for index in range(6):
        ds.set_epoch(index)
        sample = ds[0]
        x1, _, x2, _ = sample["boxes"][0].tolist()
        columns = sample["video"][0, 0].mean(dim=0)  # brightness per column
        inside = columns[int(np.ceil(x1 * 16)):int(x2 * 16)]
        outside = torch.cat([columns[:int(x1 * 16)], columns[int(np.ceil(x2 * 16)):]])
        assert inside.numel() and inside.min() > 0.9
        assert outside.numel() == 0 or outside.max() < 0.1


def test_ava_bad_input(tmp_path):
    root = make_ava(tmp_path / "a", GT + ["vidA,903,-0.1,0.2,1.2,0.9,3,1"], DET)
    ds = _ava(root, "train", mode="train")
    assert ds.skipped["boxes_clipped"] == 1
    assert ds.records[1].meta["boxes"][1] == (0.0, 0.2, 1.0, 0.9)
    bad_id = make_ava(tmp_path / "b", GT + ["vidA,903,0.1,0.2,0.5,0.9,81,1"], DET)
    with pytest.raises(AnnotationError, match=r"ava_train_v2.2.csv:6: action id 81"):
        _ava(bad_id, "train")
    short = make_ava(tmp_path / "c", GT + ["vidA,903,0.1,0.2,0.5"], DET)
    with pytest.raises(AnnotationError, match=r"ava_train_v2.2.csv:6: expected"):
        _ava(short, "train")
    missing = make_ava(tmp_path / "d", GT + ["vidC,902,0.1,0.2,0.5,0.9,1,0"],
                       DET + ["vidC,902,0.1,0.2,0.5,0.9,,0.99"])
    ds = _ava(missing, "test")
    vid_c = next(i for i, r in enumerate(ds.records) if r.meta["video"] == "vidC")
    with pytest.raises(VideoReadError, match=r"frames/vidC"):
        ds[vid_c]
    late = make_ava(tmp_path / "e", GT + ["vidA,907,0.1,0.2,0.5,0.9,1,0"], DET)
    ds = _ava(late, "train", mode="train", seed=0)
    past = next(i for i, r in enumerate(ds.records) if r.meta["timestamp"] == 907)
    assert ds[past]["bad"] == 1  # train: replaced by another keyframe and counted
    ok, report = check_dataset("ava", missing, splits=["test"], workers=1, fps=FPS)
    assert not ok and "vidC" in report and "missing" in report


def make_ucf24(root: Path, with_frames: bool = True) -> Path:
    videos = ["Basketball/v_Basketball_g01_c01", "Diving/v_Diving_g02_c01"]
    tube_a = np.array([[f, 10, 5, 30, 20] for f in range(1, 9)], dtype=np.float32)
    tube_b = np.array([[f, 0, 0, 40, 30] for f in range(3, 7)], dtype=np.float32)  # x2 > width
    data = {"labels": ["Basketball", "Diving"],
            "gttubes": {videos[0]: {0: [tube_a]}, videos[1]: {1: [tube_b, tube_a[:4]]}},
            "nframes": {videos[0]: 10, videos[1]: 10},
            "resolution": {videos[0]: (24, 32), videos[1]: (24, 32)},
            "train_videos": [[videos[0]]], "test_videos": [[videos[1]]]}
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "UCF101v2-GT.pkl", "wb") as handle:
        pickle.dump(data, handle, protocol=2)
    if with_frames:
        for video in videos:
            _frames(root / "rgb-images" / video, "{:05d}.jpg", 10)
    return root


def test_ucf24_samples_annotated_frames_with_their_tubes(tmp_path):
    root = make_ucf24(tmp_path)
    opts = {"num_frames": 4, "frame_stride": 1, "size": 16, "mode": "test", "index_workers": 1}
    train = build_dataset("ucf24", root, "train", keyframe_stride=2, **opts)
    assert [r.meta["timestamp"] for r in train.records] == [1, 3, 5, 7]
    assert train.records[0].meta["boxes"][0] == pytest.approx((10 / 32, 5 / 24, 30 / 32,
                                                               20 / 24))
    test = build_dataset("ucf24", root, "test", **opts)
    frames = {r.meta["timestamp"]: r.meta for r in test.records}
    assert sorted(frames) == [1, 2, 3, 4, 5, 6]
    assert frames[3]["labels"] == ((1,), (1,)) and frames[5]["labels"] == ((1,),)
    assert test.skipped["boxes_clipped"] == 4  # tube_b's x2 = 40 > width 32 on 4 frames
    gt = test.evaluation["gt_tubes"]["Diving/v_Diving_g02_c01"][1][0]
    assert len(gt) == 8 and gt[:, 3].max() == 32  # clipped to the frame
    assert test[0]["video"].shape == (3, 4, 16, 21)


def test_ucf24_bad_input(tmp_path):
    root = make_ucf24(tmp_path / "a")
    with open(root / "UCF101v2-GT.pkl", "rb") as handle:
        data = pickle.load(handle)
    data["gttubes"]["Basketball/v_Basketball_g01_c01"] = {
        30: [np.array([[1, 0, 0, 5, 5]], dtype=np.float32)]}
    with open(root / "UCF101v2-GT.pkl", "wb") as handle:
        pickle.dump(data, handle)
    with pytest.raises(AnnotationError, match=r"UCF101v2-GT.pkl: video .* label 30"):
        build_dataset("ucf24", root, "train", index_workers=1)
    del data["nframes"]
    with open(root / "UCF101v2-GT.pkl", "wb") as handle:
        pickle.dump(data, handle)
    with pytest.raises(AnnotationError, match=r"missing key\(s\) \['nframes'\]"):
        build_dataset("ucf24", root, "train", index_workers=1)
    no_frames = make_ucf24(tmp_path / "b", with_frames=False)
    ok, report = check_dataset("ucf24", no_frames, workers=1)
    assert not ok and "v_Basketball_g01_c01.avi" in report
