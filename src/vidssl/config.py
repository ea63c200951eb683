"""Typed configuration: dataclasses, YAML files, dotted command-line overrides.

A config file is a YAML mapping whose sections mirror the dataclasses below. Every key is
checked: an unknown key or a value of the wrong type is a ``ConfigError`` naming the key and
the file (or "command line" for overrides). ``to_dict`` gives the fully resolved config that
is saved next to every run.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vidssl.errors import ConfigError


# ----------------------------------------------------------------------------- sections
@dataclass
class ModelConfig:
    """Backbone: ``vidssl.models.build_backbone(name, **kwargs)``."""

    name: str = "r2plus1d_18"
    kwargs: dict = field(default_factory=dict)


@dataclass
class DataConfig:
    """Dataset and loader: ``vidssl.data.build_dataset(dataset, root, split, **options)``."""

    dataset: str = "video_list"
    root: str = ""
    split: str = "train"
    num_samples: int | None = None
    num_frames: int = 16
    frame_stride: int = 2
    target_fps: float | None = None
    size: int = 112
    backend: str = "pyav"
    batch_size: int = 32
    num_workers: int = 4
    options: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    """Optimizer. ``lr`` is the base rate; with ``lr_batch_ref`` set it is scaled by
    ``global_batch / lr_batch_ref`` (VideoMAE's rule). ``layer_decay`` (ViTs) multiplies the
    rate of block ``i`` of ``L`` by ``layer_decay ** (L + 1 - i)``."""

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lr_batch_ref: int | None = None
    layer_decay: float | None = None
    decay_norm_and_bias: bool = False

    def __post_init__(self) -> None:
        _check_choice("optim.name", self.name, ("sgd", "adam", "adamw"))


@dataclass
class ScheduleConfig:
    """Learning-rate schedule per optimizer step: linear warmup, then ``cosine`` (down to
    ``min_lr_ratio * lr``), ``multistep`` (x ``gamma`` at each milestone epoch) or ``constant``."""

    name: str = "cosine"
    warmup_epochs: float = 0.0
    warmup_steps: int = 0
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_from_zero: bool = False  # VideoMAE: linspace(0, lr, W), step s gets s / (W - 1)

    def __post_init__(self) -> None:
        _check_choice("schedule.name", self.name, ("cosine", "multistep", "constant"))


@dataclass
class TrainConfig:
    """Loop settings shared by pretraining and fine-tuning."""

    epochs: int = 1
    max_steps: int | None = None
    amp: str = "none"
    grad_clip: float | None = None
    accum_steps: int = 1
    checkpoint_every: int = 0
    keep_last: int = 2
    log_every: int = 10
    seed: int = 0
    device: str = "cpu"
    sync_bn: bool = False
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        _check_choice("train.amp", self.amp, ("none", "bf16", "fp16"))
        if self.accum_steps < 1:
            raise ConfigError(f"train.accum_steps must be >= 1, got {self.accum_steps}")


@dataclass
class TrainSettings:
    """Everything ``vidssl.engine.fit`` needs: optimizer, schedule, loop and loader."""

    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    batch_size: int = 8
    num_workers: int = 0
    drop_last: bool = True
    resume: str | None = None
    progress: bool = True


@dataclass
class MethodConfig:
    """``name`` picks ``vidssl.methods.METHODS[name]``; ``params`` is that method's own
    ``Params`` dataclass (written flat beside ``name`` in YAML)."""

    name: str = "tubelet_contrast"
    params: Any = None


@dataclass
class MonitorConfig:
    """Online monitoring during pretraining: weighted kNN accuracy (k, tau 0.07) of the
    backbone on a held-out labelled dataset after every epoch, logged beside the loss.
    Off while ``dataset`` is empty."""

    dataset: str = ""
    root: str = ""
    train_split: str = "train"
    test_split: str = "test"
    k: int = 20
    options: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- conversion
def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")


def _convert(value: Any, annotation: Any, key: str, where: str) -> Any:
    """Check ``value`` against a type annotation, converting only lossless cases (int -> float,
    list -> tuple, nested dicts -> dataclasses)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{where}: {key} = {value!r} matches none of {annotation}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        return from_dict(annotation, value, where, prefix=f"{key}.")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        args = typing.get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: {key} needs {len(args)} values, got {value!r}")
            return tuple(_convert(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        return dict(value)
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: {key}: unsupported annotation {annotation!r}")


def from_dict(cls: type, data: dict, where: str = "<dict>", prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise
    ``ConfigError`` naming ``prefix + key`` and ``where``. A field whose metadata has
    ``"parse"`` is validated by that function, ``parse(section, where)``: this is how a section
    owned by another room (a method's parameters) is checked without config importing it."""
    hints = typing.get_type_hints(cls)
    parsers = {f.name: f.metadata["parse"] for f in dataclasses.fields(cls) if "parse" in f.metadata}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {prefix}{unknown[0]!s} (known in {prefix or 'top level'}: "
            f"{', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        if name in parsers and isinstance(value, dict):
            kwargs[name] = parsers[name](value, where)  # a section validated by its owner
        elif name in parsers or isinstance(value, MethodConfig):
            kwargs[name] = value
        else:
            kwargs[name] = _convert(value, hints[name], prefix + name, where)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def to_dict(config: Any) -> Any:
    """Plain-Python view of a config (method params flattened beside ``name``)."""
    if isinstance(config, MethodConfig):
        return {"name": config.name, **(to_dict(config.params) or {})}
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


# ----------------------------------------------------------------------------- overrides
def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` strings to a nested mapping; values are parsed as YAML scalars
    or lists (``optim.lr=0.01``, ``schedule.milestones=[10,20]``, ``train.max_steps=null``)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"command line: override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"command line: {key}: {part} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def load_config(path: str | Path | None, overrides: list[str] = (), *, cls: type) -> Any:
    """YAML file + dotted overrides -> validated dataclass ``cls``.

    Errors name the file for keys that come from it and "command line" for overrides."""
    data = read_yaml(path) if path else {}
    where = str(path) if path else "config"
    from_dict(cls, data, where)  # errors in the file are reported against the file
    return from_dict(cls, apply_overrides(data, list(overrides)), f"{where} + command line"
                     if overrides else where)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
