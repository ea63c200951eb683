"""Frozen-feature protocols (linear probe, kNN) and fine-tuning through the engine."""
import pytest
import torch
from torch import nn

from vidssl.evaluation.finetune import finetune
from vidssl.evaluation.frozen import FeatureSplits, knn_classify, linear_probe
from vidssl.evaluation.suite import Recipe
from vidssl.evaluation.tasks import build_task

torch.set_num_threads(1)


class _Labels:
    num_classes = 4


CENTERS = torch.randn(4, 16, generator=torch.Generator().manual_seed(7)) * 4


def _separable(n_per_class: int, views: int, seed: int):
    """Four classes around far-apart centers in 16-d, a little noise per clip."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(4).repeat_interleave(n_per_class)
    return CENTERS[labels][:, None] + 0.5 * torch.randn(len(labels), views, 16, generator=g), labels


def _splits(views=3):
    return FeatureSplits(*_separable(30, views, 0), *_separable(10, views, 1),
                         *_separable(5, views, 2))


def test_linear_probe_reaches_100_percent_on_separable_features():
    task = build_task("classification")
    recipe = Recipe(protocol="linear", linear_epochs=30, linear_lr=1e-2,
                    linear_weight_decays=[0.0, 1e-3])
    result = linear_probe(task, _splits(), _Labels(), recipe, metric="top1", seed=0)
    assert result["metrics"]["top1"] == 100.0
    assert result["metrics"]["mean_class"] == 100.0
    assert result["selected"]["weight_decay"] in (0.0, 1e-3)
    assert result["selection_score"] == 100.0


def test_linear_probe_is_deterministic_and_near_chance_on_random_labels():
    task = build_task("classification")
    splits = _splits()
    g = torch.Generator().manual_seed(3)
    splits.train_targets = torch.randint(0, 4, splits.train_targets.shape, generator=g)
    recipe = Recipe(protocol="linear", linear_epochs=10, linear_weight_decays=[0.0],
                    selection="last")
    splits.select = None
    a = linear_probe(task, splits, _Labels(), recipe, metric="top1", seed=0)
    b = linear_probe(task, splits, _Labels(), recipe, metric="top1", seed=0)
    assert a == b
    assert a["metrics"]["top1"] < 60


def test_knn_on_separable_features_and_count_regression():
    task = build_task("classification")
    result = knn_classify(task, _splits(), _Labels(), Recipe(protocol="knn", knn_k=5))
    assert result["metrics"]["top1"] == 100.0
    # counting: features encode the count; neighbours' counts are averaged
    counting = build_task("counting")
    counts = torch.tensor([1.0, 2, 3, 4, 5, 6] * 5)
    feats = torch.stack([torch.cos(counts), torch.sin(counts)], 1)[:, None, None, :]  # [N,V,T,D]
    splits = FeatureSplits(feats, counts, feats[:6], counts[:6])
    recipe = Recipe(protocol="knn", knn_k=3, knn_temperature=0.01)
    result = knn_classify(counting, splits, None, recipe)
    assert result["metrics"]["mae"] == pytest.approx(0.0, abs=1e-6)
    assert result["metrics"]["obo"] == 100.0


class _TinyBackbone(nn.Module):
    """Mean colour of the clip -> 8 features: enough to learn colour-coded classes."""

    num_features = 8

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv3d(3, 8, 1)

    def forward_features(self, x):
        tokens = self.proj(x)
        return {"pooled": tokens.mean((2, 3, 4)), "tokens": tokens}


class _ColourClips(torch.utils.data.Dataset):
    """Class c = a clip whose channel c is bright; ``views`` clips per video."""

    num_classes = 3

    def __init__(self, n, views=1, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 3, (n,), generator=g).tolist()
        self.noise = torch.randn(n, 3, 2, 4, 4, generator=g) * 0.1
        self.views = views
        self.targets = self.labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        video = self.noise[i].clone()
        video[self.labels[i]] += 1.0
        if self.views > 1:
            video = video[None].repeat(self.views, 1, 1, 1, 1)
        return {"video": video, "label": self.labels[i], "index": i, "bad": 0}


def test_finetune_selects_on_validation_and_cleans_up(tmp_path):
    task = build_task("classification")
    recipe = Recipe(epochs=3, batch_size=8, lr=0.05, milestones=[2.0], num_workers=0,
                    eval_every=1)
    result = finetune(_TinyBackbone(), task, _ColourClips(48), _ColourClips(12, views=2, seed=1),
                      _ColourClips(20, views=2, seed=2), recipe, tmp_path, metric="top1", seed=0,
                      progress=False)
    assert result["metrics"]["top1"] == 100.0
    assert result["selected"]["epoch"] in (1, 2, 3)
    assert result["selection_score"] == 100.0
    assert (tmp_path / "metrics.csv").is_file()
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "best.pt").exists()


def test_interrupted_finetune_resumes_to_the_same_result(tmp_path):
    task = build_task("classification")
    recipe = Recipe(epochs=3, batch_size=8, lr=0.05, milestones=[2.0], num_workers=0)
    data = (_ColourClips(48), _ColourClips(12, views=2, seed=1), _ColourClips(20, views=2, seed=2))

    def run(out, **kw):
        torch.manual_seed(0)
        return finetune(_TinyBackbone(), task, *data, recipe, out, metric="top1", seed=0,
                        progress=False, **kw)

    straight = run(tmp_path / "straight")
    run(tmp_path / "cut", max_steps=12, keep_checkpoints=True)  # stops after epoch 2 of 3
    resumed = run(tmp_path / "cut", resume="auto")
    assert resumed["selected"]["steps"] == straight["selected"]["steps"] == 18
    assert resumed["metrics"] == straight["metrics"]
    assert resumed["selected"] == straight["selected"]
