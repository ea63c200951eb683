"""Public entry points: ``read_clip`` and ``probe``, dispatching to a backend by name."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from vidssl.io.backends import resolve_backend
from vidssl.io.base import VideoBackend
from vidssl.io.info import VideoInfo
from vidssl.io.sizing import Size


def read_clip(
    path: str | os.PathLike,
    indices: Sequence[int],
    backend: str | VideoBackend = "pyav",
    size: Size = None,
) -> torch.Tensor:
    """Decode the frames at ``indices`` of a video: uint8 ``[T,H,W,3]`` RGB.

    ``indices`` are 0-based positions in a full sequential decode; they may be unsorted or
    repeated and come back in the order asked. ``size`` resizes the kept frames: an int is
    the short side (aspect kept), a pair is ``(H, W)``. A directory ``path`` is read as a
    folder of frame images. Every failure (missing, empty, truncated or non-video file,
    index past the end) raises :class:`~vidssl.io.VideoReadError` naming the file.
    """
    path = os.fspath(path)
    order = torch.as_tensor([int(i) for i in indices], dtype=torch.long)
    if order.numel() == 0:
        raise ValueError(f"read_clip({path!r}): no frame indices given")
    if int(order.min()) < 0:
        raise ValueError(f"read_clip({path!r}): negative frame index {int(order.min())}")
    unique, inverse = torch.unique(order, sorted=True, return_inverse=True)
    frames = resolve_backend(backend, path).read_frames(path, unique.tolist(), size)
    return frames if torch.equal(unique, order) else frames[inverse]


def probe(path: str | os.PathLike, backend: str | VideoBackend = "pyav") -> VideoInfo:
    """Frame count, fps, duration and size, from the container headers (no decoding).

    When a container stores no frame count (e.g. WebM) its packets are counted, which
    reads the file but decodes nothing. Directories are probed as frame folders.
    """
    path = os.fspath(path)
    return resolve_backend(backend, path).probe(path)
