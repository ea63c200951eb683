"""Downstream tasks: what a head sees, how it is trained, how test views merge, which metrics.

A ``Task`` is everything task-specific in an experiment; the protocols (fine-tuning, linear
probe, kNN) are written once against this interface:

- ``prepare(dataset, train)`` wraps a dataset if the task needs it (arrow of time),
- ``target(batch)`` the supervision tensor of a batch,
- ``features(backbone_out, grid)`` the part of ``forward_features`` the head consumes,
- ``build_head(num_features, dataset, dropout)`` and ``loss(outputs, targets)``,
- ``merge_views(outputs [N,V,...])`` one prediction per video, ``score(predictions, targets)``.

Action detection (AVA) fits the same mould later: boxes in ``target``, RoI features in
``features``, a RoI head, per-box merge and frame-mAP in ``score``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from vidssl.evaluation import metrics
from vidssl.models.heads import (
    LinearClassifier,
    MultiLabelHead,
    RepetitionCountingHead,
    temporal_features,
)


class Task(ABC):
    """Base class; subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    single_view: ClassVar[bool] = False  # the target belongs to one clip (counting windows)

    def is_better(self, score: float, best: float | None) -> bool:
        """Model selection: does ``score`` beat ``best`` (None = nothing yet)?"""
        if best is None:
            return True
        return score > best if self.higher_is_better else score < best

    def prepare(self, dataset: Dataset, train: bool, seed: int) -> Dataset:
        return dataset

    def target(self, batch: dict) -> torch.Tensor:
        return batch["label"]

    def features(self, backbone_out: dict, grid=None) -> torch.Tensor:
        return backbone_out["pooled"]

    @abstractmethod
    def build_head(self, num_features: int, dataset: Dataset, dropout: float = 0.0) -> nn.Module:
        """A fresh head mapping ``features(...)`` to the task's outputs."""

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training loss of head outputs against ``target(batch)``."""

    @abstractmethod
    def merge_views(self, outputs: torch.Tensor) -> torch.Tensor:
        """Head outputs of all test views ``[N, V, ...]`` -> one prediction per video."""

    @abstractmethod
    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``metric_names`` -> value, in the units the papers report."""

    def neighbour_targets(self, targets: torch.Tensor, dataset: Dataset) -> torch.Tensor:
        """Targets as vectors a kNN vote averages: one-hot labels, multi-hot, or counts."""
        return F.one_hot(targets.long(), _num_classes(dataset)).float()

    def votes_to_predictions(self, votes: torch.Tensor) -> torch.Tensor:
        """kNN weighted votes ``[N, K]`` -> what ``score`` takes."""
        return votes


def _num_classes(dataset: Dataset) -> int:
    num = getattr(dataset, "num_classes", None)
    if num is None:
        raise ValueError(f"{type(dataset).__name__} has no num_classes attribute")
    return int(num)


class Classification(Task):
    """Single-label action recognition: cross-entropy; test clips merged by averaging the
    softmax; video-level top-1 and mean-class accuracy, in percent."""

    name = "classification"
    metric_names = ("top1", "mean_class")
    primary_metric = "top1"

    def build_head(self, num_features, dataset, dropout=0.0):
        return LinearClassifier(num_features, _num_classes(dataset), dropout)

    def loss(self, outputs, targets):
        return F.cross_entropy(outputs, targets.long())

    def merge_views(self, outputs):
        return metrics.average_softmax(outputs)

    def score(self, predictions, targets):
        return {"top1": 100 * metrics.top1_accuracy(predictions, targets),
                "mean_class": 100 * metrics.mean_class_accuracy(predictions, targets)}


class MultiLabel(Task):
    """Multi-label classification (Charades): per-class BCE; test clips merged by the max of
    the sigmoids (PySlowFast's ``ENSEMBLE_METHOD: max``); mAP over classes, in percent."""

    name = "multilabel"
    metric_names = ("map",)
    primary_metric = "map"

    def build_head(self, num_features, dataset, dropout=0.0):
        return MultiLabelHead(num_features, _num_classes(dataset), dropout)

    def loss(self, outputs, targets):
        return MultiLabelHead.loss(outputs, targets)

    def merge_views(self, outputs):
        return metrics.max_sigmoid(outputs)

    def score(self, predictions, targets):
        return {"map": 100 * metrics.mean_average_precision(predictions, targets)}

    def neighbour_targets(self, targets, dataset):
        return targets.float()


class _CountingHead(nn.Module):
    """``RepetitionCountingHead`` on per-time-step features ``[B, T', D]``; returns counts."""

    def __init__(self, num_features: int, num_frames: int | None):
        super().__init__()
        self.head = RepetitionCountingHead(num_features, num_frames=num_frames)

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        # [B,T',D] -> the CNN token layout [B,D,T',1,1] the head's temporal_features reads
        return self.head(steps.transpose(1, 2)[..., None, None])["count"]


class Counting(Task):
    """Repetition counting (UCFRep): a density head over the backbone's per-time-step
    features, count = integral of the density, trained with L1 on the annotated number of
    cycles in the clip (random cycle-aligned windows in training, one clip over the annotated
    segment at test time). Metrics: normalized MAE ``mean |c_hat - c| / c`` of the predicted
    count (ratio, lower is better) and off-by-one accuracy of the rounded count (percent)."""

    name = "counting"
    metric_names = ("mae", "obo")
    primary_metric = "mae"
    higher_is_better = False
    single_view = True

    def target(self, batch):
        return batch["count"].float()

    def features(self, backbone_out, grid=None):
        return temporal_features(backbone_out["tokens"], grid)

    def build_head(self, num_features, dataset, dropout=0.0):
        return _CountingHead(num_features, getattr(dataset, "num_frames", None))

    def loss(self, outputs, targets):
        return RepetitionCountingHead.loss(outputs, targets)

    def merge_views(self, outputs):
        return metrics.average_views(outputs)

    def score(self, predictions, targets):
        return {"mae": metrics.normalized_count_error(predictions, targets),
                "obo": 100 * metrics.off_by_one_accuracy(predictions, targets)}

    def neighbour_targets(self, targets, dataset):
        return targets.float()[:, None]

    def votes_to_predictions(self, votes):
        return votes[:, 0]


class ArrowOfTimeDataset(Dataset):
    """Wraps a video dataset for arrow-of-time classification: each clip is played backwards
    with probability 0.5; ``label`` is 0 (forward) or 1 (reversed).

    Training draws the coin per access from the torch RNG (which the engine seeds per
    ``(seed, epoch, index)``). Evaluation reverses a fixed, seeded half of the videos, the same
    for every view of a video, so val/test sets are balanced and identical across runs.
    """

    num_classes = 2
    class_names = ("forward", "reversed")

    def __init__(self, dataset: Dataset, train: bool, seed: int = 0):
        self.dataset, self.train = dataset, train
        n = len(dataset)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.fixed = torch.zeros(n, dtype=torch.bool)
        self.fixed[order[: n // 2]] = True
        self.targets = self.fixed.long().tolist()
        self.num_frames = getattr(dataset, "num_frames", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = dict(self.dataset[index])
        reverse = bool(torch.rand(()) < 0.5) if self.train else bool(self.fixed[index])
        video = sample["video"]
        if reverse:  # time is dim 1 of [C,T,H,W] and dim 2 of [V,C,T,H,W]
            sample["video"] = video.flip(video.dim() - 3)
        sample["label"] = int(reverse)
        sample.pop("count", None)
        return sample


class ArrowOfTime(Classification):
    """Arrow of time: binary forward / reversed classification of clips (accuracy)."""

    name = "arrow_of_time"
    metric_names = ("top1",)

    def prepare(self, dataset, train, seed):
        return ArrowOfTimeDataset(dataset, train, seed)

    def score(self, predictions, targets):
        return {"top1": 100 * metrics.top1_accuracy(predictions, targets)}


TASKS: dict[str, type[Task]] = {t.name: t for t in (Classification, MultiLabel, Counting,
                                                    ArrowOfTime)}


def build_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]()
