"""Tubelet-Contrast (Thoker, Doughty, Snoek, ICCV 2023): two clips of *different* videos
that carry the same synthetic tubelets are a positive pair for MoCo.

Each sample is a pair ``[2,C,T,H,W]``: a clip of video ``i`` and a clip of a video drawn at
random from the dataset. View A is the first clip plus tubelets cut from it; view B is the
second clip plus the *same* tubelets (pixels, mask, opacity, motion, transformations).
``tubelets.patch_source`` = ``b`` cuts the patches from the second clip, ``other`` from the
first clip of the previous sample in the batch, a third video whose pixels neither
background can hide. The query encoder sees A, the momentum key encoder B; the loss is
InfoNCE against a queue (or NT-Xent in-batch, see ``vidssl.methods.contrastive``). Only the
tubelets' motion and appearance are shared, so the encoder must encode them rather than the
background.

Recipe (``TubeletContrast.recipe``, from ``configs/moco/r2plus1d_18/
pretraining_mini_kinetics.py`` and ``pyvrl/.../tubeletcontrast/dataset.py``):
- the second video is drawn uniformly at random (published: ``random.randint(0, len)``, which
  can also draw the video itself or one past the end; here one of the other ``n - 1``);
- each clip on its own: resize the short side to 112, 128 or 144 and take a random 112 crop
  (a square of 1, 0.875 or 0.778 of the short side at a random place, resized to the crop
  size), flip p=0.5; no colour;
- after pasting, one colour draw for both clips (CtP's ops, each with p=0.2, fixed order):
  brightness +-32/255 (additive), "contrast" x exp(U(+-0.2)) (a gain), hue +-12 OpenCV units
  (+-24 degrees; OpenCV clips hue at its ends, here it wraps) with HSV saturation
  x exp(U(+-0.1)); then ImageNet normalisation.
Not reproduced: the random stride in {1, 2, 3, 4} with per-frame jitter (set the dataset's
``frame_stride`` / ``stride_jitter``) and the fixed 4:3 resize of every frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vidssl.data.clip_ops import normalize
from vidssl.data.recipes import ClipAugmentation, PretrainRecipe, ScaleCrop
from vidssl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform, WeakColorJitter
from vidssl.methods.base import register_method
from vidssl.methods.contrastive import ContrastiveMethod, ContrastiveParams
from vidssl.methods.tubelets import TubeletConfig, add_tubelets
from vidssl.methods.videomae import unnormalize

TUBELET_CONTRAST_RECIPE = PretrainRecipe(
    source="fmthoker/tubelet-contrast configs/moco/r2plus1d_18/pretraining_mini_kinetics.py, "
           "pyvrl/models/pretraining/tubeletcontrast/dataset.py, "
           "pyvrl/datasets/transforms/color.py",
    augmentation=ClipAugmentation(crop=ScaleCrop(scales=(1.0, 112 / 128, 112 / 144),
                                                 max_distort=0, places=0), flip_p=0.5),
    pairing="random_video",
    paired_color=WeakColorJitter(brightness=32 / 255, contrast=0.2, hue=12 / 180,
                                 saturation=0.1, p=0.2),
)


def recolor_pair(view_a: torch.Tensor, view_b: torch.Tensor, color: ClipTransform
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One random draw of ``color`` applied to both ImageNet-normalised views ``[B,C,T,H,W]``
    (in pixel space, then normalised again)."""
    params = color.get_params(view_a)
    return tuple(normalize(color.apply(unnormalize(view), params), IMAGENET_MEAN, IMAGENET_STD)
                 for view in (view_a, view_b))


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
    recipe = TUBELET_CONTRAST_RECIPE

    def views(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = batch["video"]
        if pairs.dim() != 6 or pairs.shape[1] != 2:
            raise ValueError(f"{self.name}: batch['video'] must be [B,2,C,T,H,W] (a clip of each "
                             f"video and one of a random other video), got {tuple(pairs.shape)}")
        clips_a, clips_b = pairs[:, 0], pairs[:, 1]
        third = self.params.tubelets.patch_source == "other"
        if third and len(pairs) < 2:
            raise ValueError(f"{self.name}: patch_source 'other' needs at least 2 pairs per "
                             f"batch (patches come from the previous pair), got {len(pairs)}")
        source = clips_a.roll(1, dims=0) if third else None
        views_a, views_b, _ = add_tubelets(clips_a, clips_b, self.params.tubelets,
                                           source=source)
        return recolor_pair(views_a, views_b, self.recipe.paired_color)
