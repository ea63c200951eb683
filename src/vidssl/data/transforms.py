"""Clip transforms: one set of random parameters per clip, shared by all its frames.

Every transform works on one clip ``[C,T,H,W]`` or on a batch ``[B,C,T,H,W]`` on any device
(per-sample parameters, one vectorized call), ``uint8`` or float input, float output.
Random parameters are drawn on the CPU from the ``torch.Generator`` passed in (the global
generator when ``None``), so results are deterministic given a seed on every device.

Each transform splits into ``get_params(video, generator)`` and ``apply(video, params)``;
``params`` have a leading batch dimension (1 for a single clip), so the batch path and
the single-clip path can be checked against each other.

Pipelines for datasets start from decoded frames, ``uint8 [T,H,W,C]``
(:class:`FramesToClip`), and end with a float ``[C,T,H,W]`` clip::

    t = train_transform(112)                  # SEVERE finetuning augmentation
    clip = t(frames, generator=torch.Generator().manual_seed(0))
    gpu_t = train_transform(112, from_frames=False)
    batch = gpu_t(videos_bcthw.cuda())        # per-sample crops/flips/colours on the GPU
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vidssl.data import clip_ops as ops
from vidssl.data.clip_ops import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CenterCrop",
    "ClipTransform",
    "ColorJitter",
    "Compose",
    "FramesToClip",
    "GaussianBlur",
    "MultiScaleCrop",
    "MultiView",
    "Normalize",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "ReverseChannels",
    "ShortSideJitterCrop",
    "ShortSideResize",
    "ThreeCrop",
    "WeakColorJitter",
    "select_params",
    "test_transform",
    "train_transform",
]


def _batch_size(video: torch.Tensor) -> int:
    return video.shape[0] if video.dim() == 5 else 1


def _as_batch(video: torch.Tensor) -> torch.Tensor:
    return video if video.dim() == 5 else video.unsqueeze(0)


def _like_input(out: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    return out if video.dim() == 5 else out.squeeze(0)


def select_params(params, index: int):
    """Parameters of sample ``index`` (kept batch-shaped: leading dimension 1)."""
    if params is None:
        return None
    if isinstance(params, dict):
        return {key: select_params(value, index) for key, value in params.items()}
    return params[index : index + 1]


class ClipTransform:
    """Base class: ``__call__(video, generator) = apply(video, get_params(video, generator))``."""

    def get_params(self, video: torch.Tensor, generator: torch.Generator | None = None):
        return None

    def apply(self, video: torch.Tensor, params) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, video: torch.Tensor, generator: torch.Generator | None = None):
        return self.apply(video, self.get_params(video, generator))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class FramesToClip(ClipTransform):
    """Decoded frames ``[T,H,W,C]`` (or ``[B,T,H,W,C]``) -> ``[C,T,H,W]`` (a view, no copy)."""

    def apply(self, video, params=None):
        return video.permute(3, 0, 1, 2) if video.dim() == 4 else video.permute(0, 4, 1, 2, 3)


class ShortSideResize(ClipTransform):
    """Scale every frame so the shorter side is ``size`` (bilinear, antialiased)."""

    def __init__(self, size: int, antialias: bool = True):
        self.size, self.antialias = size, antialias

    def apply(self, video, params=None):
        out_size = ops.short_side_size(*video.shape[-2:], self.size)
        return ops.resize(video, out_size, antialias=self.antialias)


class _BoxCrop(ClipTransform):
    """Crop a per-sample box (``params``: ``[B,4]`` top, left, height, width), resize to size."""

    def __init__(self, size: int | Sequence[int]):
        self.size = ops.as_size(size)

    def apply(self, video, params):
        if video.dim() == 4:
            return ops.resized_crop(video, params[0].tolist(), self.size)
        return ops.batch_resized_crop(video, params, self.size)


class CenterCrop(_BoxCrop):
    """Centred crop of ``size`` (resized up if the frame is smaller)."""

    def get_params(self, video, generator=None):
        box = ops.center_crop_box(*video.shape[-2:], self.size)
        return torch.tensor([box]).expand(_batch_size(video), 4)


class RandomResizedCrop(_BoxCrop):
    """Crop a random area fraction in ``scale`` with aspect in ``ratio``, resize to ``size``."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        super().__init__(size)
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def get_params(self, video, generator=None):
        return ops.sample_resized_crop_boxes(
            _batch_size(video), *video.shape[-2:], self.scale, self.ratio, generator
        )


class ShortSideJitterCrop(_BoxCrop):
    """PySlowFast's training crop: scale the short side to ``s ~ U(scales)`` (``1/s`` uniform
    with ``inverse_uniform``), then take a random ``size`` square. Done as one resized crop:
    the square of side ``size * min(H, W) / s`` source pixels, at a uniformly random place."""

    def __init__(self, size: int, scales: Sequence[int] = (256, 320),
                 inverse_uniform: bool = False):
        super().__init__(size)
        self.scales, self.inverse_uniform = tuple(scales), inverse_uniform

    def get_params(self, video, generator=None):
        batch, (height, width) = _batch_size(video), video.shape[-2:]
        low, high = self.scales
        u = torch.rand(batch, generator=generator, dtype=torch.float64)
        short = (1 / (1 / high + u * (1 / low - 1 / high)) if self.inverse_uniform
                 else low + u * (high - low)).round()
        side = (self.size[0] * min(height, width) / short).round().long()
        side = side.clamp(1, min(height, width))
        place = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
        top = (place[:, 0] * (height - side + 1)).long()
        left = (place[:, 1] * (width - side + 1)).long()
        return torch.stack([top, left, side, side], dim=1)


class MultiScaleCrop(_BoxCrop):
    """TSN multi-scale crop: sides from ``scales * min(H, W)``, 5 fixed places (13 with
    ``more_fix_crop``) or a random place (``fix_crop=False``), resize to ``size``."""

    def __init__(self, size, scales=(1.0, 0.875, 0.75, 0.66), max_distort=1, fix_crop=True,
                 more_fix_crop=False):
        super().__init__(size)
        self.scales, self.max_distort, self.fix_crop = tuple(scales), max_distort, fix_crop
        self.more_fix_crop = more_fix_crop

    def get_params(self, video, generator=None):
        return ops.sample_multiscale_crop_boxes(
            _batch_size(video),
            *video.shape[-2:],
            self.scales,
            self.max_distort,
            self.fix_crop,
            generator,
            self.more_fix_crop,
        )


class ThreeCrop(ClipTransform):
    """Three square crops along the long side -> views ``[3,C,T,H,W]`` (test protocol)."""

    def __init__(self, size: int):
        self.size = size

    def apply(self, video, params=None):
        if video.dim() != 4:
            raise ValueError("ThreeCrop takes one clip [C,T,H,W]")
        boxes = ops.three_crop_boxes(*video.shape[-2:], self.size)
        return torch.stack([ops.resized_crop(video, box, (self.size, self.size)) for box in boxes])


class RandomHorizontalFlip(ClipTransform):
    """Mirror the whole clip left-right with probability ``p`` (``params``: bool ``[B]``)."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def get_params(self, video, generator=None):
        return torch.rand(_batch_size(video), generator=generator) < self.p

    def apply(self, video, params):
        if video.dim() == 4:
            return video.flip(-1) if bool(params[0]) else video
        return ops.hflip(video, params)


class ColorJitter(ClipTransform):
    """Random brightness, contrast, saturation and hue in a random order, with probability p.

    Factors are uniform in ``[max(0, 1 - s), 1 + s]`` for the first three strengths ``s``
    and the hue shift is uniform in ``[-hue, hue]`` (fraction of a turn, ``hue <= 0.5``);
    ops with strength 0 are skipped. ``params``: ``apply [B]``, ``factors [B,4]``,
    ``order [B,k]`` (a permutation of the enabled ops).
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2, p: float = 1.0):
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        self.brightness, self.contrast, self.saturation, self.hue = (
            brightness,
            contrast,
            saturation,
            hue,
        )
        self.p = p

    def get_params(self, video, generator=None):
        batch = _batch_size(video)
        strengths = (self.brightness, self.contrast, self.saturation)
        lows = torch.tensor([max(0.0, 1.0 - s) for s in strengths] + [-self.hue])
        highs = torch.tensor([1.0 + s for s in strengths] + [self.hue])
        factors = lows + (highs - lows) * torch.rand(batch, 4, generator=generator)
        enabled = torch.tensor(
            [i for i, s in enumerate(strengths + (self.hue,)) if s > 0], dtype=torch.long
        )
        shuffle = torch.rand(batch, len(enabled), generator=generator).argsort(dim=1)
        apply = torch.rand(batch, generator=generator) < self.p
        return {"apply": apply, "factors": factors, "order": enabled[shuffle]}

    def apply(self, video, params):
        batch = ops.to_float(_as_batch(video))
        apply, factors, order = params["apply"], params["factors"], params["order"]
        if bool(apply.all()):
            return _like_input(ops.color_jitter(batch, factors, order), video)
        if not bool(apply.any()) or order.shape[1] == 0:
            return _like_input(batch, video)
        chosen = apply.nonzero(as_tuple=True)[0]
        on_device = chosen.to(batch.device)
        out = batch.clone()
        out[on_device] = ops.color_jitter(batch[on_device], factors[chosen], order[chosen])
        return _like_input(out, video)


class RandomGrayscale(ClipTransform):
    """Replace the clip by its luma (3 equal channels) with probability ``p``."""

    def __init__(self, p: float = 0.2):
        self.p = p

    def get_params(self, video, generator=None):
        return torch.rand(_batch_size(video), generator=generator) < self.p

    def apply(self, video, params):
        batch = ops.to_float(_as_batch(video))
        gray = ops.grayscale(batch).expand_as(batch)
        mask = params.to(batch.device).view(-1, 1, 1, 1, 1)
        return _like_input(torch.where(mask, gray, batch), video)


class GaussianBlur(ClipTransform):
    """With probability ``p``, blur every frame with a Gaussian of std ``U(sigma)`` pixels
    (SimCLR / MoCo v2). ``params``: ``apply [B]``, ``sigma [B]``."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5):
        self.sigma, self.p = tuple(sigma), p

    def get_params(self, video, generator=None):
        batch = _batch_size(video)
        sigma = torch.empty(batch).uniform_(*self.sigma, generator=generator)
        return {"apply": torch.rand(batch, generator=generator) < self.p, "sigma": sigma}

    def apply(self, video, params):
        batch = ops.to_float(_as_batch(video))
        if not bool(params["apply"].any()):
            return _like_input(batch, video)
        blurred = ops.gaussian_blur(batch, params["sigma"])
        mask = params["apply"].to(batch.device).view(-1, 1, 1, 1, 1)
        return _like_input(torch.where(mask, blurred, batch), video)


class WeakColorJitter(ClipTransform):
    """CtP / Tubelet-Contrast colour change: three independent ops in a fixed order, each with
    probability ``p``: ``x + d``, ``d ~ U(+-brightness)``; ``x * exp(U(+-contrast))``; hue
    rotated by ``U(+-hue)`` turns and HSV saturation times ``exp(U(+-saturation))``.
    ``params``: ``apply [B,3]``, ``values [B,4]`` (shift, gain, hue, saturation factor)."""

    def __init__(self, brightness=32 / 255, contrast=0.2, hue=12 / 180, saturation=0.1,
                 p: float = 0.2):
        self.brightness, self.contrast, self.hue, self.saturation = (
            brightness, contrast, hue, saturation)
        self.p = p

    def get_params(self, video, generator=None):
        batch = _batch_size(video)
        bounds = torch.tensor([self.brightness, self.contrast, self.hue, self.saturation])
        values = (2 * torch.rand(batch, 4, generator=generator) - 1) * bounds
        values[:, 1], values[:, 3] = values[:, 1].exp(), values[:, 3].exp()
        return {"apply": torch.rand(batch, 3, generator=generator) < self.p, "values": values}

    def apply(self, video, params):
        out = ops.to_float(_as_batch(video))
        apply, values = params["apply"], params["values"]
        if not bool(apply.any()):
            return _like_input(out, video)
        out = out.clone()
        steps = (
            lambda x, v: ops.shift_brightness(x, v[:, 0]),
            lambda x, v: ops.adjust_brightness(x, v[:, 1]),
            lambda x, v: ops.scale_hsv_saturation(ops.adjust_hue(x, v[:, 2]), v[:, 3]),
        )
        for index, step in enumerate(steps):
            chosen = apply[:, index].nonzero(as_tuple=True)[0]
            if len(chosen):
                rows = chosen.to(out.device)
                out[rows] = step(out[rows], values[chosen])
        return _like_input(out, video)


class ReverseChannels(ClipTransform):
    """RGB -> BGR (channel axis ``-4`` of ``[C,T,H,W]`` or ``[V,C,T,H,W]``): the input order
    of backbones trained on OpenCV frames (TCLR, SEVERE's ``switch_channels``)."""

    def apply(self, video, params=None):
        return video.flip(-4)


class Normalize(ClipTransform):
    """``(x - mean) / std`` per channel; ImageNet statistics by default."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.mean, self.std = tuple(mean), tuple(std)

    def apply(self, video, params=None):
        return ops.normalize(video, self.mean, self.std)


class Compose(ClipTransform):
    """Run steps in order, passing the same generator; output is always float."""

    def __init__(self, steps: Sequence[ClipTransform]):
        self.steps = list(steps)

    def __call__(self, video, generator=None):
        for step in self.steps:
            video = step(video, generator)
        return ops.to_float(video)

    def __repr__(self) -> str:
        return "Compose(\n" + "".join(f"  {step!r},\n" for step in self.steps) + ")"


class MultiView(ClipTransform):
    """Apply ``transform`` ``num_views`` times with independent parameters -> ``[V,C,T,H,W]``.

    The two-view wrapper of contrastive methods when both views come from the same clip.
    """

    def __init__(self, transform: ClipTransform, num_views: int = 2):
        self.transform, self.num_views = transform, num_views

    def __call__(self, video, generator=None):
        return torch.stack([self.transform(video, generator) for _ in range(self.num_views)])


def train_transform(
    size: int = 112,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
    color_jitter: tuple[float, float, float, float] | None = (0.4, 0.4, 0.4, 0.2),
    jitter_p: float = 1.0,
    grayscale_p: float = 0.0,
    normalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    from_frames: bool = True,
) -> Compose:
    """SEVERE finetuning augmentation: random resized crop, flip, colour jitter, normalize.

    MoCo-v2-style contrastive views: ``jitter_p=0.8, grayscale_p=0.2``.
    ``from_frames=False`` builds the batched version for ``[B,C,T,H,W]`` tensors.
    """
    steps: list[ClipTransform] = [FramesToClip()] if from_frames else []
    steps.append(RandomResizedCrop(size, scale, ratio))
    if flip_p > 0:
        steps.append(RandomHorizontalFlip(flip_p))
    if color_jitter is not None and any(color_jitter) and jitter_p > 0:
        steps.append(ColorJitter(*color_jitter, p=jitter_p))
    if grayscale_p > 0:
        steps.append(RandomGrayscale(grayscale_p))
    if normalize:
        steps.append(Normalize(mean, std))
    return Compose(steps)


def test_transform(
    size: int = 112,
    *,
    resize: int | None = None,
    num_crops: int = 1,
    normalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    from_frames: bool = True,
) -> Compose:
    """Deterministic evaluation view: short side to ``resize`` (default ``round(size /
    0.875)``, 128 for 112), then one centre crop, or 3 crops along the long side
    (``num_crops=3``, output ``[3,C,T,H,W]``)."""
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    steps: list[ClipTransform] = [FramesToClip()] if from_frames else []
    steps.append(ShortSideResize(resize or round(size / 0.875)))
    steps.append(CenterCrop(size) if num_crops == 1 else ThreeCrop(size))
    if normalize:
        steps.append(Normalize(mean, std))
    return Compose(steps)
