"""Motion energy: a hand-crafted, parameter-free video descriptor used as a reference row.

It asks one question of an evaluation: can the protocol separate the classes when the
features carry the motion? For every pair of consecutive frames ``t, t+1`` of the grey clip
``g`` (channel mean),

    d_t = |g_{t+1} - g_t|                         (frame-difference energy, [H, W])
    e_t = [ gridmean_{G x G}(d_t),  centroid(d_t) ]   (G*G cell means, energy-weighted (x, y) in [-1, 1])

and the clip descriptor is the sequence ``e_1 .. e_{T-1}`` averaged over ``bins`` equal time
spans (adaptive average pooling: every frame pair counts) and flattened: ``bins * (G*G + 2)``
numbers, in the order the motion happens.
Nothing is learned, so it is the same for every seed and needs no checkpoint.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MotionEnergy(nn.Module):
    """``forward_features(x [B,3,T,H,W]) -> {"pooled": [B,D], "tokens": [B,D,1,1,1]}``.

    The descriptor is a whole-clip one, so ``tokens`` is a single time step (tasks that need
    per-time-step features, such as repetition counting, see one step).
    """

    def __init__(self, grid: int = 4, bins: int = 8):
        super().__init__()
        if grid < 1 or bins < 1:
            raise ValueError(f"motion_energy: grid and bins must be >= 1, got {grid}, {bins}")
        self.grid, self.bins = grid, bins
        self.num_features = bins * (grid * grid + 2)

    def frame_energy(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B,3,T,H,W] -> per frame pair ``e_t`` [B, T-1, G*G+2]."""
        if x.dim() != 5 or x.shape[2] < 2:
            raise ValueError(f"motion_energy: expected video [B,C,T,H,W] with T >= 2, "
                             f"got shape {tuple(x.shape)}")
        grey = x.float().mean(dim=1)
        diff = (grey[:, 1:] - grey[:, :-1]).abs()  # [B, T-1, H, W]
        cells = F.adaptive_avg_pool2d(diff, self.grid).flatten(2)
        height, width = diff.shape[-2:]
        ys = torch.linspace(-1.0, 1.0, height, device=x.device)
        xs = torch.linspace(-1.0, 1.0, width, device=x.device)
        total = diff.sum(dim=(2, 3)).clamp_min(1e-6)
        centroid = torch.stack([(diff.sum(dim=2) * xs).sum(dim=2) / total,
                                (diff.sum(dim=3) * ys).sum(dim=2) / total], dim=2)
        return torch.cat([cells, centroid], dim=2)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        energy = self.frame_energy(x).transpose(1, 2)  # [B, G*G+2, T-1]
        pooled = F.adaptive_avg_pool1d(energy, self.bins).transpose(1, 2).flatten(1)
        return {"pooled": pooled, "tokens": pooled[:, :, None, None, None]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)["pooled"]


def motion_energy(grid: int = 4, bins: int = 8) -> MotionEnergy:
    """The hand-crafted motion-energy descriptor (no parameters)."""
    return MotionEnergy(grid, bins)
