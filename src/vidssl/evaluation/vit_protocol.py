"""The ViT fine-tuning protocol of VideoMAE / SIGMA (``run_class_finetuning.py``) in the harness.

A suite's ``vit`` variant (``configs/evaluate/{full,severe,k400,ssv2}.yaml``) switches every
ViT backbone to the published recipe; this module supplies the parts that are not plain
recipe numbers (docs/vit_protocol.md has the table of settings against the scripts):

- the backbone is rebuilt at the recipe's clip geometry with ``drop_path_rate`` (stochastic
  depth, linear in depth, active in training only) and ``use_mean_pooling`` (the pooled
  feature is ``fc_norm(mean(tokens))``); pretrained weights load as VideoMAE's loader does:
  ``fc_norm`` starts fresh and a pretraining ``norm`` is ignored;
- the training clip is ``RandAugment -> random resized crop -> flip -> normalise -> random
  erasing`` (:func:`videomae_train_transform`);
- the head (``Linear``) starts from ``trunc_normal(0.02) x head_init_scale`` (VideoMAE
  ``--init_scale 0.001``);
- single-label training mixes batches (mixup 0.8 / cutmix 1.0, switch 0.5) into smoothed soft
  targets trained with soft-target cross-entropy; without mixing, ``label_smoothing`` applies
  to the plain cross-entropy (timm's ``LabelSmoothingCrossEntropy``);
- ``freeze_backbone`` is SIGMA's ``--linear_probing``: only ``head`` and ``fc_norm`` train,
  the model stays in training mode (drop path active), with the same augmentation and mixing.

The optimizer side (AdamW, ``lr x B / 256``, layer-wise decay with VideoMAE's
``get_parameter_groups`` rule, cosine with warm-up from 0 to ``min_lr``) is the engine's
(``vidssl.engine.optim``), driven by the recipe fields.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.evaluation.suite import Recipe

_VIT_CLASSES = ("VisionTransformer",)


def is_vit(name: str) -> bool:
    """A backbone name (or module class name) of the video ViT family."""
    return name.startswith("vit") or name in _VIT_CLASSES


def vit_protocol_kind(recipe: Recipe) -> str | None:
    """How a recipe evaluates with the ViT protocol, for the report: ``fine-tuning``, ``linear
    probe`` (frozen backbone), or ``None`` (not the ViT protocol)."""
    if recipe.protocol != "finetune" or not (recipe.layer_decay is not None
                                             or recipe.train_augmentation == "videomae"):
        return None
    return "linear probe" if recipe.freeze_backbone else "fine-tuning"


def vit_build_kwargs(recipe: Recipe) -> dict:
    """Constructor arguments the recipe sets on a ViT: clip geometry, and drop path / mean
    pooling where the recipe gives them (else the checkpoint's own)."""
    kwargs: dict = {"img_size": recipe.size, "num_frames": recipe.num_frames}
    if recipe.drop_path is not None:
        kwargs["drop_path_rate"] = recipe.drop_path
    if recipe.mean_pooling is not None:
        kwargs["use_mean_pooling"] = recipe.mean_pooling
    return kwargs


def load_vit_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load backbone weights as ``run_class_finetuning.py`` does: every transformer weight must
    match; the final-norm layout may differ (a pretraining ``norm`` is dropped when the model
    mean-pools, a missing ``fc_norm`` keeps its fresh init); classifier heads are skipped."""
    own = model.state_dict()
    layout = tuple(getattr(model, "layout_prefixes", ()))
    heads = tuple(getattr(model, "head_prefixes", ()))
    kept = {k: v for k, v in state.items()
            if k in own or not (k.startswith(layout) or k.startswith(heads))}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    missing = [k for k in missing if not k.startswith(layout + heads)]
    if missing or unexpected:
        raise RuntimeError(f"ViT weights do not fit the backbone: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")


def videomae_train_transform(recipe: Recipe, statistics):
    """VideoMAE's training clip (``ssv2.py`` / ``kinetics.py`` ``_aug_frame``): RandAugment on
    the decoded frames, random resized crop (area ``crop_scale``, aspect 3/4..4/3) to
    ``size``, horizontal flip unless ``hflip`` is off (SSv2), normalisation, random erasing."""
    from vidssl.data.augment import RandAugment, RandomErasing
    from vidssl.data.transforms import (
        Compose,
        FramesToClip,
        Normalize,
        RandomHorizontalFlip,
        RandomResizedCrop,
    )

    steps = [FramesToClip()]
    if recipe.rand_augment:
        steps.append(RandAugment(recipe.rand_augment))
    steps.append(RandomResizedCrop(recipe.size, tuple(recipe.crop_scale), (0.75, 1.3333)))
    if recipe.hflip:
        steps.append(RandomHorizontalFlip())
    if statistics is not None:
        steps.append(Normalize(*statistics))
    if recipe.random_erasing > 0:
        steps.append(RandomErasing(recipe.random_erasing))
    return Compose(steps)


class MixupCriterion:
    """Mix the batch (:class:`vidssl.data.augment.Mixup`) and train on its soft targets."""

    def __init__(self, mixup):
        self.mixup = mixup

    def __call__(self, model: nn.Module, clips: torch.Tensor, targets: torch.Tensor):
        from vidssl.data.augment import soft_target_cross_entropy

        clips, soft = self.mixup(clips, targets)
        return soft_target_cross_entropy(model(clips), soft)


class SmoothedCrossEntropy:
    """Cross-entropy against ``(1 - s) one_hot + s / K`` (timm ``LabelSmoothingCrossEntropy``)."""

    def __init__(self, smoothing: float):
        self.smoothing = smoothing

    def __call__(self, model: nn.Module, clips: torch.Tensor, targets: torch.Tensor):
        return F.cross_entropy(model(clips).float(), targets.long(),
                               label_smoothing=self.smoothing)


def training_criterion(recipe: Recipe, task_name: str, num_classes: int | None):
    """The loss replacing ``task.loss`` for single-label classification, or ``None``."""
    if task_name != "classification":
        return None
    if recipe.mixup > 0 or recipe.cutmix > 0:
        from vidssl.data.augment import Mixup

        if num_classes is None:
            raise ValueError("mixup / cutmix need the training set's num_classes")
        return MixupCriterion(Mixup(num_classes, recipe.mixup, recipe.cutmix,
                                    switch_prob=recipe.mixup_switch_prob,
                                    smoothing=recipe.label_smoothing))
    if recipe.label_smoothing > 0:
        return SmoothedCrossEntropy(recipe.label_smoothing)
    return None


def init_head(head: nn.Module, scale: float) -> None:
    """VideoMAE's head init: weights ``trunc_normal(std 0.02) x scale``, biases 0."""
    for layer in head.modules():
        if isinstance(layer, nn.Linear):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            layer.weight.data.mul_(scale)
            nn.init.zeros_(layer.bias)


def freeze_backbone(model: nn.Module) -> list[str]:
    """SIGMA's ``--linear_probing``: only parameters named ``*head*`` or ``*fc_norm*`` train.
    Returns the names that still train."""
    trained = []
    for name, param in model.named_parameters():
        keep = "head" in name or "fc_norm" in name
        param.requires_grad_(keep)
        if keep:
            trained.append(name)
    return trained


def prepare_vit_protocol(model: nn.Module, recipe: Recipe, num_classes: int | None) -> None:
    """Apply the recipe's ViT-protocol settings to a ``FinetuneModel`` (a no-op for recipes
    that set none of them): head init, frozen backbone, training criterion."""
    if recipe.head_init_scale is not None:
        init_head(model.head, recipe.head_init_scale)
    if recipe.freeze_backbone:
        freeze_backbone(model)
    model.criterion = training_criterion(recipe, model.task.name, num_classes)
