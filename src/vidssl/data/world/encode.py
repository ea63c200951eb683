"""Write rendered clips to disk: mp4 (PyAV), and DAVIS-style JPEG frames + PNG masks.

Videos are MPEG-4 Part 2 at a fixed quantizer, single-threaded, without B-frames, from a
numpy RGB -> YUV conversion: the same frames always give the same bytes (libx264 did not,
measured: a few videos per hundred changed between runs), decode order equals display
order, and encoding and decoding are faster than H.264 at these tiny sizes.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from PIL import Image

_QP2LAMBDA = 118  # FFmpeg's FF_QP2LAMBDA: global_quality = qscale * 118
# DAVIS palette: 0 black background, then the usual VOC colours for objects 1, 2, ...
_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128, 128, 0, 128, 0, 128, 128]


def rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """``uint8 [T,H,W,3]`` RGB -> ``uint8 [T, 3H/2, W]`` planar YUV 4:2:0 (BT.601, limited range).

    ``Y = 16 + 0.257 R + 0.504 G + 0.098 B``, ``U = 128 - 0.148 R - 0.291 G + 0.439 B``,
    ``V = 128 + 0.439 R - 0.368 G - 0.071 B``; chroma is averaged over 2x2 blocks. Done in
    numpy rather than by swscale so the encoder input is bit-exact from run to run.
    """
    x = frames.astype(np.float32)
    t, h, w, _ = x.shape
    y = 16.0 + 0.257 * x[..., 0] + 0.504 * x[..., 1] + 0.098 * x[..., 2]
    c = x.reshape(t, h // 2, 2, w // 2, 2, 3).mean(axis=(2, 4))
    u = 128.0 - 0.148 * c[..., 0] - 0.291 * c[..., 1] + 0.439 * c[..., 2]
    v = 128.0 + 0.439 * c[..., 0] - 0.368 * c[..., 1] - 0.071 * c[..., 2]
    planes = np.concatenate([y.reshape(t, -1), u.reshape(t, -1), v.reshape(t, -1)], axis=1)
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8).reshape(t, h * 3 // 2, w)


def write_mp4(path: Path, frames: np.ndarray, fps: int, qscale: int) -> None:
    """Encode ``uint8 [T,H,W,3]`` RGB frames as MPEG-4 Part 2 (yuv420p) in an mp4 at ``fps``.

    Fixed quantizer ``qscale`` (1 best .. 31), no B-frames, one thread.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"flags": "+qscale", "global_quality": str(qscale * _QP2LAMBDA),
                          "bf": "0", "threads": "1"}
        for i, image in enumerate(rgb_to_yuv420p(frames)):
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def write_davis(root: Path, video: str, frames: np.ndarray, ids: np.ndarray) -> None:
    """``JPEGImages/<video>/%05d.jpg`` frames and ``Annotations/<video>/%05d.png`` palette masks."""
    image_dir, mask_dir = root / "JPEGImages" / video, root / "Annotations" / video
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    for i, (frame, mask) in enumerate(zip(frames, ids)):
        Image.fromarray(frame).save(image_dir / f"{i:05d}.jpg", quality=95)
        png = Image.fromarray(mask, mode="P")
        png.putpalette(_PALETTE)
        png.save(mask_dir / f"{i:05d}.png")


def write_frames(folder: Path, frames: np.ndarray, pattern: str) -> None:
    """One JPEG per frame, ``folder / (pattern % number)`` with numbers from 1 (AVA's
    ``<video>_%06d.jpg``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / (pattern % (i + 1)), quality=95)
