"""Optimizers with parameter groups, and per-step learning-rate schedules."""
from __future__ import annotations

import math
import re

import torch
from torch import nn

from vidssl.config import OptimConfig, ScheduleConfig

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_EMBEDDING = ("patch_embed", "pos_embed", "cls_token", "mask_token")


def vit_layer_id(name: str, num_layers: int) -> int:
    """Depth of a ViT parameter for layer-wise LR decay: embeddings 0, block ``i`` -> ``i+1``,
    everything after the blocks (norms, heads) ``num_layers + 1``."""
    match = _BLOCK.search(name)
    if match:
        return int(match.group(1)) + 1
    if any(part in name for part in _EMBEDDING):
        return 0
    return num_layers + 1


def _num_vit_blocks(module: nn.Module) -> int:
    ids = [int(m.group(1)) for n, _ in module.named_parameters() if (m := _BLOCK.search(n))]
    return max(ids) + 1 if ids else 0


def _no_decay(name: str, param: torch.Tensor, skip: set[str]) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or any(s in name for s in skip)


def param_groups(module: nn.Module, optim: OptimConfig, lr: float) -> list[dict]:
    """Groups by (weight decay, LR scale): no decay on norms, biases and the module's
    ``no_weight_decay()`` names unless ``decay_norm_and_bias``; with ``layer_decay`` each ViT
    block gets ``lr * layer_decay ** (L + 1 - layer_id)``."""
    skip = set(module.no_weight_decay()) if hasattr(module, "no_weight_decay") else set()
    num_layers = _num_vit_blocks(module) if optim.layer_decay else 0
    groups: dict[tuple[float, float], list] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        decay = optim.weight_decay
        if not optim.decay_norm_and_bias and _no_decay(name, param, skip):
            decay = 0.0
        scale = 1.0
        if optim.layer_decay:
            scale = optim.layer_decay ** (num_layers + 1 - vit_layer_id(name, num_layers))
        groups.setdefault((decay, scale), []).append(param)
    return [{"params": params, "weight_decay": decay, "lr": lr * scale, "lr_scale": scale}
            for (decay, scale), params in groups.items()]


def build_optimizer(module: nn.Module, optim: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    lr = optim.lr * (global_batch / optim.lr_batch_ref if optim.lr_batch_ref else 1.0)
    groups = param_groups(module, optim, lr)
    if optim.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim.momentum)
    if optim.name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=optim.betas)
    return torch.optim.AdamW(groups, lr=lr, betas=optim.betas)


def lr_factor(step: int, schedule: ScheduleConfig, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base LR at optimizer step ``step`` (0-based).

    warmup: ``(step + 1) / W`` (``warmup_from_zero``, VideoMAE: ``step / (W - 1)``); cosine:
    ``r + (1 - r) * (1 + cos(pi * p)) / 2`` with ``p`` the progress after warmup and
    ``r = min_lr_ratio``; multistep: ``gamma ** #(milestones passed)``.
    """
    warmup = schedule.warmup_steps or round(schedule.warmup_epochs * steps_per_epoch)
    if step < warmup and schedule.warmup_from_zero:
        return step / max(1, warmup - 1)
    if step < warmup:
        return (step + 1) / warmup
    if schedule.name == "constant":
        return 1.0
    if schedule.name == "multistep":
        epoch = step / max(1, steps_per_epoch)
        return schedule.gamma ** sum(epoch >= m for m in schedule.milestones)
    progress = (step - warmup) / max(1, total_steps - warmup)
    ratio = schedule.min_lr_ratio
    return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(optimizer, schedule: ScheduleConfig, total_steps: int, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, schedule, total_steps, steps_per_epoch))
