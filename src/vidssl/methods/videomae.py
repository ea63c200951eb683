"""VideoMAE (Tong et al., NeurIPS 2022): mask 90% of space-time tubes, encode the visible ones,
and regress the normalised pixels of the masked tubes with a narrow decoder.

Loss: ``MSE(decoder(encoder(x_visible), mask_tokens), norm(tubes(x))[masked])`` where each
target tube of ``t x p x p`` pixels is standardised per colour channel (mean, unbiased std,
``+1e-6``) and flattened in (t, p_h, p_w, channel) order (1536 values for 2x16x16).

Recipe (``VideoMAE.recipe``; ``datasets.py`` ``DataAugmentationForVideoMAE``, ``transforms.py``
``GroupMultiScaleCrop``, ``kinetics.py`` ``VideoMAE``): one clip per video at a random start;
a multi-scale crop, height and width each ``{1, .875, .75, .66} x`` the short side (at most
one step apart), at one of 13 fixed places, resized to the crop size; ImageNet
normalisation. No flip, no colour change.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.data.clip_ops import IMAGENET_MEAN, IMAGENET_STD
from vidssl.data.recipes import ClipAugmentation, PretrainRecipe, ScaleCrop
from vidssl.errors import ConfigError
from vidssl.methods.base import SSLMethod, register_method
from vidssl.methods.masking import tube_mask
from vidssl.models import VideoMAEDecoder

MASKED_VIDEO_CROP = ScaleCrop(scales=(1.0, 0.875, 0.75, 0.66), max_distort=1, places=13)
VIDEOMAE_RECIPE = PretrainRecipe(
    source="MCG-NJU/VideoMAE datasets.py (DataAugmentationForVideoMAE), transforms.py "
           "(GroupMultiScaleCrop), kinetics.py (VideoMAE)",
    augmentation=ClipAugmentation(crop=MASKED_VIDEO_CROP, flip_p=0.0),
)


def tubelet_shape(backbone: nn.Module, method: str) -> tuple[int, int, int]:
    """``(t, p_h, p_w)`` of a video ViT's tubelet embedding; other backbones are refused."""
    if not (hasattr(backbone, "forward_encoder") and hasattr(backbone, "patch_embed")
            and hasattr(backbone.patch_embed, "grid_size")):
        raise ValueError(f"{method} needs a video ViT backbone (vit_tiny|vit_small|vit_base|"
                         f"vit_large), got {type(backbone).__name__}")
    return tuple(backbone.patch_embed.proj.kernel_size)


def unnormalize(video: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """``[B,C,T,H,W]`` normalised with ``mean``/``std`` -> pixels in [0, 1]."""
    shape = (1, -1, 1, 1, 1)
    return video * video.new_tensor(std).view(shape) + video.new_tensor(mean).view(shape)


def video_to_tubes(pixels: torch.Tensor, tubelet: tuple[int, int, int]) -> torch.Tensor:
    """``[B,C,T,H,W]`` -> ``[B, N, t*p*p, C]``: token n = (t', h', w') in the embedding's order."""
    batch, channels, frames, height, width = pixels.shape
    t, ph, pw = tubelet
    x = pixels.reshape(batch, channels, frames // t, t, height // ph, ph, width // pw, pw)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)
    return x.reshape(batch, -1, t * ph * pw, channels)


def tubes_to_video(tubes: torch.Tensor, grid: tuple[int, int, int],
                   tubelet: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of :func:`video_to_tubes`: ``[B, N, t*p*p, C]`` -> ``[B,C,T,H,W]``."""
    batch, channels = tubes.shape[0], tubes.shape[-1]
    (gt, gh, gw), (t, ph, pw) = grid, tubelet
    x = tubes.reshape(batch, gt, gh, gw, t, ph, pw, channels).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.reshape(batch, channels, gt * t, gh * ph, gw * pw)


def tube_pixel_targets(video: torch.Tensor, tubelet: tuple[int, int, int],
                       normalize: bool = True) -> torch.Tensor:
    """VideoMAE's regression targets ``[B, N, t*p*p*C]`` from an ImageNet-normalised clip.

    ``normalize``: standardise each channel within each tube, ``(x - mean) / (std + 1e-6)``
    with the unbiased std; otherwise raw [0, 1] pixels.
    """
    with torch.autocast(device_type=video.device.type, enabled=False):
        tubes = video_to_tubes(unnormalize(video.float()), tubelet)
        if normalize:
            tubes = (tubes - tubes.mean(dim=-2, keepdim=True)) / (
                tubes.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return tubes.flatten(2)


@dataclass
class VideoMAEParams:
    """mask_ratio: masked fraction of each frame's tube positions (0.9; UCF101 recipe 0.75).
    decoder_dim / decoder_heads: default half the encoder width, 64-d heads (VideoMAE: ViT-S
    192/3, ViT-B 384/6). decoder_depth: 4. normalize_target: per-tube pixel standardisation."""

    mask_ratio: float = 0.9
    decoder_dim: int | None = None
    decoder_depth: int = 4
    decoder_heads: int | None = None
    normalize_target: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.decoder_depth < 1:
            raise ConfigError(f"decoder_depth must be >= 1, got {self.decoder_depth}")


class MaskedVideoModel(SSLMethod):
    """Shared part of VideoMAE and SIGMA: tube masking, the backbone as encoder of the visible
    tokens, and a VideoMAE decoder that predicts ``out_dim`` values per masked token."""

    def __init__(self, backbone: nn.Module, params, out_dim: int):
        super().__init__(backbone, params)
        self.tubelet = tubelet_shape(backbone, self.name)
        self.grid = tuple(backbone.patch_embed.grid_size)
        if getattr(backbone, "fc_norm", None) is not None:
            # The pooled-feature norm of ``use_mean_pooling=True`` is unused while pretraining:
            # freeze it so DDP and the optimizer skip it (finetuning trains it from scratch).
            backbone.fc_norm.requires_grad_(False)
        tube_mask(1, self.grid, params.mask_ratio)  # validates the ratio against the grid
        width = params.decoder_dim or max(backbone.num_features // 2, 1)
        self.decoder = VideoMAEDecoder(
            backbone.num_features, width, params.decoder_depth,
            params.decoder_heads or max(width // 64, 1), backbone.patch_embed.num_patches,
            out_dim)

    def no_weight_decay(self) -> set[str]:
        return {"mask_token"}

    def sample_mask(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """Fresh tube mask ``[B, N]`` (True = masked) from the global RNG."""
        return tube_mask(batch_size, self.grid, self.params.mask_ratio, device=device)

    def predict_masked(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Decoder output for the masked tokens, ``[B, N_masked, out_dim]`` in token order."""
        return self.decoder(self.backbone.forward_encoder(video, mask), mask)

    @staticmethod
    def masked(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``values`` [B,N,D] at the masked tokens -> ``[B, N_masked, D]`` (token order)."""
        return values[mask].reshape(values.shape[0], -1, values.shape[-1])


@register_method
class VideoMAE(MaskedVideoModel):
    """Masked pixel regression on tubes; ``training_step`` returns ``loss`` (MSE)."""

    name = "videomae"
    Params = VideoMAEParams
    recipe = VIDEOMAE_RECIPE

    def __init__(self, backbone: nn.Module, params: VideoMAEParams):
        t, ph, pw = tubelet_shape(backbone, self.name)
        super().__init__(backbone, params, out_dim=3 * t * ph * pw)

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        video = batch["video"]
        mask = self.sample_mask(video.shape[0], video.device)
        target = self.masked(tube_pixel_targets(video, self.tubelet,
                                                self.params.normalize_target), mask)
        prediction = self.predict_masked(video, mask)
        return {"loss": F.mse_loss(prediction.float(), target)}

    @torch.no_grad()
    def reconstruct(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] ``[B,C,T,H,W]``: visible tubes from the input, masked tubes from the
        prediction. With normalised targets the prediction is mapped back with the *true*
        tube's mean/std (VideoMAE's visualisation; it flatters the model, see issue #120)."""
        pixels = unnormalize(video.float())
        tubes = video_to_tubes(pixels, self.tubelet)
        predicted = self.predict_masked(video, mask).float()
        predicted = predicted.reshape(*predicted.shape[:2], -1, tubes.shape[-1])
        if self.params.normalize_target:
            truth = self.masked(tubes.flatten(2), mask).reshape(predicted.shape)
            mean = truth.mean(dim=-2, keepdim=True)
            std = truth.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
            predicted = predicted * std + mean
        tubes[mask] = predicted.reshape(-1, *tubes.shape[2:])
        return tubes_to_video(tubes, self.grid, self.tubelet).clamp(0, 1)
