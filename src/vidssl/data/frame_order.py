"""Temporal probes: clips whose frame order is destroyed, to measure how much of a label
needs time (the bias diagnostics of docs/evaluation.md).

``frame_order`` of an evaluation recipe:

- ``full``: the clip as sampled;
- ``single``: one frame repeated to the clip length (static appearance only): a random frame
  in training, the middle one (``T // 2``) at test;
- ``shuffled``: the clip's frames in a random order (every frame, no order): a fresh
  permutation per clip, drawn from the clip's generator (seeded per video at test, so test
  clips are the same in every run).

Time is dim ``-3`` of a clip ``[C,T,H,W]``, a batch ``[B,C,T,H,W]`` and test views
``[V,C,T,H,W]`` alike; a batch or views get one draw per clip.
"""
from __future__ import annotations

import torch

from vidssl.data.transforms import ClipTransform

FRAME_ORDERS = ("full", "single", "shuffled")


def single_frame_indices(num_clips: int, num_frames: int, random: bool,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """``[num_clips, T]`` frame indices that repeat one frame ``t`` per clip:
    ``t ~ U{0..T-1}`` if ``random``, else ``t = T // 2``."""
    if random:
        frame = torch.randint(num_frames, (num_clips, 1), generator=generator)
    else:
        frame = torch.full((num_clips, 1), num_frames // 2)
    return frame.expand(num_clips, num_frames)


def shuffled_frame_indices(num_clips: int, num_frames: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """``[num_clips, T]``: an independent uniform permutation of ``0..T-1`` per clip."""
    keys = torch.rand(num_clips, num_frames, generator=generator)
    return keys.argsort(dim=1)


def reorder_frames(video: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``video[..., indices[b], :, :]`` per clip ``b``: frames of ``[C,T,H,W]`` (``indices``
    ``[1,T]``) or ``[B,C,T,H,W]`` (``[B,T]``) taken in the given order."""
    batch = video if video.dim() == 5 else video.unsqueeze(0)
    b, c, _, h, w = batch.shape
    index = indices.to(batch.device)[:, None, :, None, None].expand(b, c, -1, h, w)
    out = batch.gather(2, index)
    return out if video.dim() == 5 else out.squeeze(0)


class FrameOrder(ClipTransform):
    """The recipe's ``frame_order`` applied to clips (module docstring); ``random``: training
    (a random single frame) or test (the middle one)."""

    def __init__(self, order: str, random: bool):
        if order not in FRAME_ORDERS:
            raise ValueError(f"frame_order must be one of {', '.join(FRAME_ORDERS)}, got "
                             f"{order!r}")
        self.order, self.random = order, random

    def get_params(self, video, generator=None):
        clips = video.shape[0] if video.dim() == 5 else 1
        frames = video.shape[-3]
        if self.order == "single":
            return single_frame_indices(clips, frames, self.random, generator)
        if self.order == "shuffled":
            return shuffled_frame_indices(clips, frames, generator)
        return None

    def apply(self, video, params):
        return video if params is None else reorder_frames(video, params)
