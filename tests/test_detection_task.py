"""The detection task end to end: world parts, harness runs on official-format fixtures, the
scoring pipeline against oracle and chance scores."""
from __future__ import annotations

import csv
import json
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vidssl.data import build_dataset
from vidssl.data.world.generate import render_job, video_rng
from vidssl.data.world.parts import PARTS
from vidssl.data.world.presets import PRESETS
from vidssl.evaluation.action_detection import chance_levels, score_detections
from vidssl.evaluation.runner import run_suite
from vidssl.evaluation.suite import parse_suite
from vidssl.evaluation.tasks import feature_map

sys.path.insert(0, str(Path(__file__).parent))
from test_detection_data import DET, FPS, GT, make_ava, make_ucf24

torch.set_num_threads(1)

SMALL = replace(PRESETS["tiny"], det_size=32, ava_train_videos=2, ava_test_videos=2,
                ava_seconds=3, ava_fps=4, ucf24_train=1, ucf24_test=1, ucf24_frames=8)


def write_detection_parts(out: Path, preset) -> Path:
    """The world's ava_like/ and ucf24_like/ parts of ``preset`` under ``out``."""
    for name in ("ava_like", "ucf24_like"):
        jobs = PARTS[name].jobs(preset)
        PARTS[name].annotate(out / name, preset, jobs, [render_job(j, preset, 0, out) for j in jobs])
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return write_detection_parts(tmp_path_factory.mktemp("detworld"), SMALL)


def test_ava_like_is_official_ava_and_boxes_hold_their_actors(world):
    root = world / "ava_like"
    rows = list(csv.reader((root / "annotations" / "ava_train_v2.2.csv").read_text().splitlines()))
    assert all(len(r) == 8 and len(r[1]) == 4 for r in rows)  # video,0901,x1,y1,x2,y2,a,p
    jobs = PARTS["ava_like"].jobs(SMALL)
    meta = PARTS["ava_like"].scene(jobs[0], SMALL, video_rng(0, jobs[0]))[2]
    expected = sum(len(p["actions"]) * len(meta["seconds"]) for p in meta["people"])
    assert sum(r[0] == "world000000" for r in rows) == expected
    train = build_dataset("ava", root, "train", fps=SMALL.ava_fps, num_classes=6, mode="test",
                          num_frames=4, size=32, index_workers=1)
    assert len(train) == 2 * (SMALL.ava_seconds - 1) and train.num_classes == 6
    assert train.class_names[0] == "sliding in a straight line"
    test = build_dataset("ava", root, "val", fps=SMALL.ava_fps, num_classes=6, mode="test",
                         num_frames=4, size=32, index_workers=1)
    assert test.evaluation["excluded"] and len(test) >= 2 * (SMALL.ava_seconds - 1) - 1
    # every actor's box holds its pixels in the rendered keyframe (ids mask)
    _, ids, meta = PARTS["ava_like"].scene(jobs[0], SMALL, video_rng(0, jobs[0]))
    for k, person in enumerate(meta["people"]):
        for second, (x1, y1, x2, y2) in zip(meta["seconds"], person["boxes"]):
            ys, xs = np.nonzero(ids[second * SMALL.ava_fps] == k + 1)
            size = SMALL.det_size
            if len(xs):  # an occluded actor may have no pixel of its own
                assert xs.min() + 0.5 >= x1 * size - 1 and xs.max() + 0.5 <= x2 * size + 1
                assert ys.min() + 0.5 >= y1 * size - 1 and ys.max() + 0.5 <= y2 * size + 1


def test_ucf24_like_is_the_corrected_pickle(world):
    root = world / "ucf24_like"
    with open(root / "UCF101v2-GT.pkl", "rb") as handle:
        data = pickle.load(handle, encoding="latin1")
    assert set(data) == {"labels", "gttubes", "nframes", "resolution", "train_videos",
                         "test_videos"}
    assert len(data["train_videos"][0]) == 6 and len(data["test_videos"][0]) == 6
    for video, by_label in data["gttubes"].items():
        [(label, tubes)] = by_label.items()
        assert data["labels"][label] in video
        for tube in tubes:
            assert tube.dtype == np.float32 and tube.shape[1] == 5
            assert 1 <= tube[:, 0].min() and tube[:, 0].max() <= data["nframes"][video]
            assert 0 <= tube[:, 1:].min() and tube[:, 1:].max() <= SMALL.det_size
    test = build_dataset("ucf24", root, "test", video_ext="mp4", mode="test", num_frames=4,
                         size=32, index_workers=1)
    assert test[0]["video"].shape == (3, 4, 32, 32)


def test_scoring_pipeline_oracle_and_chance(tmp_path):
    """Official files end to end: scores equal to the true labels of ground-truth boxes give
    100 mAP; random boxes miss."""
    root = make_ava(tmp_path / "ava", GT, DET)
    test = build_dataset("ava", root, "val", fps=FPS, test_boxes="gt", num_frames=2, size=16,
                         index_workers=1)
    oracle = torch.zeros(len(test), test.max_boxes, test.num_classes)
    for i, record in enumerate(test.records):
        for j, labels in enumerate(record.meta["labels"]):
            oracle[i, j, list(labels)] = 1.0
    assert score_detections(test, oracle, tmp_path / "o")["map"] == pytest.approx(100.0)
    lines = (tmp_path / "o" / "detections.csv").read_text().splitlines()
    assert lines[0].split(",")[:2] == ["vidA", "902"] and len(lines[0].split(",")) == 8
    assert {line.split(",")[6] for line in lines} == {"1", "3"}  # the label map's actions
    chance = chance_levels(test, tmp_path / "c")
    assert chance["random_boxes"] < 20 and 0 <= chance["random_scores"] <= 100
    ucf = build_dataset("ucf24", make_ucf24(tmp_path / "u"), "test", num_frames=2, size=16,
                        index_workers=1)
    oracle = torch.zeros(len(ucf), ucf.max_boxes, ucf.num_classes)
    for i, record in enumerate(ucf.records):
        for j, (label,) in enumerate(record.meta["labels"]):
            oracle[i, j, label] = 1.0
    assert score_detections(ucf, oracle, tmp_path / "uo")["map"] == pytest.approx(100.0)
    assert chance_levels(ucf, tmp_path / "uc")["random_boxes"] == 0.0


def test_feature_map_folds_vit_tokens_onto_their_grid():
    tokens = torch.arange(2 * 12 * 3, dtype=torch.float32).reshape(2, 12, 3)  # [B,N,D]
    fmap = feature_map(tokens, (1, 3, 4))
    assert fmap.shape == (2, 3, 1, 3, 4)
    assert torch.equal(fmap[1, :, 0, 2, 1], tokens[1, 2 * 4 + 1])
    cnn = torch.zeros(2, 8, 1, 2, 2)
    assert feature_map(cnn) is cnn
    with pytest.raises(ValueError, match="grid"):
        feature_map(tokens, (2, 3, 4))


RECIPE = {"num_frames": 4, "frame_stride": 2, "size": 16, "jitter_scales": [16, 20],
          "optimizer": "sgd", "lr": 0.1, "epochs": 2, "batch_size": 2, "num_workers": 0,
          "milestones": [1], "gamma": 0.1, "dropout": 0.5, "linear_epochs": 3,
          "linear_batch_size": 2, "linear_weight_decays": [0.0]}


@pytest.mark.parametrize("protocol", ["finetune", "linear"])
def test_suite_runs_detection_resumably_and_reports_map(tmp_path, protocol):
    make_ava(tmp_path / "ava", GT, DET)
    make_ucf24(tmp_path / "ucf24")
    suite = parse_suite({"name": "det", "recipes": {"det": {**RECIPE, "protocol": protocol}},
                         "factors": {"tasks": [
                             {"name": "ava", "label": "AVA", "dataset": "ava", "root": "ava",
                              "task": "detection", "recipe": "det", "test_split": "val",
                              "dataset_options": {"fps": FPS}},
                             {"name": "ucf24", "dataset": "ucf24", "root": "ucf24",
                              "task": "detection", "recipe": "det"}]}})
    out = tmp_path / "out"
    kwargs = {"model": "r2plus1d_18", "model_kwargs": {"width": 0.125}, "data_root": tmp_path,
              "out": out, "progress": False, "fail_fast": True}
    block = run_suite(suite, **kwargs)
    for name in ("ava", "ucf24"):
        experiment = block["experiments"][name]
        assert experiment["status"] == "done" and experiment["higher_is_better"]
        assert 0.0 <= experiment["metrics"]["map"]["mean"] <= 100.0
        assert (out / "experiments" / name / "seed_0" / "detections.csv").is_file()
        assert not (out / "experiments" / name / "seed_0" / "checkpoints").exists()
    record = json.loads((out / "experiments" / "ava" / "seed_0" / "result.json").read_text())
    assert record["detection"]["excluded_keyframes"] == 1
    assert record["detection"]["skipped_test"]["keyframes_without_boxes"] == 1
    assert record["videos"] == {"train": 3, "select": 0, "test": 3}
    assert "| AVA | ucf24 |" in (out / "report.md").read_text()
    again = run_suite(suite, **kwargs)
    assert again["experiments"]["ava"]["metrics"] == block["experiments"]["ava"]["metrics"]


def test_frozen_feature_maps_are_computed_once_for_the_seeds_of_a_fixed_backbone(
        tmp_path, monkeypatch):
    """A parameter-free backbone's maps do not depend on the seed: one pass per split, shared
    by every seed; a random init gets its own maps per seed."""
    from vidssl.evaluation import action_detection

    make_ucf24(tmp_path / "ucf24")
    calls = []
    original = action_detection.frozen_maps
    monkeypatch.setattr(action_detection, "frozen_maps",
                        lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    suite = parse_suite({"name": "det", "recipes": {"det": {**RECIPE, "protocol": "linear"}},
                         "factors": {"tasks": [{"name": "ucf24", "dataset": "ucf24",
                                                "root": "ucf24", "task": "detection",
                                                "recipe": "det"}]}})
    common = {"data_root": tmp_path, "progress": False, "fail_fast": True, "seeds": 3}
    shared = run_suite(suite, model="motion_energy", out=tmp_path / "fixed", **common)
    assert len(calls) == 2 and shared["experiments"]["ucf24"]["status"] == "done"
    calls.clear()
    run_suite(suite, model="r2plus1d_18", model_kwargs={"width": 0.125},
              out=tmp_path / "random", **common)
    assert len(calls) == 6
