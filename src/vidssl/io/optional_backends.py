"""Optional decoders, used when installed: decord (``pip install decord2``) and OpenCV."""

from __future__ import annotations

import importlib
from dataclasses import replace

import numpy as np
import torch

from vidssl.io.base import VideoBackend
from vidssl.io.errors import VideoReadError
from vidssl.io.info import VideoInfo
from vidssl.io.pyav_backend import PyAVBackend, open_container
from vidssl.io.sizing import Size, resize_frames, resolve_size


def _require(module: str, backend: str, install: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"video backend {backend!r} needs the '{module}' module: pip install {install} "
            f"(or use backend='pyav', the default)"
        ) from None


def _check_file(path: str) -> None:
    """Fail early, with our error, on what the optional decoders report badly (or crash on)."""
    open_container(path).close()


class DecordBackend(VideoBackend):
    """decord (decord2) reader: its own frame index, its own FFmpeg RGB conversion."""

    name = "decord"

    def __init__(self, threads: int = 1):
        _require("decord", self.name, "decord2")
        self.threads = threads

    def _open(self, path: str):
        decord = _require("decord", self.name, "decord2")
        _check_file(path)
        try:
            return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=self.threads)
        except decord.DECORDError as exc:
            raise VideoReadError(path, f"decord cannot open it ({exc})") from None

    def probe(self, path: str) -> VideoInfo:
        """Container metadata from PyAV, with decord's own frame count (its indexing)."""
        info = PyAVBackend().probe(path)
        num_frames = len(self._open(path))
        if num_frames <= 0:
            raise VideoReadError(path, "decord finds no frames")
        return replace(info, num_frames=num_frames)

    def read_frames(self, path: str, indices: list[int], size: Size) -> torch.Tensor:
        decord = _require("decord", self.name, "decord2")
        reader = self._open(path)
        if indices[-1] >= len(reader):
            raise VideoReadError(
                path, f"frame {indices[-1]} is beyond the end ({len(reader)} frames)"
            )
        try:
            frames = torch.from_numpy(reader.get_batch(indices).asnumpy())
        except decord.DECORDError as exc:
            raise VideoReadError(path, f"decord failed to decode ({exc})") from None
        return resize_frames(frames, resolve_size(*frames.shape[1:3], size))


class OpenCVBackend(VideoBackend):
    """OpenCV reader. Decodes sequentially from the start (``grab`` skips conversion), since
    OpenCV's frame seeking is not exact for every codec; colors follow OpenCV (BT.601)."""

    name = "opencv"

    def __init__(self):
        _require("cv2", self.name, "opencv-python-headless")

    def _open(self, path: str):
        cv2 = _require("cv2", self.name, "opencv-python-headless")
        _check_file(path)
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise VideoReadError(path, "OpenCV cannot open it")
        return cv2, capture

    def probe(self, path: str) -> VideoInfo:
        cv2, capture = self._open(path)
        try:
            num_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            fps = float(capture.get(cv2.CAP_PROP_FPS))
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        finally:
            capture.release()
        if num_frames <= 0:
            raise VideoReadError(path, "OpenCV reports no frames")
        return VideoInfo(num_frames, fps, num_frames / fps if fps else 0.0, height, width)

    def read_frames(self, path: str, indices: list[int], size: Size) -> torch.Tensor:
        cv2, capture = self._open(path)
        wanted, images = set(indices), []
        try:
            for index in range(indices[-1] + 1):
                if not capture.grab():
                    raise VideoReadError(
                        path, f"frame {indices[-1]} is beyond the end ({index} frames)"
                    )
                if index in wanted:
                    ok, bgr = capture.retrieve()
                    if not ok:
                        raise VideoReadError(path, f"OpenCV failed to decode frame {index}")
                    images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()
        frames = torch.from_numpy(np.stack(images))
        return resize_frames(frames, resolve_size(*frames.shape[1:3], size))
