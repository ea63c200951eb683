"""Suite files, overrides, and the resumable runner on fake datasets."""
import json

import pytest
import torch
import yaml
from torch import nn

import vidssl.data
from vidssl.config import ConfigError
from vidssl.evaluation import load_suite, run_suite

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["severe", "full", "mini"])
def test_shipped_suites_load(name):
    suite = load_suite(name)
    assert suite.benchmark and all(suite.experiment(n) for n in suite.benchmark)
    assert set(suite.by_factor()) == {"domain", "samples", "actions", "tasks"}


def test_severe_is_the_eight_benchmark_experiments_of_full_with_its_recipes():
    severe, full = load_suite("severe"), load_suite("full")
    assert sorted(e.name for e in severe.experiments) == sorted(severe.benchmark)
    assert severe.benchmark == ["ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1",
                                "gym_ub_s1", "ucf_rc", "charades"]
    for experiment in severe.experiments:
        assert severe.recipe_for(experiment) == full.recipe_for(full.experiment(experiment.name))
    ssv2 = severe.recipe_for(severe.experiment("ssv2"))
    assert (ssv2.epochs, ssv2.milestones, ssv2.lr, ssv2.optimizer) == (
        22, [12, 17, 20], 1e-4, "adam")
    assert len(full.experiments) == 24  # 23 runs + the actions-table Gym99 (same runs)
    ava = full.recipe_for(full.experiment("ava"))  # SEVERE's AVA config: 32x2, SGD 0.1 x 32/64
    assert (ava.num_frames, ava.frame_stride, ava.lr, ava.weight_decay, ava.milestones,
            ava.epochs, ava.warmup_epochs, ava.jitter_scales) == (
        32, 2, 0.05, 1e-7, [10, 15], 20, 5, [256, 320])


def test_overrides_precedence_and_errors():
    suite = load_suite("full", ["recipe.epochs=3", "ssv2.epochs=5", "ucf101.root=/data/ucf",
                                "recipes.gym_subset.lr=0.5"])
    assert suite.recipe_for(suite.experiment("ucf101")).epochs == 3
    assert suite.recipe_for(suite.experiment("ssv2")).epochs == 5
    assert suite.experiment("ucf101").root == "/data/ucf"
    assert suite.recipe_for(suite.experiment("gym_fx_s1")).lr == 0.5
    assert suite.recipe_for(suite.experiment("gym99")).lr == 1e-4
    with pytest.raises(ConfigError, match="recipe.lrr"):
        load_suite("full", ["recipe.lrr=1"])
    with pytest.raises(ConfigError, match="experiment name"):
        load_suite("full", ["nosuch.epochs=1"])
    with pytest.raises(ConfigError, match="protocol"):
        load_suite("full", ["recipe.protocol=magic"])


def test_a_suite_file_carries_overrides_and_the_command_line_wins(tmp_path):
    finetune = load_suite("mini_finetune")
    assert [e.name for e in finetune.experiments] == ["ucf_like", "ucf_like_40"]
    assert {finetune.recipe_for(e).protocol for e in finetune.experiments} == {"finetune"}
    mini = load_suite("mini")
    assert mini.recipe_for(mini.experiment("ucf_like")).protocol == "linear"
    scratch = load_suite("mini_finetune", variant="scratch")  # SEVERE's longer scratch schedule
    assert [scratch.recipe_for(e).epochs for e in scratch.experiments] == [20, 12]
    linear = load_suite("mini_finetune", ["recipe.protocol=linear"])
    assert linear.recipe_for(linear.experiment("ucf_like")).protocol == "linear"
    child = tmp_path / "child.yaml"  # extends a suite that has overrides: both lists apply
    child.write_text(yaml.safe_dump({"name": "child", "extends": "mini_finetune",
                                     "only": ["ucf_like"], "overrides": ["recipe.epochs=3"]}))
    suite = load_suite(child)
    recipe = suite.recipe_for(suite.experiment("ucf_like"))
    assert (recipe.protocol, recipe.epochs) == ("finetune", 3)
    child.write_text(yaml.safe_dump({"name": "child", "extends": "mini", "overrides": "x=1"}))
    with pytest.raises(ConfigError, match=r"child.yaml: overrides must be a list"):
        load_suite(child)
    parent = tmp_path / "parent.yaml"  # a malformed list is reported with the file holding it
    parent.write_text(yaml.safe_dump({"name": "parent", "extends": "mini", "overrides": [3]}))
    child.write_text(yaml.safe_dump({"name": "child", "extends": str(parent)}))
    with pytest.raises(ConfigError, match=r"parent.yaml: overrides must be a list"):
        load_suite(child)


def test_suite_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"factors": {"domain": [
        {"name": "a", "dataset": "ucf101", "root": "u", "epoch": 3}]}}))
    with pytest.raises(ConfigError, match=r"bad.yaml.*epoch"):
        load_suite(path)


# ----------------------------------------------------------------------------- fake data
class _ColourVideos(torch.utils.data.Dataset):
    """Class = which channel is bright; multi-view in test mode. A 'count' dataset encodes
    the count in the brightness."""

    def __init__(self, n, seed, views, counting=False):
        g = torch.Generator().manual_seed(seed)
        self.counting = counting
        self.labels = torch.randint(0, 3, (n,), generator=g).tolist()
        self.counts = torch.randint(1, 5, (n,), generator=g).tolist()
        self.noise = torch.randn(n, 3, 4, 8, 8, generator=g) * 0.1
        self.views = views
        self.num_classes = 1 if counting else 3
        self.task = "counting" if counting else "classification"

    @property
    def targets(self):
        return self.counts if self.counting else self.labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        video = self.noise[i].clone()
        if self.counting:
            video += self.counts[i]
        else:
            video[self.labels[i]] += 1.0
        if self.views > 1:
            video = video[None].repeat(self.views, 1, 1, 1, 1)
        sample = {"video": video, "label": self.targets[i], "index": i, "bad": 0}
        if self.counting:
            sample["count"] = float(self.counts[i])
        return sample


class _Backbone(nn.Module):
    num_features = 8

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv3d(3, 8, 1)

    def forward_features(self, x):
        tokens = self.proj(x)
        return {"pooled": tokens.mean((2, 3, 4)), "tokens": tokens}


@pytest.fixture
def fake_data(monkeypatch, tmp_path):
    calls = []

    def build_dataset(name, root, split, num_samples=None, mode="train", num_views=1, **opts):
        calls.append((name, split, mode, num_views))
        n = 60 if split == "train" else 24
        return _ColourVideos(n, seed=0 if split == "train" else 1, views=num_views,
                             counting=name == "counts")

    monkeypatch.setattr(vidssl.data, "build_dataset", build_dataset)
    for folder in ("colours", "counts"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    suite = {
        "name": "tiny", "benchmark": ["lin", "ft"],
        "recipes": {"base": {"num_frames": 4, "size": 8, "batch_size": 8, "num_workers": 0,
                             "test_clips": 2, "val_clips": 2, "feature_clips": 2,
                             "linear_epochs": 20, "linear_lr": 0.05, "val_fraction": 0.2}},
        "factors": {
            "domain": [{"name": "lin", "dataset": "colours", "root": "colours", "recipe": "base",
                        "overrides": {"protocol": "linear"}},
                       {"name": "lin12", "dataset": "colours", "root": "colours", "recipe": "base",
                        "label_range": [1, 2], "overrides": {"protocol": "linear"}}],
            "samples": [{"name": "knn12", "dataset": "colours", "root": "colours",
                         "num_samples": 12, "recipe": "base",
                         "overrides": {"protocol": "knn", "knn_k": 3}}],
            "actions": [{"name": "ft", "dataset": "colours", "root": "colours", "recipe": "base",
                         "overrides": {"epochs": 2, "lr": 0.05, "milestones": []}}],
            "tasks": [{"name": "count", "dataset": "counts", "root": "counts", "task": "counting",
                       "recipe": "base", "overrides": {"protocol": "linear", "linear_lr": 0.01}}],
        }}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path, calls


def test_runner_runs_every_experiment_and_skips_finished_ones(fake_data, tmp_path):
    suite, calls = fake_data
    out = tmp_path / "run"
    kwargs = {"model": _Backbone(), "data_root": tmp_path / "data", "out": out, "seeds": 2,
              "progress": False}
    block = run_suite(suite, **kwargs)
    assert block["seeds"] == [0, 1]
    for name in ("lin", "lin12", "knn12", "ft", "count"):
        assert block["experiments"][name]["status"] == "done", block["experiments"][name]
    assert block["experiments"]["lin"]["metrics"]["top1"]["mean"] == 100.0
    assert block["experiments"]["lin12"]["metrics"]["top1"]["mean"] == 100.0
    ranged = [label for label in _ColourVideos(24, seed=1, views=1).labels if label >= 1]
    assert block["experiments"]["lin12"]["videos"]["test"] == len(ranged)
    assert block["experiments"]["ft"]["metrics"]["top1"]["mean"] > 90.0
    assert block["experiments"]["knn12"]["videos"]["train"] == 12  # 4 per class
    assert block["experiments"]["lin"]["videos"]["select"] == 12   # 20% of 60, stratified
    assert block["experiments"]["count"]["metrics"]["mae"]["mean"] < 0.2
    assert (out / "experiments" / "ft" / "seed_1" / "result.json").is_file()
    document = json.loads((out / "results.json").read_text())
    assert document["methods"][0]["severe_mean"] is not None
    assert "## Domain shift" in (out / "report.md").read_text()

    calls.clear()
    again = run_suite(suite, **kwargs)
    assert calls == []  # nothing rebuilt, nothing rerun
    assert again["experiments"]["lin"]["metrics"] == block["experiments"]["lin"]["metrics"]

    changed = run_suite(suite, overrides=["knn12.knn_k=5"], **kwargs)
    assert {c[0] for c in calls} == {"colours"} and len(calls) > 0  # only knn12 reran
    assert changed["experiments"]["ft"]["metrics"] == block["experiments"]["ft"]["metrics"]


def test_a_failing_experiment_is_reported_and_the_suite_goes_on(fake_data, tmp_path):
    suite, _ = fake_data
    block = run_suite(suite, model=_Backbone(), data_root=tmp_path / "data", out=tmp_path / "r",
                      overrides=["count.root=missing"], progress=False)
    assert block["experiments"]["count"]["status"] == "failed"
    assert "does not exist" in block["experiments"]["count"]["error"]
    assert block["experiments"]["lin"]["status"] == "done"
    assert "## Failed experiments" in (tmp_path / "r" / "report.md").read_text()
    with pytest.raises(FileNotFoundError, match="count.root"):
        run_suite(suite, model=_Backbone(), data_root=tmp_path / "data", out=tmp_path / "r2",
                  overrides=["count.root=missing"], progress=False, fail_fast=True)


def test_label_range_keeps_a_class_range_reindexed_from_zero():
    from vidssl.evaluation.splits import ClassRange

    data = _ColourVideos(30, seed=0, views=1)
    subset = ClassRange(data, 1, 2)
    assert subset.num_classes == 2
    kept = [i for i, label in enumerate(data.labels) if label >= 1]
    assert len(subset) == len(kept)
    assert subset.targets == [data.labels[i] - 1 for i in kept]
    assert [subset[j]["label"] for j in range(len(subset))] == subset.targets
    assert torch.equal(subset[0]["video"], data[kept[0]]["video"])
