"""Tube masking (VideoMAE, Tong et al. 2022): one random spatial mask per clip, repeated over
every temporal token slot, so a masked tube hides the same place in all frames and the model
cannot copy it from a neighbouring frame."""
from __future__ import annotations

import torch


def num_masked_per_slot(grid: tuple[int, int, int], ratio: float) -> int:
    """``floor(ratio * H'W')`` spatial positions masked per temporal slot (VideoMAE's rule:
    16x224x224 with 2x16x16 tubes and ratio 0.9 -> 176 of 196, 1408 of 1568 tokens); a ratio
    below 1 always leaves at least one visible position."""
    _, height, width = grid
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    return int(ratio * height * width)


def tube_mask(batch_size: int, grid: tuple[int, int, int], ratio: float = 0.9, *,
              generator: torch.Generator | None = None,
              device: torch.device | str | None = None) -> torch.Tensor:
    """Bool mask ``[B, T'*H'*W']`` (True = masked), a fresh spatial mask per sample.

    Token order is the patch embedding's (t, h, w) flattening: index ``t*H'W' + h*W' + w``.
    Every sample masks exactly ``T' * floor(ratio*H'W')`` tokens (what batched encoders need).

    Args:
        batch_size: B. grid: token grid ``(T', H', W')``. ratio: masked fraction per slot.
        generator: CPU generator for reproducible masks (default: the global RNG).
        device: where the mask goes.
    """
    slots, height, width = grid
    masked = num_masked_per_slot(grid, ratio)
    order = torch.rand(batch_size, height * width, generator=generator).argsort(dim=1)
    spatial = torch.zeros(batch_size, height * width, dtype=torch.bool)
    spatial.scatter_(1, order[:, :masked], True)
    return spatial[:, None, :].expand(batch_size, slots, height * width).reshape(
        batch_size, -1).to(device)
