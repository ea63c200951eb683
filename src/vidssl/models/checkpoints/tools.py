"""Checkpoint tools behind ``vidssl weights inspect|convert``: infer, build, convert, inspect."""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidssl.models.build import build_backbone
from vidssl.models.checkpoints.formats import VIDSSL_FORMAT, CheckpointFormat
from vidssl.models.checkpoints.loading import LoadReport, describe_model, plan_load, resolve_format
from vidssl.models.checkpoints.reading import CheckpointError, read_checkpoint
from vidssl.models.resnet3d import STAGE_CHANNELS, scaled
from vidssl.models.vit import VIT_SIZES

VIT_HEAD_DIM = 64  # every VideoMAE / DeiT size uses 64-wide attention heads
SIZE_KEYS = ("embed_dim", "depth", "num_heads")
PARAM_NAMES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _backbone_tensors(checkpoint: Any, fmt: CheckpointFormat, path) -> dict[str, torch.Tensor]:
    try:
        state = fmt.state_dict(checkpoint)
    except KeyError as error:
        raise CheckpointError(path, f"not a {fmt.title} checkpoint: {error.args[0]}") from None
    mapped = {}
    for key, value in state.items():
        name = fmt.map_key(key) if torch.is_tensor(value) else None
        if name is not None:
            mapped[name] = value
    return mapped


def infer_model_spec(checkpoint: Any, fmt: CheckpointFormat, path: str | Path = "<memory>"
                     ) -> dict:
    """``{"name", "kwargs"}`` of the backbone stored in ``checkpoint``.

    vidssl files carry their ``model_spec``. Otherwise the architecture is read off the tensor
    shapes: R(2+1)D vs R3D vs TCLR from the stem and layer4 convs, ``width`` from layer4's
    channels; ViT width/depth/tubelet/patch from ``patch_embed`` and the block count, heads =
    width / 64. The input size (``img_size``, ``num_frames``) is not stored in any format and
    defaults to 224 px x 16 frames.
    """
    if fmt.name == VIDSSL_FORMAT and isinstance(checkpoint.get("model_spec"), dict):
        return checkpoint["model_spec"]
    state = _backbone_tensors(checkpoint, fmt, path)
    try:
        return _infer_resnet(state, fmt) if fmt.family == "resnet3d" else _infer_vit(state, fmt)
    except KeyError as error:
        raise CheckpointError(path, f"cannot infer the {fmt.title} network: no tensor "
                                    f"{error.args[0]!r} in the backbone") from None


def _infer_resnet(state: dict[str, torch.Tensor], fmt: CheckpointFormat) -> dict:
    if "stem.3.weight" not in state:
        name = "r3d_18"
    elif "layer4.0.conv1.0.weight" in state:
        name = "r2plus1d_18_tclr"
    else:
        name = "r2plus1d_18"
    width = state["layer4.0.conv2.1.weight"].shape[0] / STAGE_CHANNELS[-1]
    stage_widths = [state[f"layer{i + 1}.0.conv2.1.weight"].shape[0] for i in range(4)]
    if stage_widths != [scaled(c, width) for c in STAGE_CHANNELS]:
        raise KeyError(f"layer*.0.conv2.1.weight with widths {stage_widths} of a uniform "
                       f"width multiplier")
    kwargs: dict[str, Any] = {} if width == 1.0 else {"width": width}
    if fmt.has_classifier and "fc.weight" in state:
        kwargs["num_classes"] = state["fc.weight"].shape[0]
    return {"name": name, "kwargs": kwargs}


def _infer_vit(state: dict[str, torch.Tensor], fmt: CheckpointFormat) -> dict:
    embed_dim, in_chans, tubelet, patch, _ = state["patch_embed.proj.weight"].shape
    depth = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")),
                    default=-1)
    size = {"embed_dim": embed_dim, "depth": depth, "num_heads": max(1, embed_dim // VIT_HEAD_DIM)}
    # The standard size of that width (else ViT-B), with whatever differs as explicit kwargs.
    name = next((n for n, s in VIT_SIZES.items() if s["embed_dim"] == embed_dim), "vit_base")
    kwargs: dict[str, Any] = {k: v for k, v in size.items() if VIT_SIZES[name][k] != v}
    kwargs.update(patch_size=patch, tubelet_size=tubelet)
    if in_chans != 3:
        kwargs["in_chans"] = in_chans
    mlp_ratio = state["blocks.0.mlp.fc1.weight"].shape[0] / embed_dim
    if mlp_ratio != 4.0:
        kwargs["mlp_ratio"] = mlp_ratio
    if "blocks.0.attn.q_bias" not in state:
        kwargs["qkv_bias"] = False
    if "norm.weight" in state:
        kwargs["use_mean_pooling"] = False
    if fmt.has_classifier and "head.weight" in state:
        kwargs["num_classes"] = state["head.weight"].shape[0]
    return {"name": name, "kwargs": kwargs}


def _spec_for(backbone: str | dict | None, inferred: dict) -> dict:
    if backbone is None:
        return inferred
    if isinstance(backbone, str):
        kwargs = {k: v for k, v in inferred["kwargs"].items() if k not in SIZE_KEYS}
        return {"name": backbone, "kwargs": kwargs}
    return backbone


def build_from_checkpoint(path: str | Path, format: str = "auto", strict: bool = True,
                          **overrides) -> tuple[nn.Module, LoadReport]:
    """Build the backbone stored in ``path`` and load it.

    vidssl checkpoints rebuild from their ``model_spec``; other formats from the shapes (see
    ``infer_model_spec``). ``overrides`` replace constructor kwargs (e.g. ``num_frames=8``,
    ``img_size=112``, ``num_classes=101``).
    """
    checkpoint = read_checkpoint(path)
    fmt = resolve_format(checkpoint, path, format)
    spec = infer_model_spec(checkpoint, fmt, path)
    model = build_backbone(spec["name"], **{**spec["kwargs"], **overrides})
    report, tensors = plan_load(checkpoint, fmt, model, path)
    if strict and not report.ok:
        raise CheckpointError(path, f"does not fit the model (strict load):\n{report}")
    model.load_state_dict(tensors, strict=False)
    return model, report


def convert_checkpoint(path: str | Path, out: str | Path, backbone: str | dict | None = None,
                       format: str = "auto") -> LoadReport:
    """Write the backbone of ``path`` as a clean vidssl checkpoint at ``out`` (strict).

    ``backbone``: None (inferred), a backbone name (geometry inferred, size from the name) or a
    ``{"name", "kwargs"}`` spec. The file is
    ``{"format": "vidssl", "model": {"backbone.<key>": tensor}, "backbone_prefix": "backbone.",
    "model_spec": spec, "source": {"path", "format"}}``, loadable with ``weights_only=True``.
    """
    checkpoint = read_checkpoint(path)
    fmt = resolve_format(checkpoint, path, format)
    spec = _spec_for(backbone, infer_model_spec(checkpoint, fmt, path))
    model = build_backbone(spec["name"], **spec["kwargs"])
    report, tensors = plan_load(checkpoint, fmt, model, path)
    if not report.ok:
        raise CheckpointError(path, f"cannot convert, the file does not fit {spec['name']}:\n"
                                    f"{report}")
    model.load_state_dict(tensors, strict=False)
    payload = {
        "format": VIDSSL_FORMAT,
        "model": {f"backbone.{k}": v for k, v in model.state_dict().items()},
        "backbone_prefix": "backbone.",
        "model_spec": model.model_spec,
        "source": {"path": str(path), "format": fmt.name},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, out)
    return report


def _module_of(key: str) -> str:
    """Module path of a parameter key, cut at the first index: ``a.blocks.3.x.w`` -> ``a.blocks``."""
    parts = key.split(".")
    if len(parts) <= 2:  # a top-level tensor (queue, mask_token) or a one-level module (fc.weight)
        return parts[0] if len(parts) == 2 and parts[1] in PARAM_NAMES else key
    kept = []
    for part in parts[:-1][:3]:
        if part.isdigit():
            break
        kept.append(part)
    return ".".join(kept) or key


def _describe_entry(value: Any) -> str:
    if isinstance(value, dict):
        tensors = sum(torch.is_tensor(v) for v in value.values())
        return f"dict ({len(value)} entries, {tensors} tensors)"
    if torch.is_tensor(value):
        return f"tensor {list(value.shape)}"
    if isinstance(value, (int, float, str, bool)) or value is None:
        return repr(value)[:60]
    return type(value).__name__


def inspect_checkpoint(path: str | Path, format: str = "auto") -> str:
    """Human-readable summary: detected format, parameters per module, what would load where."""
    checkpoint = read_checkpoint(path)
    fmt = resolve_format(checkpoint, path, format)
    lines = [f"file: {path} ({Path(path).stat().st_size / 1e6:.1f} MB)",
             f"format: {fmt.name} ({fmt.title})"]
    if isinstance(checkpoint, dict) and not all(torch.is_tensor(v) for v in checkpoint.values()):
        lines.append("top-level entries:")
        lines += [f"  {k}: {_describe_entry(v)}" for k, v in checkpoint.items()]
    state = fmt.state_dict(checkpoint)
    counts: dict[str, int] = defaultdict(int)
    for key, value in state.items():
        if torch.is_tensor(value):
            counts[_module_of(key)] += value.numel()
    lines.append(f"values per module ({sum(counts.values()) / 1e6:.2f}M in the state dict):")
    width = max(map(len, counts), default=0)
    lines += [f"  {name:<{width}}  {count / 1e6:8.3f}M" for name, count in counts.items()]
    spec = infer_model_spec(checkpoint, fmt, path)
    with torch.device("meta"):
        model = build_backbone(spec["name"], **spec["kwargs"])
    report, _ = plan_load(checkpoint, fmt, model, path)
    params = sum(p.numel() for p in model.parameters())
    lines.append(f"backbone: {describe_model(model)}, {params / 1e6:.2f}M parameters")
    lines.append(str(report))
    if fmt.decoder_rules:
        decoder = sum(fmt.map_key(k, "decoder") is not None for k in state)
        lines.append(f"decoder: {decoder} tensors load into a VideoMAEDecoder "
                     f"(load_pretrained(decoder, FILE))")
    return "\n".join(lines)
