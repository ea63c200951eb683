"""Backends by name: ``pyav`` (default), ``decord``, ``opencv``, ``frames``."""

from __future__ import annotations

import os

from vidssl.io.base import VideoBackend
from vidssl.io.frames_backend import FrameFolderBackend
from vidssl.io.optional_backends import DecordBackend, OpenCVBackend
from vidssl.io.pyav_backend import PyAVBackend

BACKENDS: dict[str, type[VideoBackend]] = {
    cls.name: cls for cls in (PyAVBackend, DecordBackend, OpenCVBackend, FrameFolderBackend)
}


def get_backend(name: str, **options) -> VideoBackend:
    """Build a backend by name; ``options`` go to its constructor (``threads``, ``pattern``...)."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown video backend {name!r}; choose from {sorted(BACKENDS)}"
        ) from None
    return cls(**options)


def resolve_backend(backend: str | VideoBackend, path: str) -> VideoBackend:
    """The backend that reads ``path``: directories always go to the frame-folder reader
    (with the given one when it is a frame-folder backend, else one that infers the pattern)."""
    if os.path.isdir(path) and not isinstance(backend, FrameFolderBackend):
        if backend == "frames":
            return FrameFolderBackend()
        return FrameFolderBackend(pattern=None)
    return backend if isinstance(backend, VideoBackend) else get_backend(backend)
