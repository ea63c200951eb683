"""Heads that sit on a backbone's features: projection, classification, multi-label, counting."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionMLP(nn.Module):
    """Contrastive projection head (SimCLR / MoCo v2): ``num_layers`` linears.

    ``Linear -> [BN] -> ReLU`` repeated ``num_layers - 1`` times, then a final ``Linear``
    (MoCo v2: ``num_layers=2``, ``bn=False``, 2048 -> 128 for ResNet-50; 512 -> 128 here).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2,
                 bn: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(dim, hidden_dim, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class LinearClassifier(nn.Module):
    """``Linear(Dropout(x))`` -> class logits (SEVERE finetuning / linear probing head)."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x))


class MultiLabelHead(LinearClassifier):
    """Independent per-class logits for multi-label tasks (Charades), trained with BCE.

    The bias starts at ``log(p / (1 - p))`` with ``p = prior`` so that the initial sigmoid
    outputs match the rare positive rate instead of 0.5 (Lin et al., focal loss, Sec. 4.1);
    otherwise the first steps are spent pushing 157 outputs down.
    """

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0,
                 prior: float = 0.01):
        super().__init__(in_dim, num_classes, dropout)
        if not 0.0 < prior < 1.0:
            raise ValueError(f"prior must be in (0, 1), got {prior}")
        nn.init.constant_(self.fc.bias, math.log(prior / (1.0 - prior)))

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy over classes and samples; ``targets`` multi-hot float."""
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


def temporal_features(tokens: torch.Tensor, grid: tuple[int, int, int] | None = None
                      ) -> torch.Tensor:
    """Backbone ``tokens`` -> per-time-step features ``[B, T', D]`` (spatial mean).

    CNN tokens ``[B,D,T',H',W']`` need no grid; ViT tokens ``[B,N,D]`` need the tubelet
    ``grid = (T', H', W')`` (``VisionTransformer.grid_size``).
    """
    if tokens.dim() == 5:
        return tokens.mean(dim=(3, 4)).transpose(1, 2)
    if tokens.dim() == 3 and grid is not None:
        batch, num_tokens, dim = tokens.shape
        if num_tokens != grid[0] * grid[1] * grid[2]:
            raise ValueError(f"{num_tokens} tokens do not form the grid {grid}")
        return tokens.reshape(batch, grid[0], grid[1] * grid[2], dim).mean(dim=2)
    raise ValueError(f"expected CNN tokens [B,D,T,H,W] or ViT tokens [B,N,D] with a grid, got "
                     f"shape {tuple(tokens.shape)} and grid {grid}")


class RepetitionCountingHead(nn.Module):
    """Repetition count as the integral of a predicted non-negative density over time.

    Per-time-step features ``[B,T',D]`` go through two temporal convolutions (kernel 3) to a
    density ``d_t = softplus(.) >= 0`` (cycles per time step); the count is ``c = sum_t d_t``
    (density-map counting, as in crowd counting). With ``num_frames`` the density is also
    linearly upsampled to one value per input frame and rescaled so it still sums to ``c``.
    Train with ``loss`` = L1 on the count; a ground-truth per-frame density (cycles per frame)
    can be supervised directly with MSE instead.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 256, num_frames: int | None = None):
        super().__init__()
        self.num_frames = num_frames
        self.temporal = nn.Sequential(
            nn.Conv1d(in_dim, hidden_dim, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv1d(hidden_dim, 1, 3, padding=1))

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int, int] | None = None
                ) -> dict[str, torch.Tensor]:
        """Backbone ``tokens`` (see ``temporal_features``) -> ``{"density": [B,T], "count": [B]}``."""
        features = temporal_features(tokens, grid).transpose(1, 2)
        density = F.softplus(self.temporal(features))
        count = density.sum(dim=(1, 2))
        if self.num_frames is not None and density.shape[-1] != self.num_frames:
            density = F.interpolate(density, size=self.num_frames, mode="linear",
                                    align_corners=False)
            density = density * (count / density.sum(dim=(1, 2)))[:, None, None]
        return {"density": density.squeeze(1), "count": count}

    @staticmethod
    def loss(count: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean absolute count error ``|c - c*|``."""
        return (count - target.to(count.dtype)).abs().mean()
