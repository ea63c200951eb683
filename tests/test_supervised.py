"""Supervised pretraining: the labelled reference row of the demo's ladder."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidssl.data.world import generate_world
from vidssl.demo import (
    METHOD_ROWS,
    SUPERVISED_ROW,
    _scratch_backbones,
    _set_epochs,
    comparisons,
)
from vidssl.errors import ConfigError
from vidssl.evaluation.suite import load_suite
from vidssl.methods import METHODS
from vidssl.methods.supervised import Supervised, SupervisedParams
from vidssl.models import build_backbone
from vidssl.models.checkpoints import build_from_checkpoint, load_pretrained
from vidssl.pretrain import build_method, build_pretrain_dataset, load_pretrain_config, run_pretrain

torch.set_num_threads(1)


class FeaturesAreTheClip(nn.Module):
    """A stand-in backbone whose pooled features are the first ``num_features`` inputs."""

    num_features = 2

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pooled": x.flatten(1)[:, :self.num_features]}


def identity_classifier_method(label_smoothing: float) -> Supervised:
    method = Supervised(FeaturesAreTheClip(), SupervisedParams(2, label_smoothing))
    with torch.no_grad():
        method.classifier.fc.weight.copy_(torch.eye(2))
        method.classifier.fc.bias.zero_()
    return method


def batch_with_logits(logits: torch.Tensor, labels: list[int]) -> dict:
    video = torch.zeros(len(labels), 3, 2, 2, 2)
    video.view(len(labels), -1)[:, :2] = logits
    return {"video": video, "label": torch.tensor(labels)}


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_world(root, preset="tiny", seed=0, workers=1, progress=False)
    return root


def world_config(world, *overrides):
    return load_pretrain_config("supervised_world", [f"data.root={world / 'ucf_like'}",
                                                     *overrides])


# --------------------------------------------------------------------------------- the loss
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_loss_is_the_cross_entropy_of_the_linear_classifier(smoothing):
    """Logits (0, ln 3) with label 1: p = 3/4, so CE = -ln 3/4; with smoothing e over K=2
    classes, (1 - e) * -ln p_y + e * mean_k -ln p_k."""
    logits = torch.tensor([[0.0, math.log(3.0)], [1.0, -2.0]])
    out = identity_classifier_method(smoothing).training_step(batch_with_logits(logits, [1, 0]))
    first = (1 - smoothing) * -math.log(0.75) + smoothing * -(math.log(0.25) + math.log(0.75)) / 2
    expected = F.cross_entropy(logits, torch.tensor([1, 0]), label_smoothing=smoothing)
    assert out["loss"].item() == pytest.approx(float(expected), abs=1e-6)
    single = identity_classifier_method(smoothing).training_step(batch_with_logits(logits[:1], [1]))
    assert single["loss"].item() == pytest.approx(first, abs=1e-6)
    assert float(out["acc"]) == 1.0


def test_unlabelled_or_out_of_range_labels_are_refused():
    method = identity_classifier_method(0.0)
    logits = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="unlabelled videos"):
        method.training_step(batch_with_logits(logits, [0, -1]))
    with pytest.raises(ValueError, match="method.num_classes=2"):
        method.training_step(batch_with_logits(logits, [0, 2]))


def test_num_classes_must_be_given():
    with pytest.raises(ConfigError, match="method.num_classes"):
        load_pretrain_config("supervised_world", ["method.num_classes=0"])
    with pytest.raises(ConfigError, match="label_smoothing"):
        load_pretrain_config("supervised_world", ["method.label_smoothing=1.0"])


# ---------------------------------------------------------------------- config and recipe
def test_bundled_config_is_the_scratch_recipe_of_the_world_trained_with_labels():
    cfg = load_pretrain_config("supervised_world")
    moco = load_pretrain_config("video_moco_world")
    mini = load_suite("mini")
    recipe = mini.recipe_for(mini.experiment("ucf_like"))
    assert cfg.method.name == "supervised" and cfg.method.params == SupervisedParams(10, 0.0)
    assert (cfg.model.name, cfg.model.kwargs) == (moco.model.name, moco.model.kwargs)
    assert (cfg.data.dataset, cfg.data.root, cfg.data.split) == ("ucf101", "world/ucf_like", "train")
    assert (cfg.data.size, cfg.data.num_frames) == (recipe.size, recipe.num_frames)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == (
        recipe.optimizer, recipe.lr, recipe.weight_decay)
    assert (cfg.schedule.name, cfg.schedule.milestones, cfg.schedule.gamma, cfg.train.epochs) == (
        recipe.schedule, recipe.milestones, recipe.gamma, recipe.epochs)
    crop = METHODS["supervised"].recipe.augmentation.crop
    assert list(crop.scale) == recipe.crop_scale and METHODS["supervised"].recipe.pairing == "one_clip"


def test_the_recipe_gives_one_labelled_clip_per_video(tiny_world):
    dataset = build_pretrain_dataset(world_config(tiny_world))
    sample = dataset[0]
    assert tuple(sample["video"].shape) == (3, 16, 32, 32)
    labels = {dataset[i]["label"] for i in range(len(dataset))}
    assert labels == set(range(world_config(tiny_world).method.params.num_classes))


# ------------------------------------------------------------------ training and checkpoint
def test_training_on_a_batch_of_the_world_reduces_the_loss(tiny_world):
    torch.manual_seed(0)
    cfg = world_config(tiny_world, "data.num_frames=8")
    method, dataset = build_method(cfg), build_pretrain_dataset(cfg)
    picks = range(0, len(dataset), len(dataset) // 10)  # the split lists videos by class
    batch = torch.utils.data.default_collate([dataset[i] for i in picks])
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = method.training_step(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(10), abs=0.5)  # chance over 10 classes
    assert losses[-1] < 0.5 * losses[0]


def test_the_checkpoint_loads_as_a_backbone_for_evaluation(tiny_world, tmp_path):
    cfg = world_config(tiny_world, "data.num_frames=8", "data.batch_size=8", "train.max_steps=2")
    result = run_pretrain(cfg, tmp_path / "run", progress=False)
    saved = torch.load(result.last_checkpoint, weights_only=True)
    assert saved["method"] == "supervised" and saved["backbone_prefix"] == "backbone."
    backbone, report = build_from_checkpoint(result.last_checkpoint)  # what evaluation does
    fresh = build_backbone("r2plus1d_18", width=0.25)
    assert report.ok and set(report.loaded) == set(backbone.state_dict()) == set(fresh.state_dict())
    assert load_pretrained(fresh, result.last_checkpoint).ok
    assert {key for key, _ in report.ignored} == {"classifier.fc.weight", "classifier.fc.bias"}
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, saved["model"]["backbone." + key]), key


# --------------------------------------------------------------------------------- the demo
def test_the_demo_reads_the_supervised_row_as_a_ceiling_not_as_a_method():
    assert SUPERVISED_ROW.world_part == "ucf_like" and SUPERVISED_ROW not in METHOD_ROWS
    _, scratch_of = _scratch_backbones()
    assert scratch_of[SUPERVISED_ROW.label] == scratch_of["Video-MoCo"] == "Scratch (R(2+1)D)"
    rows = comparisons(scratch_of)
    ceiling = [c for c in rows if c.method == SUPERVISED_ROW.label]
    assert [c.question for c in ceiling] == ["supervised ceiling beats scratch"]
    assert ceiling[0].baseline == "Scratch (R(2+1)D)"
    methods = {c.method for c in rows if c.question == "pretraining beats scratch"}
    assert methods == {row.label for row in METHOD_ROWS}


def test_a_shorter_demo_run_moves_the_milestones_with_the_epochs():
    cfg = load_pretrain_config(SUPERVISED_ROW.config)
    _set_epochs(cfg, 8)  # vidssl demo --pretrain-epochs 8
    assert (cfg.train.epochs, cfg.schedule.milestones) == (8, [pytest.approx(8 * 8 / 12)])
    cosine = load_pretrain_config("video_moco_world")
    _set_epochs(cosine, 4)
    assert (cosine.train.epochs, cosine.schedule.milestones) == (4, [])
