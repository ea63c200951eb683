"""`vidssl evaluate` under torchrun: sharded inference gathered in dataset order, BatchNorm over
the global batch, and a whole 2-process evaluation (CPU, gloo) equal to the 1-process one."""
import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from torch import nn

from vidssl.engine import distributed as D
from vidssl.engine import fit
from vidssl.engine.batchnorm import GlobalBatchNorm, convert_to_global_batchnorm
from vidssl.evaluation.finetune import train_settings
from vidssl.evaluation.inference import run_over_views
from vidssl.evaluation.suite import Recipe
from vidssl.evaluation.tasks import build_task

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


class Numbered(torch.utils.data.Dataset):
    """Item ``i``: two views of a fixed random clip, label ``i % 3``, ``bad = 1`` for i = 5."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        video = torch.randn(2, 3, 2, 4, 4, generator=torch.Generator().manual_seed(i))
        return {"video": video, "label": i % 3, "index": i, "bad": int(i == 5)}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3))


def _one_training_step(net: nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> dict:
    """Loss, gradients and BN running stats after one step on ``clips``."""
    loss = nn.functional.cross_entropy(net(clips), labels)
    loss.backward()
    bn = next(m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    return {"loss": float(D.all_reduce(loss.detach().clone(), op="mean")),
            "grads": [p.grad.clone() for p in net.parameters()],
            "running": (bn.running_mean.clone(), bn.running_var.clone())}


class Clips(torch.utils.data.Dataset):
    """8 fixed random clips, label ``i % 3``."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        video = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(100 + i))
        return {"video": video, "label": i % 3}


class Classifier(nn.Module):
    """``_net`` with the ``training_step`` that ``engine.fit`` trains."""

    def __init__(self):
        super().__init__()
        self.net = _net()

    def training_step(self, batch):
        return {"loss": nn.functional.cross_entropy(self.net(batch["video"]), batch["label"])}


def _fine_tune(out_dir: Path) -> tuple[dict, int]:
    """``engine.fit`` with the fine-tuning settings of a global batch of 4 (2 epochs of 2
    steps); returns the trained weights and the per-rank batch."""
    recipe = Recipe(batch_size=4, epochs=2, optimizer="sgd", lr=0.5, num_workers=0)
    settings = train_settings(recipe, train_size=8, seed=0, device="cpu", max_steps=None,
                              resume=None, progress=False)
    model = Classifier()
    fit(model, Clips(), settings, out_dir)
    return {k: v.clone() for k, v in model.state_dict().items()}, settings.batch_size


def _worker(rank: int, world: int, port: int, out_dir: Path, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    net = _net().eval()
    outputs, targets, bad = run_over_views(net, Numbered(), build_task("classification"),
                                           clips_per_batch=4, device="cpu", progress=False)
    clips = torch.randn(8, 3, 2, 4, 4, generator=torch.Generator().manual_seed(9))
    labels = torch.arange(8) % 3
    ddp = nn.parallel.DistributedDataParallel(convert_to_global_batchnorm(_net().train()))
    step = _one_training_step(ddp, clips[rank::world], labels[rank::world])
    weights, per_rank = _fine_tune(out_dir)
    with pytest.raises(ValueError, match="does not split over 2 processes"):
        train_settings(Recipe(batch_size=5), train_size=20, seed=0, device="cpu",
                       max_steps=None, resume=None, progress=False)
    results[rank] = {"outputs": outputs, "targets": targets, "bad": bad, "step": step,
                     "weights": weights, "per_rank_batch": per_rank,
                     "converted": any(isinstance(m, GlobalBatchNorm) for m in ddp.modules())}
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two spawned processes import torch: ~5-15 s
def test_sharded_inference_and_global_batchnorm_equal_one_process(tmp_path):
    outputs, targets, bad = run_over_views(_net().eval(), Numbered(), build_task("classification"),
                                           clips_per_batch=4, device="cpu", progress=False)
    clips = torch.randn(8, 3, 2, 4, 4, generator=torch.Generator().manual_seed(9))
    single = _one_training_step(_net().train(), clips, torch.arange(8) % 3)
    weights, batch = _fine_tune(tmp_path / "one")

    results = mp.Manager().dict()
    mp.spawn(_worker, args=(2, _free_port(), tmp_path / "two", results), nprocs=2, join=True)
    for rank in range(2):
        got = results[rank]
        # 7 videos over 2 ranks (4 + 3, no padding): every video once, in dataset order
        assert got["outputs"].shape == (7, 2, 3) and got["bad"] == bad == 1
        torch.testing.assert_close(got["outputs"], outputs, rtol=0, atol=1e-6)
        assert torch.equal(got["targets"], targets)
        # BatchNorm over the global batch of 8 (4 per rank): same loss, gradients, statistics
        assert got["converted"]
        assert got["step"]["loss"] == pytest.approx(single["loss"], rel=1e-6)
        for mine, reference in zip(got["step"]["grads"], single["grads"], strict=True):
            torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)
        for mine, reference in zip(got["step"]["running"], single["running"], strict=True):
            torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)
        # fine-tuning: 2 ranks x 2 samples, sync BN, 4 SGD steps = 1 process x 4 samples
        assert (got["per_rank_batch"], batch) == (2, 4)
        for key, value in weights.items():
            torch.testing.assert_close(got["weights"][key], value, rtol=1e-5, atol=1e-6)
    # per-rank BN statistics would differ: the check above can fail
    local = _one_training_step(_net().train(), clips[0::2], (torch.arange(8) % 3)[0::2])
    assert not torch.allclose(local["grads"][0], single["grads"][0], atol=1e-4)


# ------------------------------------------------------------------- the whole command
MOTIONS = {"Right": 2, "Left": -2, "Still": 0}  # px per frame of the square: the class


def _write_video(path: Path, step: int, seed: int, frames: int = 8, size: int = 32) -> None:
    """A noisy backdrop of a random colour with a grey square moving ``step`` px per frame
    (the classes share every colour, so an untrained network is far from perfect)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = rng.integers(0, 256, 3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=16)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        x0 = int(rng.integers(0, size - 8))
        for t in range(frames):
            image = np.clip(colour + rng.normal(0, 40, (size, size, 3)), 0, 255)
            image = image.astype(np.uint8)
            x = (x0 + step * t) % (size - 8)
            image[10:18, x:x + 8] = 128
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _ucf_layout(root: Path) -> None:
    """UCF101 layout, 3 classes x (8 train + 3 test) videos: 9 test videos, an odd number."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(MOTIONS)))
    train, test = [], []
    for label, (name, step) in enumerate(MOTIONS.items()):
        for i in range(11):
            rel = f"{name}/v_{name}_g{i:02d}_c01.avi"
            _write_video(root / "UCF-101" / rel, step, seed=100 * label + i)
            (train if i < 8 else test).append((rel, label + 1))
    (lists / "trainlist01.txt").write_text("".join(f"{r} {y}\n" for r, y in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r, _ in test))


def _suite(path: Path) -> None:
    base = {"num_frames": 8, "target_fps": None, "frame_stride": 1, "size": 32, "batch_size": 8,
            "num_workers": 0, "val_fraction": 0.25, "val_clips": 1, "test_clips": 2,
            "feature_clips": 2, "crop_scale": [0.5, 1.0], "dropout": 0.0, "epochs": 2, "optimizer": "sgd",
            "lr": 0.01, "linear_epochs": 8, "linear_lr": 0.05, "linear_batch_size": 4,
            "linear_weight_decays": [0.0, 0.1]}
    suite = {"name": "ddp", "recipes": {"base": base}, "factors": {"domain": [
        {"name": "finetune", "dataset": "ucf101", "root": "ucf", "recipe": "base"},
        {"name": "linear", "dataset": "ucf101", "root": "ucf", "recipe": "base",
         "overrides": {"protocol": "linear"}}]}}
    path.write_text(yaml.safe_dump(suite))


def _evaluate(launcher: list[str], suite: Path, data: Path, out: Path) -> dict:
    command = [*launcher, "vidssl", "evaluate", "--suite", str(suite), "--model", "vit_tiny",
               "--data-root", str(data), "--out", str(out)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "results.json").read_text())["methods"][0]


def _log(out: Path) -> list[dict]:
    path = out / "experiments" / "finetune" / "seed_0" / "metrics.csv"
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # three `vidssl evaluate` processes on a tiny suite: ~25-45 s
def test_torchrun_evaluate_equals_one_process_on_the_same_global_batch(tmp_path):
    _ucf_layout(tmp_path / "data" / "ucf")
    _suite(tmp_path / "ddp.yaml")
    one = _evaluate([sys.executable, "-m"], tmp_path / "ddp.yaml", tmp_path / "data",
                    tmp_path / "one")
    two = _evaluate([sys.executable, "-m", "torch.distributed.run", "--standalone",
                     "--nproc_per_node", "2", "-m"], tmp_path / "ddp.yaml", tmp_path / "data",
                    tmp_path / "two")
    assert (one["processes"], two["processes"]) == (1, 2)
    for name in ("finetune", "linear"):
        a, b = one["experiments"][name], two["experiments"][name]
        assert a["status"] == b["status"] == "done", (a, b)
        assert a["videos"] == b["videos"] and a["videos"]["test"] == 9
        assert a["selected"] == b["selected"] and a["bad_samples"] == b["bad_samples"] == 0
        for metric, value in a["metrics"].items():
            assert b["metrics"][metric]["mean"] == pytest.approx(value["mean"], abs=1e-4)
    # the training trajectory (global-batch loss every step) and every selection score
    rows_one, rows_two = _log(tmp_path / "one"), _log(tmp_path / "two")
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_two]
    assert len(rows_one) >= 4 and any(r.get("select_top1") for r in rows_one)
    for a, b in zip(rows_one, rows_two, strict=True):
        for key in ("loss", "select_top1", "select_mean_class"):
            if a.get(key):
                assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-4, abs=1e-5), key
    # rank 0 alone wrote the report
    assert (tmp_path / "two" / "report.md").is_file()
    assert not list((tmp_path / "two").rglob(".*.tmp-*"))
