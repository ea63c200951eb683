"""The ViT protocol end to end on the ``tiny`` world: a ViT-tiny VideoMAE pretraining checkpoint
through ``vidssl evaluate`` with the bundled ``ssv2`` suite (fine-tuning and SIGMA's linear
probe, sized down by overrides), and the same run under a 2-process torchrun (CPU, gloo)."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vidssl.data.world import generate_world
from vidssl.evaluation import run_suite
from vidssl.models.vit import vit_tiny

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
# the published recipe, sized down: 32 px, 4 frames (2 TSN segments per tubelet pair), 2 epochs
SMALL = ["recipe.size=32", "recipe.test_short_side=32", "recipe.num_frames=4", "recipe.epochs=2",
         "recipe.warmup_epochs=1", "recipe.batch_size=8", "recipe.num_workers=0",
         "recipe.amp=none"]
ON_WORLD = [f"{name}.{key}" for name in ("ssv2", "ssv2_linear")
            for key in ("root=ssv2_like", "dataset_options={video_ext: mp4}")]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_world(root, preset="tiny", seed=0, workers=1, progress=False)
    return root


def _videomae_checkpoint(path: Path) -> Path:
    """A VideoMAE pretraining file: ``model`` with ``encoder.*`` (final ``norm``) + decoder keys."""
    torch.manual_seed(0)
    encoder = vit_tiny(img_size=32, num_frames=4, depth=2, use_mean_pooling=False)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({"mask_token": torch.zeros(1, 1, 96),
                  "encoder_to_decoder.weight": torch.zeros(96, 192)})
    torch.save({"model": state, "epoch": 799}, path)
    return path


@pytest.mark.slow  # tiny world (~10 s) + two ViT-tiny runs (~15 s)
def test_videomae_checkpoint_runs_the_ssv2_suite_end_to_end(world, tmp_path):
    checkpoint = _videomae_checkpoint(tmp_path / "videomae_tiny.pth")
    block = run_suite("ssv2", checkpoint, data_root=world, out=tmp_path / "run",
                      overrides=SMALL + ON_WORLD, progress=False)
    assert block["variant"]["name"] == "vit" and "videomae_pretrain" in block["load_report"]
    assert block["vit_protocol"] == {"ssv2": "fine-tuning", "ssv2_linear": "linear probe"}
    for name in ("ssv2", "ssv2_linear"):
        experiment = block["experiments"][name]
        assert experiment["status"] == "done", experiment
        assert experiment["selection"] == "last"
        assert 0.0 <= experiment["metrics"]["top1"]["mean"] <= 100.0
    assert block["experiments"]["ssv2"]["videos"] == {"train": 60, "select": 0, "test": 30}
    # the resolved recipes are the published ones apart from the overrides
    resolved = {e["name"]: e["recipe_resolved"]
                for e in yaml.safe_load((tmp_path / "run" / "suite.yaml").read_text())
                ["experiments"]}
    finetune, linear = resolved["ssv2"], resolved["ssv2_linear"]
    assert (finetune["sampling"], finetune["hflip"], finetune["test_clips"],
            finetune["test_crops"]) == ("segments", False, 2, 3)
    assert (finetune["layer_decay"], finetune["drop_path"], finetune["mixup"],
            finetune["rand_augment"]) == (0.75, 0.1, 0.8, "rand-m7-n4-mstd0.5-inc1")
    assert linear["freeze_backbone"] and linear["train_clips_per_video"] == 2
    # 60 videos, batch 8 -> 7 steps per epoch; the warm-up starts at lr 0
    log = _log(tmp_path / "run", "ssv2")
    assert [int(r["step"]) for r in log] == [7, 14]
    assert float(log[-1]["lr"]) < float(log[0]["lr"])
    report = (tmp_path / "run" / "report.md").read_text()
    assert "the ViT protocol (VideoMAE / SIGMA recipe" in report
    assert "ssv2 (fine-tuning), ssv2_linear (linear probe)" in report


def _log(out: Path, experiment: str) -> list[dict]:
    path = out / "experiments" / experiment / "seed_0" / "metrics.csv"
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get("loss")]


def _evaluate(launcher: list[str], suite: Path, checkpoint: Path, data: Path, out: Path,
              overrides: list[str]) -> dict:
    command = [*launcher, "vidssl", "evaluate", "--suite", str(suite), "--checkpoint",
               str(checkpoint), "--data-root", str(data), "--out", str(out), *overrides]
    done = subprocess.run(command, check=False, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "results.json").read_text())["methods"][0]


@pytest.mark.slow  # three processes of a one-experiment suite: ~40 s
def test_torchrun_vit_protocol_equals_one_process_on_the_same_global_batch(world, tmp_path):
    """Everything of the protocol whose random draws are per sample (RandAugment, crops,
    erasing: seeded by the sample) or deterministic (AdamW, layer decay, warm-up + cosine,
    label smoothing, fc_norm, 2 x 3 test views) gives the same numbers on 1 and 2 processes.
    Drop path and mixup draw per process, as in the published code (each GPU its own masks
    and lambda), so they are switched off here."""
    suite = tmp_path / "ssv2_only.yaml"
    suite.write_text("name: ssv2_only\nextends: ssv2\nonly: [ssv2]\n")
    checkpoint = _videomae_checkpoint(tmp_path / "videomae_tiny.pth")
    overrides = SMALL + ON_WORLD[:2] + ["recipe.drop_path=0.0", "recipe.mixup=0.0",
                                        "recipe.cutmix=0.0"]
    one = _evaluate([sys.executable, "-m"], suite, checkpoint, world, tmp_path / "one",
                    overrides)
    two = _evaluate([sys.executable, "-m", "torch.distributed.run", "--standalone",
                     "--nproc_per_node", "2", "-m"], suite, checkpoint, world, tmp_path / "two",
                    overrides)
    assert (one["processes"], two["processes"]) == (1, 2)
    a, b = one["experiments"]["ssv2"], two["experiments"]["ssv2"]
    assert a["status"] == b["status"] == "done", (a, b)
    assert a["videos"] == b["videos"] and a["selected"] == b["selected"]
    for metric, value in a["metrics"].items():
        assert b["metrics"][metric]["mean"] == pytest.approx(value["mean"], abs=1e-4)
    rows_one, rows_two = _log(tmp_path / "one", "ssv2"), _log(tmp_path / "two", "ssv2")
    assert len(rows_one) == 2
    for x, y in zip(rows_one, rows_two, strict=True):
        assert x["step"] == y["step"]
        assert float(y["loss"]) == pytest.approx(float(x["loss"]), rel=1e-4)
        assert float(y["lr"]) == pytest.approx(float(x["lr"]), rel=1e-6)
