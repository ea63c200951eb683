"""The backend interface: every decoder answers ``probe`` and ``read_frames``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from vidssl.io.info import VideoInfo
from vidssl.io.sizing import Size


class VideoBackend(ABC):
    """A decoder chosen by name.

    Instances hold options only, never an open file: they pickle into DataLoader workers
    (fork or spawn) and open each video inside the call that reads it.
    """

    name: ClassVar[str]

    @abstractmethod
    def probe(self, path: str) -> VideoInfo:
        """Metadata of ``path`` without decoding frames."""

    @abstractmethod
    def read_frames(self, path: str, indices: list[int], size: Size) -> torch.Tensor:
        """uint8 ``[len(indices),H,W,3]`` RGB for sorted, unique, non-negative ``indices``.

        Raises :class:`~vidssl.io.VideoReadError` for unreadable files and indices past the end.
        """

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({options})"
