"""Pretraining recipes: how a self-supervised method's inputs are made from videos.

Each method declares the recipe of its published code (``SSLMethod.recipe``) and
``vidssl pretrain`` builds the pretraining dataset from it, for real data and the synthetic
world alike (a world config only changes sizes and steps). A recipe has three parts:

- **clip sampling and pairing** (``pairing``): ``one_clip`` per video; ``two_clips`` of the
  same video at independently drawn random times (``num_views=2``); or ``random_video``, a clip
  of the video plus a clip of another video drawn uniformly at random
  (:class:`RandomVideoPairs`);
- **per-clip augmentation** (:class:`ClipAugmentation`): one random draw per clip, shared by
  its frames, applied independently to every clip of a sample;
- **paired colour** (``paired_color``): a colour change the method applies to both views of a
  pair with *one* parameter draw (Tubelet-Contrast, after pasting the tubelets).

Pixel amounts given at a reference size (the blur's std) scale with the crop size.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from vidssl.data.transforms import (
    ClipTransform,
    ColorJitter,
    Compose,
    FramesToClip,
    GaussianBlur,
    MultiScaleCrop,
    Normalize,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
)

PAIRINGS = ("one_clip", "two_clips", "random_video")
_PARTNER_STREAM = 0x9A17  # seeds the partner clips apart from the samples' own clips


@dataclass(frozen=True)
class ResizedCrop:
    """Inception-style random resized crop: area fraction in ``scale``, aspect in ``ratio``."""

    scale: tuple[float, float]
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def build(self, size: int) -> ClipTransform:
        return RandomResizedCrop(size, self.scale, self.ratio)


@dataclass(frozen=True)
class ScaleCrop:
    """TSN multi-scale crop: height and width from ``scales * short side`` (at most
    ``max_distort`` scale steps apart), at one of ``places`` fixed places (5 or 13) or at a
    uniformly random place (``places=0``), resized to the output size."""

    scales: tuple[float, ...]
    max_distort: int = 1
    places: int = 13

    def __post_init__(self) -> None:
        if self.places not in (0, 5, 13):
            raise ValueError(f"ScaleCrop.places must be 0, 5 or 13, got {self.places}")

    def build(self, size: int) -> ClipTransform:
        return MultiScaleCrop(size, self.scales, self.max_distort, fix_crop=self.places > 0,
                              more_fix_crop=self.places == 13)


@dataclass(frozen=True)
class ClipAugmentation:
    """Per-clip augmentation, in this order: crop, colour jitter (``color_jitter`` =
    brightness, contrast, saturation, hue, with probability ``jitter_p``), grayscale,
    Gaussian blur (std ``U(blur_sigma)`` pixels at ``blur_reference_size``, scaled to the
    crop size), horizontal flip, ImageNet normalisation."""

    crop: ResizedCrop | ScaleCrop
    flip_p: float = 0.5
    color_jitter: tuple[float, float, float, float] | None = None
    jitter_p: float = 0.0
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_reference_size: int = 224

    def transform(self, size: int, *, from_frames: bool = True) -> Compose:
        """The augmentation at crop ``size``: decoded frames ``uint8 [T,H,W,C]`` (or a batch
        ``[B,C,T,H,W]`` with ``from_frames=False``) -> normalised float clips."""
        steps: list[ClipTransform] = [FramesToClip()] if from_frames else []
        steps.append(self.crop.build(size))
        if self.color_jitter is not None and self.jitter_p > 0:
            steps.append(ColorJitter(*self.color_jitter, p=self.jitter_p))
        if self.grayscale_p > 0:
            steps.append(RandomGrayscale(self.grayscale_p))
        if self.blur_p > 0:
            factor = size / self.blur_reference_size
            steps.append(GaussianBlur(tuple(s * factor for s in self.blur_sigma), self.blur_p))
        if self.flip_p > 0:
            steps.append(RandomHorizontalFlip(self.flip_p))
        steps.append(Normalize())
        return Compose(steps)


@dataclass(frozen=True)
class PretrainRecipe:
    """A method's published pretraining recipe; ``source`` names the files it comes from."""

    source: str
    augmentation: ClipAugmentation
    pairing: str = "one_clip"
    paired_color: ClipTransform | None = None

    def __post_init__(self) -> None:
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {self.pairing!r}")

    def dataset_options(self, size: int) -> dict:
        """``build_dataset`` options: the clip transform and the clips per video."""
        options: dict = {"transform": self.augmentation.transform(size)}
        if self.pairing == "two_clips":
            options["num_views"] = 2
        return options

    def pair(self, dataset: Dataset, seed: int) -> Dataset:
        """``dataset`` as the method sees it: wrapped in :class:`RandomVideoPairs` for
        ``random_video`` pairing, unchanged otherwise."""
        return RandomVideoPairs(dataset, seed) if self.pairing == "random_video" else dataset


class RandomVideoPairs(Dataset):
    """Sample ``i`` of a clip dataset paired with a clip of a video ``j != i`` drawn uniformly
    at random: ``video`` ``[2,C,T,H,W]``, ``partner`` = ``j``, other fields from sample ``i``.

    ``j`` depends only on ``(seed, epoch, i)`` (call ``set_epoch``), so pairs repeat in a
    resumed run. The partner's clip and augmentation come from a separate seed stream of the
    dataset: it is not the clip that sample ``j`` itself gets in the same epoch.
    """

    def __init__(self, dataset: Dataset, seed: int = 0):
        if len(dataset) < 2:
            raise ValueError(f"random-video pairs need at least 2 videos, got {len(dataset)}")
        self.dataset, self.seed, self.epoch = dataset, int(seed), 0
        self.partners = copy.copy(dataset)
        if getattr(dataset, "seed", None) is not None:
            stream = np.random.SeedSequence([dataset.seed, _PARTNER_STREAM])
            self.partners.seed = int(stream.generate_state(1, np.uint32)[0])

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for part in (self.dataset, self.partners):
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def partner(self, index: int) -> int:
        """The other video of sample ``index``: uniform over the ``n - 1`` others."""
        rng = np.random.default_rng([self.seed, self.epoch, int(index), _PARTNER_STREAM])
        return (int(index) + 1 + int(rng.integers(len(self) - 1))) % len(self)

    def __getitem__(self, index: int) -> dict:
        sample = dict(self.dataset[index])
        partner = self.partner(index)
        other = self.partners[partner]
        sample["video"] = torch.stack([sample["video"], other["video"]])
        sample["partner"] = partner
        if "bad" in sample:
            sample["bad"] = sample["bad"] + other.get("bad", 0)
        return sample
