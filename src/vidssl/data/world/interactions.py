"""Two-actor interactions (ssv2_like): pushing, approaching, separating.

Each function returns the tracks of actor A and actor B (relative to a shared anchor) given
their radii, so contact happens when the centres are ``r_a + r_b`` apart.
"""

from __future__ import annotations

import numpy as np

from vidssl.data.world.motions import TAU, Track, unit


def _pair(pos_a: np.ndarray, pos_b: np.ndarray) -> tuple[Track, Track]:
    n = len(pos_a)
    return (Track(pos_a, np.zeros(n), np.ones(n)), Track(pos_b, np.zeros(n), np.ones(n)))


def push(rng, t, r_a: float, r_b: float) -> tuple[Track, Track]:
    """A moves at speed ``v`` into B, touches it at ``t_c`` and pushes it along: B starts moving."""
    u = unit(rng.uniform(0, TAU))
    v, t_contact = rng.uniform(0.3, 0.45), rng.uniform(0.3, 0.5)
    start = -(r_a + r_b + v * t_contact)
    pos_a = (start + v * t)[:, None] * u
    pos_b = (v * np.clip(t - t_contact, 0.0, None))[:, None] * u
    return _pair(pos_a, pos_b)


def _approach(rng, t, r_a, r_b) -> np.ndarray:
    """Centre distance over time for two actors closing in and stopping just short of contact."""
    far = rng.uniform(0.5, 0.65)
    near = r_a + r_b + rng.uniform(0.02, 0.05)
    stop = rng.uniform(0.7, 1.0)
    return np.interp(t, [0.0, stop, 1.0], [far, near, near])


def _split(distance: np.ndarray, rng) -> tuple[Track, Track]:
    u = unit(rng.uniform(0, TAU))
    half = (distance / 2)[:, None] * u
    return _pair(-half, half)


def closer(rng, t, r_a: float, r_b: float) -> tuple[Track, Track]:
    """A and B move towards each other and stop before touching."""
    return _split(_approach(rng, t, r_a, r_b), rng)


def apart(rng, t, r_a: float, r_b: float) -> tuple[Track, Track]:
    """A and B start side by side and move away from each other (``closer`` reversed in time)."""
    return _split(_approach(rng, t, r_a, r_b)[::-1].copy(), rng)
