"""Motion programs: whole per-frame pose arrays for one actor, from normalized time.

A motion is a function ``motion(rng, t, **ranges) -> Track`` of normalized time
``t = arange(T) / (T - 1)``. Positions are in frame-width units relative to an anchor the
scene chooses later (x right, y down), angles in radians (positive = clockwise on screen),
``scale`` multiplies the actor's radius. Keyword arguments are *ranges*: ``(lo, hi)`` draws
uniformly, a list draws one element, a number is used as is. A :class:`MotionClass` pins
some ranges; everything it leaves free (heading, start phase, sense of rotation...) is a
nuisance drawn per video, so a class is defined by the motion alone.

Every class is invariant to a horizontal flip (no left/right or clockwise/counter-clockwise
classes), because flipping is a standard training augmentation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TAU = 2.0 * math.pi


@dataclass(frozen=True)
class Track:
    """Pose of one actor per frame: ``pos [T,2]`` (frame widths), ``angle [T]``, ``scale [T]``."""

    pos: np.ndarray
    angle: np.ndarray
    scale: np.ndarray

    @classmethod
    def still(cls, num_frames: int) -> Track:
        return cls(np.zeros((num_frames, 2)), np.zeros(num_frames), np.ones(num_frames))

    def shifted(self, offset) -> Track:
        return Track(self.pos + np.asarray(offset, dtype=float), self.angle, self.scale)


def draw(rng: np.random.Generator, spec):
    """One value from a range spec: ``(lo, hi)`` uniform, ``[a, b, ...]`` choice, else ``spec``."""
    if isinstance(spec, tuple):
        return float(rng.uniform(spec[0], spec[1]))
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    return spec


def unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def triangle_wave(x: np.ndarray) -> np.ndarray:
    """Period-1 triangle wave in [-1, 1] with ``triangle_wave(0) == -1``."""
    return 2.0 * np.abs(2.0 * (x - np.floor(x + 0.5))) - 1.0


def _track(t, pos=None, angle=None, scale=None) -> Track:
    n = len(t)
    return Track(
        np.zeros((n, 2)) if pos is None else pos,
        np.zeros(n) if angle is None else angle,
        np.ones(n) if scale is None else scale,
    )


def _spin(rng, t, turns) -> np.ndarray:
    """Rotation by ``turns`` full turns over the clip, in a random sense."""
    return draw(rng, [-1.0, 1.0]) * TAU * draw(rng, turns) * t


# ---- coarse motions (ucf_like, charades_like, pretrain) ---------------------------------


def slide(rng, t, speed=(0.35, 0.6)) -> Track:
    """Constant velocity: ``p(t) = v t u``, heading ``u`` random."""
    direction = unit(rng.uniform(0, TAU))
    return _track(t, pos=draw(rng, speed) * t[:, None] * direction)


def circle(rng, t, turns=(0.6, 1.0), radius=(0.15, 0.22)) -> Track:
    """Orbit: ``p(t) = r (cos a(t), sin a(t))``, ``a(t) = a0 +- 2 pi n t``."""
    sense, phase = draw(rng, [-1.0, 1.0]), rng.uniform(0, TAU)
    n, r = draw(rng, turns), draw(rng, radius)
    a = phase + sense * TAU * n * t
    return _track(t, pos=r * np.stack([np.cos(a), np.sin(a)], 1))


def zigzag(rng, t, speed=(0.3, 0.5), amplitude=(0.07, 0.12), cycles=(1.5, 2.5)) -> Track:
    """Drift ``v t`` along ``u`` plus a triangle wave of amplitude ``A`` across it."""
    heading = rng.uniform(0, TAU)
    along, across = unit(heading), unit(heading + math.pi / 2)
    v, amp, c = draw(rng, speed), draw(rng, amplitude), draw(rng, cycles)
    wave = amp * triangle_wave(c * t + rng.uniform(0, 1))
    return _track(t, pos=(v * t)[:, None] * along + wave[:, None] * across)


def bounce(rng, t, height=(0.2, 0.3), bounces=(1.5, 2.5)) -> Track:
    """Ball bouncing in place: ``y(t) = -h |sin(pi b t + phi)|``."""
    h, b = draw(rng, height), draw(rng, bounces)
    y = -h * np.abs(np.sin(math.pi * b * t + rng.uniform(0, math.pi)))
    return _track(t, pos=np.stack([np.zeros_like(y), y], 1))


def spin(rng, t, turns=(0.5, 1.0)) -> Track:
    """Rotation in place by ``n`` turns."""
    return _track(t, angle=_spin(rng, t, turns))


def pulse(rng, t, amount=(0.3, 0.45), cycles=(1.5, 2.5)) -> Track:
    """Growing and shrinking in place: ``s(t) = 1 + a sin(2 pi c t + phi)``."""
    a, c = draw(rng, amount), draw(rng, cycles)
    return _track(t, scale=1.0 + a * np.sin(TAU * c * t + rng.uniform(0, TAU)))


def swing(rng, t, amplitude=(0.12, 0.2), cycles=(1.5, 2.5)) -> Track:
    """Back and forth along a random axis: ``p(t) = A sin(2 pi c t + phi) u``."""
    axis = unit(rng.uniform(0, math.pi))
    a, c = draw(rng, amplitude), draw(rng, cycles)
    offset = a * np.sin(TAU * c * t + rng.uniform(0, TAU))
    return _track(t, pos=offset[:, None] * axis)


def spiral(rng, t, turns=(1.0, 1.5), radius=(0.2, 0.28)) -> Track:
    """Outward spiral: radius grows linearly from 0.1 R to R while orbiting ``n`` turns."""
    sense, phase = draw(rng, [-1.0, 1.0]), rng.uniform(0, TAU)
    a = phase + sense * TAU * draw(rng, turns) * t
    r = draw(rng, radius) * (0.1 + 0.9 * t)
    return _track(t, pos=r[:, None] * np.stack([np.cos(a), np.sin(a)], 1))


def arc(rng, t, height=(0.25, 0.4), distance=(0.4, 0.6), turns=0.0) -> Track:
    """One thrown arc: ``x = +-d t``, ``y = -4 h t (1 - t)``, rotating ``turns`` turns in flight."""
    side = draw(rng, [-1.0, 1.0])
    x = side * draw(rng, distance) * t
    y = -4.0 * draw(rng, height) * t * (1.0 - t)
    return _track(t, pos=np.stack([x, y], 1), angle=_spin(rng, t, turns))


def stop_and_go(rng, t, distance=(0.4, 0.6), pause=(0.3, 0.4)) -> Track:
    """Move, stop for a fraction ``pause`` of the clip, move on at the same speed."""
    direction = unit(rng.uniform(0, TAU))
    p, split = draw(rng, pause), rng.uniform(0.35, 0.65)
    first = (1.0 - p) * split
    progress = np.interp(t, [0.0, first, first + p, 1.0], [0.0, split, split, 1.0])
    return _track(t, pos=(draw(rng, distance) * progress)[:, None] * direction)


# ---- fine-grained families (gym_like) ---------------------------------------------------


def pendulum(rng, t, amplitude_deg=(25.0, 60.0), cycles=(1.0, 1.5), length=(0.2, 0.26),
             turns=0.0) -> Track:
    """Hanging swing: ``theta(t) = A sin(2 pi c t + phi)``, ``p = L (sin theta, cos theta)``."""
    amp = math.radians(draw(rng, amplitude_deg))
    theta = amp * np.sin(TAU * draw(rng, cycles) * t + rng.uniform(0, TAU))
    length_ = draw(rng, length)
    pos = length_ * np.stack([np.sin(theta), np.cos(theta)], 1)
    return _track(t, pos=pos, angle=_spin(rng, t, turns))


# ---- irreversible motions (aot_like) -----------------------------------------------------


def fall_bounce(rng, t, drop=(0.45, 0.6), restitution=(0.45, 0.65), first_impact=(0.3, 0.4)
                ) -> Track:
    """Dropped from rest, bouncing with restitution ``e`` until it lies still.

    Height ``h(t)`` follows parabolas under gravity ``g = 2 h0 / t1^2``; each impact keeps a
    fraction ``e`` of the speed. Reversed, the actor would jump ever higher: irreversible.
    """
    h0, e, t1 = draw(rng, drop), draw(rng, restitution), draw(rng, first_impact)
    g = 2.0 * h0 / t1**2
    height = np.where(t < t1, h0 - 0.5 * g * t**2, 0.0)
    start, speed = t1, e * g * t1
    while start < 1.0 and speed > 1e-3:
        flight = 2.0 * speed / g
        dt = t - start
        inside = (dt >= 0) & (dt < flight)
        height = np.where(inside, speed * dt - 0.5 * g * dt**2, height)
        start, speed = start + flight, speed * e
    x = draw(rng, [-1.0, 1.0]) * rng.uniform(0.0, 0.15) * t
    return _track(t, pos=np.stack([x, -height], 1), angle=6.0 * x)


def friction_slide(rng, t, distance=(0.3, 0.5), stop=(0.45, 0.85)) -> Track:
    """Pushed off, decelerating uniformly to rest: ``x = d (1 - (1 - t/ts)^2)`` for ``t < ts``."""
    d, ts = draw(rng, distance), draw(rng, stop)
    progress = 1.0 - np.clip(1.0 - t / ts, 0.0, 1.0) ** 2
    direction = unit(rng.uniform(-0.3, 0.3) + draw(rng, [0.0, math.pi]))
    x = d * progress
    return _track(t, pos=x[:, None] * direction, angle=6.0 * x * direction[0])


def damped_swing(rng, t, amplitude_deg=(50.0, 70.0), cycles=(1.5, 2.5), decay=(2.0, 3.0),
                 length=(0.2, 0.26)) -> Track:
    """Released pendulum losing energy: ``theta = A exp(-gamma t) cos(2 pi c t)``."""
    amp = math.radians(draw(rng, amplitude_deg)) * draw(rng, [-1.0, 1.0])
    theta = amp * np.exp(-draw(rng, decay) * t) * np.cos(TAU * draw(rng, cycles) * t)
    length_ = draw(rng, length)
    return _track(t, pos=length_ * np.stack([np.sin(theta), np.cos(theta)], 1))


# ---- classes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionClass:
    """A named motion with some of its parameter ranges pinned."""

    name: str
    motion: Callable[..., Track]
    params: dict = field(default_factory=dict)
    description: str = ""

    def sample(self, rng: np.random.Generator, num_frames: int) -> Track:
        t = np.linspace(0.0, 1.0, num_frames)
        return self.motion(rng, t, **self.params)


COARSE_CLASSES: tuple[MotionClass, ...] = (
    MotionClass("Slide", slide, description="sliding in a straight line"),
    MotionClass("Circle", circle, description="moving in a circle"),
    MotionClass("ZigZag", zigzag, description="zigzagging"),
    MotionClass("Bounce", bounce, description="bouncing in place"),
    MotionClass("Spin", spin, description="spinning in place"),
    MotionClass("Pulse", pulse, description="growing and shrinking"),
    MotionClass("Swing", swing, description="swinging back and forth"),
    MotionClass("Spiral", spiral, description="spiralling outwards"),
    MotionClass("Arc", arc, description="flying along an arc"),
    MotionClass("StopAndGo", stop_and_go, description="moving, pausing, moving on"),
)

# Variants differ by at least ~2x in one parameter, so a 32-px clip still shows it.
_SLOW, _FAST = (0.45, 0.55), (0.9, 1.1)
_SMALL_R, _LARGE_R = (0.1, 0.12), (0.2, 0.24)
_NARROW, _WIDE = (0.06, 0.08), (0.13, 0.16)
_FEW, _MANY = (1.0, 1.4), (2.6, 3.0)

# Gym-like classes: four families of four variants, ordered vault, floor (circle = the
# FX-S1-like set, then zigzag), uneven bars (swing = the UB-S1-like set).
FINE_CLASSES: tuple[MotionClass, ...] = (
    MotionClass("arc_no_turn", arc, {"turns": 0.0}, "(VT) arc, no turn"),
    MotionClass("arc_half_turn", arc, {"turns": (0.45, 0.55)}, "(VT) arc, half turn"),
    MotionClass("arc_full_turn", arc, {"turns": (0.9, 1.1)}, "(VT) arc, full turn"),
    MotionClass("arc_double_turn", arc, {"turns": (1.8, 2.2)}, "(VT) arc, double turn"),
    MotionClass("circle_slow_small", circle, {"turns": _SLOW, "radius": _SMALL_R},
                "(FX) circle, half a turn, small"),
    MotionClass("circle_slow_large", circle, {"turns": _SLOW, "radius": _LARGE_R},
                "(FX) circle, half a turn, large"),
    MotionClass("circle_fast_small", circle, {"turns": _FAST, "radius": _SMALL_R},
                "(FX) circle, one turn, small"),
    MotionClass("circle_fast_large", circle, {"turns": _FAST, "radius": _LARGE_R},
                "(FX) circle, one turn, large"),
    MotionClass("zigzag_narrow_few", zigzag, {"amplitude": _NARROW, "cycles": _FEW},
                "(FX) zigzag, narrow, few zigs"),
    MotionClass("zigzag_narrow_many", zigzag, {"amplitude": _NARROW, "cycles": _MANY},
                "(FX) zigzag, narrow, many zigs"),
    MotionClass("zigzag_wide_few", zigzag, {"amplitude": _WIDE, "cycles": _FEW},
                "(FX) zigzag, wide, few zigs"),
    MotionClass("zigzag_wide_many", zigzag, {"amplitude": _WIDE, "cycles": _MANY},
                "(FX) zigzag, wide, many zigs"),
    MotionClass("swing_small", pendulum, {"amplitude_deg": (20.0, 30.0)},
                "(UB) swing, small"),
    MotionClass("swing_large", pendulum, {"amplitude_deg": (55.0, 70.0)},
                "(UB) swing, large"),
    MotionClass("swing_small_turn", pendulum, {"amplitude_deg": (20.0, 30.0), "turns": 1.0},
                "(UB) swing, small, with a turn"),
    MotionClass("swing_large_turn", pendulum, {"amplitude_deg": (55.0, 70.0), "turns": 1.0},
                "(UB) swing, large, with a turn"),
)

# gym99 label id of each FINE_CLASSES entry: the families sit *inside* FineGym's real label
# ranges (vault 0-5, floor 6-40 holding FX-S1 6-16, UB-S1 74-88), so the real subset
# adapters (gym_vault, gym_floor, gym_fx_s1, gym_ub_s1) cut the same families here.
GYM_LABELS: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 9, 17, 18, 19, 20, 74, 75, 76, 77)
GYM_SUBSETS: dict[str, tuple[int, int]] = {
    "gym_vault": (0, 5),  # arc family
    "gym_floor": (6, 40),  # circle + zigzag families
    "gym_fx_s1": (6, 16),  # circle family
    "gym_ub_s1": (74, 88),  # swing family
}

AOT_CLASSES: tuple[MotionClass, ...] = (
    MotionClass("FallBounce", fall_bounce, description="falling and bouncing to rest"),
    MotionClass("FrictionSlide", friction_slide, description="sliding to a stop"),
    MotionClass("DampedSwing", damped_swing, description="a swing dying out"),
)
