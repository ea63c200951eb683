"""The contract every self-supervised method fulfils, and the name -> class registry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from vidssl.config import MethodConfig, from_dict
from vidssl.data.recipes import PretrainRecipe
from vidssl.errors import ConfigError

METHODS: dict[str, type[SSLMethod]] = {}


def register_method(cls: type[SSLMethod]) -> type[SSLMethod]:
    """Class decorator: make ``cls`` available as ``METHODS[cls.name]``."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls


def parse_method_section(section: dict, where: str) -> MethodConfig:
    """The YAML ``method:`` section -> ``MethodConfig``: ``name`` picks the method, every other
    key is checked against that method's ``Params`` (errors name the key and ``where``)."""
    section = dict(section)
    name = section.pop("name", MethodConfig.name)
    if name not in METHODS:
        raise ConfigError(f"{where}: method.name {name!r} is not one of {', '.join(sorted(METHODS))}")
    return MethodConfig(name=name, params=from_dict(METHODS[name].Params, section, where,
                                                    prefix="method."))


@dataclass
class NoParams:
    """Hyperparameters of a method that has none."""


class SSLMethod(nn.Module):
    """A self-supervised objective around a backbone.

    Subclasses set ``name``, ``Params`` (a dataclass validated by the config loader) and
    ``recipe`` (the published pretraining recipe: clip sampling, pairing, augmentation; see
    :mod:`vidssl.data.recipes`), build what they need in ``__init__(backbone, params)`` and
    implement ``training_step``. The engine
    only ever calls ``training_step`` and ``after_optimizer_step``; downstream evaluation only
    uses ``backbone``.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    recipe: ClassVar[PretrainRecipe | None] = None

    def __init__(self, backbone: nn.Module, params: Any):
        super().__init__()
        self.backbone = backbone
        self.params = params

    @classmethod
    def dataset_options(cls, params: Any) -> dict:
        """Extra ``build_dataset`` keyword arguments this method needs (e.g. two views)."""
        return {}

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def after_optimizer_step(self, progress: float) -> None:
        """Hook after each optimizer step; ``progress`` = step / total_steps in [0, 1]."""
