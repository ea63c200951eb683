"""Published checkpoint layouts and their explicit key maps onto vidssl's names.

A format says where its state dict lives (``container``), which keys form the backbone and how
they are renamed (``backbone_rules``, regex -> replacement, first match wins), and why every
other key is ignored (``ignore_reasons``; keys outside the backbone are by definition the
pretext task's own modules: momentum encoders, queues, projection heads, decoders, audio
networks). ViT pretraining formats also map their MAE decoder (``decoder_rules``).
The maps restate the SEVERE loaders (``action_recognition/backbones.py``), VideoMAE's
``run_class_finetuning.py`` and SIGMA's checkpoint layout.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

Rule = tuple[str, str]

# CtP / Tubelet-Contrast (pyvrl, mmcv) block names -> torchvision's Sequential indices.
PYVRL_R2PLUS1D_RENAMES: tuple[Rule, ...] = (
    (r"^stem\.conv_s\.", "stem.0."), (r"^stem\.bn_s\.", "stem.1."),
    (r"^stem\.conv_t\.", "stem.3."), (r"^stem\.bn_t\.", "stem.4."),
    (r"\.conv([12])\.conv_s\.", r".conv\1.0.0."), (r"\.conv([12])\.bn_s\.", r".conv\1.0.1."),
    (r"\.conv([12])\.conv_t\.", r".conv\1.0.3."), (r"\.bn([12])\.", r".conv\1.1."),
    (r"\.downsample\.conv\.", ".downsample.0."), (r"\.downsample_bn\.", ".downsample.1."),
)
PYVRL_R3D_RENAMES: tuple[Rule, ...] = (
    (r"^stem\.conv\.", "stem.0."), (r"^stem\.bn\.", "stem.1."),
    (r"\.conv([12])\.conv\.", r".conv\1.0."), (r"\.bn([12])\.", r".conv\1.1."),
    (r"\.downsample\.conv\.", ".downsample.0."), (r"\.downsample_bn\.", ".downsample.1."),
)
MAE_DECODER_RULES: tuple[Rule, ...] = (
    (r"^encoder_to_decoder\.", "decoder_embed."), (r"^mask_token$", "mask_token"),
    (r"^decoder\.", ""),
)


@dataclass(frozen=True)
class CheckpointFormat:
    """One published checkpoint layout (see module docstring)."""

    name: str
    title: str
    family: str  # "resnet3d" or "vit"
    container: tuple[str, ...]  # keys holding the state dict, tried in order; "" = the file
    backbone_rules: tuple[Rule, ...]
    ignore_reasons: tuple[Rule, ...] = ()  # (regex on the original key, reason)
    renames: tuple[Rule, ...] = ()  # applied to backbone keys after backbone_rules
    decoder_rules: tuple[Rule, ...] = ()
    has_classifier: bool = False  # a head in the file is a real classifier (else pretext head)
    default_backbone: str = "r2plus1d_18"
    detect: Callable[[dict], bool] = field(default=lambda state: False, repr=False)

    def state_dict(self, checkpoint: Any) -> dict[str, Any]:
        """The raw (unrenamed) state dict inside ``checkpoint`` (``""`` = the file itself)."""
        for key in self.container or ("",):
            if key == "" and isinstance(checkpoint, dict) and _holds_tensors(checkpoint):
                return checkpoint
            if key and isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
                return checkpoint[key]
        raise KeyError(f"no state dict under {' / '.join(repr(k) for k in self.container)}")

    def map_key(self, key: str, component: str = "backbone") -> str | None:
        """vidssl name of checkpoint ``key`` in ``component`` (or None if outside it)."""
        if component == "decoder":
            return _apply_first(self.decoder_rules, key)
        mapped = _apply_first(self.backbone_rules, key)
        if mapped is None:
            return None
        renamed = _apply_first(self.renames, mapped)
        return mapped if renamed is None else renamed

    def ignore_reason(self, key: str) -> str:
        for pattern, reason in self.ignore_reasons:
            if re.search(pattern, key):
                return reason
        return f"not part of the {self.title} backbone"


def _apply_first(rules: tuple[Rule, ...], key: str) -> str | None:
    """``key`` rewritten by the first matching (regex, replacement) rule; None if none match."""
    for pattern, replacement in rules:
        if re.search(pattern, key):
            return re.sub(pattern, replacement, key, count=1)
    return None


def _holds_tensors(mapping: dict) -> bool:
    return any(torch.is_tensor(v) for v in mapping.values())


def _prefixed(state: dict, *prefixes: str) -> bool:
    return any(k.startswith(prefixes) for k in state)


def _torchvision_like(state: dict) -> bool:
    keys = {k.removeprefix("module.") for k in state}
    return "stem.0.weight" in keys and any(k.startswith("layer1.") for k in keys)


SSL_RESNET_IGNORES = (
    (r"^(module\.)?encoder_k\.|^key_encoder\.", "momentum (key) encoder"),
    (r"queue", "negative-sample queue"),
)

FORMATS: dict[str, CheckpointFormat] = {f.name: f for f in [
    CheckpointFormat(
        "torchvision", "torchvision / supervised R(2+1)D", "resnet3d", ("state_dict", "model", ""),
        backbone_rules=((r"^(module\.)?", ""),), has_classifier=True,
        detect=_torchvision_like),
    CheckpointFormat(
        "selavi", "SeLaVi", "resnet3d", ("model",),
        backbone_rules=((r"^module\.video_network\.base\.", ""),),
        ignore_reasons=((r"audio", "audio network"),
                        (r"head|mlp|fc", "self-labelling heads")),
        detect=lambda state: _prefixed(state, "module.video_network.base.")),
    CheckpointFormat(
        "moco", "MoCo / VideoMoCo", "resnet3d", ("state_dict",),
        backbone_rules=((r"^module\.encoder_q\.", ""),), ignore_reasons=SSL_RESNET_IGNORES,
        detect=lambda state: _prefixed(state, "module.encoder_q.")),
    CheckpointFormat(
        "pretext_contrast", "Pretext-Contrast", "resnet3d", (),
        backbone_rules=((r"^module\.base_network\.0\.", "stem."),
                        (r"^module\.base_network\.([1-4])\.", r"layer\1.")),
        ignore_reasons=((r"fc|head|mlp|linear", "projection head"),),
        detect=lambda state: _prefixed(state, "module.base_network.")),
    CheckpointFormat(
        "rspnet", "RSPNet", "resnet3d", ("model",),
        backbone_rules=((r"^encoder_q\.encoder\.base_network\.0\.", "stem."),
                        (r"^encoder_q\.encoder\.base_network\.([1-4])\.", r"layer\1.")),
        ignore_reasons=SSL_RESNET_IGNORES + ((r"^encoder_q\.", ("pretext heads (fc, linear, "
                                        "head, new_fc, fc8, encoder_fuse)")),),
        detect=lambda state: _prefixed(state, "encoder_q.encoder.base_network.")),
    CheckpointFormat(
        "avid_cma", "AVID-CMA", "resnet3d", ("model",),
        backbone_rules=((r"^module\.video_model\.", ""),),
        ignore_reasons=((r"audio", "audio network"), (r"head|mlp|fc", "projection heads")),
        detect=lambda state: _prefixed(state, "module.video_model.")),
    CheckpointFormat(
        "ctp", "CtP", "resnet3d", ("state_dict",),
        backbone_rules=((r"^backbone\.", ""),), renames=PYVRL_R2PLUS1D_RENAMES,
        ignore_reasons=((r"", "CtP pretext (tracking) head"),),
        detect=lambda state: _prefixed(state, "backbone.stem.conv_s")
        and not _prefixed(state, "key_encoder.", "queue")),
    CheckpointFormat(
        "tubelet_contrast", "Tubelet-Contrast", "resnet3d", ("state_dict",),
        backbone_rules=((r"^backbone\.", ""),), renames=PYVRL_R2PLUS1D_RENAMES,
        ignore_reasons=SSL_RESNET_IGNORES + ((r"^(key_)?fc\.", "MoCo projection head"),),
        detect=lambda state: _prefixed(state, "backbone.stem.conv_s")
        and _prefixed(state, "key_encoder.", "queue")),
    CheckpointFormat(
        "tubelet_contrast_r3d", "Tubelet-Contrast R3D", "resnet3d", ("state_dict",),
        backbone_rules=((r"^backbone\.", ""),), renames=PYVRL_R3D_RENAMES,
        ignore_reasons=SSL_RESNET_IGNORES + ((r"^(key_)?fc\.", "MoCo projection head"),),
        default_backbone="r3d_18",
        detect=lambda state: _prefixed(state, "backbone.stem.conv.")),
    CheckpointFormat(
        "tclr", "TCLR", "resnet3d", ("state_dict",),
        backbone_rules=((r"^module\.0\.", ""),),
        ignore_reasons=((r"^module\.[1-9]", "projection head"),),
        default_backbone="r2plus1d_18_tclr",
        detect=lambda state: _prefixed(state, "module.0.stem.")),
    CheckpointFormat(
        "gdt", "GDT", "resnet3d", ("model",),
        backbone_rules=((r"^video_network\.base\.", ""),),
        ignore_reasons=((r"^audio_network|^mlp_a", "audio network"),
                        (r"^mlp_v|^video_network", "video projection head")),
        detect=lambda state: _prefixed(state, "video_network.base.")),
    CheckpointFormat(
        "videomae_pretrain", "VideoMAE pretraining", "vit", ("model",),
        backbone_rules=((r"^encoder\.", ""),), decoder_rules=MAE_DECODER_RULES,
        ignore_reasons=((r"^decoder\.|^encoder_to_decoder|^mask_token", "MAE decoder"),),
        default_backbone="vit_base",
        detect=lambda state: _prefixed(state, "encoder.patch_embed.")
        and "prototypes" not in state),
    CheckpointFormat(
        "sigma", "SIGMA", "vit", ("model",),
        backbone_rules=((r"^encoder\.", ""),), decoder_rules=MAE_DECODER_RULES,
        ignore_reasons=((r"^prototypes$", "Sinkhorn prototypes"),
                        (r"^head\.", "SIGMA-MLP target feature network"),
                        (r"^decoder\.|^encoder_to_decoder|^mask_token", "feature decoder")),
        default_backbone="vit_base",
        detect=lambda state: _prefixed(state, "encoder.patch_embed.")
        and "prototypes" in state),
    CheckpointFormat(
        "videomae_finetune", "VideoMAE finetuned", "vit", ("module", "model", ""),
        backbone_rules=((r"^", ""),), has_classifier=True, default_backbone="vit_base",
        detect=lambda state: "patch_embed.proj.weight" in state),
]}
VIDSSL_FORMAT = "vidssl"


def vidssl_format(checkpoint: dict) -> CheckpointFormat:
    """vidssl's own layout: a method state dict whose backbone lives under ``backbone_prefix``."""
    prefix = checkpoint.get("backbone_prefix", "backbone.")
    spec = checkpoint.get("model_spec") or {}
    family = "vit" if str(spec.get("name", "")).startswith("vit") else "resnet3d"
    return CheckpointFormat(
        VIDSSL_FORMAT, "vidssl", family, ("model",),
        backbone_rules=((f"^{re.escape(prefix)}", ""),), has_classifier=True,
        ignore_reasons=((r"", ("method state outside the backbone (heads, momentum encoder, "
                               "queue, decoder)")),),
        default_backbone=spec.get("name", "r2plus1d_18"))


def candidate_state(checkpoint: Any) -> dict:
    """Best-guess state dict of ``checkpoint`` (under a usual container key, or the file)."""
    if not isinstance(checkpoint, dict):
        return {}
    for key in ("state_dict", "model", "module"):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def detect_format(checkpoint: Any) -> CheckpointFormat | None:
    """The format whose structure ``checkpoint`` has, or None."""
    if isinstance(checkpoint, dict) and checkpoint.get("format") == VIDSSL_FORMAT:
        return vidssl_format(checkpoint)
    state = candidate_state(checkpoint)
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and torch.is_tensor(v)}
    for candidate in FORMATS.values():
        if candidate.detect(tensors):
            return candidate
    return None


def get_format(name: str, checkpoint: Any) -> CheckpointFormat:
    """Format ``name`` (``"auto"`` detects; ``"video_moco"`` is an alias of ``"moco"``)."""
    if name == VIDSSL_FORMAT:
        return vidssl_format(checkpoint if isinstance(checkpoint, dict) else {})
    name = {"video_moco": "moco", "supervised": "torchvision"}.get(name, name)
    if name not in FORMATS:
        raise ValueError(f"unknown checkpoint format {name!r}; choose from "
                         f"{['auto', VIDSSL_FORMAT, 'video_moco', *FORMATS]}")
    return FORMATS[name]
