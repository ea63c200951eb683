"""Repeated motions with known cycle boundaries (rep_like, UCFRep-style counting).

An actor rests, performs ``k`` cycles of one movement whose lengths vary around a base
period, then rests again. Cycle ``j`` spans frames ``bounds[j] .. bounds[j+1]``; inside it the
phase ``f`` runs from 0 to 1 and the pose is ``g(f)`` with ``g(0) = g(1) = rest``, so each
cycle has exactly one extreme (``f = 1/2``): displacement ``A (1 - cos 2 pi f) / 2`` (Swing),
height ``H sin(pi f)`` (Hop), a loop around a circle through the rest point (Loop), or
scale ``1 + a (1 - cos 2 pi f) / 2`` (Pulse).
"""

from __future__ import annotations

import math

import numpy as np

from vidssl.data.world.motions import TAU, Track, unit

REP_CLASSES: tuple[str, ...] = ("Swing", "Hop", "Loop", "Pulse")
PERIOD_JITTER = 0.15  # each cycle's length is the base period times U(1 - j, 1 + j)


def sample_cycle_bounds(rng: np.random.Generator, num_frames: int, count: int,
                        min_period: int) -> np.ndarray:
    """``count + 1`` increasing 0-based frame indices: the cycle boundaries, within the video."""
    if count < 1 or count * min_period > num_frames - 1:
        raise ValueError(f"{count} cycles of >= {min_period} frames do not fit in {num_frames} frames")
    longest = (num_frames - 1) / count / (1 + PERIOD_JITTER)
    base = rng.uniform(min_period, max(min_period, longest))
    lengths = np.rint(base * rng.uniform(1 - PERIOD_JITTER, 1 + PERIOD_JITTER, count))
    lengths = np.maximum(lengths, min_period).astype(int)
    while lengths.sum() > num_frames - 1:  # rounding overflow: shorten the longest cycle
        lengths[np.argmax(lengths)] -= 1
    start = int(rng.integers(0, num_frames - lengths.sum()))
    return start + np.concatenate([[0], np.cumsum(lengths)])


def cycle_phase(bounds: np.ndarray, num_frames: int) -> np.ndarray:
    """Per-frame phase in ``[0, k]``: ``j + (i - b_j) / (b_{j+1} - b_j)`` inside cycle ``j``."""
    frames = np.arange(num_frames)
    return np.interp(frames, bounds, np.arange(len(bounds), dtype=float))


def repeat_track(kind: str, rng: np.random.Generator, phase: np.ndarray) -> Track:
    """Pose per frame for repetition class ``kind`` driven by the phase from :func:`cycle_phase`."""
    f = phase - np.floor(phase)
    n = len(phase)
    pos, scale = np.zeros((n, 2)), np.ones(n)
    if kind == "Swing":
        pos = (rng.uniform(0.18, 0.3) * (1 - np.cos(TAU * f)) / 2)[:, None] * unit(rng.uniform(0, TAU))
    elif kind == "Hop":
        pos[:, 1] = -rng.uniform(0.2, 0.3) * np.sin(math.pi * f)
    elif kind == "Loop":
        start, sense, radius = rng.uniform(0, TAU), rng.choice([-1.0, 1.0]), rng.uniform(0.1, 0.16)
        a = start + sense * TAU * f
        pos = radius * np.stack([np.cos(a) - math.cos(start), np.sin(a) - math.sin(start)], 1)
    elif kind == "Pulse":
        scale = 1.0 + rng.uniform(0.5, 0.7) * (1 - np.cos(TAU * f)) / 2
    else:
        raise ValueError(f"unknown repetition class {kind!r}; choose one of {REP_CLASSES}")
    return Track(pos, np.zeros(n), scale)
