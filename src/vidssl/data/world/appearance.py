"""What actors and backgrounds look like: shapes, textures, colours and the four domains.

Shapes are signed distance functions of actor-local coordinates ``(u, v)`` in units of the
actor radius (negative inside). Every texture has an orientation, so rotation is always
visible. Domains differ only in appearance statistics:

- ``studio`` (ucf_like, rep_like, aot_like): a coloured set: wall, floor band and set pieces
  of one of six layouts (arch, blocks, panels, windows, steps, pillars) in the wall's hue family.
- ``arena`` (gym_like): wall and planked floor under a spotlight, plus the event's apparatus
  (vaulting table, floor mat or bars), so the event is readable from one frame as in FineGym.
- ``home`` (charades_like): wall, floor band and static furniture (clutter).
- ``wild`` (ssv2_like): high-frequency coloured texture, camera pan and flickering light.

Every domain has a hand-held camera: a shake of about half a pixel (the backdrop is cut from
a slightly larger canvas, and actors move with it through ``Backdrop.pan``) and a slow
illumination drift of up to 5%; :func:`~vidssl.data.world.render.render` adds fresh sensor
noise to every frame.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from vidssl.data.world.motions import TAU, unit

DOMAINS = ("studio", "arena", "home", "wild")
SHAPES_A = ("ellipse", "rectangle", "triangle", "star", "cross", "halfdisk")
SHAPES_B = ("ring", "hexagon", "crescent", "pentagon", "rhombus", "capsule")
TEXTURES = ("split", "gradient", "stripes", "checker", "blobs")


# ---- shapes -------------------------------------------------------------------------------


def _box(u, v, half_w, half_h):
    return np.maximum(np.abs(u) - half_w, np.abs(v) - half_h)


def _polygon(u, v, sides):
    """Regular polygon with circumradius 1 (one vertex up)."""
    d = None
    for k in range(sides):
        a = TAU * (k + 0.5) / sides - math.pi / 2
        side = u * math.cos(a) + v * math.sin(a)
        d = side if d is None else np.maximum(d, side)
    return d - math.cos(math.pi / sides)


def _star(u, v, p):
    rho, phi = np.hypot(u, v), np.arctan2(v, u) + math.pi / 2
    inner = 0.35 + 0.25 * p
    return rho - (inner + (1 - inner) * np.abs(np.cos(2.5 * phi)) ** 2)


SHAPE_SDF = {
    "ellipse": lambda u, v, p: (np.hypot(u, v / p) - 1.0) * p,
    "rectangle": lambda u, v, p: _box(u, v, 0.95, 0.95 * p),
    "triangle": lambda u, v, p: _polygon(u, v, 3),
    "star": _star,
    "cross": lambda u, v, p: np.minimum(_box(u, v, 0.95, 0.3), _box(u, v, 0.3, 0.95 * p)),
    "halfdisk": lambda u, v, p: np.maximum(np.hypot(u, v - 0.42) - 1.0, v - 0.42),
    "ring": lambda u, v, p: np.abs(np.hypot(u, v) - 0.68) - 0.3,
    "hexagon": lambda u, v, p: _polygon(u, v, 6),
    "crescent": lambda u, v, p: np.maximum(np.hypot(u, v) - 1.0, 0.8 - np.hypot(u - 0.55, v)),
    "pentagon": lambda u, v, p: _polygon(u, v, 5),
    "rhombus": lambda u, v, p: (np.abs(u) + np.abs(v) / p - 1.0) * p * 0.8,
    "capsule": lambda u, v, p: np.hypot(np.maximum(np.abs(u) - 0.45, 0.0), v) - 0.5,
    # a limb: a thin capsule along u, from u = -1 to 1, 0.3 thick
    "limb": lambda u, v, p: np.hypot(np.maximum(np.abs(u) - 0.7, 0.0), v) - 0.3,
}


# ---- colours ------------------------------------------------------------------------------


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def luma(rgb) -> float:
    rgb = np.asarray(rgb)
    return float(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114)


# ---- actors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Appearance:
    """One actor's look. ``radius`` in frame widths; ``colors [2,3]`` blended by the texture."""

    shape: str
    aspect: float
    texture: str
    colors: np.ndarray
    texture_angle: float
    texture_freq: float
    waves: np.ndarray  # [3, 3] (kx, ky, phase) of the blob texture
    radius: float


def sample_appearance(rng: np.random.Generator, shapes: tuple[str, ...], backdrop_luma: float,
                      radius=(0.12, 0.17)) -> Appearance:
    """A random actor whose mean colour differs from the backdrop by >= 0.2 in luma if possible."""
    best, best_gap = None, -1.0
    for _ in range(16):
        c1 = hsv(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))
        c2 = hsv(rng.uniform(), rng.uniform(0.3, 1.0), rng.uniform(0.1, 1.0))
        gap = abs(luma((c1 + c2) / 2) - backdrop_luma) + 0.5 * abs(luma(c1) - luma(c2))
        if gap > best_gap:
            best, best_gap = np.stack([c1, c2]), gap
        if gap >= 0.2:
            break
    return Appearance(
        shape=shapes[int(rng.integers(len(shapes)))],
        aspect=float(rng.uniform(0.55, 0.8)),
        texture=TEXTURES[int(rng.integers(len(TEXTURES)))],
        colors=best,
        texture_angle=float(rng.uniform(0, TAU)),
        texture_freq=float(rng.uniform(1.0, 1.8)),
        waves=np.column_stack([rng.normal(0, 2.5, 3), rng.normal(0, 2.5, 3), rng.uniform(0, TAU, 3)]),
        radius=float(rng.uniform(*radius)),
    )


def texture_weight(app: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Blend weight in [0, 1] between the actor's two colours at local coordinates ``(u, v)``."""
    ca, sa = math.cos(app.texture_angle), math.sin(app.texture_angle)
    along, across = u * ca + v * sa, -u * sa + v * ca
    f = math.pi * app.texture_freq
    if app.texture == "split":
        return 0.5 + 0.5 * np.tanh(4.0 * along)
    if app.texture == "gradient":
        return np.clip(0.5 + 0.5 * along, 0.0, 1.0)
    if app.texture == "stripes":
        return 0.5 + 0.5 * np.tanh(3.0 * np.sin(f * along + 0.5))
    if app.texture == "checker":
        return 0.5 + 0.5 * np.tanh(3.0 * np.sin(f * along + 0.3) * np.sin(f * across + 0.7))
    if app.texture == "blobs":
        field = sum(np.sin(kx * u + ky * v + ph) for kx, ky, ph in app.waves)
        return 0.5 + 0.5 * np.tanh(2.0 * field)
    raise ValueError(f"unknown texture {app.texture!r}")


# ---- backdrops ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backdrop:
    """Background frames ``[T,H,W,3]`` in [0,1], camera pan ``[T,2]`` (frame widths), light gain ``[T]``."""

    frames: np.ndarray
    pan: np.ndarray
    light: np.ndarray

    @property
    def luma(self) -> float:
        return luma(self.frames[0].mean(axis=(0, 1)))


def _grid(size: int, pad: int = 0):
    """Pixel-centre coordinates in frame widths: ``ys, xs`` of shape ``[size+pad, size+pad]``."""
    axis = (np.arange(size + pad, dtype=np.float32) + 0.5) / size
    return np.meshgrid(axis, axis, indexing="ij")


SCENE_LAYOUTS = ("arch", "blocks", "panels", "windows", "steps", "pillars")


def _set_piece(ys, xs, rng, layout: str) -> np.ndarray:
    """Where a studio layout's set pieces are (a mask): a big arch, two blocks, vertical wall
    panels, a grid of windows, a staircase silhouette or two pillars. Positions and sizes
    vary; the kind of structure is what identifies the scene (as a pool or a gym does)."""
    cx = rng.uniform(0.3, 0.7)
    if layout == "arch":
        w, h = rng.uniform(0.35, 0.5), rng.uniform(0.45, 0.6)
        return (((xs - cx) / w) ** 2 + ((ys - 0.85) / h) ** 2 < 1.0) & (
            ((xs - cx) / (0.7 * w)) ** 2 + ((ys - 0.85) / (0.8 * h)) ** 2 > 1.0)
    if layout == "blocks":
        gap, w = rng.uniform(0.25, 0.4), rng.uniform(0.12, 0.18)
        tops = rng.uniform(0.35, 0.55, 2)
        return ((np.abs(xs - (cx - gap)) < w) & (ys > tops[0])) | ((np.abs(xs - (cx + gap)) < w) & (ys > tops[1]))
    if layout == "panels":
        period = rng.uniform(0.18, 0.26)
        return (np.mod(xs - rng.uniform(0, period), period) < period / 2) & (ys < 0.75)
    if layout == "windows":
        top, side = rng.uniform(0.1, 0.2), rng.uniform(0.09, 0.12)
        rows, cols = np.mod(ys - top, 2 * side) < side, np.mod(xs - cx, 2 * side) < side
        return rows & cols & (ys > top) & (ys < top + 4 * side)
    if layout == "steps":
        step = rng.uniform(0.12, 0.18)
        height = 0.9 - step * np.floor(np.clip(xs - rng.uniform(0.0, 0.2), 0.0, None) / step) * 0.8
        return ys > height
    if layout == "pillars":
        gap, w = rng.uniform(0.28, 0.4), rng.uniform(0.05, 0.08)
        return (np.abs(xs - (cx - gap)) < w) | (np.abs(xs - (cx + gap)) < w)
    raise ValueError(f"unknown studio layout {layout!r}; choose one of {SCENE_LAYOUTS}")


def _studio(rng, size, hue, pad=0, layout=None):
    """A set in one hue family (random unless ``hue``): a wall with a vertical gradient, a
    floor band, and set pieces of ``layout`` (random unless given) a little lighter or darker."""
    ys, xs = _grid(size, pad)
    hue = rng.uniform() if hue is None else hue + rng.uniform(-0.03, 0.03)
    layout = SCENE_LAYOUTS[int(rng.integers(len(SCENE_LAYOUTS)))] if layout is None else layout
    value = rng.uniform(0.4, 0.7)
    wall = hsv(hue, rng.uniform(0.3, 0.55), value)
    image = wall * (1.0 + rng.uniform(-0.2, 0.2) * (ys - 0.5))[..., None]
    floor = hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.2, 0.4), value * rng.uniform(0.55, 0.75))
    image = np.where((ys > rng.uniform(0.75, 0.85))[..., None], floor, image)
    piece = hsv(hue + rng.uniform(-0.06, 0.06), rng.uniform(0.3, 0.6),
                np.clip(value + rng.choice([-1, 1]) * rng.uniform(0.15, 0.28), 0.1, 0.95))
    return np.where(_set_piece(ys, xs, rng, layout)[..., None], piece, image)


APPARATUS = ("table", "mat", "bars")  # FineGym's events: vault, floor exercise, uneven bars


def _apparatus(rng, ys, xs, horizon: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Where the event's apparatus is (a mask) and its colour: a vaulting table on the floor,
    a wide floor mat with a border, or two horizontal bars on posts."""
    cx = rng.uniform(0.35, 0.65)
    if kind == "table":
        top = horizon - rng.uniform(0.12, 0.18)
        mask = ((np.abs(xs - cx) < rng.uniform(0.1, 0.14)) & (ys > top) & (ys < top + 0.06)) | (
            (np.abs(xs - cx) < 0.04) & (ys > top) & (ys < horizon + 0.05))
        return mask, hsv(rng.uniform(0.55, 0.65), rng.uniform(0.3, 0.5), rng.uniform(0.55, 0.75))
    if kind == "mat":
        mask = (ys > horizon + 0.03) & (np.abs(xs - cx) < rng.uniform(0.38, 0.45))
        return mask, hsv(rng.uniform(0.58, 0.62), rng.uniform(0.5, 0.7), rng.uniform(0.6, 0.8))
    if kind == "bars":
        low, high = rng.uniform(0.3, 0.38), rng.uniform(0.12, 0.2)
        bars = (np.abs(ys - low) < 0.025) | (np.abs(ys - high) < 0.025)
        posts = (np.abs(np.abs(xs - cx) - 0.3) < 0.025) & (ys > high) & (ys < horizon + 0.05)
        return (bars & (np.abs(xs - cx) < 0.32)) | posts, hsv(0.0, 0.0, rng.uniform(0.8, 0.95))
    raise ValueError(f"unknown apparatus {kind!r}; choose one of {APPARATUS}")


def _arena(rng, size, hue, pad=0, apparatus=None):
    ys, xs = _grid(size, pad)
    horizon = rng.uniform(0.55, 0.72)
    wall = hsv(rng.uniform() if hue is None else hue, rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.4))
    floor = hsv(rng.uniform(0.05, 0.12) if hue is None else hue, rng.uniform(0.35, 0.6),
                rng.uniform(0.45, 0.7))
    planks = 1.0 + 0.08 * np.sign(np.sin(TAU * ys * size / rng.uniform(3.0, 5.0)))
    image = np.where((ys > horizon)[..., None], floor * planks[..., None], wall)
    if apparatus is not None:
        mask, colour = _apparatus(rng, ys, xs, horizon, apparatus)
        image = np.where(mask[..., None], colour, image)
    cy, cx = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.7)
    spot = 1.0 - 0.4 * np.clip(((ys - cy) ** 2 + (xs - cx) ** 2) / 0.64, 0.0, 1.0)
    return image * spot[..., None]


def _home(rng, size, hue, pad=0):
    ys, xs = _grid(size, pad)
    wall = hsv(rng.uniform() if hue is None else hue, rng.uniform(0.1, 0.3), rng.uniform(0.5, 0.8))
    floor = hsv(rng.uniform(), rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.45))
    image = np.where((ys > rng.uniform(0.65, 0.8))[..., None], floor, wall)
    for _ in range(int(rng.integers(3, 7))):  # furniture
        x0, y0 = rng.uniform(-0.1, 0.9), rng.uniform(0.1, 0.9)
        w, h = rng.uniform(0.1, 0.35), rng.uniform(0.1, 0.4)
        inside = (xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y0 + h)
        color = hsv(rng.uniform(), rng.uniform(0.2, 0.5), rng.uniform(0.25, 0.7))
        image = np.where(inside[..., None], color * (0.9 + 0.2 * (ys - y0) / h)[..., None], image)
    return image


def _wild_canvas(rng, size, pad, hue):
    ys, xs = _grid(size, pad)
    image = np.zeros(ys.shape + (3,), dtype=np.float32)
    for _ in range(4):  # coloured gratings of 1.5-5 cycles per frame width
        k = rng.uniform(1.5, 5.0) * unit(rng.uniform(0, TAU))
        color = hsv(rng.uniform() if hue is None else hue + rng.uniform(-0.08, 0.08),
                    rng.uniform(0.4, 1.0), rng.uniform(0.3, 1.0))
        image += np.sin(TAU * (k[0] * xs + k[1] * ys) + rng.uniform(0, TAU))[..., None] * color
    image = 0.5 + 0.25 * image / np.abs(image).max()
    cells = rng.uniform(3.0, 6.0)
    checker = np.sign(np.sin(math.pi * cells * xs) * np.sin(math.pi * cells * ys))
    return image * (1.0 + 0.15 * checker[..., None])


SHAKE_PX = 0.5  # camera shake: standard deviation of the frame offset, pixels
LIGHT_DRIFT = 0.05  # illumination drift: peak relative change over a video


def _shake(rng, num_frames: int, size: int) -> np.ndarray:
    """Integer frame offsets ``[T,2]`` in ``0..2`` pixels: a smoothed random walk around 1 px
    with a standard deviation of about ``SHAKE_PX``."""
    walk = np.cumsum(rng.normal(0.0, 1.0, (num_frames, 2)), axis=0)
    walk -= walk.mean(axis=0)
    walk *= SHAKE_PX / max(float(walk.std()), 1e-6)
    return np.clip(np.rint(1.0 + walk), 0, 2).astype(int)


def _cut(canvas: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
    """Frames ``[T,size,size,3]``: the canvas window at each frame's offset (x, y)."""
    rows = offsets[:, 1, None, None] + np.arange(size)[None, :, None]
    cols = offsets[:, 0, None, None] + np.arange(size)[None, None, :]
    return canvas[rows, cols]


def make_backdrop(domain: str, rng: np.random.Generator, size: int, num_frames: int,
                  hue: float | None = None, apparatus: str | None = None,
                  layout: str | None = None) -> Backdrop:
    """Background of one video. ``hue`` sets the base hue; ``layout`` (studio only) the set
    pieces (a class's scene context); ``apparatus`` (arena only) a FineGym event's apparatus."""
    t = np.linspace(0.0, 1.0, num_frames)
    drift = 1.0 + LIGHT_DRIFT * rng.uniform(0.3, 1.0) * np.sin(
        TAU * rng.uniform(0.3, 0.8) * t + rng.uniform(0, TAU))
    if domain == "wild":
        speed = rng.uniform(0.12, 0.25)
        offsets = np.rint(np.outer(t, speed * size * unit(rng.uniform(0, TAU)))).astype(int)
        offsets -= offsets.min(axis=0)
        offsets += _shake(rng, num_frames, size)
        canvas = _wild_canvas(rng, size, int(offsets.max()) + 1, hue)
        light = 1.0 + rng.uniform(0.05, 0.12) * np.sin(TAU * rng.uniform(1, 2) * t + rng.uniform(0, TAU))
        return Backdrop(_cut(canvas, offsets, size).astype(np.float32), offsets / size, light * drift)
    builders = {"studio": _studio, "arena": _arena, "home": _home}
    if domain not in builders:
        raise ValueError(f"unknown domain {domain!r}; choose one of {DOMAINS}")
    if apparatus is not None and domain != "arena":
        raise ValueError(f"an apparatus belongs in the arena, not in {domain!r}")
    if layout is not None and domain != "studio":
        raise ValueError(f"a set layout belongs in the studio, not in {domain!r}")
    extra = {"apparatus": apparatus} if apparatus is not None else {}
    extra.update({"layout": layout} if layout is not None else {})
    canvas = np.clip(builders[domain](rng, size, hue, pad=3, **extra), 0.0, 1.0).astype(np.float32)
    offsets = _shake(rng, num_frames, size)
    gain = 1.0 if domain == "studio" else rng.uniform(0.85, 1.1)
    return Backdrop(_cut(canvas, offsets, size), (offsets - 1) / size, gain * drift)
