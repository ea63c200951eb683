"""Every experiment of the bundled ``severe`` and ``full`` suites runs one step end to end on
CPU, on one data root holding each dataset in its official layout with realistic durations
(FineGym clips of 0.3-2 s under FineGym's own list names, SS-v2 webm of 2-6 s, EPIC-100
segments of ~1 s, UCFRep ``.mat`` annotations, Charades CSV spans): every test video is
loaded once, a listed but missing one is dropped (never swapped), and no sample is replaced."""
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vidssl.data import build_dataset
from vidssl.evaluation.runner import run_suite
from vidssl.evaluation.suite import load_suite
from vidssl.io import write_video as write_frames_video

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # the layout builders of the sibling tests

from test_data_datasets import EPIC_HEADER, epic_row, make_ntu60, make_ucf101, write_text
from test_detection_data import DET, GT, _frames, make_ava, make_ucf24
from test_eval_counting import _write_ucfrep
from test_severe_data import FINEGYM, GONE, SSV2, coded, lossless, make_charades

# FineGym's clips (Floor/FX-S1 labels 6-16, one UB-S1 clip: 80) plus two Vault ones (0-5) and
# a second UB-S1 one (74-88), so that every subset trains on a batch of two; GONE (label 9) is
# listed in every list and was never downloaded
GYM = FINEGYM + [("A0xAXXysHUo_E_000101_000160_A_0002_0003", 3, 0.8, 30),
                 ("A0xAXXysHUo_E_000101_000160_A_0004_0005", 0, 1.2, 25),
                 ("AZ4wWG6Rcak_E_005001_005050_A_0010_0011", 75, 0.6, 30)]


def make_finegym(root: Path) -> None:
    """FineGym as distributed: ``gym{99,288}_{train_element_v1.1,val_element}.txt``."""
    rows = "".join(f"{name} {label}\n" for name, label, _, _ in GYM) + f"{GONE} 9\n"
    for family in ("gym99", "gym288"):
        for split in ("train_element_v1.1", "val_element"):
            write_text(root / "annotations" / f"{family}_{split}.txt", rows)
    for name, _, seconds, fps in GYM:
        lossless(str(root / "videos" / f"{name}.mp4"), round(seconds * fps), fps)


def make_ssv2(root: Path) -> None:
    """SS-v2's json lists and VP8 webm of 2, 4.5 and 6 s at 12 fps."""
    labels = {"Holding something": "0", "Pushing something from left to right": "1"}
    entries = [{"id": vid, "label": t.lower(), "template": t.replace("something", "[something]"),
                "placeholders": ["a cup"]} for vid, t, _ in SSV2]
    write_text(root / "labels/something-something-v2-labels.json", json.dumps(labels))
    for split in ("train", "validation"):
        write_text(root / f"labels/something-something-v2-{split}.json", json.dumps(entries))
    for vid, _, seconds in SSV2:
        path = root / "20bn-something-something-v2" / f"{vid}.webm"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_frames_video(path, coded(round(seconds * 12)), fps=12, codec="libvpx")


def make_epic(root: Path) -> None:
    """EPIC-100 verb segments of ~1 s (30 frames at 30 fps) in 2 s videos."""
    train = epic_row("P01", "P01_01", 1, 30, "take", 0) + epic_row("P01", "P01_01", 31, 60,
                                                                     "put", 1)
    write_text(root / "annotations/EPIC_100_train.csv", EPIC_HEADER + train)
    write_text(root / "annotations/EPIC_100_validation.csv",
               EPIC_HEADER + epic_row("P02", "P02_01", 16, 45, "put", 1))
    for video in ("P01/P01_01", "P02/P02_01"):
        lossless(str(root / f"videos/{video}.MP4"), 60, 30)


def make_ucfrep(root: Path) -> None:
    """Official ``annotations/<split>/*.mat`` with 25-fps frame folders of 1-2 s."""
    for i, (split, start, cycles, period) in enumerate(
            [("train", 1, 3, 8), ("train", 0, 2, 12), ("val", 2, 4, 6), ("val", 0, 2, 10)]):
        bounds = [start + period * k for k in range(cycles + 1)]
        _write_ucfrep(root, split, f"v_JumpingJack_g0{i + 1}_c01", bounds[-1] + 3, bounds,
                      period=period)


def make_ava_at_30_fps(root: Path) -> None:
    """AVA v2.2 csvs on frames extracted at AVA's 30 fps (seconds 900-905)."""
    make_ava(root, GT, DET)
    for video in ("vidA", "vidB"):
        for i, image in enumerate(coded(6 * 30)):
            Image.fromarray(image).save(root / "frames" / video / f"{video}_{i + 1:06d}.jpg")


def make_ucf24_with_two_keyframes(root: Path) -> None:
    """UCF101-24's ``UCF101v2-GT.pkl``: the training tube spans 17 of 20 frames, so every 8th
    annotated frame gives 3 training keyframes (a batch of two)."""
    make_ucf24(root)
    with open(root / "UCF101v2-GT.pkl", "rb") as handle:
        data = pickle.load(handle)
    video = data["train_videos"][0][0]
    data["gttubes"][video] = {0: [np.array([[f, 10, 5, 30, 20] for f in range(1, 18)],
                                           dtype=np.float32)]}
    data["nframes"][video] = 20
    with open(root / "UCF101v2-GT.pkl", "wb") as handle:
        pickle.dump(data, handle, protocol=2)
    _frames(root / "rgb-images" / video, "{:05d}.jpg", 20)


def make_data_root(root: Path) -> None:
    make_ucf101(root / "ucf101")
    make_ntu60(root / "ntu60")
    make_finegym(root / "finegym")
    make_ssv2(root / "ssv2")
    make_epic(root / "epic-kitchens-100")
    make_ucfrep(root / "ucfrep")
    (root / "charades").mkdir()
    make_charades(root / "charades")
    make_ava_at_30_fps(root / "ava")
    make_ucf24_with_two_keyframes(root / "ucf24")


# one optimizer step per experiment on 16-px frames, one view per video; every recipe keeps
# its clip length (32 frames at 16 fps: 2 s), so FineGym's 0.3-2 s clips and the 5 s Charades
# video must be padded, as the official loaders pad them
TINY = ["recipe.epochs=1", "recipe.batch_size=2", "recipe.num_workers=0", "recipe.size=16",
        "recipe.train_clips_per_video=1", "recipe.val_clips=1", "recipe.test_clips=1",
        "recipe.test_crops=1", "recipe.feature_clips=1", "recipe.jitter_scales=[16,20]",
        "recipe.test_short_side=16", "recipe.warmup_epochs=0", "recipe.milestones=[]"]


# test items of each experiment: the fixture's files that exist (FineGym lists 9 clips, GONE
# is missing); arrow of time scores every test clip forward and reversed; AVA: the val
# keyframes with detected boxes; UCF101-24: every 8th annotated frame of the test tube
TEST_ITEMS = {"ucf101": 2, "ntu60": 1, "gym99": 8, "ssv2": 3, "epic100_verbs": 1,
              **dict.fromkeys([f"ucf101_{n}" for n in (1000, 2000, 4000, 8000)], 2),
              **dict.fromkeys([f"gym99_{n}" for n in (1000, 2000, 4000, 8000)], 8),
              "gym99_actions": 8, "gym_vault": 2, "gym_floor": 4, "gym_fx_s1": 4,
              "gym_ub_s1": 2, "gym288": 8, "ucf_rc": 2, "arrow_of_time": 2 * 2, "charades": 2,
              "ava": 3, "ucf24": 1}


def loaded_test_items(experiment, root: Path) -> int:
    """Items of the experiment's test set as ``build_dataset`` lists them."""
    ds = build_dataset(experiment.dataset, root / experiment.root, experiment.test_split,
                       mode="test", num_frames=4, size=16, index_workers=1,
                       **experiment.dataset_options)
    return len(ds) * (2 if experiment.task == "arrow_of_time" else 1)


def data_of(suite) -> dict:
    return {e.name: (e.dataset, e.root, e.test_split, e.dataset_options, e.num_samples)
            for e in suite.experiments}


@pytest.mark.slow
def test_every_severe_and_full_experiment_runs_a_step_on_official_layouts(tmp_path, caplog):
    data = tmp_path / "data"
    make_data_root(data)
    suite = load_suite("full", TINY)
    severe, full = data_of(load_suite("severe")), data_of(suite)
    assert severe == {name: full[name] for name in severe}  # full runs severe's experiments
    assert sorted(full) == sorted(TEST_ITEMS)
    with caplog.at_level("WARNING", logger="vidssl.data"):
        block = run_suite("full", model="r2plus1d_18", model_kwargs={"width": 0.125},
                          data_root=data, out=tmp_path / "run", max_steps=1, overrides=TINY,
                          progress=False, fail_fast=True)
    # the listed FineGym clip that was never downloaded is dropped at load and named
    assert f"dropped 1 missing videos (1 of {len(GYM) + 1} samples)" in caplog.text
    assert GONE in caplog.text
    experiments = block["experiments"]
    assert sorted(experiments) == sorted(TEST_ITEMS)
    for experiment in suite.experiments:
        result = experiments[experiment.name]
        assert result["status"] == "done", (experiment.name, result)
        assert result["bad_samples"] == 0, experiment.name  # nothing replaced
        assert result["videos"]["test"] == TEST_ITEMS[experiment.name], experiment.name
        assert loaded_test_items(experiment, data) == TEST_ITEMS[experiment.name]
        if experiment.num_samples:  # N/C per class >= every tiny class: all of train
            whole = experiments[experiment.name.rsplit("_", 1)[0]]["videos"]["train"]
            assert result["videos"]["train"] == whole, experiment.name
        if not experiment.same_runs_as:
            seed_result = json.loads((tmp_path / "run" / "experiments" / experiment.name /
                                      "seed_0" / "result.json").read_text())
            assert seed_result["videos"]["test"] == TEST_ITEMS[experiment.name]
            assert seed_result["bad_samples"] == 0
