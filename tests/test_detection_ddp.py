"""Detection under torchrun: a 2-process `vidssl evaluate` of the world's AVA-like and
UCF101-24-like parts (fine-tuned detector, CPU, gloo) takes the 1-process run's steps.

Only the first steps are compared: a width-0.125 R(2+1)D on 32-px clips is so ill-conditioned
that a 5e-5 relative change of its weights moves its gradients by ~20% (measured), so float
rounding (sums in another order) makes longer trajectories, and a 4-keyframe mAP, drift apart."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from vidssl.data.world.presets import PRESETS

sys.path.insert(0, str(Path(__file__).parent))
from test_detection_task import write_detection_parts

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
WORLD = replace(PRESETS["tiny"], det_size=32, ava_train_videos=4, ava_test_videos=2,
                ava_seconds=3, ava_fps=4, ucf24_train=1, ucf24_test=1, ucf24_frames=8)
RECIPE = {"protocol": "finetune", "num_frames": 4, "frame_stride": 2, "size": 32,
          "jitter_scales": [32, 40], "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
          "epochs": 2, "batch_size": 8, "num_workers": 0, "milestones": [1], "gamma": 0.1,
          "dropout": 0.0, "selection": "last"}


def _suite(path: Path) -> None:
    suite = {"name": "ddp_detection", "recipes": {"det": RECIPE}, "factors": {"tasks": [
        {"name": "ava_like", "dataset": "ava", "root": "ava_like", "task": "detection",
         "recipe": "det", "test_split": "val",
         "dataset_options": {"fps": WORLD.ava_fps, "num_classes": 6}},
        {"name": "ucf24_like", "dataset": "ucf24", "root": "ucf24_like", "task": "detection",
         "recipe": "det", "dataset_options": {"video_ext": "mp4"}}]}}
    path.write_text(yaml.safe_dump(suite))


def _evaluate(launcher: list[str], suite: Path, data: Path, out: Path,
              model: tuple[str, str] = ("r2plus1d_18", "{width: 0.125}")) -> dict:
    command = [*launcher, "vidssl", "evaluate", "--suite", str(suite), "--model", model[0],
               "--model-kwargs", model[1], "--data-root", str(data), "--out", str(out)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=400,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "results.json").read_text())["methods"][0]


def _losses(out: Path, name: str) -> list[float]:
    path = out / "experiments" / name / "seed_0" / "metrics.csv"
    with open(path, newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle) if row.get("loss")]


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            "2", "-m"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return write_detection_parts(tmp_path_factory.mktemp("detworld"), WORLD)


@pytest.mark.slow  # two `vidssl evaluate` runs fine-tuning two tiny detectors: ~30-60 s
def test_torchrun_detection_takes_the_one_process_steps(world, tmp_path):
    _suite(tmp_path / "det.yaml")
    one = _evaluate([sys.executable, "-m"], tmp_path / "det.yaml", world, tmp_path / "one")
    two = _evaluate(TORCHRUN, tmp_path / "det.yaml", world, tmp_path / "two")
    assert (one["processes"], two["processes"]) == (1, 2)
    for name in ("ava_like", "ucf24_like"):
        a, b = one["experiments"][name], two["experiments"][name]
        assert a["status"] == b["status"] == "done", (a, b)
        assert a["videos"] == b["videos"] and a["videos"]["test"] > 0
        assert 0.0 <= b["metrics"]["map"]["mean"] <= 100.0
        details = [json.loads((out / "experiments" / name / "seed_0" / "result.json").read_text())
                   ["detection"] for out in (tmp_path / "one", tmp_path / "two")]
        assert details[0] == details[1] and details[0]
    # one step per epoch (8 training keyframes, global batch 8): step 1 is the loss at init
    # (the global-batch BCE, however the boxes fall on the ranks), step 2 after one update
    # (gradients averaged, BatchNorm over the global batch)
    losses_one, losses_two = _losses(tmp_path / "one", "ava_like"), _losses(tmp_path / "two", "ava_like")
    assert len(losses_one) == len(losses_two) == 2
    assert losses_two == pytest.approx(losses_one, rel=1e-5)
    detections = tmp_path / "two" / "experiments" / "ava_like" / "seed_0" / "detections.csv"
    assert detections.is_file() and detections.read_text().count("\n") > 0
    assert (tmp_path / "two" / "report.md").is_file()


@pytest.mark.slow  # one 2-process run: ~20-30 s
def test_torchrun_detection_with_a_vit_whose_pooling_norm_is_unused(world, tmp_path):
    """The RoI head reads the token map, so a ViT's fc_norm gets no gradient: DDP must not
    wait for it (it raised "Expected to have finished reduction" at the second step)."""
    _suite(tmp_path / "det.yaml")
    vit = ("vit_tiny", "{img_size: 32, patch_size: 8, num_frames: 4, tubelet_size: 2, depth: 2}")
    two = _evaluate(TORCHRUN, tmp_path / "det.yaml", world, tmp_path / "two", vit)
    assert two["processes"] == 2
    assert all(e["status"] == "done" for e in two["experiments"].values())
