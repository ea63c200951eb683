"""Backbone registry: ``build_backbone(name, **kwargs)``.

Every backbone built here records ``model_spec = {"name": ..., "kwargs": {...}}``, which
vidssl checkpoints store so that ``build_from_checkpoint`` can rebuild the exact network.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from torch import nn

from vidssl.models import handcrafted, resnet3d, vit

BACKBONES: dict[str, Callable[..., nn.Module]] = {}


def register_backbone(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``constructor`` under its function name; its models carry ``model_spec``."""
    signature = inspect.signature(constructor)

    @functools.wraps(constructor)
    def build(*args, **kwargs) -> nn.Module:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"backbone {constructor.__name__!r}: {error}") from None
        spec_kwargs = {}
        for name, value in bound.arguments.items():
            is_var_keyword = signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD
            spec_kwargs.update(value if is_var_keyword else {name: value})
        model = constructor(*args, **kwargs)
        model.model_spec = {"name": constructor.__name__, "kwargs": spec_kwargs}
        return model

    BACKBONES[constructor.__name__] = build
    return build


r2plus1d_18 = register_backbone(resnet3d.r2plus1d_18)
r3d_18 = register_backbone(resnet3d.r3d_18)
r2plus1d_18_tclr = register_backbone(resnet3d.r2plus1d_18_tclr)
vit_tiny = register_backbone(vit.vit_tiny)
vit_small = register_backbone(vit.vit_small)
vit_base = register_backbone(vit.vit_base)
vit_large = register_backbone(vit.vit_large)
motion_energy = register_backbone(handcrafted.motion_energy)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build backbone ``name`` (one of ``BACKBONES``) with constructor ``kwargs``."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)
