"""What a masked video model sees and predicts: ``render_masking`` (``vidssl show masking``).

One column per tube time slot (its first frame). Rows: the input; the visible tubes (masked
ones darkened); then for VideoMAE the reconstruction, and for SIGMA the prototype that each
masked tube is assigned to from the target features and from the prediction (same colour =
same prototype; the title gives how often they agree).
"""
from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidssl.data.clip_ops import IMAGENET_MEAN, IMAGENET_STD
from vidssl.methods.masking import tube_mask
from vidssl.methods.videomae import (
    MaskedVideoModel,
    VideoMAE,
    VideoMAEParams,
    tubes_to_video,
    unnormalize,
    video_to_tubes,
)

MASKED_SHADE = 0.12  # masked tubes are drawn dark (backgrounds are often mid-grey)


def load_masked_model(checkpoint: str | Path) -> MaskedVideoModel:
    """Rebuild the VideoMAE / SIGMA module of a vidssl pretraining checkpoint (config + weights)."""
    from vidssl.config import from_dict
    from vidssl.methods import METHODS
    from vidssl.models import build_backbone
    from vidssl.models.checkpoints import read_checkpoint
    from vidssl.pretrain import PretrainConfig

    state = read_checkpoint(checkpoint)
    config = state.get("config") if isinstance(state, dict) else None
    if not config or config.get("method", {}).get("name") not in ("videomae", "sigma"):
        raise ValueError(f"{checkpoint}: not a vidssl VideoMAE/SIGMA pretraining checkpoint "
                         f"(needs its 'config' with method.name videomae or sigma)")
    cfg = from_dict(PretrainConfig, config, str(checkpoint))
    model = METHODS[cfg.method.name](build_backbone(cfg.model.name, **cfg.model.kwargs),
                                     cfg.method.params)
    model.load_state_dict(state["model"])
    return model.eval()


def untrained_model(seed: int = 0) -> VideoMAE:
    """A freshly initialised tiny VideoMAE (16 x 64 x 64 input, 2x8x8 tubes)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        from vidssl.models import build_backbone
        backbone = build_backbone("vit_tiny", img_size=64, patch_size=8, num_frames=16,
                                  tubelet_size=2, use_mean_pooling=False)
        return VideoMAE(backbone, VideoMAEParams(decoder_depth=1)).eval()


def _input_clip(video: str | Path | None, frames: int, size: tuple[int, int],
                generator: torch.Generator) -> torch.Tensor:
    """Pixels in [0, 1] ``[3,T,H,W]``: ``frames`` evenly spaced frames of ``video``, resized,
    or a procedural drifting texture."""
    if video is None:
        from vidssl.viz.tubelets import procedural_clips
        return procedural_clips(1, frames, size, generator)[0]
    from vidssl.io import probe, read_clip
    total = probe(video).num_frames
    indices = np.linspace(0, max(total - 1, 0), frames).round().astype(int).tolist()
    return read_clip(video, indices, size=size).permute(3, 0, 1, 2).float() / 255.0


def _prototype_colours(ids: torch.Tensor) -> torch.Tensor:
    """A distinct, stable colour per prototype id (golden-ratio hue walk) -> ``[..., 3]``."""
    hues = (ids.double() * 0.6180339887) % 1.0
    rgb = [colorsys.hsv_to_rgb(h, 0.75, 0.95) for h in hues.flatten().tolist()]
    return torch.tensor(rgb, dtype=torch.float32).reshape(*ids.shape, 3)


def _paint_tubes(pixels: torch.Tensor, mask: torch.Tensor, colours: torch.Tensor,
                 grid, tubelet) -> torch.Tensor:
    """``pixels`` [1,3,T,H,W] with each masked tube filled by its row of ``colours`` [M,3]."""
    tubes = video_to_tubes(pixels, tubelet)
    tubes[mask] = colours[:, None, :].expand(-1, tubes.shape[2], -1)
    return tubes_to_video(tubes, grid, tubelet)


def masking_rows(model: MaskedVideoModel, clip: torch.Tensor, generator: torch.Generator
                 ) -> tuple[list[tuple[str, torch.Tensor]], str]:
    """Rows ``(label, pixels [3,T,H,W])`` of the picture and a title."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    video = (clip[None] - mean) / std
    mask = tube_mask(1, model.grid, model.params.mask_ratio, generator=generator)
    pixels = unnormalize(video)
    dark = torch.full((int(mask.sum()), 3), MASKED_SHADE)
    rows = [("input", pixels[0]),
            (f"visible ({1 - mask.float().mean():.0%})",
             _paint_tubes(pixels.clone(), mask, dark, model.grid, model.tubelet)[0])]
    title = f"{model.name}: tube mask {model.params.mask_ratio:.0%}"
    with torch.no_grad():
        if isinstance(model, VideoMAE):
            rows.append(("reconstruction*", model.reconstruct(video, mask)[0]))
            title += " (*masked tubes de-normalised with the true tube mean/std)"
        elif getattr(model, "prototypes", None) is not None:
            target, predicted = (ids[0] for ids in model.cluster_assignments(video, mask))
            for label, ids in (("target cluster", target), ("predicted cluster", predicted)):
                painted = _paint_tubes(pixels.clone() * 0.35, mask, _prototype_colours(ids),
                                       model.grid, model.tubelet)
                rows.append((label, painted[0]))
            agreement = (target == predicted).float().mean()
            title += f"; predicted = target prototype for {agreement:.0%}"
    return rows, title


def render_masking(out: str | Path, checkpoint: str | Path | None = None,
                   video: str | Path | None = None, seed: int = 0,
                   model: nn.Module | None = None) -> Path:
    """Write the masking picture (PNG) of ``checkpoint`` (or ``model``; default: an untrained
    tiny VideoMAE) on ``video`` (file or frame folder; default: a procedural clip) to ``out``.
    Deterministic given ``seed`` (the mask and the default clip)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if model is None:
        model = load_masked_model(checkpoint) if checkpoint else untrained_model(seed)
    generator = torch.Generator().manual_seed(seed)
    slots, height, width = model.grid
    t, ph, pw = model.tubelet
    clip = _input_clip(video, slots * t, (height * ph, width * pw), generator)
    rows, title = masking_rows(model.eval(), clip, generator)
    fig, axes = plt.subplots(len(rows), slots, figsize=(1.4 * slots, 1.5 * len(rows)),
                             squeeze=False)
    for r, (label, pixels) in enumerate(rows):
        for s in range(slots):
            axis = axes[r, s]
            axis.imshow(pixels[:, s * t].permute(1, 2, 0).clamp(0, 1).numpy(),
                        interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if s == 0:
                axis.set_ylabel(label, fontsize=8)
            if r == 0:
                axis.set_title(f"frame {s * t}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
