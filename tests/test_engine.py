import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vidssl.config import OptimConfig, ScheduleConfig
from vidssl.engine.checkpoint import atomic_save, load_checkpoint
from vidssl.engine.data import EpochSampler
from vidssl.engine.optim import lr_factor, param_groups, vit_layer_id

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / "tests" / "toy_train.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def run_toy(out, *extra, env=None):
    return subprocess.run([sys.executable, TOY, "--out", str(out), *extra], env=env or ENV,
                          check=False, capture_output=True, text=True, timeout=300)


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def weights(out):
    return torch.load(Path(out) / "checkpoints" / "last.pt", weights_only=True)["model"]


def assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0 if atol == 0 else 1e-5)


def test_checkpoint_is_plain_and_metrics_logged(tmp_path):
    result = run_toy(tmp_path / "run", "--steps", "4")
    assert result.returncode == 0, result.stderr
    state = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)
    assert {"model", "optimizer", "step", "config", "scheduler", "rng"} <= state.keys()
    assert state["step"] == 4
    rows = read_csv(tmp_path / "run/metrics.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["loss"]) > 0 for r in rows) and "acc" in rows[0]
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").glob("*.pt")) == [
        "last.pt", "step_00000002.pt", "step_00000004.pt"]


def test_same_seed_reproduces_bit_for_bit(tmp_path):
    assert run_toy(tmp_path / "a", "--steps", "5").returncode == 0
    assert run_toy(tmp_path / "b", "--steps", "5").returncode == 0
    assert_same(weights(tmp_path / "a"), weights(tmp_path / "b"))


def test_sigkill_then_resume_matches_straight_run(tmp_path):
    straight = run_toy(tmp_path / "straight", "--steps", "12", "--accum", "2")
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, TOY, "--out", str(out), "--steps", "12", "--accum", "2"],
                            env={**ENV, "TOY_STEP_SLEEP": "0.15"})
    deadline = time.time() + 120
    while not (out / "checkpoints" / "step_00000006.pt").exists():
        assert time.time() < deadline and proc.poll() is None, "run ended before step 6"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(out / "checkpoints/last.pt")["step"] < 12
    resumed = run_toy(out, "--steps", "12", "--accum", "2", "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr
    assert_same(weights(tmp_path / "straight"), weights(out))
    steps = [int(r["step"]) for r in read_csv(out / "metrics.csv")]
    assert steps == list(range(1, 13))


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path):
    single = run_toy(tmp_path / "single", "--steps", "6", "--batch", "8", "--dropout", "0")
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--standalone", TOY, "--out", str(tmp_path / "ddp"), "--steps", "6",
                "--batch", "4", "--dropout", "0"]
    ddp = subprocess.run(torchrun, env=ENV, check=False, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert_same(weights(tmp_path / "single"), weights(tmp_path / "ddp"), atol=1e-6)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    result = run_toy(tmp_path / "run", "--steps", "10", "--nan-at", "5")
    assert result.returncode != 0
    assert "loss is nan at step 5" in result.stderr and "step_00000004.pt" in result.stderr
    state = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_failed_write_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"step": 1, "w": torch.ones(3)}, path)

    def broken_save(obj, handle):
        handle.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": 2, "w": torch.zeros(3)}, path)
    assert load_checkpoint(path)["step"] == 1
    assert list(tmp_path.iterdir()) == [path]


def test_truncated_checkpoint_error_names_file(tmp_path):
    path = tmp_path / "bad.pt"
    atomic_save({"w": torch.ones(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(RuntimeError, match="bad.pt"):
        load_checkpoint(path)


def test_sampler_shards_cover_single_process_batches():
    single = list(EpochSampler(20, seed=1, world_size=1))
    shards = [list(EpochSampler(20, seed=1, rank=r, world_size=2)) for r in range(2)]
    for step in range(2):  # global batch 8 == 2 ranks x 4
        assert sorted(single[8 * step: 8 * step + 8]) == sorted(
            shards[0][4 * step: 4 * step + 4] + shards[1][4 * step: 4 * step + 4])
    resumed = EpochSampler(20, seed=1)
    resumed.set_epoch(0, skip_samples=6)
    assert list(resumed) == single[6:]


def test_schedules():
    cosine = ScheduleConfig(name="cosine", warmup_steps=10, min_lr_ratio=0.0)
    assert lr_factor(0, cosine, 110, 10) == pytest.approx(0.1)
    assert lr_factor(9, cosine, 110, 10) == pytest.approx(1.0)
    assert lr_factor(60, cosine, 110, 10) == pytest.approx(0.5)
    assert lr_factor(110, cosine, 110, 10) == pytest.approx(0.0)
    multistep = ScheduleConfig(name="multistep", milestones=[2, 4], gamma=0.1)
    assert [lr_factor(s, multistep, 100, 10) for s in (0, 19, 20, 45)] == pytest.approx(
        [1, 1, 0.1, 0.01])


def test_param_groups_skip_decay_on_norms_and_apply_layer_decay():
    class TinyViT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.patch_embed = torch.nn.Linear(4, 4)
            self.blocks = torch.nn.ModuleList([torch.nn.LayerNorm(4), torch.nn.Linear(4, 4)])
            self.head = torch.nn.Linear(4, 2)

    groups = param_groups(TinyViT(), OptimConfig(name="adamw", weight_decay=0.05, layer_decay=0.5), 1.0)
    by_size = {(g["weight_decay"], g["lr"]): sum(p.numel() for p in g["params"]) for g in groups}
    assert by_size[(0.05, 0.125)] == 16  # patch_embed.weight: layer 0 of 2 blocks -> 0.5**3
    assert by_size[(0.0, 0.125)] == 4    # patch_embed.bias
    assert by_size[(0.05, 0.5)] == 16    # blocks.1.weight -> layer 2 -> 0.5**1
    assert by_size[(0.05, 1.0)] == 8     # head.weight
    assert vit_layer_id("encoder.blocks.11.attn.qkv.weight", 12) == 12
