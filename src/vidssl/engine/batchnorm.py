"""Batch normalization over the global batch of all ranks (what ``train.sync_bn`` turns on).

With it, a DDP step on W ranks of ``b`` samples each normalizes with the statistics of all
``W * b`` samples, as one process with batch ``W * b`` does, so training follows the same
trajectory. On CUDA this is ``nn.SyncBatchNorm``; PyTorch's SyncBatchNorm refuses CPU
tensors, so CPU (gloo) runs use :class:`GlobalBatchNorm`, the same rule written with
differentiable all-reduces:

    n = sum_r n_r,  mu = sum_r sum(x_r) / n,  var = sum_r sum((x_r - mu)^2) / n
    y = (x - mu) / sqrt(var + eps) * gamma + beta
    running_mean <- (1 - m) running_mean + m mu,  running_var <- (1 - m) running_var + m var n/(n-1)
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from vidssl.engine import distributed as D


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm (any input ``[B, C, ...]``) whose training statistics span every rank; in
    eval mode, or in a single process, it is exactly ``nn.BatchNorm*d``."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and D.is_distributed()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = D.all_reduce(torch.tensor([x.numel() / x.shape[1]], device=x.device))
        mean = D.sum_over_ranks(x.sum(dims)) / count
        var = D.sum_over_ranks((x - mean.view(shape)).square().sum(dims)) / count
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(count))
        y = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        self.num_batches_tracked.add_(1)
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        unbiased = var * count / max(count - 1.0, 1.0)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)


def convert_to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``_BatchNorm`` inside ``module`` (in place; the module itself is returned,
    or its replacement if it is one) by a :class:`GlobalBatchNorm` sharing its parameters and
    buffers, so state-dict keys and values are unchanged."""
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        converted = GlobalBatchNorm(module.num_features, module.eps, module.momentum,
                                    module.affine, module.track_running_stats)
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        if module.track_running_stats:
            converted.running_mean, converted.running_var = module.running_mean, module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_to_global_batchnorm(child))
    return module


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Global-batch BatchNorm for a DDP run on ``device``: ``nn.SyncBatchNorm`` on CUDA,
    :class:`GlobalBatchNorm` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return convert_to_global_batchnorm(module)
