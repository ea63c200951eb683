"""Render whole clips as arrays: place actor tracks in the frame and composite them.

All frames of an actor are computed at once: the pixel grid is mapped into actor-local
coordinates ``(u, v) = R(-angle) (x - p_t) / (r s_t)`` for every frame ``t``, the shape's
signed distance gives an anti-aliased coverage ``alpha = clip(0.5 - d r s_t, 0, 1)`` (one
pixel ramp), and ``frame = frame + alpha (texture - frame)`` composites back to front.
Then the light gain multiplies every frame and fresh sensor noise ``N(0, sigma^2)`` is added
(``sigma ~ U(NOISE)`` per video, a new draw per pixel and frame, as in a camera).
"""

from __future__ import annotations

import numpy as np

from vidssl.data.world.appearance import SHAPE_SDF, Appearance, Backdrop, texture_weight
from vidssl.data.world.motions import Track

NOISE = (0.006, 0.012)  # sensor noise standard deviation, drawn per video


def place_group(rng: np.random.Generator, tracks: list[Track], radii: list[float],
                pan: np.ndarray) -> list[Track]:
    """Shift tracks that share one anchor so the whole group stays inside the frame.

    Tracks are world positions relative to the anchor; on screen they move by ``-pan``.
    The anchor is uniform over the positions that keep every actor fully visible in every
    frame (centred when the group is larger than the frame).
    """
    lows, highs = [], []
    for track, radius in zip(tracks, radii):
        reach = (radius * track.scale)[:, None]
        lows.append((track.pos - pan - reach).min(axis=0))
        highs.append((track.pos - pan + reach).max(axis=0))
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    free = 1.0 - (high - low)
    anchor = np.where(free > 0, rng.uniform(size=2) * np.maximum(free, 0.0) - low,
                      0.5 - (low + high) / 2)
    return [track.shifted(anchor - pan) for track in tracks]


def render(backdrop: Backdrop, actors: list[tuple[Appearance, Track]], size: int,
           rng: np.random.Generator, owners: list[int] | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Composite actors (screen tracks, back to front) over the backdrop, light it and add
    sensor noise drawn from ``rng``.

    Returns ``frames uint8 [T,H,W,3]`` and ``ids uint8 [T,H,W]`` (0 background, ``owner + 1``
    where shape ``k`` covers at least half of the pixel and is frontmost; ``owners[k]``
    defaults to ``k``: the limbs and prop of a figure share its body's id).
    """
    owners = list(range(len(actors))) if owners is None else owners
    frames = np.array(backdrop.frames, dtype=np.float32)
    ids = np.zeros(frames.shape[:3], dtype=np.uint8)
    centres = (np.arange(size, dtype=np.float32) + 0.5)[None]
    for k, (app, track) in enumerate(actors):
        px = (track.pos * size).astype(np.float32)
        r = (app.radius * size * track.scale).astype(np.float32)[:, None, None]
        dx = centres[:, None, :] - px[:, 0, None, None]
        dy = centres[:, :, None] - px[:, 1, None, None]
        cos = np.cos(track.angle).astype(np.float32)[:, None, None]
        sin = np.sin(track.angle).astype(np.float32)[:, None, None]
        u = (cos * dx + sin * dy) / r
        v = (cos * dy - sin * dx) / r
        alpha = np.clip(0.5 - SHAPE_SDF[app.shape](u, v, app.aspect) * r, 0.0, 1.0)
        weight = texture_weight(app, u, v)[..., None]
        colour = app.colors[0] + weight * (app.colors[1] - app.colors[0])
        frames += alpha[..., None] * (colour - frames)
        ids[alpha >= 0.5] = owners[k] + 1
    frames *= backdrop.light.astype(np.float32)[:, None, None, None]
    frames += rng.normal(0.0, rng.uniform(*NOISE), frames.shape).astype(np.float32)
    return np.rint(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8), ids
