"""Protocols on frozen features: a linear probe and a kNN classifier.

Features are extracted once (``inference.extract_features``) for every clip of every video;
both protocols then work on these tensors only, so they cost seconds, not a training run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from vidssl.evaluation.suite import Recipe
from vidssl.evaluation.tasks import Task


@dataclass
class FeatureSplits:
    """Features ``[N, V, ...]`` (V clips per video) and targets of the three roles.

    ``select`` is the model-selection split (validation or, in SEVERE's original protocol,
    the test split itself); ``None`` when no selection is made."""

    train: torch.Tensor
    train_targets: torch.Tensor
    test: torch.Tensor
    test_targets: torch.Tensor
    select: torch.Tensor | None = None
    select_targets: torch.Tensor | None = None


def _standardizer(train: torch.Tensor):
    """z-score with the training clips' per-dimension mean and std (last dim = features)."""
    flat = train.reshape(-1, train.shape[-1])
    mean, std = flat.mean(0), flat.std(0).clamp_min(1e-6)
    return lambda x: (x - mean) / std


@torch.no_grad()
def _predict(head: torch.nn.Module, task: Task, features: torch.Tensor) -> torch.Tensor:
    n, v = features.shape[:2]
    return task.merge_views(head(features.flatten(0, 1)).unflatten(0, (n, v)))


def linear_probe(task: Task, features: FeatureSplits, dataset: Dataset, recipe: Recipe, *,
                 metric: str, seed: int, device="cpu") -> dict:
    """Train ``task.build_head`` on standardized frozen features, every clip a sample.

    AdamW with cosine decay for ``linear_epochs``; for each weight decay of
    ``linear_weight_decays`` the head is scored on the selection split ten times during
    training and the best (weight decay, epoch) is kept; without a selection split the last
    epoch of the single weight decay is used. Returns test metrics and what was selected.
    """
    device = torch.device(device)
    scale = _standardizer(features.train)
    x = scale(features.train).flatten(0, 1).to(device)
    y = features.train_targets.repeat_interleave(features.train.shape[1], dim=0).to(device)
    select = scale(features.select).to(device) if features.select is not None else None
    checks = {max(1, round(recipe.linear_epochs * (i + 1) / 10)) for i in range(10)}

    best_score, best_state, best_choice = None, None, {}
    for weight_decay in recipe.linear_weight_decays:
        torch.manual_seed(seed)
        head = task.build_head(x.shape[-1], dataset).to(device)
        optimizer = torch.optim.AdamW(head.parameters(), lr=recipe.linear_lr,
                                      weight_decay=weight_decay, fused=True)  # ~1.3x on CPU
        total = recipe.linear_epochs * math.ceil(len(x) / recipe.linear_batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s, total=total: 0.5 * (1 + math.cos(math.pi * s / total)))
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(1, recipe.linear_epochs + 1):
            head.train()
            order = torch.randperm(len(x), generator=generator).to(device)
            for start in range(0, len(x), recipe.linear_batch_size):
                batch = order[start:start + recipe.linear_batch_size]
                loss = task.loss(head(x[batch]), y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
            if select is None or epoch not in checks:
                continue
            head.eval()
            score = task.score(_predict(head, task, select).cpu(), features.select_targets)[metric]
            if task.is_better(score, best_score):
                best_score = score
                best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
                best_choice = {"weight_decay": weight_decay, "epoch": epoch}
    if best_state is not None:
        head.load_state_dict(best_state)
    else:
        best_choice = {"weight_decay": recipe.linear_weight_decays[-1],
                       "epoch": recipe.linear_epochs}
    head.eval()
    test_metrics = task.score(_predict(head, task, scale(features.test).to(device)).cpu(),
                              features.test_targets)
    return {"metrics": test_metrics, "selected": best_choice,
            "selection_score": best_score}


def knn_classify(task: Task, features: FeatureSplits, dataset: Dataset, recipe: Recipe) -> dict:
    """Weighted kNN on frozen features (Wu et al. 2018): features are averaged over clips
    (and time), centered with the training mean and L2-normalized; each test video takes the
    ``k`` most cosine-similar training videos, weighted ``exp(s / tau)``, and predicts the
    weighted mean of their target vectors (one-hot, multi-hot or count). No training, so no
    model selection."""

    def pool(f: torch.Tensor) -> torch.Tensor:
        return f.flatten(1, -2).mean(1) if f.dim() > 2 else f

    train, test = pool(features.train), pool(features.test)
    mean = train.mean(0)
    train = torch.nn.functional.normalize(train - mean, dim=1)
    test = torch.nn.functional.normalize(test - mean, dim=1)
    neighbours = task.neighbour_targets(features.train_targets, dataset)
    k = min(recipe.knn_k, len(train))
    similarity, index = (test @ train.T).topk(k, dim=1)
    weights = ((similarity - similarity[:, :1]) / recipe.knn_temperature).exp()  # stable exp
    votes = (weights[..., None] * neighbours[index]).sum(1) / weights.sum(1, keepdim=True)
    return {"metrics": task.score(task.votes_to_predictions(votes), features.test_targets),
            "selected": {"k": k, "temperature": recipe.knn_temperature}, "selection_score": None}
