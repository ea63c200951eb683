"""Articulated figures: a body, a limb with its own local motion, and a carried prop.

A figure is up to three shapes that share one id, drawn back to front: the limb, the body,
the prop. The limb is a thin capsule of half-length ``l = LIMB_LENGTH r`` hinged at a joint
inside the body's rim; its direction is ``phi(t) = a(t) + base + local(t)`` (``a`` the body's
angle), so a spinning body swings its limb round and a limb program moves it on its own:

    joint(t) = p(t) + JOINT r s(t) unit(a(t) + base)
    limb(t)  = joint(t) + l s(t) unit(phi(t))              (centre of the capsule)
    prop(t)  = joint(t) + (2 l + r_prop) s(t) unit(phi(t))  (held at the limb's tip)

Limb programs (``LIMB_PROGRAMS``) are flip-invariant like the body motions: ``hold`` (rigid),
``wave`` (``A sin(2 pi c t + phase)``, slow and wide), ``flap`` (fast and narrow), ``rotate``
(``+-2 pi n t``). Part of a class's signal is this local motion, visible inside a crop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vidssl.data.world.appearance import Appearance, hsv
from vidssl.data.world.motions import TAU, Track, draw

LIMB_PROGRAMS = ("hold", "wave", "flap", "rotate")
LIMB_LENGTH = 0.6  # limb half-length in body radii
JOINT = 0.6  # joint distance from the body's centre in body radii
PROP_RADIUS = (0.07, 0.09)  # frame widths


def limb_motion(rng: np.random.Generator, t: np.ndarray, program: str) -> np.ndarray:
    """Local limb angle per frame (radians) of a limb program, ``t`` in clip units."""
    if program == "hold":
        return np.zeros_like(t)
    if program == "wave":
        return draw(rng, (0.6, 0.9)) * np.sin(TAU * draw(rng, (1.5, 2.5)) * t + rng.uniform(0, TAU))
    if program == "flap":
        return draw(rng, (0.3, 0.45)) * np.sin(TAU * draw(rng, (4.0, 5.0)) * t + rng.uniform(0, TAU))
    if program == "rotate":
        return draw(rng, [-1.0, 1.0]) * TAU * draw(rng, (1.0, 1.5)) * t
    raise ValueError(f"unknown limb program {program!r}; choose one of {LIMB_PROGRAMS}")


def prop_appearance(rng: np.random.Generator, shape: str, hue: float) -> Appearance:
    """A small two-tone object of one hue (the prop's identity is its shape and hue)."""
    return Appearance(
        shape=shape, aspect=0.8, texture="split",
        colors=np.stack([hsv(hue, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0)),
                         hsv(hue, rng.uniform(0.7, 1.0), rng.uniform(0.35, 0.5))]),
        texture_angle=float(rng.uniform(0, TAU)), texture_freq=1.0, waves=np.zeros((3, 3)),
        radius=float(rng.uniform(*PROP_RADIUS)))


@dataclass(frozen=True)
class Figure:
    """The shapes of one figure, back to front, and its body (whose box the detection parts
    annotate)."""

    shapes: list[tuple[Appearance, Track]]
    body: tuple[Appearance, Track]


def articulate(rng: np.random.Generator, body: Appearance, track: Track, program: str | None,
               t: np.ndarray, prop: Appearance | None = None) -> Figure:
    """Attach a limb (``program``; None: no limb and no prop) and a prop to a body on its
    screen ``track``; ``t`` is the clip time of each frame (the limb's program clock)."""
    if program is None:
        return Figure([(body, track)], (body, track))
    r, s = body.radius, track.scale
    base = rng.uniform(0, TAU)
    joint = track.pos + (JOINT * r * s)[:, None] * _unit_rows(track.angle + base)
    phi = track.angle + base + limb_motion(rng, t, program)
    direction = _unit_rows(phi)
    limb_app = replace(body, shape="limb", aspect=1.0, radius=LIMB_LENGTH * r)
    shapes = [(limb_app, Track(joint + (LIMB_LENGTH * r * s)[:, None] * direction, phi, s)), (body, track)]
    if prop is not None:
        reach = (2 * LIMB_LENGTH * r + prop.radius) * s
        shapes.append((prop, Track(joint + reach[:, None] * direction, phi, s)))
    return Figure(shapes, (body, track))


def figure_reach(body: Appearance, with_limb: bool) -> float:
    """Radius around the body's centre that holds the whole figure (for placing it in frame)."""
    if not with_limb:
        return body.radius
    return body.radius * (JOINT + 2 * LIMB_LENGTH) + PROP_RADIUS[1]


def _unit_rows(angles: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angles), np.sin(angles)], 1)

