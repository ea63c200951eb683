"""Configs bundled with the package (``vidssl/configs/<kind>/<name>.yaml``), found with
``importlib.resources`` so that an installed wheel has them as well as a source checkout.

A config argument is either a path to a YAML file or a bundled name: ``tubelet_contrast_world``,
``tubelet_contrast_world.yaml`` or ``pretrain/tubelet_contrast_world.yaml`` all name the same
bundled file. An existing path always wins over a bundled name.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from vidssl.errors import ConfigError

KINDS = ("pretrain", "evaluate")


def bundled_dir(kind: str) -> Path:
    """The folder of bundled configs of one kind (``pretrain`` or ``evaluate``)."""
    if kind not in KINDS:
        raise ConfigError(f"config kind {kind!r} is not one of {', '.join(KINDS)}")
    return Path(str(resources.files("vidssl") / "configs" / kind))


def bundled_names(kind: str) -> list[str]:
    """Names (without ``.yaml``) of the bundled configs of one kind, sorted."""
    return sorted(p.stem for p in bundled_dir(kind).glob("*.yaml"))


def resolve_config(name_or_path: str | Path, kind: str) -> Path:
    """A YAML path as given if it exists, else the bundled config of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    if path.parent.name not in ("", kind):  # e.g. "evaluate/x" asked as a pretrain config
        raise ConfigError(f"config file not found: {path}")
    candidate = bundled_dir(kind) / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    if path.suffix in (".yaml", ".yml") and len(path.parts) > 1:
        raise ConfigError(f"config file not found: {path}")
    raise ConfigError(f"no {kind} config named {str(name_or_path)!r}: not a file, and the bundled "
                      f"ones are {', '.join(bundled_names(kind))} (`vidssl configs list`)")
