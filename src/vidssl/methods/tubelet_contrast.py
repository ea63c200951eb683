"""Tubelet-Contrast (Thoker, Doughty, Snoek, ICCV 2023): two clips of *different* videos
that carry the same synthetic tubelets are a positive pair for MoCo.

View A is clip ``i`` of the batch plus tubelets cut from it; view B is clip ``i+1`` (the batch
rolled by one) plus the *same* tubelets (pixels, mask, opacity, motion, transformations).
``tubelets.patch_source`` = ``b`` cuts the patches from clip ``i+1``, ``other`` from clip
``i+2``, a third video whose pixels neither background can hide.
The query encoder sees A, the momentum key encoder B; the loss is InfoNCE against a queue
(or NT-Xent in-batch, see ``vidssl.methods.contrastive``). Only the tubelets' motion and
appearance are shared, so the encoder must encode them rather than the background.

The dataset gives one clip per video with its standard train augmentations (crop, flip,
colour jitter), applied per clip before the tubelets are pasted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vidssl.methods.base import register_method
from vidssl.methods.contrastive import ContrastiveMethod, ContrastiveParams
from vidssl.methods.tubelets import TubeletConfig, add_tubelets


@dataclass
class TubeletContrastParams(ContrastiveParams):
    """MoCo hyperparameters plus the tubelet synthesis (``tubelets:`` mapping in YAML)."""

    tubelets: TubeletConfig = field(default_factory=TubeletConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.tubelets, dict):
            self.tubelets = TubeletConfig.from_dict(self.tubelets)


@register_method
class TubeletContrast(ContrastiveMethod):
    name = "tubelet_contrast"
    Params = TubeletContrastParams

    def views(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        clips = batch["video"]
        if clips.dim() != 5:
            raise ValueError(f"{self.name}: batch['video'] must be [B,C,T,H,W] (one clip per "
                             f"video), got {tuple(clips.shape)}")
        third = self.params.tubelets.patch_source == "other"
        if len(clips) < 2 + third:
            raise ValueError(f"{self.name}: needs at least {2 + third} videos per batch (view B "
                             f"comes from the next video), got {len(clips)}")
        source = clips.roll(-2, dims=0) if third else None
        views_a, views_b, _ = add_tubelets(clips, clips.roll(-1, dims=0), self.params.tubelets,
                                           source=source)
        return views_a, views_b
