"""Atomic checkpoints, rotation, and the RNG state that makes resume exact.

Checkpoints hold only tensors and plain containers, so ``torch.load(weights_only=True)``
reads them. A write goes to a temporary file in the same folder, is flushed to disk and then
renamed over the target: a crash mid-write leaves the previous file intact.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def atomic_save(obj: dict, path: str | Path) -> Path:
    """``torch.save`` to ``path`` via temp file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _link_or_copy(src: Path, dst: Path) -> None:
    """Point ``dst`` at ``src`` atomically (hard link, or a copy where links are unsupported)."""
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def save_checkpoint(state: dict, directory: str | Path, step: int, keep_last: int) -> Path:
    """Write ``step_XXXXXXXX.pt`` and make ``last.pt`` point at it; keep the newest ``keep_last``."""
    directory = Path(directory)
    path = atomic_save(state, directory / f"step_{step:08d}.pt")
    _link_or_copy(path, directory / "last.pt")
    for old in sorted(directory.glob("step_*.pt"))[:-max(1, keep_last)]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a checkpoint, or pickled code
        raise RuntimeError(f"cannot read checkpoint {path}: {exc}") from exc


def rng_state() -> dict:
    """Python, NumPy, torch CPU and CUDA generator states as tensors / plain lists."""
    version, keys, pos = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [version, list(keys), pos],
        "numpy": [torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, keys, pos = state["python"]
    random.setstate((version, tuple(keys), pos))
    keys_np, pos_np, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys_np.numpy().astype(np.uint32), pos_np, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
