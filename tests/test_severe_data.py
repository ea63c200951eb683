"""SEVERE's data protocol on official-format fixtures with realistic durations: FineGym clips
of 0.3-2 s under FineGym's own list names, SS-v2 webm of 2-6 s, Charades with clip-level
spans; short videos padded as the official loaders pad them, missing files dropped at load,
every test video loaded once, and SEVERE's own sample-size subset."""
import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vidssl.data import build_dataset, check_dataset
from vidssl.data.datasets import SHORT_VIDEOS
from vidssl.data.subsets import balanced_subset
from vidssl.evaluation.splits import ExperimentSplits
from vidssl.evaluation.suite import Experiment, Recipe, load_suite
from vidssl.io import write_video

torch.set_num_threads(1)

H, W = 24, 32
STEP = 12  # grey step of the frame code


def coded(num_frames: int) -> np.ndarray:
    """Frames whose index is written in grey: left half ``i // 16``, right half ``i % 16``."""
    frames = np.zeros((num_frames, H, W, 3), np.uint8)
    for i in range(num_frames):
        frames[i, :, : W // 2] = (i // 16) * STEP
        frames[i, :, W // 2:] = (i % 16) * STEP
    return frames


def decode(clip: torch.Tensor) -> list[int]:
    """Frame indices of a raw clip ``[C,T,H,W]`` (see :func:`raw`)."""
    left = clip[:, :, 4:-4, 2:W // 2 - 2].mean(dim=(0, 2, 3)) / STEP
    right = clip[:, :, 4:-4, W // 2 + 2:-2].mean(dim=(0, 2, 3)) / STEP
    return (left.round() * 16 + right.round()).long().tolist()


def raw(frames, generator=None) -> torch.Tensor:
    """The decoded frames themselves, ``[C,T,H,W]`` float (no crop, no normalization)."""
    return torch.as_tensor(frames).permute(3, 0, 1, 2).float()


def lossless(path, num_frames: int, fps: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_video(path, coded(num_frames), fps=fps, options={"qp": "0"})


def resampled(num_frames: int, fps: float, target_fps: float = 16) -> np.ndarray:
    """Source frame shown at each 1/target_fps instant (SEVERE decodes at 16 fps)."""
    length = math.ceil(num_frames * target_fps / fps - 1e-9)
    return np.minimum(np.floor(np.arange(length) * fps / target_fps + 1e-9), num_frames - 1)


# ------------------------------------------------------------------------------- FineGym
# (name, label, seconds, fps): FX-S1 labels are Gym99 6-16; every FX-S1 clip is under 2 s
FINEGYM = [
    ("A0xAXXysHUo_E_002184_002237_A_0035_0036", 7, 0.3, 30),
    ("AZ4wWG6Rcak_E_003643_003675_A_0024_0026", 16, 0.5, 25),
    ("AZ4wWG6Rcak_E_004073_004175_A_0053_0054", 6, 1.0, 30),
    ("0LtLS9wROrk_E_002407_002435_A_0003_0005", 12, 1.5, 25),
    ("0LtLS9wROrk_E_002407_002435_A_0006_0008", 80, 2.0, 25),  # UB-S1, not FX-S1
]
GONE = "zzGoneFromYT_E_000001_000010_A_0001_0002"  # listed, never downloaded


def make_finegym(root, lists="official"):
    """FineGym as distributed (``gym99_{train_element_v1.1,val_element}.txt``, names without
    extension) or SEVERE's renamed lists (``gym99_{train,val}.txt``, ``.avi`` names); clips
    trimmed to ``.mp4`` by mmaction2's script."""
    def listing(ext):
        rows = [f"{name}{ext} {label}" for name, label, _, _ in FINEGYM]
        return "\n".join(rows + [f"{GONE}{ext} 9"]) + "\n"

    os.makedirs(root / "annotations", exist_ok=True)
    names = (("gym99_train_element_v1.1.txt", "gym99_val_element.txt", "") if lists == "official"
             else ("gym99_train.txt", "gym99_val.txt", ".avi"))
    for file in names[:2]:
        (root / "annotations" / file).write_text(listing(names[2]))
    for name, _, seconds, fps in FINEGYM:
        lossless(str(root / "videos" / f"{name}.mp4"), round(seconds * fps), fps)


def test_finegym_official_lists_load_every_short_clip_looped(tmp_path, caplog):
    make_finegym(tmp_path)
    with caplog.at_level("WARNING", logger="vidssl.data"):
        ds = build_dataset("gym_fx_s1", tmp_path, "test", num_frames=32, target_fps=16,
                           mode="test", num_views=10, transform=raw, decode_size=0)
    # the one missing clip is dropped (with a count and an example), not replaced
    assert "dropped 1 missing videos (1 of 5 samples)" in caplog.text and GONE in caplog.text
    fx = [clip for clip in FINEGYM if 6 <= clip[1] <= 16]
    assert [os.path.basename(r.path) for r in ds.records] == [f"{c[0]}.mp4" for c in fx]
    assert ds.targets == [c[1] - 6 for c in fx] and ds.pad == "loop"
    seen = []
    for batch in DataLoader(ds, batch_size=2):
        seen += batch["index"].tolist()
        assert int(batch["bad"].sum()) == 0
        for video, index in zip(batch["video"], batch["index"]):
            _, _, seconds, fps = fx[int(index)]
            timeline = resampled(round(seconds * fps), fps)
            looped = timeline[np.arange(32) % len(timeline)].tolist()  # preprocessing.py
            assert video.shape == (10, 3, 32, H, W)
            assert all(decode(view) == looped for view in video)  # 10 equal views
    assert seen == list(range(len(fx)))  # every test video once, none swapped


def test_finegym_train_clips_of_short_videos_loop_from_the_start(tmp_path):
    make_finegym(tmp_path)
    ds = build_dataset("gym99", tmp_path, "train", num_frames=32, target_fps=16, seed=0,
                       transform=raw, decode_size=0)
    for i in range(len(ds)):
        _, _, seconds, fps = FINEGYM[i]
        timeline = resampled(round(seconds * fps), fps)
        sample = ds[i]
        assert sample["bad"] == 0
        assert decode(sample["video"]) == timeline[np.arange(32) % len(timeline)].tolist()


def test_severe_renamed_lists_find_the_mp4_clips_and_check_lists_the_missing(tmp_path):
    make_finegym(tmp_path, lists="severe")
    ds = build_dataset("gym99", tmp_path, "val", num_frames=32, target_fps=16, mode="test")
    assert len(ds) == len(FINEGYM) and all(r.path.endswith(".mp4") for r in ds.records)
    assert ds.records[0].path == str(tmp_path / "videos" / f"{FINEGYM[0][0]}.mp4")
    ok, report = check_dataset("gym99", tmp_path, splits=["val"], workers=1)
    assert not ok
    assert "missing videos: 1 of 6 (dropped when the dataset is built)" in report
    assert f"{GONE}.avi: file does not exist" in report


def test_finegym_without_any_list_names_the_expected_files(tmp_path):
    (tmp_path / "annotations").mkdir()
    with pytest.raises(FileNotFoundError, match="gym99_train_element_v1.1.txt"):
        build_dataset("gym99", tmp_path, "train")


# ------------------------------------------------------------------------------- SS-v2
SSV2 = [("101", "Pushing something from left to right", 2.0),
        ("102", "Holding something", 4.5), ("103", "Pushing something from left to right", 6.0)]


def test_ssv2_webm_of_2_to_6_seconds_load_once_each(tmp_path, caplog):
    labels = {"Holding something": "0", "Pushing something from left to right": "1"}
    entries = [{"id": vid, "label": t.lower(), "template": t.replace("something", "[something]"),
                "placeholders": ["a cup"]} for vid, t, _ in SSV2]
    entries.append({"id": "999", "label": "x", "template": "Holding [something]",
                    "placeholders": []})  # listed, file missing
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/something-something-v2-labels.json").write_text(json.dumps(labels))
    for split in ("train", "validation"):
        (tmp_path / f"labels/something-something-v2-{split}.json").write_text(
            json.dumps(entries))
    for vid, _, seconds in SSV2:  # VP8 at SS-v2's 12 fps
        path = tmp_path / "20bn-something-something-v2" / f"{vid}.webm"
        os.makedirs(path.parent, exist_ok=True)
        write_video(path, coded(round(seconds * 12)), fps=12, codec="libvpx")
    with caplog.at_level("WARNING", logger="vidssl.data"):
        ds = build_dataset("ssv2", tmp_path, "test", num_frames=32, target_fps=16, mode="test",
                           num_views=10, size=16)
    assert "dropped 1 missing videos" in caplog.text and "999.webm" in caplog.text
    assert ds.targets == [1, 0, 1] and ds.pad == "loop"
    batches = list(DataLoader(ds, batch_size=3))
    assert batches[0]["index"].tolist() == [0, 1, 2] and int(batches[0]["bad"].sum()) == 0
    assert batches[0]["video"].shape == (3, 10, 3, 32, 16, 16)


# ------------------------------------------------------------------------------- Charades
CHARADES_HEADER = ("id,subject,scene,quality,relevance,verified,script,objects,descriptions,"
                   "actions,length\n")


def make_charades(root):
    """``FRM01``: 12 s as 24-fps frames (Charades_v1_rgb); ``VID01``: a 5 s mp4 at 30 fps."""
    spans = {"FRM01": "c001 0.00 3.00;c002 11.50 12.00;c003 4.00 5.00",
             "VID01": "c004 1.00 2.00"}
    rows = "".join(f'{vid},s,Kitchen,6,7,Yes,x,cup,d,"{acts}",12\n' for vid, acts in spans.items())
    for split in ("train", "test"):
        (root / f"Charades_v1_{split}.csv").write_text(CHARADES_HEADER + rows)
    folder = root / "Charades_v1_rgb" / "FRM01"
    os.makedirs(folder)
    for i, image in enumerate(coded(12 * 24)):
        Image.fromarray(image).save(folder / f"FRM01-{i + 1:06d}.jpg", quality=100)
    lossless(str(root / "Charades_v1_480" / "VID01.mp4"), 5 * 30, 30)


def test_charades_trains_on_the_actions_overlapping_each_clip(tmp_path):
    make_charades(tmp_path)
    ds = build_dataset("charades", tmp_path, "train", num_frames=32, frame_stride=8,
                       target_fps=24, clip_labels=True, transform=raw, decode_size=0, seed=0)
    assert ds.pad == "last"
    # a 32 x 8 clip spans 249 of the 288 frames: it starts at frame s in [0, 39] and ends at
    # s + 248, so it always overlaps c001 (0-3 s) and c003 (4-5 s), and reaches c002 (from
    # 11.5 s = frame 276) exactly when s + 249 > 276
    starts = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        sample = ds[0]
        frames = decode(sample["video"])
        start = frames[0]
        assert frames == list(range(start, start + 249, 8))
        assert sample["label"].nonzero().flatten().tolist() == (
            [1, 2, 3] if start + 249 > 276 else [1, 3])
        starts.add(start + 249 > 276)
    assert starts == {True, False}
    # the 5 s video is shorter than the 10.4 s clip: indices clamp to its last frame
    short = ds[1]
    assert short["bad"] == 0 and short["label"].nonzero().flatten().tolist() == [4]
    test = build_dataset("charades", tmp_path, "test", num_frames=32, frame_stride=8,
                         target_fps=24, clip_labels=True, mode="test", num_views=10,
                         transform=raw, decode_size=0)
    frames = decode(test[1]["video"][0])  # 5 s at 30 fps -> 120 frames at 24 fps
    assert frames[:15] == [int(p * 30 / 24) for p in range(0, 120, 8)]
    assert frames[15:] == [148] * 17  # the last 24-fps frame: source floor(119 * 30 / 24)
    assert test[0]["label"].nonzero().flatten().tolist() == [1, 2, 3]  # video-level at test


# ------------------------------------------------------------------------- subsets (item 5)
def get_subset_data(video_names, annotations, num_of_examples):
    """SEVERE's ``action_recognition/datasets/utils.py:get_subset_data`` (seed 99999),
    restated line by line (prints removed) as the reference."""
    examples_per_class = math.ceil(num_of_examples / len(set(annotations)))
    random_state = np.random.RandomState(99999)
    annotations = np.array(annotations)
    video_names = np.array(video_names)
    subset_video_names, subset_annotations = [], []
    for class_label in set(annotations):
        subset_indexes = np.where(annotations == class_label)
        if examples_per_class > subset_indexes[0].shape[0]:
            ran_indicies = np.array(random_state.choice(
                subset_indexes[0].shape[0], subset_indexes[0].shape[0], replace=False))
        else:
            ran_indicies = np.array(random_state.choice(
                subset_indexes[0].shape[0], examples_per_class, replace=False))
        indicies_100 = subset_indexes[0][ran_indicies]
        subset_video_names.extend(video_names[indicies_100])
        subset_annotations.extend(annotations[indicies_100])
    return list(subset_video_names), list(subset_annotations)


def generated_train_list():
    """A UCF101-sized list (101 classes of 4..130 videos, class 7 smaller than 10) in
    shuffled order, as a train list file gives it."""
    rng = np.random.default_rng(5)
    labels = [c for c in range(101) for _ in range(4 if c == 7 else 70 + (c * 37) % 61)]
    labels = [labels[i] for i in rng.permutation(len(labels))]
    return [f"Class{y}/v_{i:05d}.avi" for i, y in enumerate(labels)], labels


def test_balanced_subset_is_severes_get_subset_data():
    names, labels = generated_train_list()
    official_names, official_labels = get_subset_data(names, labels, 1000)
    assert len(official_names) == 100 * 10 + 4
    ours = balanced_subset(labels, 1000)
    assert sorted(names[i] for i in ours) == sorted(official_names)
    assert sorted(labels[i] for i in ours) == sorted(official_labels)
    for n in (2000, 4000, 8000):  # the sample-size sweep (class 7 is kept whole)
        assert sorted(names[i] for i in balanced_subset(labels, n)) == sorted(
            get_subset_data(names, labels, n)[0])
    per_seed = balanced_subset(labels, 1000, seed=1)
    assert len(per_seed) == len(ours) and per_seed != ours


class _Reference:
    def __init__(self, targets):
        self.targets, self.task = targets, "classification"


def plan(labels, protocol_selection, subset="official", seed=3):
    splits = ExperimentSplits.__new__(ExperimentSplits)
    splits.experiment = Experiment(name="ucf101_1000", factor="samples", dataset="ucf101",
                                   root="ucf101", num_samples=1000, subset=subset)
    splits.recipe, splits.seed, splits.root = Recipe(selection=protocol_selection), seed, "."
    return splits._plan(_Reference(labels))


def test_sample_size_experiments_train_on_severes_subset_by_default():
    _, labels = generated_train_list()
    official = balanced_subset(labels, 1000)
    train, select = plan(labels, "test")
    assert train == official and select is None
    assert plan(labels, "test", seed=4)[0] == official  # the same subset for every seed
    train, select = plan(labels, "val")  # validation protocol: held out outside the subset
    assert train == official and select and not set(select) & set(train)
    assert plan(labels, "test", subset="per_seed")[0] == balanced_subset(labels, 1000, seed=3)
    assert {e.subset for e in load_suite("full").experiments if e.num_samples} == {"official"}


# ------------------------------------------------------------------- suites (items 1 and 7)
def test_suites_pad_short_videos_as_the_official_loaders():
    for suite in ("severe", "full"):
        for e in load_suite(suite).experiments:
            policy = e.dataset_options.get("short_videos", SHORT_VIDEOS.get(e.dataset))
            # counting samples whole annotated segments; detection clips around a keyframe
            # clamp at the video's ends (PySlowFast's get_sequence)
            if e.dataset != "ucfrep" and e.task != "detection":
                assert policy in ("loop", "last"), (suite, e.name)
    assert SHORT_VIDEOS["gym_fx_s1"] == SHORT_VIDEOS["ssv2"] == "loop"
    assert SHORT_VIDEOS["charades"] == "last"


def test_charades_recipe_is_pyslowfasts():
    full = load_suite("full")
    recipe = full.recipes["charades"]
    assert (recipe.target_fps, recipe.frame_stride, recipe.num_frames) == (24, 8, 32)
    assert recipe.train_augmentation == "short_side_jitter" and recipe.jitter_inverse_uniform
    assert list(recipe.jitter_scales) == [256, 340] and recipe.normalize == "slowfast"
    assert recipe.test_short_side == 112 and recipe.selection == "last"
    (charades,) = [e for e in full.experiments if e.name == "charades"]
    assert charades.dataset_options["clip_labels"] is True
