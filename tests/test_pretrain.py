import csv
import subprocess
import sys

import pytest
import torch
import yaml

from vidssl.data.world import generate_world


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_world(root, preset="tiny", seed=0, workers=1, progress=False)
    return root


def test_pretrain_cli_trains_monitors_and_writes_a_self_describing_checkpoint(tiny_world, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vidssl", "pretrain",
           "--config", "tubelet_contrast_world", "--out", str(out),
           "--seed", "1", "--checkpoint-every", "4",
           f"data.root={tiny_world / 'pretrain'}", "data.batch_size=8", "train.epochs=1",
           "monitor.dataset=ucf101", f"monitor.root={tiny_world / 'ucf_like'}"]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    knn = [float(r["knn_acc"]) for r in rows if r.get("knn_acc")]
    assert len(knn) == 1 and 0.0 <= knn[0] <= 1.0
    assert all(float(r["loss"]) > 0 for r in rows if r.get("loss"))
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["seed"] == 1 and resolved["method"]["name"] == "tubelet_contrast"
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 8 and state["model_spec"]["name"] == "r2plus1d_18"
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*.pt")) == [
        "step_00000004.pt", "step_00000008.pt"]


def test_pretrain_cli_reports_config_errors_with_the_file(tmp_path):
    cmd = [sys.executable, "-m", "vidssl", "pretrain", "--config",
           "video_moco_world", "--out", str(tmp_path), "optim.lrr=1"]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "video_moco_world.yaml" in result.stderr and "optim.lrr" in result.stderr
