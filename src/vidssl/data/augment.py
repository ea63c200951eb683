"""VideoMAE's fine-tuning augmentation on clip tensors: RandAugment, random erasing, mixup/cutmix.

Plain-torch versions of the published ``rand_augment.py``, ``random_erasing.py`` and
``mixup.py`` (MCG-NJU/VideoMAE, identical in QUVA-Lab/SIGMA, both from timm):

- :class:`RandAugment` (``rand-m7-n4-mstd0.5-inc1``): ``n`` ops drawn uniformly with
  replacement from the 15 "increasing" ops, each applied with probability 0.5 at magnitude
  ``N(m, mstd)`` clipped to [0, 10], with a random sign where the op has one. One draw per
  clip: every frame gets the same ops, magnitudes and signs (the published code calls each op
  on the list of PIL frames). Histogram ops (auto-contrast, equalize, contrast's mean) use each
  frame's own statistics, as PIL does per frame. Pixels are kept on the uint8 grid (x 255,
  rounded) after every op, as PIL's 8-bit images are.
- :class:`RandomErasing` (``reprob 0.25``, ``remode pixel``, ``cube``): one box for all
  frames, filled with fresh N(0, 1) noise per pixel, after normalisation.
- :class:`Mixup` (``mode batch``): one ``lam`` per batch, partner = the batch reversed;
  mixup ``lam ~ Beta(0.8, 0.8)`` or, with probability ``switch_prob``, cutmix
  ``lam ~ Beta(1, 1)`` with a box of area ``(1 - lam)`` pasted into every frame and ``lam``
  corrected to the kept area; targets ``lam * y_i + (1 - lam) * y_rev(i)`` of smoothed
  one-hots (``on = 1 - s + s/K``, ``off = s/K``).
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F

from vidssl.data import clip_ops as ops
from vidssl.data.transforms import ClipTransform

MAX_LEVEL = 10.0
FILL = 128 / 255  # PIL fillcolor (128, 128, 128) of the geometric ops
# rand_augment.py _RAND_INCREASING_TRANSFORMS, in the published order
INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
                  "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
                  "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
                  "TranslateXRel", "TranslateYRel")
SIGNED_OPS = {"Rotate", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
              "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """Back onto the 8-bit grid: ``round(255 x) / 255`` clamped to [0, 1]."""
    return (x.clamp(0.0, 1.0) * 255.0).round_().div_(255.0)


def _levels(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round()


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ``ImageEnhance`` (``Image.blend``): ``degenerate + f (x - degenerate)``, truncated
    to the 8-bit grid."""
    mixed = (degenerate + factor * (x - degenerate)).clamp(0.0, 1.0) * 255.0
    return (mixed + 1e-3).floor_().div_(255.0)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """PIL "L" of ``[3,T,H,W]``: ``round(.299 R + .587 G + .114 B)`` on the 8-bit grid."""
    weights = torch.tensor(ops.LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
    return _quantize((x * weights).sum(0, keepdim=True))


def auto_contrast(x: torch.Tensor) -> torch.Tensor:
    """Per frame and channel, stretch ``[lo, hi]`` to ``[0, 255]``: ``floor(v s - lo s)``,
    ``s = 255 / (hi - lo)``; constant planes stay."""
    v = _levels(x).double()
    lo, hi = v.amin(dim=(-2, -1), keepdim=True), v.amax(dim=(-2, -1), keepdim=True)
    scale = torch.full_like(lo, 255.0) / (hi - lo).clamp_min(1.0)  # IEEE division, as PIL
    stretched = (v * scale - lo * scale).floor()  # PIL: int(i * scale + offset)
    return (torch.where(hi > lo, stretched.clamp(0, 255), v) / 255.0).to(x.dtype)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.equalize`` per frame and channel: ``step = (N - h[last]) // 255``,
    ``lut[i] = min(255, (step // 2 + sum(h[:i])) // step)``; identity when ``step == 0``."""
    v = _levels(x).long()
    planes = v.flatten(-2)  # [C,T,HW]
    hist = torch.zeros(*planes.shape[:-1], 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(-1, planes, torch.ones_like(planes))
    last = (hist > 0).long().cumsum(-1).argmax(-1, keepdim=True)  # highest occupied level
    step = (planes.shape[-1] - hist.gather(-1, last)) // 255
    before = hist.cumsum(-1) - hist
    lut = ((step // 2 + before) // step.clamp_min(1)).clamp_max(255)
    out = torch.where(step > 0, lut.gather(-1, planes), planes)
    return out.view_as(v).to(x.dtype) / 255.0


def posterize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the ``bits`` most significant bits of every 8-bit value."""
    if bits >= 8:
        return x
    step = 2 ** (8 - bits)
    return (_levels(x) / step).floor() * step / 255.0


def solarize(x: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert the values ``>= threshold`` (8-bit)."""
    v = _levels(x)
    return torch.where(v >= threshold, 255.0 - v, v) / 255.0


def solarize_add(x: torch.Tensor, add: int, threshold: int = 128) -> torch.Tensor:
    """Add ``add`` (capped at 255) to the values ``< threshold`` (8-bit)."""
    v = _levels(x)
    return torch.where(v < threshold, (v + add).clamp_max(255.0), v) / 255.0


def sharpness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with PIL's SMOOTH filter (``[[1,1,1],[1,5,1],[1,1,1]] / 13``, borders kept)."""
    kernel = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5.0
    planes = x.reshape(-1, 1, *x.shape[-2:])
    smooth = F.conv2d(planes, (kernel / 13.0)[None, None])
    degenerate = planes.clone()
    degenerate[..., 1:-1, 1:-1] = _quantize(smooth)
    return _blend(degenerate.view_as(x), x, factor)


def affine(x: torch.Tensor, matrix: tuple[float, ...]) -> torch.Tensor:
    """PIL ``Image.transform(AFFINE, (a, b, c, d, e, f))``, bicubic, fill 128: output pixel
    centre ``(x, y)`` reads input ``(a x + b y + c, d x + e y + f)``; a point outside the
    frame gets the fill, one inside is interpolated from edge-clamped neighbours (PIL's
    rule; torch's bicubic kernel has a = -0.75 where PIL's has -0.5)."""
    a, b, c, d, e, f = matrix
    height, width = x.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=x.dtype, device=x.device) + 0.5,
                            torch.arange(width, dtype=x.dtype, device=x.device) + 0.5,
                            indexing="ij")
    src_x, src_y = a * xs + b * ys + c, d * xs + e * ys + f
    grid = torch.stack([2 * src_x / width - 1, 2 * src_y / height - 1], dim=-1)
    frames = x.transpose(0, 1)  # [T,C,H,W]
    out = F.grid_sample(frames, grid.expand(frames.shape[0], -1, -1, -1), mode="bicubic",
                        padding_mode="border", align_corners=False).transpose(0, 1)
    outside = (src_x < 0) | (src_x >= width) | (src_y < 0) | (src_y >= height)
    return _quantize(torch.where(outside, FILL, out))


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """PIL ``rotate(degrees)`` (counter-clockwise about the centre)."""
    height, width = x.shape[-2:]
    angle = -math.radians(degrees)
    a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
    cx, cy = width / 2.0, height / 2.0
    return affine(x, (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy))


def apply_op(x: torch.Tensor, name: str, magnitude: float, sign: float) -> torch.Tensor:
    """One RandAugment op on a float clip ``[C,T,H,W]`` in [0, 1] (``level_to_arg`` of
    ``rand_augment.py`` for the increasing ops; ``sign`` is the random negation)."""
    level = magnitude / MAX_LEVEL
    height, width = x.shape[-2:]
    if name == "AutoContrast":
        return auto_contrast(x)
    if name == "Equalize":
        return equalize(x)
    if name == "Invert":
        return 1.0 - x
    if name == "Rotate":
        return rotate(x, sign * 30.0 * level)
    if name == "PosterizeIncreasing":
        return posterize(x, 4 - int(level * 4))
    if name == "SolarizeIncreasing":
        return solarize(x, 256 - int(level * 256))
    if name == "SolarizeAdd":
        return solarize_add(x, int(level * 110))
    factor = 1.0 + sign * 0.9 * level
    if name == "ColorIncreasing":
        return _blend(_luma(x).expand_as(x), x, factor)
    if name == "ContrastIncreasing":
        mean = (_levels(_luma(x)).mean(dim=(-2, -1), keepdim=True) + 0.5).floor() / 255.0
        return _blend(mean.expand_as(x), x, factor)
    if name == "BrightnessIncreasing":
        return _blend(torch.zeros_like(x), x, factor)
    if name == "SharpnessIncreasing":
        return sharpness(x, factor)
    shear, shift = sign * 0.3 * level, sign * 0.45 * level
    if name == "ShearX":
        return affine(x, (1, shear, 0, 0, 1, 0))
    if name == "ShearY":
        return affine(x, (1, 0, 0, shear, 1, 0))
    if name == "TranslateXRel":
        return affine(x, (1, 0, shift * width, 0, 1, 0))
    if name == "TranslateYRel":
        return affine(x, (1, 0, 0, 0, 1, shift * height))
    raise ValueError(f"unknown RandAugment op {name!r}")


def parse_rand_augment(config: str) -> dict:
    """``rand-m7-n4-mstd0.5-inc1`` -> ``{magnitude 7, num_ops 4, magnitude_std 0.5}``; only
    the increasing op set (``inc1``) is implemented."""
    parts = config.split("-")
    if parts[0] != "rand":
        raise ValueError(f"RandAugment config {config!r} must start with 'rand-'")
    values = {"magnitude": 10.0, "num_ops": 2, "magnitude_std": 0.0}
    increasing = False
    for part in parts[1:]:
        match = re.fullmatch(r"([a-z]+)(\d.*)", part)
        if not match:
            raise ValueError(f"RandAugment config {config!r}: cannot read {part!r}")
        key, value = match.groups()
        if key == "m":
            values["magnitude"] = float(int(value))
        elif key == "n":
            values["num_ops"] = int(value)
        elif key == "mstd":
            values["magnitude_std"] = float(value)
        elif key == "inc":
            increasing = bool(int(value))
        else:
            raise ValueError(f"RandAugment config {config!r}: unsupported key {key!r}")
    if not increasing:
        raise ValueError(f"RandAugment config {config!r}: only the increasing op set (inc1) "
                         "is implemented")
    return values


class RandAugment(ClipTransform):
    """RandAugment with one parameter draw per clip (see the module docstring).

    ``params`` per sample: ``ops [n]`` (indices into ``INCREASING_OPS``), ``apply [n]`` (each
    op with probability 0.5), ``magnitude [n]``, ``sign [n]`` (+-1).
    """

    def __init__(self, config: str = "rand-m7-n4-mstd0.5-inc1"):
        self.config = config
        self.__dict__.update(parse_rand_augment(config))

    def get_params(self, video, generator=None):
        batch, n = (video.shape[0] if video.dim() == 5 else 1), self.num_ops
        magnitude = self.magnitude + self.magnitude_std * torch.randn(batch, n, generator=generator)
        return {"ops": torch.randint(len(INCREASING_OPS), (batch, n), generator=generator),
                "apply": torch.rand(batch, n, generator=generator) < 0.5,
                "magnitude": magnitude.clamp(0.0, MAX_LEVEL),
                "sign": torch.where(torch.rand(batch, n, generator=generator) > 0.5, -1.0, 1.0)}

    def apply(self, video, params):
        clips = ops.to_float(video if video.dim() == 5 else video[None])
        out = []
        for i, clip in enumerate(clips):
            clip = _quantize(clip)
            for k in range(self.num_ops):
                if bool(params["apply"][i, k]):
                    clip = apply_op(clip, INCREASING_OPS[int(params["ops"][i, k])],
                                    float(params["magnitude"][i, k]), float(params["sign"][i, k]))
            out.append(clip)
        out = torch.stack(out)
        return out if video.dim() == 5 else out[0]


class RandomErasing(ClipTransform):
    """timm/VideoMAE random erasing, ``cube`` mode: with probability ``p`` one box of area
    ``U(min_area, max_area) x H W`` and aspect ``exp(U(log a, -log a))`` (up to 100 tries for
    one that fits), the same box in every frame, filled with per-pixel N(0, 1) noise (it runs
    after normalisation). ``params``: ``box [B,4]`` (top, left, h, w; h = 0: no erasing)."""

    def __init__(self, p: float = 0.25, min_area: float = 0.02, max_area: float = 1 / 3,
                 min_aspect: float = 0.3):
        self.p, self.min_area, self.max_area = p, min_area, max_area
        self.log_aspect = (math.log(min_aspect), -math.log(min_aspect))

    def get_params(self, video, generator=None):
        batch = video.shape[0] if video.dim() == 5 else 1
        height, width = video.shape[-2:]
        boxes = torch.zeros(batch, 4, dtype=torch.long)
        for i in range(batch):
            if float(torch.rand(1, generator=generator)) >= self.p:
                continue
            for _ in range(100):
                area, log_ratio = torch.rand(2, generator=generator).tolist()
                area = (self.min_area + (self.max_area - self.min_area) * area) * height * width
                ratio = math.exp(self.log_aspect[0] + (self.log_aspect[1] - self.log_aspect[0])
                                 * log_ratio)
                h, w = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
                if w < width and h < height:
                    top = int(torch.randint(height - h + 1, (1,), generator=generator))
                    left = int(torch.randint(width - w + 1, (1,), generator=generator))
                    boxes[i] = torch.tensor([top, left, h, w])
                    break
        return {"box": boxes, "noise_seed": torch.randint(2**62, (batch,), generator=generator)}

    def apply(self, video, params):
        clips = ops.to_float(video if video.dim() == 5 else video[None]).clone()
        for i, (top, left, h, w) in enumerate(params["box"].tolist()):
            if h:
                noise = torch.Generator().manual_seed(int(params["noise_seed"][i]))
                shape = (*clips.shape[1:3], h, w)
                clips[i, ..., top:top + h, left:left + w] = torch.randn(
                    shape, generator=noise).to(clips)
        return clips if video.dim() == 5 else clips[0]


def smoothed_one_hot(targets: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """``on = 1 - s + s/K`` at the label, ``off = s/K`` elsewhere."""
    off = smoothing / num_classes
    out = torch.full((targets.shape[0], num_classes), off, device=targets.device)
    return out.scatter_(1, targets.long().view(-1, 1), 1.0 - smoothing + off)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator
               ) -> tuple[int, int, int, int]:
    """timm ``rand_bbox``: a ``sqrt(1 - lam)``-scaled box centred at a uniform pixel, clipped
    to the frame -> ``(y0, y1, x0, x1)``."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    return (min(max(cy - cut_h // 2, 0), height), min(max(cy + cut_h // 2, 0), height),
            min(max(cx - cut_w // 2, 0), width), min(max(cx + cut_w // 2, 0), width))


class Mixup:
    """Batch-mode mixup / cutmix with label smoothing (timm ``Mixup``, ``mode='batch'``,
    ``correct_lam=True``). ``__call__(videos [B,C,T,H,W], labels [B])`` -> (mixed videos,
    soft targets ``[B,K]``). Random numbers come from the torch generator."""

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 prob: float = 1.0, switch_prob: float = 0.5, smoothing: float = 0.1):
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.smoothing = prob, switch_prob, smoothing

    def draw(self, generator: torch.Generator | None = None) -> tuple[float, bool]:
        """``(lam, use_cutmix)`` for one batch (``lam = 1``: no mixing)."""
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        if rng.random() >= self.prob or (self.mixup_alpha <= 0 and self.cutmix_alpha <= 0):
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            cutmix = bool(rng.random() < self.switch_prob)
        else:
            cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if cutmix else self.mixup_alpha
        return float(rng.beta(alpha, alpha)), cutmix

    def mix(self, videos: torch.Tensor, lam: float, cutmix: bool,
            rng: np.random.Generator | None = None) -> tuple[torch.Tensor, float]:
        """Mix ``videos`` with the reversed batch; returns the videos and the (corrected) lam."""
        if lam == 1.0:
            return videos, lam
        partner = videos.flip(0)
        if not cutmix:
            return videos * lam + partner * (1.0 - lam), lam
        height, width = videos.shape[-2:]
        y0, y1, x0, x1 = cutmix_box(height, width, lam, rng or np.random.default_rng())
        videos = videos.clone()
        videos[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
        return videos, 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)

    def targets(self, labels: torch.Tensor, lam: float) -> torch.Tensor:
        """``lam * y + (1 - lam) * y.flip(0)`` of smoothed one-hots."""
        y = smoothed_one_hot(labels, self.num_classes, self.smoothing)
        return y * lam + y.flip(0) * (1.0 - lam)

    def __call__(self, videos: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if videos.shape[0] % 2:
            raise ValueError(f"mixup/cutmix needs an even batch per process, got "
                             f"{videos.shape[0]} clips")
        lam, cutmix = self.draw(generator)
        seed = int(torch.randint(2**62, (1,), generator=generator))
        videos, lam = self.mix(videos, lam, cutmix, np.random.default_rng(seed))
        return videos, self.targets(labels, lam).to(videos.dtype)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """timm ``SoftTargetCrossEntropy``: ``mean_b sum_k -y_bk log softmax(z_b)_k``."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
