"""Output-size rules shared by all backends, and the vectorized resize of kept frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F

Size = int | tuple[int, int] | None


def resolve_size(height: int, width: int, size: Size) -> tuple[int, int]:
    """Target ``(H, W)``: ``size`` is the short side (aspect kept) or an ``(H, W)`` pair."""
    if size is None:
        return height, width
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if height <= width:
            return size, max(1, round(width * size / height))
        return max(1, round(height * size / width)), size
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"size must be an int short side or a positive (H, W) pair, got {size!r}")
    return int(size[0]), int(size[1])


def resize_frames(frames: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 ``[T,H,W,C]`` frames in one call (antialiased bilinear), uint8 out."""
    if tuple(frames.shape[1:3]) == tuple(out_hw):
        return frames
    x = frames.permute(0, 3, 1, 2)  # channels-last memory: torch's uint8 antialias fast path
    y = F.interpolate(x, size=out_hw, mode="bilinear", antialias=True, align_corners=False)
    return y.permute(0, 2, 3, 1).contiguous()
