"""Dataset adapters on tiny videos written in each official layout."""

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vidssl.data import AnnotationError, build_dataset, check_dataset, transforms
from vidssl.data.metadata import INDEX_FILE, index_file

torch.set_num_threads(1)

SIZE = 32
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
SMALL = {"num_frames": 4, "size": 16, "seed": 0}


def frame_value(i):
    return 12 * i + 8  # frame i is flat grey at this level, so samples reveal their frames


def write_video(path, num_frames=12, fps=25, codec="mpeg4"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for i in range(num_frames):
            image = np.full((SIZE, SIZE, 3), frame_value(i), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def write_frames(folder, pattern, num_frames=12):
    os.makedirs(folder, exist_ok=True)
    for i in range(num_frames):
        image = np.full((SIZE, SIZE, 3), frame_value(i), np.uint8)
        Image.fromarray(image).save(os.path.join(folder, pattern % (i + 1)), quality=100)


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def frame_indices(video):
    """Recover source frame indices from a normalized test-mode clip [C,T,H,W]."""
    levels = ((video * STD + MEAN).mean(dim=(0, 2, 3)) * 255 - 8) / 12
    return levels.round().long().tolist()


# ------------------------------------------------------------------ layouts


def make_ucf101(root):
    write_text(root / "ucfTrainTestlist/classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    write_text(
        root / "ucfTrainTestlist/trainlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 2\n"
        "Archery/v_Archery_g09_c01.avi 2\n",
    )
    write_text(
        root / "ucfTrainTestlist/testlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n",
    )
    for name in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01",
        "Archery/v_Archery_g08_c01",
        "Archery/v_Archery_g09_c01",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01",
        "Archery/v_Archery_g01_c01",
    ):
        write_video(root / f"UCF-101/{name}.avi")
    return {"train": [0, 1, 1], "test": [0, 1]}, 2


def make_hmdb51(root):
    splits = "testTrainMulti_7030_splits"
    write_text(root / f"{splits}/brush_hair_test_split1.txt", "a.avi 1\nb.avi 2\nc.avi 0\n")
    write_text(root / f"{splits}/cartwheel_test_split1.txt", "d.avi 1 \ne.avi 2\n")
    for cls, name in [
        ("brush_hair", "a"),
        ("brush_hair", "b"),
        ("cartwheel", "d"),
        ("cartwheel", "e"),
    ]:
        write_video(root / f"videos/{cls}/{name}.avi")
    return {"train": [0, 1], "test": [0, 1]}, 2


def make_kinetics400(root):
    header = "label,youtube_id,time_start,time_end,split\n"
    write_text(
        root / "train.csv", header + "air drumming,abc,14,24,train\nabseiling,xyz,0,10,train\n"
    )
    write_text(root / "val.csv", header + "abseiling,qqq,3,13,val\n")
    write_video(root / "train/air drumming/abc_000014_000024.mp4")
    write_video(root / "train/abseiling/xyz_000000_000010.mp4")
    write_video(root / "val/abseiling/qqq_000003_000013.mp4")
    return {"train": [1, 0], "test": [0]}, 2  # classes sorted: abseiling, air drumming


def make_ssv2(root):
    write_text(
        root / "labels/something-something-v2-labels.json",
        json.dumps({"Holding something next to something": "1", "Pushing something": "0"}),
    )
    entries = [
        {
            "id": "1",
            "label": "x",
            "template": "Holding [something] next to [something]",
            "placeholders": ["a", "b"],
        },
        {"id": "2", "label": "y", "template": "Pushing [something]", "placeholders": ["c"]},
    ]
    write_text(root / "labels/something-something-v2-train.json", json.dumps(entries))
    write_text(root / "labels/something-something-v2-validation.json", json.dumps(entries[1:]))
    for vid in ("1", "2"):
        write_video(root / f"20bn-something-something-v2/{vid}.webm", codec="libvpx")
    return {"train": [1, 0], "test": [0]}, 2


def make_gym(root, labels=(0, 5, 7, 16, 80, 98)):
    lines = "".join(
        f"vid{i}_E_000001_000002_A_0003_0004.mp4 {label}\n" for i, label in enumerate(labels)
    )
    write_text(root / "annotations/gym99_train.txt", lines)
    write_text(root / "annotations/gym99_val.txt", lines)
    write_text(root / "annotations/gym288_train.txt", lines)
    write_text(root / "annotations/gym288_val.txt", lines)
    for i in range(len(labels)):
        write_video(root / f"videos/vid{i}_E_000001_000002_A_0003_0004.mp4")


def make_gym99(root):
    make_gym(root)
    labels = [0, 5, 7, 16, 80, 98]
    return {"train": labels, "test": labels}, 99


def make_gym288(root):
    make_gym(root)
    labels = [0, 5, 7, 16, 80, 98]
    return {"train": labels, "test": labels}, 288


def make_gym_vault(root):
    make_gym(root)
    return {"train": [0, 5], "test": [0, 5]}, 6


def make_gym_floor(root):
    make_gym(root)
    return {"train": [1, 10], "test": [1, 10]}, 35


def make_gym_fx_s1(root):
    make_gym(root)
    return {"train": [1, 10], "test": [1, 10]}, 11


def make_gym_ub_s1(root):
    make_gym(root)
    return {"train": [6], "test": [6]}, 15


def make_ntu60(root):
    lists = root / "ntu_60_cross_subject_TrainTestlist"
    write_text(lists / "classInd.txt", "1 drink_water\n2 eat_meal\n")
    write_text(
        lists / "trainlist01.txt",
        "eat_meal/S001C001P001R001A002_rgb.avi\ndrink_water/S001C001P001R001A001_rgb.avi\n",
    )
    write_text(lists / "testlist01.txt", "drink_water/S001C001P003R001A001_rgb.avi\n")
    for name in (
        "eat_meal/S001C001P001R001A002_rgb",
        "drink_water/S001C001P001R001A001_rgb",
        "drink_water/S001C001P003R001A001_rgb",
    ):
        write_video(root / f"videos/{name}.avi")
    return {"train": [1, 0], "test": [0]}, 2


EPIC_HEADER = (
    "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,"
    "stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,"
    "all_nouns,all_noun_classes\n"
)


def epic_row(pid, video, start, stop, verb, verb_class):
    times = "00:00:00.00,00:00:00.04,00:00:00.40"
    return (
        f"{video}_0,{pid},{video},{times},{start},{stop},{verb} x,{verb},{verb_class},x,1,[],[]\n"
    )


def make_epic100_verbs(root):
    write_text(
        root / "annotations/EPIC_100_train.csv",
        EPIC_HEADER
        + epic_row("P01", "P01_01", 3, 10, "take", 0)
        + epic_row("P01", "P01_01", 11, 20, "put", 1),
    )
    write_text(
        root / "annotations/EPIC_100_validation.csv",
        EPIC_HEADER + epic_row("P02", "P02_01", 5, 12, "put", 1),
    )
    write_video(root / "videos/P01/P01_01.MP4", num_frames=20)
    write_video(root / "videos/P02/P02_01.MP4", num_frames=20)
    return {"train": [0, 1], "test": [1]}, 2


CHARADES_HEADER = (
    "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
)


def make_charades(root):
    write_text(
        root / "Charades_v1_train.csv",
        CHARADES_HEADER
        + 'AAA01,s1,Kitchen,6,7,Yes,x,cup,d,"c002 0.00 0.20;c000 0.30 0.45",0.48\n'
        + "AAA02,s1,Kitchen,6,7,Yes,x,cup,d,,0.48\n",
    )
    write_text(
        root / "Charades_v1_test.csv",
        CHARADES_HEADER + "BBB01,s2,Hall,6,7,Yes,x,cup,d,c001 0.00 0.40,0.48\n",
    )
    write_video(root / "Charades_v1_480/AAA01.mp4")
    write_video(root / "Charades_v1_480/AAA02.mp4")
    write_frames(root / "Charades_v1_rgb/BBB01", "BBB01-%06d.jpg")
    return {"train": [(0, 2), ()], "test": [(1,)]}, 157


def write_ucfrep_mat(path, start, end, bounds):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scipy.io.savemat(
        path,
        {
            "label": {
                "duration": 20,
                "start_frame": start,
                "end_frame": end,
                "temporal_bound_num": len(bounds),
                "temporal_bound": np.array(bounds, dtype=np.float64).reshape(-1, 1),
            }
        },
    )


def make_ucfrep(root):
    # 1-based boundaries 3, 7, 11, 15 -> 3 cycles
    write_ucfrep_mat(root / "annotations/train/v_JumpingJack_g01_c01.mat", 2, 18, [3, 7, 11, 15])
    write_ucfrep_mat(root / "annotations/val/v_JumpingJack_g02_c01.mat", 1, 12, [2, 6, 10])
    write_video(root / "videos/JumpingJack/v_JumpingJack_g01_c01.avi", num_frames=20)
    write_frames(root / "imgs/val/JumpingJack/v_JumpingJack_g02_c01", "image_%05d.jpg")
    return {"train": [3], "test": [2]}, 1


def make_diving48(root):
    write_text(
        root / "Diving48_V2_train.json",
        json.dumps(
            [
                {"vid_name": "a_00001", "label": 2, "start_frame": 0, "end_frame": 12},
                {"vid_name": "b_00002", "label": 0, "start_frame": 0, "end_frame": 12},
            ]
        ),
    )
    write_text(
        root / "Diving48_V2_test.json",
        json.dumps([{"vid_name": "c_00003", "label": 1, "start_frame": 0, "end_frame": 12}]),
    )
    for name in ("a_00001", "b_00002", "c_00003"):
        write_video(root / f"rgb/{name}.mp4")
    return {"train": [2, 0], "test": [1]}, 3


def make_video_list(root):
    write_text(root / "train.txt", "clips/a.mp4 1\nclips/b.mp4 0\n")
    write_text(root / "test.txt", "clips/c.mp4 1\n")
    for name in "abc":
        write_video(root / f"clips/{name}.mp4")
    return {"train": [1, 0], "test": [1]}, 2


def make_video_folder(root):
    for split, cls, name in [("train", "dog", "a"), ("train", "cat", "b"), ("test", "dog", "c")]:
        write_video(root / f"{split}/{cls}/{name}.mp4")
    return {"train": [0, 1], "test": [1]}, 2  # classes sorted: cat, dog


def make_ava(root):
    ann = root / "annotations"
    write_text(ann / "ava_train_v2.2.csv",
               "vA,0900,0.1,0.1,0.5,0.9,1,0\nvB,0900,0.2,0.1,0.6,0.9,2,0\n"
               "vB,0900,0.2,0.1,0.6,0.9,3,0\n")
    write_text(ann / "ava_val_v2.2.csv", "vA,0900,0.1,0.1,0.5,0.9,2,0\n")
    write_text(ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
               'label {\n  name: "bend"\n  label_id: 1\n}\n')
    write_text(ann / "person_box_67091280_iou90" / "ava_detection_val_boxes_and_labels.csv",
               "vA,0900,0.1,0.1,0.5,0.9,,0.95\n")
    for video in ("vA", "vB"):
        os.makedirs(root / "frames" / video)
        for i in range(12):
            Image.fromarray(np.full((SIZE, SIZE, 3), frame_value(i), np.uint8)).save(
                root / "frames" / video / f"{video}_{i + 1:06d}.jpg")
    return {"train": [(0,), (1, 2)], "test": [()]}, 80  # test: detected boxes, no labels


def make_ucf24(root):
    import pickle

    videos = ["Run/v_Run_g01_c01", "Jump/v_Jump_g01_c01"]
    tube = np.array([[1, 2, 2, 20, 30], [2, 2, 2, 20, 30]], dtype=np.float32)
    data = {"labels": ["Run", "Jump"], "gttubes": {videos[0]: {0: [tube]}, videos[1]: {1: [tube]}},
            "nframes": dict.fromkeys(videos, 12), "resolution": dict.fromkeys(videos, (SIZE, SIZE)),
            "train_videos": [[videos[0]]], "test_videos": [[videos[1]]]}
    os.makedirs(root, exist_ok=True)
    (root / "UCF101v2-GT.pkl").write_bytes(pickle.dumps(data, protocol=2))
    for video in videos:
        write_video(root / f"videos/{video}.avi")
    return {"train": [(0,), (0,)], "test": [(1,), (1,)]}, 2


LAYOUTS = {
    name[5:]: fn
    for name, fn in globals().items()
    if name.startswith("make_") and name != "make_gym"
}


def test_every_dataset_name_has_a_layout_test():
    from vidssl.data import DATASETS

    assert sorted(LAYOUTS) == sorted(DATASETS)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_official_layout_loads_through_build_dataset(name, tmp_path):
    expected, num_classes = LAYOUTS[name](tmp_path)
    for split in ("train", "test"):
        ds = build_dataset(
            name, tmp_path, split, mode="train" if split == "train" else "test", **SMALL
        )
        assert ds.num_classes == num_classes == len(ds.class_names)
        assert len(ds) == len(expected[split])
        sample = ds[0]
        assert sample["video"].shape == (3, 4, 16, 16) and sample["video"].dtype == torch.float32
        assert sample["bad"] == 0 and sample["index"] == 0
        if ds.task in ("multilabel", "detection"):
            hot = [tuple(torch.nonzero(row).flatten().tolist()) for row in ds.targets]
            assert hot == expected[split]
            assert torch.equal(sample["label"], ds.targets[0])
        else:
            assert list(ds.targets) == expected[split]
            if ds.task == "classification":
                assert sample["label"] == expected[split][0]
    assert os.path.isfile(tmp_path / INDEX_FILE)  # metadata cached at the root


def test_split_aliases_map_to_the_official_split(tmp_path):
    make_ucf101(tmp_path)
    test = build_dataset("ucf101", tmp_path, "test", mode="test")
    for alias in ("val", "validation", "VAL"):
        assert build_dataset("ucf101", tmp_path, alias, mode="test").records == test.records
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        build_dataset("ucf101", tmp_path, "holdout")


def test_test_views_read_the_expected_frames_at_target_fps(tmp_path):
    make_ucf101(tmp_path)  # 12 frames at 25 fps
    ds = build_dataset(
        "ucf101", tmp_path, "test", mode="test", num_frames=3, size=16, target_fps=12.5, num_views=2
    )
    video = ds[0]["video"]
    assert video.shape == (2, 3, 3, 16, 16)
    # resampled timeline = frames 0, 2, ..., 10; views start at positions 0 and 3
    assert [frame_indices(v) for v in video] == [[0, 2, 4], [6, 8, 10]]
    reverse = build_dataset(
        "ucf101", tmp_path, "test", mode="test", num_frames=3, size=16, frame_stride=4, num_crops=3
    )
    views = reverse[0]["video"]
    assert views.shape == (3, 3, 3, 16, 16) and frame_indices(views[0]) == [1, 5, 9]


def test_epic_segments_read_only_their_frames(tmp_path):
    make_epic100_verbs(tmp_path)
    ds = build_dataset("epic100_verbs", tmp_path, "train", mode="test", num_frames=8, size=16)
    # 1-based inclusive frames 3..10 -> 0-based 2..9; 11..20 -> 10..19 (centred 8-frame clip)
    assert frame_indices(ds[0]["video"]) == list(range(2, 10))
    assert frame_indices(ds[1]["video"]) == list(range(11, 19))


def test_segment_sampling_spreads_over_the_video(tmp_path):
    make_ssv2(tmp_path)
    ds = build_dataset(
        "ssv2", tmp_path, "test", mode="test", num_frames=4, size=16, sampling="segments"
    )
    assert frame_indices(ds[0]["video"]) == [1, 4, 7, 10]  # middles of 4 segments of 3 frames


def test_ssv2_finds_re_encoded_copies(tmp_path):
    make_ssv2(tmp_path)
    for vid in ("1", "2"):
        os.replace(
            tmp_path / f"20bn-something-something-v2/{vid}.webm",
            tmp_path / f"20bn-something-something-v2/{vid}.mp4",
        )
    ds = build_dataset("ssv2", tmp_path, "train", **SMALL)
    assert ds.records[0].path.endswith("1.mp4") and ds[1]["bad"] == 0


def test_gym_subsets_reindex_label_ranges(tmp_path):
    make_gym(tmp_path, labels=(5, 6, 16, 17, 74, 88, 89))
    write_text(
        tmp_path / "annotations/gym99_categories.txt",
        "".join(f"Clabel: {i}; set: 1; Glabel: {i}; element {i}\n" for i in range(99)),
    )
    fx = build_dataset("gym_fx_s1", tmp_path, "train")
    assert fx.targets == [0, 10] and fx.class_names[0] == "element 6"
    ub = build_dataset("gym_ub_s1", tmp_path, "val")
    assert ub.targets == [0, 14] and ub.num_classes == 15
    assert build_dataset("gym_vault", tmp_path, "test").targets == [5]


def test_charades_clip_labels_and_frame_folders(tmp_path):
    make_charades(tmp_path)
    test = build_dataset("charades", tmp_path, "test", mode="test", **SMALL)
    assert test.records[0].path.endswith("Charades_v1_rgb/BBB01")
    assert test.records[0].meta["fps"] == 24.0
    # the action c000 spans 0.30-0.45 s; a centred 4-frame clip at 25 fps covers ~0.16-0.32 s
    clip = build_dataset("charades", tmp_path, "train", mode="test", clip_labels=True, **SMALL)
    label = clip[0]["label"]
    assert label.shape == (157,) and label[2] == 1 and label[0] == 1
    early = build_dataset(
        "charades", tmp_path, "train", mode="test", clip_labels=True, num_frames=2, size=16
    )
    assert early[0]["label"][0] == 1  # test targets stay video-level (clip-level: train only)
    inferred = build_dataset("charades", tmp_path, "train", num_classes="infer")
    assert inferred.num_classes == 3
    write_text(
        tmp_path / "Charades_v1_classes.txt",
        "c000 Holding\nc001 Opening\nc002 Sitting\nc003 Eating\n",
    )
    named = build_dataset("charades", tmp_path, "train")
    assert named.num_classes == 4 and named.class_names[2] == "Sitting"


def test_ucfrep_counts_complete_cycles_in_the_window(tmp_path):
    make_ucfrep(tmp_path)
    val = build_dataset("ucfrep", tmp_path, "val", mode="test", num_frames=6, size=16)
    assert val.task == "counting" and val.records[0].meta["fps"] == 25.0
    sample = val[0]
    assert sample["count"] == sample["label"] == sample["video_count"] == 2.0
    assert frame_indices(sample["video"])[0] == 0 and frame_indices(sample["video"])[-1] == 11
    # train windows are random cycle-aligned sub-segments [b_i, b_j] of bounds 2, 6, 10, 14
    train = build_dataset(
        "ucfrep",
        tmp_path,
        "train",
        num_frames=5,
        size=16,
        seed=0,
        transform=transforms.test_transform(16),
    )
    seen = set()
    for epoch in range(12):
        train.set_epoch(epoch)
        sample = train[0]
        first, *_, last = frame_indices(sample["video"])
        assert first in (2, 6, 10) and last in (6, 10, 14) and first < last
        assert sample["count"] == (last - first) / 4 and sample["video_count"] == 3.0
        seen.add(sample["count"])
    assert len(seen) >= 2


def test_ucfrep_count_rule():
    from vidssl.data.datasets.ucfrep import count_cycles

    bounds = (2, 6, 10, 14)
    assert count_cycles(bounds, 2, 14) == 3
    assert count_cycles(bounds, 3, 14) == 2  # the first cycle starts before the window
    assert count_cycles(bounds, 0, 9) == 1
    assert count_cycles((5,), 0, 10) == 0


def test_video_list_without_labels_is_unlabelled(tmp_path):
    write_text(tmp_path / "train.txt", "a.mp4\nb.mp4\n")
    write_video(tmp_path / "a.mp4")
    write_video(tmp_path / "b.mp4")
    ds = build_dataset("video_list", tmp_path, "train", num_views=2, **SMALL)
    assert ds.num_classes == 0 and ds.targets == [-1, -1]
    sample = ds[1]
    assert sample["label"] == -1 and sample["video"].shape == (2, 3, 4, 16, 16)
    assert not torch.equal(sample["video"][0], sample["video"][1])


@pytest.mark.parametrize(
    "name,file,text,line",
    [
        (
            "ucf101",
            "ucfTrainTestlist/trainlist01.txt",
            "Archery/v_Archery_g08_c01.avi 2\nNope/x.avi 1\n",
            2,
        ),
        ("ucf101", "ucfTrainTestlist/classInd.txt", "1 ApplyEyeMakeup\n3 Archery\n", 2),
        (
            "hmdb51",
            "testTrainMulti_7030_splits/brush_hair_test_split1.txt",
            "a.avi 1\nb.avi 7\n",
            2,
        ),
        (
            "kinetics400",
            "train.csv",
            "label,youtube_id,time_start,time_end,split\nabseiling,x,zero,10,train\n",
            2,
        ),
        ("gym99", "annotations/gym99_train.txt", "a.mp4 1\nb.mp4 1 2\n", 2),
        ("gym99", "annotations/gym99_train.txt", "a.mp4 1\n\nb.mp4 120\n", 3),
        (
            "charades",
            "Charades_v1_train.csv",
            CHARADES_HEADER + "A,s,k,1,1,Y,x,o,d,c01x 1 2,3\n",
            2,
        ),
        (
            "epic100_verbs",
            "annotations/EPIC_100_train.csv",
            EPIC_HEADER + "n,P01,P01_01,0,0,0,9,3,take,take,0,cup,1,[],[]\n",
            2,
        ),
        ("video_list", "train.txt", "a.mp4 1\nb.mp4\n", 2),
    ],
)
def test_malformed_annotation_names_file_and_line(tmp_path, name, file, text, line):
    LAYOUTS[name](tmp_path)
    write_text(tmp_path / file, text)
    with pytest.raises(AnnotationError) as info:
        build_dataset(name, tmp_path, "train")
    assert f"{tmp_path / file}:{line}:" in str(info.value)


def test_malformed_json_and_mat_name_the_file(tmp_path):
    make_ssv2(tmp_path)
    write_text(
        tmp_path / "labels/something-something-v2-train.json", '[{"id": "1", "template": "Nope"}]'
    )
    with pytest.raises(AnnotationError, match="something-v2-train.json: entry #0"):
        build_dataset("ssv2", tmp_path, "train")
    make_ucfrep(tmp_path)
    write_text(tmp_path / "annotations/train/v_JumpingJack_g01_c01.mat", "not a mat file")
    with pytest.raises(AnnotationError, match="v_JumpingJack_g01_c01.mat: not a readable"):
        build_dataset("ucfrep", tmp_path, "train")


def break_videos(root):
    """video_list with good videos 0-2 and bad ones 3-7 (labels = position)."""
    names = [f"v{i}.mp4" for i in range(8)]
    write_text(root / "train.txt", "".join(f"{n} {i}\n" for i, n in enumerate(names)))
    for i in range(3):
        write_video(root / names[i])
    # 3: missing; 4: zero bytes; 5: text; 6: truncated; 7: too short for a 4-frame clip
    write_text(root / names[4], "")
    write_text(root / names[5], "this is not a video\n" * 50)
    full = Path(write_video(root / "full.mp4", num_frames=12)).read_bytes()
    (root / names[6]).write_bytes(full[: len(full) // 3])
    write_video(root / names[7], num_frames=2)


def test_bad_videos_are_dropped_at_load_and_short_ones_replaced(tmp_path, caplog):
    break_videos(tmp_path)
    with caplog.at_level("WARNING", logger="vidssl.data"):
        ds = build_dataset("video_list", tmp_path, "train", **SMALL)
        samples = [ds[i] for i in range(len(ds))]
    # missing (3) and unprobeable (4, 5, 6) files are dropped when the dataset is built
    assert [os.path.basename(r.path) for r in ds.records] == ["v0.mp4", "v1.mp4", "v2.mp4",
                                                             "v7.mp4"]
    assert "dropped 1 missing videos (1 of 8 samples), e.g." in caplog.text
    assert "dropped 3 unreadable videos (3 of 7 samples), e.g." in caplog.text
    for i, sample in enumerate(samples):  # the short v7 is replaced (video_list's policy)
        assert sample["video"].shape == (3, 4, 16, 16)
        assert (sample["bad"] == 0) == (i < 3)
        assert sample["label"] == sample["index"] and sample["index"] < 3
    assert samples[3]["bad"] >= 1 and "v7.mp4" in caplog.text
    again = [ds[i] for i in range(len(ds))]
    assert [s["index"] for s in again] == [s["index"] for s in samples]  # seeded replacement
    loader = DataLoader(ds, batch_size=4)
    assert sum(int(batch["bad"].sum()) for batch in loader) == sum(s["bad"] for s in samples)


def test_short_videos_can_be_padded_instead(tmp_path):
    write_text(tmp_path / "train.txt", "short.mp4 0\n")
    write_video(tmp_path / "short.mp4", num_frames=3)
    loop = build_dataset("video_list", tmp_path, "train", mode="test", short_videos="loop", **SMALL)
    assert loop[0]["bad"] == 0 and frame_indices(loop[0]["video"]) == [0, 1, 2, 0]
    last = build_dataset("video_list", tmp_path, "train", mode="test", short_videos="last", **SMALL)
    assert frame_indices(last[0]["video"]) == [0, 1, 2, 2]
    with pytest.raises(RuntimeError, match="bad videos in a row"):
        build_dataset("video_list", tmp_path, "train", **SMALL)[0]


def test_seeded_sampling_is_deterministic_and_varies_per_epoch(tmp_path):
    make_video_folder(tmp_path)
    ds = build_dataset("video_folder", tmp_path, "train", **SMALL)
    a, b = ds[0]["video"], ds[0]["video"]
    assert torch.equal(a, b)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["video"], a)
    unseeded = build_dataset("video_folder", tmp_path, "train", num_frames=4, size=16)
    torch.manual_seed(3)
    first = unseeded[0]["video"]
    torch.manual_seed(3)
    assert torch.equal(unseeded[0]["video"], first)
    assert not torch.equal(unseeded[0]["video"], first)


def test_num_samples_keeps_a_class_balanced_subset(tmp_path):
    lines = "".join(f"v{i}.mp4 {i % 3}\n" for i in range(12))
    write_text(tmp_path / "train.txt", lines)
    for i in range(12):
        write_video(tmp_path / f"v{i}.mp4", num_frames=4)
    ds = build_dataset("video_list", tmp_path, "train", num_samples=5)  # ceil(5 / 3) = 2 per class
    assert sorted(ds.targets) == [0, 0, 1, 1, 2, 2]
    same = build_dataset("video_list", tmp_path, "train", num_samples=5)
    assert [r.path for r in ds.records] == [r.path for r in same.records]


def test_options_are_validated(tmp_path):
    make_video_folder(tmp_path)
    with pytest.raises(TypeError, match="unknown option"):
        build_dataset("video_folder", tmp_path, "train", num_frame=4)
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("ucf102", tmp_path, "train")
    with pytest.raises(ValueError, match="mode must be one of"):
        build_dataset("video_folder", tmp_path, "train", mode="eval")


def test_index_cache_location(tmp_path, monkeypatch):
    assert index_file(str(tmp_path)) == str(tmp_path / INDEX_FILE)
    custom = index_file(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert custom.startswith(str(tmp_path / "cache")) and custom.endswith(".json")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(os, "access", lambda *args: False)  # a read-only dataset root
    assert index_file(str(tmp_path)).startswith(str(tmp_path / "xdg" / "vidssl" / "index"))


def test_metadata_index_is_reused_on_a_second_start(tmp_path):
    make_video_folder(tmp_path)
    cache = tmp_path / "cache"
    build_dataset("video_folder", tmp_path, "train", cache_dir=str(cache))
    (cache_file,) = list(cache.iterdir())
    entries = json.loads(cache_file.read_text())["videos"]
    assert len(entries) == 2 and all(e["info"]["num_frames"] == 12 for e in entries.values())
    stamp = cache_file.stat().st_mtime_ns
    build_dataset("video_folder", tmp_path, "train", cache_dir=str(cache))
    assert cache_file.stat().st_mtime_ns == stamp  # nothing re-probed, nothing rewritten


def test_check_dataset_reports_counts_and_bad_files(tmp_path):
    make_ucf101(tmp_path)
    ok, report = check_dataset("ucf101", tmp_path)
    assert ok, report
    assert (
        "[train] 3 samples, 3 videos, 2 classes" in report
        and "ApplyEyeMakeup: 1, Archery: 2" in report
    )
    os.remove(tmp_path / "UCF-101/Archery/v_Archery_g01_c01.avi")
    write_text(tmp_path / "UCF-101/Archery/v_Archery_g09_c01.avi", "garbage")
    ok, report = check_dataset("ucf101", tmp_path)
    assert not ok and report.startswith(f"ucf101 at {tmp_path}: FAILED")
    assert (
        "missing videos: 1 of 2" in report
        and "v_Archery_g01_c01.avi: file does not exist" in report
    )
    assert "undecodable videos: 1 of 3" in report and "v_Archery_g09_c01.avi" in report
    write_text(tmp_path / "ucfTrainTestlist/testlist01.txt", "Nope/x.avi\n")
    ok, report = check_dataset("ucf101", tmp_path, splits=["test"])
    assert not ok and "testlist01.txt:1: unknown class 'Nope'" in report


def test_segment_outside_the_video_is_a_bad_sample(tmp_path, caplog):
    make_epic100_verbs(tmp_path)
    write_text(
        tmp_path / "annotations/EPIC_100_validation.csv",
        EPIC_HEADER
        + epic_row("P02", "P02_01", 30, 40, "put", 1)
        + epic_row("P01", "P01_01", 1, 8, "take", 0),
    )
    ds = build_dataset("epic100_verbs", tmp_path, "val", mode="test", **SMALL)
    with caplog.at_level("WARNING", logger="vidssl.data"):
        sample = ds[0]
    assert sample["bad"] >= 1 and sample["index"] == 1
    assert "segment frames 29..40 lie outside its 20 frames" in caplog.text
