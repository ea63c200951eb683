"""``load_pretrained``: map a published checkpoint onto a vidssl model and report every key.

Each checkpoint tensor ends up in exactly one bucket: loaded, ignored by design (outside the
backbone, or a pretext head), unexpected (inside the backbone but unknown to the model) or
shape-mismatched; each model tensor is loaded, left at init by design (task heads, BatchNorm
step counters absent from old files) or missing. Strict loading fails on any unexpected,
missing or mismatched key and then leaves the model untouched.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidssl.models.checkpoints.formats import CheckpointFormat, detect_format, get_format
from vidssl.models.checkpoints.reading import CheckpointError, read_checkpoint
from vidssl.models.resnet3d import VideoResNet
from vidssl.models.vit import VideoMAEDecoder, VisionTransformer

SHOWN_KEYS = 8


@dataclass
class LoadReport:
    """What happened to every key; ``str(report)`` is a readable summary."""

    path: str
    format: str
    target: str
    loaded: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (file key, reason)
    initialized: list[tuple[str, str]] = field(default_factory=list)  # (model key, reason)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, file, model
    hint: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or mismatched."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"checkpoint {self.path}", f"  format: {self.format} -> {self.target}",
                 f"  loaded: {len(self.loaded)} tensors"]
        lines += _grouped("ignored by design", self.ignored)
        lines += _grouped("left at init by design", self.initialized)
        lines += _listed("missing from the file", self.missing)
        lines += _listed("unexpected (not in the model)", self.unexpected)
        lines += _listed("shape mismatch (file vs model)",
                         [f"{k}: {list(a)} vs {list(b)}" for k, a, b in self.mismatched])
        if self.hint and not self.ok:
            lines.append(f"  hint: {self.hint}")
        lines.append(f"  status: {'OK' if self.ok else 'DOES NOT FIT'}")
        return "\n".join(lines)


def _grouped(title: str, entries: list[tuple[str, str]]) -> list[str]:
    if not entries:
        return []
    by_reason: dict[str, list[str]] = defaultdict(list)
    for key, reason in entries:
        by_reason[reason].append(key)
    lines = [f"  {title}: {len(entries)} keys"]
    for reason, keys in by_reason.items():
        lines.append(f"    {reason}: {len(keys)} ({_summarize_keys(keys)})")
    return lines


def _summarize_keys(keys: list[str]) -> str:
    """``a.b.*`` for keys sharing a module prefix, else up to three distinct prefixes."""
    if len(keys) <= 3:
        return ", ".join(keys)
    split = [k.split(".") for k in keys]
    common = []
    for parts in zip(*split):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    if common and len(common) < min(map(len, split)):
        return ".".join(common) + ".*"
    prefixes = sorted({".".join(p[:2]) + (".*" if len(p) > 2 else "") for p in split})
    return ", ".join(prefixes[:3]) + (", ..." if len(prefixes) > 3 else "")


def _listed(title: str, keys: list[str]) -> list[str]:
    if not keys:
        return []
    shown = keys[:SHOWN_KEYS]
    more = [f"    ... and {len(keys) - len(shown)} more"] if len(keys) > len(shown) else []
    return [f"  {title}: {len(keys)}"] + [f"    {k}" for k in shown] + more


def describe_model(model: nn.Module) -> str:
    spec = getattr(model, "model_spec", None)
    if spec:
        args = ", ".join(f"{k}={v}" for k, v in spec["kwargs"].items())
        return f"{spec['name']}({args})"
    return type(model).__name__


def model_family(model: nn.Module) -> str | None:
    if isinstance(model, VideoResNet):
        return "resnet3d"
    if isinstance(model, (VisionTransformer, VideoMAEDecoder)):
        return "vit"
    return None


def resolve_format(checkpoint: Any, path: str | Path, format: str) -> CheckpointFormat:
    if format != "auto":
        return get_format(format, checkpoint)
    fmt = detect_format(checkpoint)
    if fmt is None:
        top = list(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(path, f"cannot tell the checkpoint format (top-level keys: {top}); "
                                    f"pass format= one of the supported formats")
    return fmt


def plan_load(checkpoint: Any, fmt: CheckpointFormat, model: nn.Module, path: str | Path
              ) -> tuple[LoadReport, dict[str, torch.Tensor]]:
    """Decide, without touching ``model``, which tensors load where; returns (report, tensors)."""
    component = "decoder" if isinstance(model, VideoMAEDecoder) else "backbone"
    if component == "decoder" and not fmt.decoder_rules:
        raise CheckpointError(path, f"{fmt.title} checkpoints hold no MAE decoder")
    family = model_family(model)
    if family is None and isinstance(getattr(model, "backbone", None), nn.Module):
        raise CheckpointError(path, f"got a {type(model).__name__} wrapping a backbone; load the "
                                    f"checkpoint into its .backbone")
    if family is not None and family != fmt.family:
        raise CheckpointError(path, f"holds a {fmt.family} network ({fmt.title}), but the model "
                                    f"is a {type(model).__name__}")
    try:
        state = fmt.state_dict(checkpoint)
    except KeyError as error:
        raise CheckpointError(path, f"not a {fmt.title} checkpoint: {error.args[0]}") from None
    expected = model.state_dict()
    heads = tuple(getattr(model, "head_prefixes", ()))
    layout = tuple(getattr(model, "layout_prefixes", ()))
    spec_name = (getattr(model, "model_spec", None) or {}).get("name")
    hint = "`vidssl weights inspect FILE` shows the network stored in the file"
    if component == "backbone" and spec_name and spec_name != fmt.default_backbone:
        hint = f"{fmt.title} checkpoints usually hold a {fmt.default_backbone}; " + hint
    report = LoadReport(str(path), f"{fmt.name} ({fmt.title})",
                        f"{describe_model(model)} {component}", hint=hint)
    selected: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        mapped = fmt.map_key(key, component) if torch.is_tensor(value) else None
        if mapped is None:
            report.ignored.append((key, _ignore_reason(fmt, key, value, component)))
            continue
        is_head = mapped.startswith(heads)
        if is_head and not fmt.has_classifier:
            report.ignored.append((key, "pretext-task head"))
        elif mapped not in expected or mapped in selected:
            if is_head:
                report.ignored.append((key, "classifier the model does not have"))
            elif mapped.startswith(layout):
                report.ignored.append((key, "final norm of the other pooling layout"))
            else:
                report.unexpected.append(mapped if mapped == key else f"{mapped} (file: {key})")
        elif tuple(value.shape) != tuple(expected[mapped].shape):
            if is_head:
                report.ignored.append((key, "head of another shape (model keeps its init)"))
            else:
                report.mismatched.append((mapped, tuple(value.shape),
                                          tuple(expected[mapped].shape)))
        else:
            selected[mapped] = value
            report.loaded.append(mapped)
    mismatched = {key for key, _, _ in report.mismatched}
    for key in expected:
        if key in selected or key in mismatched:
            continue
        if key.startswith(heads):
            report.initialized.append((key, "task head, trained from scratch"))
        elif key.startswith(layout):
            report.initialized.append((key, ("final norm of this pooling layout, trained from "
                                             "scratch")))
        elif key.endswith("num_batches_tracked"):
            report.initialized.append((key, "BatchNorm step counter absent from the file"))
        else:
            report.missing.append(key)
    return report, selected


def _ignore_reason(fmt: CheckpointFormat, key: str, value: Any, component: str) -> str:
    if not torch.is_tensor(value):
        return "not a tensor"
    if component == "decoder" and fmt.map_key(key) is not None:
        return "encoder (load it into the backbone)"
    return fmt.ignore_reason(key)


def load_pretrained(model: nn.Module, path: str | Path, format: str = "auto",
                    strict: bool = True) -> LoadReport:
    """Load the weights of checkpoint ``path`` into ``model`` (a backbone or a VideoMAEDecoder).

    Args:
        model: ``VideoResNet`` / ``VisionTransformer`` backbone, or a ``VideoMAEDecoder`` (takes
            the decoder of VideoMAE / SIGMA pretraining checkpoints).
        path: checkpoint file; read with ``weights_only=True``.
        format: ``"auto"`` or one of ``FORMATS`` / ``"vidssl"`` / ``"video_moco"``.
        strict: raise ``CheckpointError`` (model untouched) if any key is missing, unexpected
            or of another shape; with ``strict=False`` the matching tensors load anyway.
    Returns:
        ``LoadReport`` listing loaded, ignored-by-design, left-at-init, missing and unexpected keys.
    """
    checkpoint = read_checkpoint(path)
    fmt = resolve_format(checkpoint, path, format)
    report, tensors = plan_load(checkpoint, fmt, model, path)
    if strict and not report.ok:
        raise CheckpointError(path, f"does not fit the model (strict load):\n{report}")
    model.load_state_dict(tensors, strict=False)
    return report
