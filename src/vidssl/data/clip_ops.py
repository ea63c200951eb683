"""Functional clip operations behind :mod:`vidssl.data.transforms`.

Videos are ``[C,T,H,W]`` (one clip) or ``[B,C,T,H,W]`` (a batch), ``uint8`` in [0, 255] or
float in [0, 1]; geometric ops accept both, colour ops work in float. Per-sample
parameters are tensors with a leading batch dimension, so one call transforms a whole
batch on any device. Crop boxes are ``(top, left, height, width)`` integer rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion


def to_float(video: torch.Tensor) -> torch.Tensor:
    """``uint8`` [0, 255] -> ``float32`` [0, 1]; float input is returned unchanged."""
    if video.dtype == torch.uint8:
        return video.to(torch.float32).div_(255.0)
    return video


def as_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``int`` -> square ``(size, size)``; ``(H, W)`` stays."""
    if isinstance(size, int):
        return (size, size)
    height, width = size
    return (int(height), int(width))


# ---------------------------------------------------------------- geometry


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Output ``(H, W)`` that scales the shorter side to ``short_side``, keeping aspect."""
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def resize(video: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of every frame of ``[C,T,H,W]`` or ``[B,C,T,H,W]`` to ``size``."""
    video = to_float(video)
    if tuple(video.shape[-2:]) == tuple(size):
        return video
    lead = video.shape[:-2]
    frames = video.reshape(1, -1, *video.shape[-2:])
    out = F.interpolate(
        frames, size=size, mode="bilinear", align_corners=False, antialias=antialias
    )
    return out.reshape(*lead, *size)


def resized_crop(video: torch.Tensor, box: Sequence[int], size: tuple[int, int]) -> torch.Tensor:
    """Crop ``box`` from one clip ``[C,T,H,W]`` and resize it bilinearly to ``size``.

    Slices first (no copy), converts only the crop to float, then interpolates with
    ``align_corners=False`` and no antialiasing, exactly as :func:`batch_resized_crop`.
    """
    top, left, height, width = (int(v) for v in box)
    crop = video[..., top : top + height, left : left + width]
    return resize(crop, size, antialias=False)


def _source_coords(start: torch.Tensor, extent: torch.Tensor, out: int) -> torch.Tensor:
    """Pixel coordinates sampled by ``interpolate(align_corners=False)`` for each row.

    Output pixel ``j`` reads source ``start + clamp((j + 0.5) * extent / out - 0.5,
    0, extent - 1)``: half-pixel centres, clamped to the crop, as PyTorch's upsampling.
    """
    j = torch.arange(out, device=start.device, dtype=torch.float32) + 0.5
    scale = extent.to(torch.float32)[:, None] / out
    local = (j[None] * scale - 0.5).clamp(min=0.0)
    local = torch.minimum(local, (extent - 1).to(torch.float32)[:, None])
    return start.to(torch.float32)[:, None] + local


def batch_resized_crop(
    videos: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Per-sample crop-and-resize of ``[B,C,T,H,W]`` in one ``grid_sample`` call.

    ``boxes`` is ``[B,4]`` (top, left, height, width). Equals :func:`resized_crop` applied
    to each sample (the sampling grid reproduces bilinear ``interpolate`` coordinates).
    """
    videos = to_float(videos)
    batch, channels, frames, height, width = videos.shape
    boxes = boxes.to(videos.device)
    ys = _source_coords(boxes[:, 0], boxes[:, 2], size[0])  # [B, oh]
    xs = _source_coords(boxes[:, 1], boxes[:, 3], size[1])  # [B, ow]
    gy = ys * (2.0 / max(height - 1, 1)) - 1.0
    gx = xs * (2.0 / max(width - 1, 1)) - 1.0
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    flat = videos.reshape(batch, channels * frames, height, width)
    out = F.grid_sample(
        flat, grid.to(videos.dtype), mode="bilinear", padding_mode="border", align_corners=True
    )
    return out.reshape(batch, channels, frames, *size)


def center_crop_box(height: int, width: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Box of a centred ``size`` crop (clipped to the frame)."""
    crop_h, crop_w = min(size[0], height), min(size[1], width)
    return ((height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w)


def three_crop_boxes(height: int, width: int, size: int) -> list[tuple[int, int, int, int]]:
    """Three ``size`` square crops along the long side (start, centre, end), for test views."""
    crop = min(size, height, width)
    if width >= height:
        top = (height - crop) // 2
        return [(top, left, crop, crop) for left in (0, (width - crop) // 2, width - crop)]
    left = (width - crop) // 2
    return [(top, left, crop, crop) for top in (0, (height - crop) // 2, height - crop)]


def sample_resized_crop_boxes(
    batch: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> torch.Tensor:
    """Random-resized-crop boxes ``[B,4]`` (Inception-style, as torchvision).

    Per sample and attempt: area ``A * U(scale)``, aspect ``exp(U(log ratio))``,
    ``w = round(sqrt(area * aspect))``, ``h = round(sqrt(area / aspect))``; the first
    attempt that fits is placed uniformly; if none fits, a centred crop of the whole
    frame with the aspect clamped to ``ratio``.
    """
    area = height * width * torch.empty(batch, attempts).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(batch, attempts).uniform_(
        math.log(ratio[0]), math.log(ratio[1]), generator=generator
    )
    aspect = torch.exp(log_ratio)
    crop_w = torch.sqrt(area * aspect).round().long()
    crop_h = torch.sqrt(area / aspect).round().long()
    fits = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)
    first = fits.to(torch.int8).argmax(dim=1, keepdim=True)
    crop_w = crop_w.gather(1, first)[:, 0]
    crop_h = crop_h.gather(1, first)[:, 0]
    found = fits.any(dim=1)

    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback = (round(width / ratio[0]), width)
    elif in_ratio > ratio[1]:
        fallback = (height, round(height * ratio[1]))
    else:
        fallback = (height, width)
    crop_h = torch.where(found, crop_h, torch.full_like(crop_h, fallback[0]))
    crop_w = torch.where(found, crop_w, torch.full_like(crop_w, fallback[1]))

    u = torch.rand(batch, 2, generator=generator)
    top = torch.where(found, (u[:, 0] * (height - crop_h + 1)).long(), (height - crop_h) // 2)
    left = torch.where(found, (u[:, 1] * (width - crop_w + 1)).long(), (width - crop_w) // 2)
    return torch.stack([top, left, crop_h, crop_w], dim=1)


# (top, left) in quarters of the free room: 4 corners, centre, 4 edge centres, 4 quarter points
MULTISCALE_PLACES = ((0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (2, 0), (2, 4), (4, 2), (0, 2),
                     (1, 1), (1, 3), (3, 1), (3, 3))


def sample_multiscale_crop_boxes(
    batch: int,
    height: int,
    width: int,
    scales: Sequence[float],
    max_distort: int = 1,
    fix_crop: bool = True,
    generator: torch.Generator | None = None,
    more_fix_crop: bool = False,
) -> torch.Tensor:
    """TSN multi-scale crop boxes ``[B,4]``.

    Height and width are drawn independently from ``scales * min(H, W)`` with index
    distance ``<= max_distort``; the crop sits at one of 5 fixed places (4 corners and
    centre, ``fix_crop``), one of 13 (``more_fix_crop``: also the 4 edge centres and the 4
    quarter points, as VideoMAE's ``GroupMultiScaleCrop``), or at a uniformly random place.
    Places are quarters of the free room, ``free * q // 4`` (TSN: ``q * (free // 4)``).
    """
    base = min(height, width)
    sides = [max(1, int(base * s)) for s in scales]
    pairs = torch.tensor(
        [
            (h, w)
            for i, h in enumerate(sides)
            for j, w in enumerate(sides)
            if abs(i - j) <= max_distort
        ]
    )
    chosen = pairs[torch.randint(len(pairs), (batch,), generator=generator)]
    crop_h, crop_w = chosen[:, 0], chosen[:, 1]
    free_h, free_w = height - crop_h, width - crop_w
    if fix_crop:
        places = torch.tensor(MULTISCALE_PLACES[: 13 if more_fix_crop else 5])
        place = places[torch.randint(len(places), (batch,), generator=generator)]
        top, left = free_h * place[:, 0] // 4, free_w * place[:, 1] // 4
    else:
        u = torch.rand(batch, 2, generator=generator)
        top, left = (u[:, 0] * (free_h + 1)).long(), (u[:, 1] * (free_w + 1)).long()
    return torch.stack([top, left, crop_h, crop_w], dim=1)


def hflip(videos: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror every frame left-right; with ``mask [B]`` only the selected samples."""
    if mask is None:
        return videos.flip(-1)
    mask = mask.to(videos.device).view(-1, *([1] * (videos.dim() - 1)))
    return torch.where(mask, videos.flip(-1), videos)


# ---------------------------------------------------------------- colour


def _per_sample(factor: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Reshape ``[B]`` factors to broadcast over ``[B,C,T,H,W]``."""
    return factor.to(video.device, video.dtype).view(-1, 1, 1, 1, 1)


def grayscale(videos: torch.Tensor) -> torch.Tensor:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` over the channel axis (``dim=-4``), kept 1-wide."""
    r, g, b = to_float(videos).unbind(dim=-4)
    return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b).unsqueeze(-4)


def _blend(video: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``clamp(f * x + (1 - f) * other, 0, 1)`` per sample."""
    f = _per_sample(factor, video)
    return (f * video + (1.0 - f) * other).clamp_(0.0, 1.0)


def adjust_brightness(videos: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``clamp(f * x, 0, 1)``; ``videos`` is ``[B,C,T,H,W]``, ``factor`` ``[B]``."""
    return (videos * _per_sample(factor, videos)).clamp_(0.0, 1.0)


def adjust_contrast(videos: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the clip's mean luma (one mean over all frames, so frames stay consistent)."""
    mean = grayscale(videos).mean(dim=(1, 2, 3, 4), keepdim=True)
    return _blend(videos, mean, factor)


def adjust_saturation(videos: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the per-pixel luma."""
    return _blend(videos, grayscale(videos), factor)


def adjust_hue(videos: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue by ``shift`` (fraction of a turn, ``[B]``); S and V stay.

    With ``M = max(R,G,B)``, chroma ``c = M - min(R,G,B)`` and hue ``h`` in sectors
    (``(G-B)/c`` if R is max, ``2 + (B-R)/c`` if G, ``4 + (R-G)/c`` if B), the shifted
    channel ``n`` (5 for R, 3 for G, 1 for B) is ``M - c * clamp(min(k, 4 - k), 0, 1)``
    with ``k = (n + h + 6 * shift) mod 6`` (the closed-form HSV -> RGB conversion).
    """
    r, g, b = videos.unbind(dim=1)
    maxc = videos.amax(dim=1)
    chroma = maxc - videos.amin(dim=1)
    sectors = torch.where(
        maxc == r, g - b, torch.where(maxc == g, b - r + 2 * chroma, r - g + 4 * chroma)
    )
    sectors = sectors.div_(chroma.clamp_min(1e-12))  # grey pixels: 0 / eps = 0
    sectors += 6.0 * shift.to(videos.device, videos.dtype).view(-1, 1, 1, 1)
    channel = torch.tensor([5.0, 3.0, 1.0], device=videos.device, dtype=videos.dtype)
    k = (channel.view(1, 3, 1, 1, 1) + sectors.unsqueeze(1)).remainder_(6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0).mul_(chroma.unsqueeze(1))
    return maxc.unsqueeze(1) - ramp


COLOR_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(videos: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Apply brightness, contrast, saturation, hue per sample in each sample's own order.

    ``factors`` is ``[B,4]`` (three blend factors and a hue shift), ``order`` ``[B,k]`` the
    op indices per sample and step. Samples sharing an op at a step are processed
    together, so the cost is at most four ops per step.
    """
    out = to_float(videos)
    owned = out is not videos
    order, factors = order.to(out.device), factors.to(out.device)
    for step in range(order.shape[1]):
        for op_index, op in enumerate(COLOR_OPS):
            selected = order[:, step] == op_index
            if bool(selected.all()):
                out, owned = op(out, factors[:, op_index]), True
            elif bool(selected.any()):
                if not owned:
                    out, owned = out.clone(), True
                rows = selected.nonzero(as_tuple=True)[0]
                out[rows] = op(out[rows], factors[rows, op_index])
    return out


def shift_brightness(videos: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``clamp(x + d, 0, 1)`` per sample (an additive brightness change, ``delta`` ``[B]``)."""
    return (videos + _per_sample(delta, videos)).clamp_(0.0, 1.0)


def scale_hsv_saturation(videos: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Multiply the HSV saturation by ``f`` (clipped at 1), keeping hue and value.

    With ``M = max(R,G,B)`` and ``m = min(R,G,B)`` every channel is ``M - S M g(hue)``, so
    scaling ``S = (M - m) / M`` gives ``c' = M - k (M - c)`` with ``k = min(f, M / (M - m))``.
    """
    maxc = videos.amax(dim=1, keepdim=True)
    chroma = maxc - videos.amin(dim=1, keepdim=True)
    k = torch.minimum(_per_sample(factor, videos), maxc / chroma.clamp_min(1e-12))
    return maxc - k * (maxc - videos)


def gaussian_blur(videos: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur every frame with a per-sample Gaussian of std ``sigma`` ``[B]`` pixels.

    Separable kernel of radius ``max(1, ceil(3 sigma))`` per sample, weights
    ``exp(-x^2 / (2 sigma^2))`` normalised to sum 1, borders extended by their edge pixels.
    ``videos``: float ``[B,C,T,H,W]``.
    """
    batch, channels, frames, height, width = videos.shape
    sigma = sigma.to(videos.device, videos.dtype).clamp_min(1e-3)
    radii = (3.0 * sigma).ceil().clamp_min(1.0)
    radius = int(radii.max())
    offsets = torch.arange(-radius, radius + 1, device=videos.device, dtype=videos.dtype)
    kernels = torch.exp(-offsets[None] ** 2 / (2.0 * sigma[:, None] ** 2))
    kernels = kernels * (offsets[None].abs() <= radii[:, None])
    kernels = (kernels / kernels.sum(dim=1, keepdim=True)).repeat_interleave(channels * frames, 0)
    planes = videos.reshape(1, batch * channels * frames, height, width)
    planes = F.pad(planes, (radius,) * 4, mode="replicate")
    groups = planes.shape[1]
    planes = F.conv2d(planes, kernels[:, None, :, None], groups=groups)
    planes = F.conv2d(planes, kernels[:, None, None, :], groups=groups)
    return planes.reshape(batch, channels, frames, height, width)


def normalize(videos: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel (channel axis ``-4``)."""
    videos = to_float(videos)
    shape = (-1, 1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=videos.dtype, device=videos.device).view(shape)
    std_t = torch.as_tensor(std, dtype=videos.dtype, device=videos.device).view(shape)
    return (videos - mean_t) / std_t
