"""Animated examples of Tubelet-Contrast positive pairs: ``render_tubelet_examples``.

Each row is one pair: clip A with tubelets | clip B (another video) with the *same* tubelets |
the tubelets alone, with each tubelet's box and the trajectory travelled so far.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from vidssl.methods.tubelets import TubeletConfig, add_tubelets

TUBELET_COLORS = ((255, 80, 80), (80, 200, 255), (255, 210, 60), (120, 255, 120))
GAP = 4  # pixels between panels


def render_tubelet_examples(out_path: str | Path, clips: torch.Tensor | None = None,
                            num_pairs: int = 3, num_frames: int = 16, size: int = 112,
                            config: TubeletConfig | None = None, seed: int = 0, fps: int = 8,
                            scale: int | None = None, mean: Sequence[float] | None = None,
                            std: Sequence[float] | None = None) -> Path:
    """Write an animated GIF of ``num_pairs`` positive pairs to ``out_path``; return the path.

    ``clips``: float ``[B,C,T,H,W]`` RGB in [0, 1] (B >= 2; pair i uses clips i and i+1), or
    normalized clips with their ``mean``/``std``; by default procedural textured clips of
    ``num_frames`` x ``size`` x ``size`` are made. ``scale`` enlarges frames (default: to about
    224 px). Deterministic given ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    if clips is None:
        clips = procedural_clips(num_pairs + 1, num_frames, size, generator)
    if clips.dim() != 5 or clips.shape[0] < 2 or clips.shape[1] != 3:
        raise ValueError(f"render_tubelet_examples: clips must be RGB [B>=2,3,T,H,W], got "
                         f"{tuple(clips.shape)}")
    clips = clips.detach().float().cpu()
    if mean is not None and std is not None:
        clips = clips * torch.tensor(std).view(3, 1, 1, 1) + torch.tensor(mean).view(3, 1, 1, 1)
    pairs = min(num_pairs, clips.shape[0] - 1)
    clips_a, clips_b = clips[:pairs], clips[1:pairs + 1]
    views_a, views_b, params = add_tubelets(clips_a, clips_b, config, generator)
    layer = params.alpha_maps()  # [P,N,T,H,W]
    scale = scale or max(1, round(224 / max(clips.shape[-2:])))
    frames = [_frame(views_a, views_b, layer, params, t, scale) for t in range(clips.shape[2])]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(out_path, save_all=True, append_images=frames[1:], loop=0,
                   duration=max(1, round(1000 / fps)), optimize=False)
    return out_path


def procedural_clips(count: int, num_frames: int, size: int | tuple[int, int],
                     generator: torch.Generator) -> torch.Tensor:
    """Colourful drifting textures ``[count,3,T,H,W]`` in [0, 1]: a sum of random plane waves
    per channel, translating over time (stand-ins for real backgrounds)."""
    height, width = (size, size) if isinstance(size, int) else size
    waves = 4
    frequency = 0.004 + 0.025 * torch.rand(count, 3, waves, 2, generator=generator)
    direction = torch.rand(count, 3, waves, 1, generator=generator) * 2 * math.pi
    phase = torch.rand(count, 3, waves, generator=generator) * 2 * math.pi
    drift = (torch.rand(count, 1, 1, 2, generator=generator) - 0.5) * 3  # pixels per frame
    t = torch.arange(num_frames, dtype=torch.float32).view(1, 1, num_frames, 1, 1)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                            torch.arange(width, dtype=torch.float32), indexing="ij")
    out = torch.zeros(count, 3, num_frames, height, width)
    for k in range(waves):
        angle = direction[:, :, k].view(count, 3, 1, 1, 1)
        fx = (frequency[:, :, k, 0].view(count, 3, 1, 1, 1) * 2 * math.pi) * torch.cos(angle)
        fy = (frequency[:, :, k, 1].view(count, 3, 1, 1, 1) * 2 * math.pi) * torch.sin(angle)
        x = xs - drift[..., 0].view(count, 1, 1, 1, 1) * t
        y = ys - drift[..., 1].view(count, 1, 1, 1, 1) * t
        out += torch.sin(fx * x + fy * y + phase[:, :, k].view(count, 3, 1, 1, 1))
    return (0.5 + out / (2 * waves) * 1.6).clamp(0, 1)


def _to_image(frame: torch.Tensor, scale: int) -> Image.Image:
    array = (frame.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(np.ascontiguousarray(array))
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def _frame(views_a: torch.Tensor, views_b: torch.Tensor, layer: torch.Tensor, params,
           t: int, scale: int) -> Image.Image:
    pairs, _, _, H, W = views_a.shape
    cell_w, cell_h = W * scale, H * scale
    canvas = Image.new("RGB", (3 * cell_w + 2 * GAP, pairs * cell_h + (pairs - 1) * GAP),
                       (255, 255, 255))
    corners = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float32) / 2
    maps = params.linear_maps()
    for p in range(pairs):
        top = p * (cell_h + GAP)
        canvas.paste(_to_image(views_a[p, :, t], scale), (0, top))
        canvas.paste(_to_image(views_b[p, :, t], scale), (cell_w + GAP, top))
        alone = torch.zeros(3, H, W)
        for n in range(layer.shape[1]):
            color = torch.tensor(TUBELET_COLORS[n % len(TUBELET_COLORS)]).view(3, 1, 1) / 255
            alone = alone * (1 - layer[p, n, t]) + color * layer[p, n, t]
        panel = _to_image(alone, scale)
        draw = ImageDraw.Draw(panel)
        for n in range(layer.shape[1]):
            color = TUBELET_COLORS[n % len(TUBELET_COLORS)]
            path = ((params.centers[p, n, :t + 1] + 0.5) * scale).tolist()
            if len(path) > 1:
                draw.line([tuple(point) for point in path], fill=(255, 255, 255), width=1)
            box = (corners * params.sizes[p, n]) @ maps[p, n, t].T + params.centers[p, n, t]
            draw.polygon([tuple(point) for point in ((box + 0.5) * scale).tolist()],
                         outline=color)
        canvas.paste(panel, (2 * (cell_w + GAP), top))
    return canvas
