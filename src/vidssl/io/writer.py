"""Write uint8 frames to a video file with PyAV (tests, benchmarks, synthetic datasets)."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import torch

from vidssl.io.pyav_backend import COLOR_MATRIX


def write_video(
    path: str | os.PathLike,
    frames: torch.Tensor | np.ndarray,
    fps: float | Fraction = 25,
    codec: str = "libx264",
    keyframe_interval: int = 32,
    pix_fmt: str = "yuv420p",
    colorspace: int | None = None,
    full_range: bool = False,
    options: dict[str, str] | None = None,
) -> None:
    """Encode RGB uint8 ``[T,H,W,3]`` frames (even H and W for 4:2:0) into ``path``.

    ``keyframe_interval`` is the GOP length; ``colorspace`` an AVColorSpace code written to
    the stream (1 = BT.709, 5 = BT.601; ``None`` leaves the stream untagged, i.e. BT.601),
    ``full_range`` selects full-range (JPEG) YUV. The container follows the file extension.
    """
    frames = np.asarray(frames.cpu() if isinstance(frames, torch.Tensor) else frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"write_video({path!r}): frames must be uint8 [T,H,W,3], got "
            f"{frames.dtype} {list(frames.shape)}"
        )
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.options = {"g": str(keyframe_interval), **(options or {})}
        matrix = COLOR_MATRIX.get(colorspace or 2)
        color_range = 2 if full_range else 1
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        stream.codec_context.color_range = color_range
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=matrix, dst_color_range=color_range
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
