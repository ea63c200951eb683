"""Clip samplers: plain functions that return frame-index arrays.

Samplers work on a *timeline*: an array of source-frame indices (``np.arange(n)`` for the
native frame rate, :func:`fps_timeline` to resample to a target fps, offset for a trimmed
segment). They return *positions* into that timeline; ``timeline[positions]`` gives the
frame indices to decode. Every random draw comes from the ``numpy.random.Generator``
passed in, so sampling is deterministic given a seed.

A clip of ``T`` frames at stride ``s`` covers a span of ``(T - 1) * s + 1`` positions.
When a video is shorter than that span the sampler either raises
:class:`ClipTooShortError` (``pad=None``) or pads by repeating frames:
``pad="loop"`` wraps around (``p mod n``), ``pad="last"`` repeats the last frame.
"""

from __future__ import annotations

import math

import numpy as np

PAD_MODES = (None, "loop", "last")
_EPS = 1e-9


class ClipTooShortError(ValueError):
    """A video has fewer frames than the clip needs and padding is off."""

    def __init__(self, length: int, needed: int):
        self.length, self.needed = length, needed
        super().__init__(f"video has {length} frames but the clip needs {needed}")


def clip_span(num_frames: int, stride: int = 1) -> int:
    """Number of consecutive timeline positions covered by ``num_frames`` at ``stride``."""
    return (num_frames - 1) * stride + 1


def fps_timeline(num_frames: int, fps: float, target_fps: float | None = None) -> np.ndarray:
    """Source frame of each frame of the video resampled from ``fps`` to ``target_fps``.

    Frame ``k`` of the resampled video shows time ``k / target_fps``, i.e. source frame
    ``floor(k * fps / target_fps)``; the resampled video has
    ``ceil(num_frames * target_fps / fps)`` frames (frames repeat when upsampling).
    ``target_fps=None`` keeps the native rate.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if target_fps is None or not fps or fps <= 0:
        return np.arange(num_frames, dtype=np.int64)
    if target_fps <= 0:
        raise ValueError(f"target_fps must be > 0, got {target_fps}")
    step = fps / target_fps
    length = max(1, math.ceil(num_frames / step - _EPS))
    positions = np.floor(np.arange(length) * step + _EPS).astype(np.int64)
    return np.minimum(positions, num_frames - 1)


def pad_positions(positions: np.ndarray, length: int, pad: str | None) -> np.ndarray:
    """Map positions ``>= length`` back into the video: wrap (``loop``) or clamp (``last``)."""
    positions = np.asarray(positions, dtype=np.int64)
    if length < 1:
        raise ClipTooShortError(length, int(positions.max(initial=0)) + 1)
    if positions.size == 0 or positions.max() < length:
        return positions
    if pad == "loop":
        return positions % length
    if pad == "last":
        return np.minimum(positions, length - 1)
    if pad is None:
        raise ClipTooShortError(length, int(positions.max()) + 1)
    raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")


def _clip_positions(start: int, num_frames: int, stride: int, length: int, pad) -> np.ndarray:
    return pad_positions(start + np.arange(num_frames, dtype=np.int64) * stride, length, pad)


def _check_clip(num_frames: int, stride: int) -> None:
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1, got {num_frames}, {stride}")


def random_clip(
    length: int,
    num_frames: int,
    stride: int = 1,
    *,
    rng: np.random.Generator,
    stride_jitter: int = 0,
    pad: str | None = None,
) -> np.ndarray:
    """Positions of one clip at a uniformly random start.

    The stride is drawn uniformly from ``[stride - stride_jitter, stride + stride_jitter]``
    (at least 1), then lowered to the largest stride in that range whose span fits the
    video; the start is uniform in ``[0, length - span]``. A video shorter than the span
    at the smallest stride starts at 0 and is padded (or raises, ``pad=None``).
    """
    _check_clip(num_frames, stride)
    low = max(1, stride - stride_jitter)
    chosen = int(rng.integers(low, stride + stride_jitter + 1))
    fitting = (length - 1) // (num_frames - 1) if num_frames > 1 else chosen
    chosen = max(low, min(chosen, fitting))
    free = length - clip_span(num_frames, chosen)
    start = int(rng.integers(0, free + 1)) if free > 0 else 0
    return _clip_positions(start, num_frames, chosen, length, pad)


def uniform_clips(
    length: int,
    num_frames: int,
    stride: int = 1,
    num_clips: int = 1,
    *,
    pad: str | None = None,
) -> np.ndarray:
    """Positions ``[num_clips, num_frames]`` of clips with evenly spaced starts (test views).

    Starts are ``linspace(0, length - span, num_clips)`` rounded (SEVERE's multi-clip
    test protocol); a single clip is centred.
    """
    _check_clip(num_frames, stride)
    free = max(length - clip_span(num_frames, stride), 0)
    if num_clips == 1:
        starts = np.array([free // 2])
    else:
        starts = np.round(np.linspace(0, free, num_clips)).astype(np.int64)
    return np.stack([_clip_positions(int(s), num_frames, stride, length, pad) for s in starts])


def segment_indices(
    length: int,
    num_segments: int,
    *,
    rng: np.random.Generator | None = None,
    offset: float = 0.5,
) -> np.ndarray:
    """TSN sampling: split the video into ``num_segments`` equal segments, one frame each.

    Segment ``i`` covers ``[i * L / S, (i + 1) * L / S)``; training (``rng`` given) takes a
    uniformly random frame in it, testing the frame at fraction ``offset`` of it (the
    middle by default; ``(v + 0.5) / V`` gives V distinct test views). Videos with fewer
    frames than segments repeat frames.
    """
    if length < 1 or num_segments < 1:
        raise ValueError(f"length and num_segments must be >= 1, got {length}, {num_segments}")
    size = length / num_segments
    offsets = rng.random(num_segments) if rng is not None else np.full(num_segments, offset)
    positions = np.floor((np.arange(num_segments) + offsets) * size).astype(np.int64)
    return np.minimum(positions, length - 1)


def window_positions(start: int, stop: int, num_frames: int) -> np.ndarray:
    """``num_frames`` positions evenly spread over the inclusive window ``[start, stop]``."""
    if stop < start or num_frames < 1:
        raise ValueError(f"bad window [{start}, {stop}] for {num_frames} frames")
    return np.round(np.linspace(start, stop, num_frames)).astype(np.int64)


def reverse_clip(indices: np.ndarray) -> np.ndarray:
    """The same frames played backwards (arrow-of-time negatives)."""
    return np.ascontiguousarray(np.asarray(indices)[..., ::-1])


def seconds_to_frame(seconds: float, fps: float) -> int:
    """Index of the frame shown at time ``seconds``: ``floor(seconds * fps)``."""
    return math.floor(seconds * fps + _EPS)


def clip_at_time(
    start_seconds: float,
    clip_seconds: float,
    num_frames: int,
    fps: float,
    length: int,
    *,
    pad: str | None = None,
) -> np.ndarray:
    """Frames of ``num_frames`` instants evenly spaced over ``[start, start + clip_seconds)``.

    Instant ``k`` is ``start + k * clip_seconds / num_frames``, shown by frame
    ``floor(t * fps)``; instants past the end are padded (or raise, ``pad=None``).
    """
    times = start_seconds + np.arange(num_frames) * (clip_seconds / num_frames)
    positions = np.floor(times * fps + _EPS).astype(np.int64)
    return pad_positions(positions, length, pad)


def random_clip_at_time(
    clip_seconds: float,
    num_frames: int,
    fps: float,
    length: int,
    *,
    rng: np.random.Generator,
    pad: str | None = None,
) -> np.ndarray:
    """:func:`clip_at_time` at a start uniform in ``[0, duration - clip_seconds]``."""
    free = max(length / fps - clip_seconds, 0.0)
    return clip_at_time(rng.uniform(0.0, free), clip_seconds, num_frames, fps, length, pad=pad)
