"""Safe checkpoint reading: ``torch.load(weights_only=True)`` plus an explicit allow-list.

Only tensors, containers and a few plain-data classes are ever unpickled. Published files that
carry one of those classes (SIGMA/VideoMAE keep an ``argparse.Namespace`` under ``args``;
older training scripts store numpy scalars) are read through the allow-list below; a file that
needs anything else (a function, a model class, ``os.system``) is refused, naming the globals.
"""
from __future__ import annotations

import argparse
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the model; the message names the file."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _numpy_globals() -> list:
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    entries: list = [np.dtype, np.ndarray]
    for name in ("scalar", "_reconstruct"):
        function = getattr(multiarray, name)
        # Files written under numpy 1.x name the module numpy.core, under 2.x numpy._core.
        entries += [(function, f"numpy.core.multiarray.{name}"),
                    (function, f"numpy._core.multiarray.{name}")]
    return entries


ALLOWED_GLOBALS: list = [argparse.Namespace, *_numpy_globals()]
"""Plain-data classes a checkpoint may contain besides tensors and builtin containers."""

ALLOWED_NAMES = ("argparse.Namespace", "numpy.dtype", "numpy.ndarray", "numpy scalars/arrays")


def _refused_globals(path: Path, error: Exception) -> list[str]:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError):  # legacy (non-zip) files cannot be scanned: use the message
        names = re.findall(r"GLOBAL ([\w.]+)", str(error))
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in ALLOWED_GLOBALS if callable(g)}
    allowed |= {name for entry in ALLOWED_GLOBALS if isinstance(entry, tuple)
                for name in entry[1:]}
    return [name for name in names if name not in allowed]


def read_checkpoint(path: str | Path) -> Any:
    """Load ``path`` on the CPU with ``weights_only=True`` and the plain-data allow-list.

    Raises:
        CheckpointError: missing, empty, truncated or non-PyTorch file, or a file whose pickle
            needs objects that could run code (refused, never executed).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "checkpoint file is empty")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        names = ", ".join(_refused_globals(path, error))
        if not names:
            raise CheckpointError(path, f"cannot read the checkpoint: the file is truncated, "
                                        f"corrupted or not a PyTorch checkpoint "
                                        f"({_first_line(error)})") from None
        raise CheckpointError(
            path,
            f"refused: the file's pickle needs {names}, which is code or an object vidssl does "
            f"not unpickle (only tensors, containers and {', '.join(ALLOWED_NAMES)} are "
            f"allowed). If you trust the file, re-save just its tensors with torch.save in a "
            f"separate process and load that file instead.") from None
    except (RuntimeError, EOFError, KeyError, OSError, ValueError, IndexError) as error:
        raise CheckpointError(
            path, f"cannot read the checkpoint: the file is truncated, corrupted or not a "
                  f"PyTorch checkpoint ({type(error).__name__}: {_first_line(error)})") from None


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if "Weights only load failed" in str(error) else lines[0])[:200] \
        if lines else type(error).__name__
