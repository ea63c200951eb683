"""Supervised pretraining: the same backbone trained with class labels, the reference ceiling
that self-supervised rows are read against ("scratch trained with labels").

Loss: ``CE(W f(x) + b, y)`` with ``f(x)`` the backbone's pooled features and a linear
classifier ``W, b`` (``classifier.*`` in the checkpoint, ignored by evaluation, which loads
only ``backbone.*``); ``label_smoothing`` as in ``F.cross_entropy``. The data must be a
labelled dataset (``data.dataset: ucf101`` and the like): the adapters put the class index in
``batch["label"]`` (``-1`` for an unlabelled video, which is refused).

Recipe (``Supervised.recipe``): one clip per video at a random start and SEVERE's fine-tuning
augmentation (``train_transform``: random resized crop, flip p=0.5, colour jitter (0.4, 0.4,
0.4, 0.2) always), with the milder crop of the world's evaluation recipe, 50-100% of the area
(``configs/evaluate/mini.yaml`` recipe ``world``) instead of SEVERE's 8-100%: on 32-px world
clips an 8% crop loses the actor, whose trajectory is the class. The supervised row then sees
exactly the augmentation its scratch row is fine-tuned with.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidssl.data.recipes import ClipAugmentation, PretrainRecipe, ResizedCrop
from vidssl.errors import ConfigError
from vidssl.methods.base import SSLMethod, register_method
from vidssl.models import LinearClassifier

FINETUNE_RECIPE = PretrainRecipe(
    source="SEVERE fine-tuning augmentation (vidssl.data.transforms.train_transform) with the "
           "world evaluation recipe's crop scale (vidssl/configs/evaluate/mini.yaml: world)",
    augmentation=ClipAugmentation(crop=ResizedCrop(scale=(0.5, 1.0)), flip_p=0.5,
                                  color_jitter=(0.4, 0.4, 0.4, 0.2), jitter_p=1.0),
)


@dataclass
class SupervisedParams:
    """``num_classes``: classes of the labelled training set (required: it sizes the
    classifier); ``label_smoothing`` in [0, 1) as in ``F.cross_entropy``."""

    num_classes: int = 0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ConfigError(f"{type(self).__name__}: method.num_classes must be >= 1 (the "
                              f"classes of data.dataset), got {self.num_classes}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"{type(self).__name__}: method.label_smoothing must be in "
                              f"[0, 1), got {self.label_smoothing}")


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
    """Refuse unlabelled videos (``-1``) and class indices outside ``[0, num_classes)``."""
    low, high = torch.aminmax(labels)
    low, high = int(low), int(high)
    if low < 0:
        raise ValueError("supervised: the batch holds unlabelled videos (label -1); set "
                         "data.dataset to a labelled dataset (e.g. ucf101)")
    if high >= num_classes:
        raise ValueError(f"supervised: label {high} is outside method.num_classes="
                         f"{num_classes}; set method.num_classes to the dataset's class count")


@register_method
class Supervised(SSLMethod):
    name = "supervised"
    Params = SupervisedParams
    recipe = FINETUNE_RECIPE

    def __init__(self, backbone: torch.nn.Module, params: SupervisedParams):
        super().__init__(backbone, params)
        self.classifier = LinearClassifier(backbone.num_features, params.num_classes)

    def logits(self, video: torch.Tensor) -> torch.Tensor:
        """``[B,C,T,H,W]`` -> class logits ``[B, num_classes]``."""
        return self.classifier(self.backbone.forward_features(video)["pooled"])

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        video, labels = batch["video"], batch["label"]
        if video.dim() != 5:
            raise ValueError(f"{self.name}: batch['video'] must be [B,C,T,H,W] (one clip per "
                             f"video), got {tuple(video.shape)}")
        check_labels(labels, self.params.num_classes)
        logits = self.logits(video).float()
        loss = F.cross_entropy(logits, labels, label_smoothing=self.params.label_smoothing)
        return {"loss": loss, "acc": (logits.detach().argmax(dim=1) == labels).float().mean()}
