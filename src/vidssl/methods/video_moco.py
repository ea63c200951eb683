"""Video contrast baseline (MoCo v2 on video): two clips of the *same* video, each with its
own random augmentations, are a positive pair; other videos' keys are the negatives.

This is the holistic "video contrast" that Tubelet-Contrast improves on; it shares all of the
machinery in ``vidssl.methods.contrastive`` (queue or in-batch negatives, momentum encoder,
shuffle-BN). The dataset samples two clips per video (``num_views=2``).
"""
from __future__ import annotations

import torch

from vidssl.methods.base import register_method
from vidssl.methods.contrastive import ContrastiveMethod, ContrastiveParams


@register_method
class VideoMoCo(ContrastiveMethod):
    name = "video_moco"
    Params = ContrastiveParams

    @classmethod
    def dataset_options(cls, params: ContrastiveParams) -> dict:
        return {"num_views": 2}

    def views(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        clips = batch["video"]
        if clips.dim() != 6 or clips.shape[1] != 2:
            raise ValueError(f"{self.name}: batch['video'] must be [B,2,C,T,H,W] (two clips "
                             f"per video), got {tuple(clips.shape)}")
        return clips[:, 0], clips[:, 1]
