"""Downstream tasks: what a head sees, how it is trained, how test views merge, which metrics.

A ``Task`` is everything task-specific in an experiment; the protocols (fine-tuning, linear
probe, kNN) are written once against this interface:

- ``prepare(dataset, train)`` wraps a dataset if the task needs it (arrow of time),
- ``target(batch)`` the supervision tensor of a batch,
- ``features(backbone_out, grid)`` the part of ``forward_features`` the head consumes,
- ``build_head(num_features, dataset, dropout)`` and ``loss(outputs, targets)``,
- ``merge_views(outputs [N,V,...])`` one prediction per video, ``score(predictions, targets)``.

Action detection (``Detection``: AVA, UCF101-24) shares the features, head and loss parts;
its boxes travel with the clips, so it is trained and scored by its own protocol
(``vidssl.evaluation.action_detection``).
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
from vidssl.models.roi import RoIActionHead


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

    def prepare_finetune_eval(self, dataset: Dataset, seed: int) -> Dataset:
        """The selection / test set of fine-tuning (frozen-feature protocols use ``prepare``)."""
        return self.prepare(dataset, train=False, seed=seed)

    def training_inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(clips, targets) of a training batch."""
        return batch["video"], self.target(batch)

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


class VerbNoun(Classification):
    """EPIC-100 verbs and nouns, trained jointly as the authors do (``epic-kitchens-ssl``):
    one linear layer with ``V + N`` outputs (the verb and noun heads side by side), loss
    ``(CE_verb + CE_noun) / 2``, test views merged by averaging each head's softmax. Metrics:
    verb, noun and action (both right) top-1, in percent; verb top-1 is the published one."""

    name = "verb_noun"
    metric_names = ("top1", "noun_top1", "action_top1")
    num_verbs: int | None = None

    def _set_sizes(self, dataset) -> int:
        nouns = int(getattr(dataset, "num_nouns", 0))
        if nouns < 1:
            raise ValueError(f"{dataset!r} has no noun classes (the EPIC-100 CSVs need their "
                             "noun_class column)")
        self.num_verbs = _num_classes(dataset)
        return nouns

    def _split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.num_verbs is None:
            raise RuntimeError("verb_noun: build_head or neighbour_targets comes first")
        return outputs[..., : self.num_verbs], outputs[..., self.num_verbs:]

    def build_head(self, num_features, dataset, dropout=0.0):
        nouns = self._set_sizes(dataset)
        return LinearClassifier(num_features, self.num_verbs + nouns, dropout)

    def target(self, batch):
        if "noun" not in batch:
            raise ValueError("verb_noun: the batch has no 'noun' (the EPIC-100 CSVs need their "
                             "noun_class column)")
        return torch.stack([torch.as_tensor(batch["label"]), torch.as_tensor(batch["noun"])], 1)

    def loss(self, outputs, targets):
        verbs, nouns = self._split(outputs)
        targets = targets.long()
        return 0.5 * (F.cross_entropy(verbs, targets[:, 0]) + F.cross_entropy(nouns, targets[:, 1]))

    def merge_views(self, outputs):
        return torch.cat([metrics.average_softmax(part) for part in self._split(outputs)], -1)

    def score(self, predictions, targets):
        verbs, nouns = self._split(predictions)
        verb_right = verbs.argmax(1) == targets[:, 0].long()
        noun_right = nouns.argmax(1) == targets[:, 1].long()
        return {"top1": 100 * verb_right.double().mean().item(),
                "noun_top1": 100 * noun_right.double().mean().item(),
                "action_top1": 100 * (verb_right & noun_right).double().mean().item()}

    def neighbour_targets(self, targets, dataset):
        nouns = self._set_sizes(dataset)
        return torch.cat([F.one_hot(targets[:, 0].long(), self.num_verbs),
                          F.one_hot(targets[:, 1].long(), nouns)], 1).float()


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
    segment at test time). A cheaper alternative to SEVERE's anchor counter
    (``vidssl.evaluation.counting``; recipe ``counting_head: density`` selects this one).
    Metrics, as SEVERE reports them: normalized MAE ``mean |round(c_hat) - c| / c`` of the
    rounded count (ratio, lower is better) and off-by-one accuracy (percent)."""

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
        return {"mae": metrics.rounded_count_error(predictions, targets),
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


def _reverse_time(video: torch.Tensor) -> torch.Tensor:
    """Time is dim 1 of ``[C,T,H,W]`` and dim 2 of ``[V,C,T,H,W]``: dim ``-3`` of both."""
    return video.flip(video.dim() - 3)


class ForwardAndReversed(Dataset):
    """Every clip in both directions (the authors' arrow-of-time protocol, ``aot.py``).

    ``pairs=True`` (training): item ``i`` is video ``i`` as ``video [2,C,T,H,W]`` (forward,
    reversed: the same frames) with ``label [0, 1]``; ``ArrowOfTime.training_inputs`` makes a
    batch of B videos 2B clips, both directions of each clip in the same step.
    ``pairs=False`` (selection / test): item ``2i`` is video ``i`` forward (label 0), item
    ``2i + 1`` the same clip reversed (label 1); accuracy is over the 2N clips.
    """

    num_classes = 2
    class_names = ("forward", "reversed")

    def __init__(self, dataset: Dataset, pairs: bool):
        self.dataset, self.pairs = dataset, pairs
        self.num_frames = getattr(dataset, "num_frames", None)
        n = len(dataset)
        self.targets = [(0, 1)] * n if pairs else [0, 1] * n

    def __len__(self) -> int:
        return len(self.dataset) * (1 if self.pairs else 2)

    def __getitem__(self, index: int) -> dict:
        video_index, reverse = (index, False) if self.pairs else divmod(index, 2)
        sample = dict(self.dataset[video_index])
        sample.pop("count", None)
        video = sample["video"]
        if self.pairs:
            sample["video"] = torch.stack([video, _reverse_time(video)])
            sample["label"] = torch.tensor([0, 1])
        else:
            sample["video"] = _reverse_time(video) if reverse else video
            sample["label"] = int(reverse)
        return sample

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class ArrowOfTime(Classification):
    """Arrow of time: binary forward / reversed classification of clips (accuracy).

    Fine-tuning follows the authors (``video-ssl-benchmark/aot.py``): every training clip is
    seen forward and reversed in the same batch, and every selection / test clip is scored in
    both directions (``ForwardAndReversed``). Frozen-feature protocols reverse a fixed, seeded
    half of the videos (``ArrowOfTimeDataset``), so features stay one row per video."""

    name = "arrow_of_time"
    metric_names = ("top1",)

    def prepare(self, dataset, train, seed):
        if train:
            return ForwardAndReversed(dataset, pairs=True)
        return ArrowOfTimeDataset(dataset, train, seed)

    def prepare_finetune_eval(self, dataset, seed):
        return ForwardAndReversed(dataset, pairs=False)

    def training_inputs(self, batch):
        """``video [B,2,C,T,H,W]``, ``label [B,2]`` -> 2B clips and their directions."""
        return batch["video"].flatten(0, 1), batch["label"].flatten(0, 1)

    def score(self, predictions, targets):
        return {"top1": 100 * metrics.top1_accuracy(predictions, targets)}


def feature_map(tokens: torch.Tensor, grid: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Backbone ``tokens`` -> the last feature map ``[B,D,T',H',W']``: CNN tokens as they are,
    ViT tokens ``[B,N,D]`` folded back onto their tubelet ``grid = (T', H', W')``."""
    if tokens.dim() == 5:
        return tokens
    if tokens.dim() == 3 and grid is not None and tokens.shape[1] == grid[0] * grid[1] * grid[2]:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)
    raise ValueError(f"expected CNN tokens [B,D,T,H,W] or ViT tokens [B,N,D] on a grid, got "
                     f"shape {tuple(tokens.shape)} and grid {grid}")


class Detection(Task):
    """Action detection (AVA, UCF101-24): per-box action logits of a ``RoIActionHead`` on the
    backbone's last feature map, BCE on each box's multi-hot actions. Boxes travel with the
    clips and the metric reads official files, so its protocol lives in
    ``vidssl.evaluation.action_detection`` (which writes the detections and scores them with
    the official evaluators: frame mAP@0.5, percent); it has no frozen-feature form."""

    name = "detection"
    metric_names = ("map",)
    primary_metric = "map"

    def features(self, backbone_out, grid=None):
        return feature_map(backbone_out["tokens"], grid)

    def build_head(self, num_features, dataset, dropout=0.5):
        return RoIActionHead(num_features, _num_classes(dataset), dropout=dropout)

    def loss(self, outputs, targets, reduction: str = "mean"):
        return RoIActionHead.loss(outputs, targets, reduction)

    def merge_views(self, outputs):
        return outputs.sigmoid()  # one clip per keyframe: per-box action probabilities

    def score(self, predictions, targets):
        raise TypeError("detection is scored from its detections file by "
                        "vidssl.evaluation.action_detection.score_detections")


TASKS: dict[str, type[Task]] = {t.name: t for t in (Classification, VerbNoun, MultiLabel,
                                                    Counting, ArrowOfTime, Detection)}


def build_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]()
