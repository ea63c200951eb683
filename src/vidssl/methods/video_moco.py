"""Video contrast baseline (MoCo v2 on video): two clips of the *same* video, each with its
own random augmentations, are a positive pair; other videos' keys are the negatives.

This is the holistic "video contrast" that Tubelet-Contrast improves on; it shares all of the
machinery in ``vidssl.methods.contrastive`` (queue or in-batch negatives, momentum encoder,
shuffle-BN).

Recipe (``VideoMoCo.recipe``): two clips of each video at independently drawn uniform random
times, no minimum gap (SlowFast's video MoCo, ``TRAIN_CROP_NUM_TEMPORAL`` clips decoded at
random starts, ``CONTRASTIVE.DELTA_CLIPS_MIN`` unset in ``MoCo_SlowR50_8x8.yaml``); each clip
gets its own draw of MoCo v2's augmentation, shared by its frames: random resized crop of
20-100% of the area (aspect 3/4-4/3), colour jitter (0.4, 0.4, 0.4, hue 0.1) with p=0.8,
grayscale p=0.2, Gaussian blur std U(0.1, 2.0) px at 224 px with p=0.5, flip p=0.5
(``main_moco.py --aug-plus``; per clip as SlowFast's ``color_jitter_video_ssl``).
SlowFast's own MoCo config uses stronger values (jitter 0.6 / hue 0.15, crop 20-76.6%).
"""
from __future__ import annotations

import torch

from vidssl.data.recipes import ClipAugmentation, PretrainRecipe, ResizedCrop
from vidssl.methods.base import register_method
from vidssl.methods.contrastive import ContrastiveMethod, ContrastiveParams

MOCO_V2_RECIPE = PretrainRecipe(
    source="facebookresearch/moco main_moco.py (aug_plus); facebookresearch/SlowFast "
           "slowfast/datasets/{kinetics,decoder,transform}.py",
    augmentation=ClipAugmentation(crop=ResizedCrop(scale=(0.2, 1.0)), flip_p=0.5,
                                  color_jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8,
                                  grayscale_p=0.2, blur_p=0.5, blur_sigma=(0.1, 2.0),
                                  blur_reference_size=224),
    pairing="two_clips",
)


@register_method
class VideoMoCo(ContrastiveMethod):
    name = "video_moco"
    Params = ContrastiveParams
    recipe = MOCO_V2_RECIPE

    def views(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        clips = batch["video"]
        if clips.dim() != 6 or clips.shape[1] != 2:
            raise ValueError(f"{self.name}: batch['video'] must be [B,2,C,T,H,W] (two clips "
                             f"per video), got {tuple(clips.shape)}")
        return clips[:, 0], clips[:, 1]
