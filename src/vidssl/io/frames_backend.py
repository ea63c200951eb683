"""Frame-folder backend: a directory of numbered images, one per frame.

This is how Charades (``<id>-%06d.jpg``), AVA and UCFRep (``image_%05d.jpg``) are
distributed. Frame ``i`` is the file ``pattern % (start_index + i)``; ``{name}`` in the
pattern stands for the folder's own name. With ``pattern=None`` the pattern is inferred
from the files present.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vidssl.io.base import VideoBackend
from vidssl.io.errors import VideoReadError
from vidssl.io.info import VideoInfo
from vidssl.io.sizing import Size, resize_frames, resolve_size

_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")
_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def infer_pattern(folder: str) -> tuple[str, int]:
    """``(pattern, start_index)`` of the most common numbered image name in ``folder``.

    Numbers are zero-padded (``%05d``) when any has a leading zero, plain (``%d``) otherwise.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for name in os.listdir(folder):
        match = _NUMBERED.match(name)
        if match and match.group(3).lower() in _IMAGE_EXTS:
            prefix, digits, ext = match.groups()
            groups.setdefault((prefix, ext), []).append(digits)
    if not groups:
        raise VideoReadError(folder, "frame folder holds no numbered image files")
    (prefix, ext), numbers = max(groups.items(), key=lambda item: len(item[1]))
    padded = any(len(d) > 1 and d.startswith("0") for d in numbers)
    digits = f"%0{min(map(len, numbers))}d" if padded else "%d"
    return f"{prefix.replace('%', '%%')}{digits}{ext}", min(map(int, numbers))


class FrameFolderBackend(VideoBackend):
    """Read frames from numbered images; ``fps`` is what the folder was extracted at."""

    name = "frames"

    def __init__(
        self, pattern: str | None = "image_%05d.jpg", start_index: int = 1, fps: float = 30.0
    ):
        self.pattern = pattern
        self.start_index = start_index
        self.fps = fps

    def _layout(self, folder: str) -> tuple[str, int]:
        if not os.path.isdir(folder):
            reason = "folder does not exist" if not os.path.exists(folder) else "not a folder"
            raise VideoReadError(folder, reason)
        if self.pattern is None:
            return infer_pattern(folder)
        pattern = self.pattern.replace("{name}", os.path.basename(os.path.normpath(folder)))
        return pattern, self.start_index

    def _frame_path(self, folder: str, pattern: str, start: int, index: int) -> str:
        return os.path.join(folder, pattern % (start + index))

    def count_frames(self, folder: str) -> int:
        """Number of consecutive frames present from the start index (binary search)."""
        pattern, start = self._layout(folder)
        exists = lambda i: os.path.exists(self._frame_path(folder, pattern, start, i))
        if not exists(0):
            first = os.path.basename(self._frame_path(folder, pattern, start, 0))
            raise VideoReadError(folder, f"no first frame {first!r} (pattern {pattern!r})")
        high = 1
        while exists(high):
            high *= 2
        low = high // 2  # exists(low) and not exists(high)
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if exists(mid) else (low, mid)
        return high

    def probe(self, path: str) -> VideoInfo:
        num_frames = self.count_frames(path)
        pattern, start = self._layout(path)
        height, width = self._load(self._frame_path(path, pattern, start, 0), path).shape[:2]
        return VideoInfo(num_frames, float(self.fps), num_frames / self.fps, height, width)

    def _load(self, file: str, folder: str) -> np.ndarray:
        try:
            with Image.open(file) as image:
                return np.asarray(image.convert("RGB"))
        except FileNotFoundError:
            raise VideoReadError(
                folder, f"frame file {os.path.basename(file)!r} is missing"
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise VideoReadError(file, f"not a readable image ({exc})") from None

    def read_frames(self, path: str, indices: list[int], size: Size) -> torch.Tensor:
        pattern, start = self._layout(path)
        last = self._frame_path(path, pattern, start, indices[-1])
        if not os.path.exists(last):
            raise VideoReadError(
                path, f"frame {indices[-1]} ({os.path.basename(last)!r}) is beyond the last frame"
            )
        images = [self._load(self._frame_path(path, pattern, start, i), path) for i in indices]
        if any(image.shape != images[0].shape for image in images):
            raise VideoReadError(path, "frames differ in size")
        frames = torch.from_numpy(np.stack(images))
        return resize_frames(frames, resolve_size(*frames.shape[1:3], size))
