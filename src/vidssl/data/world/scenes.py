"""One function per world part: draw a scene from a per-video RNG and render it.

Each scene function takes ``(job, preset, rng)`` and returns ``(frames, ids, meta)``:
``uint8 [T,H,W,3]`` frames, ``uint8 [T,H,W]`` actor-id masks and a JSON-able dict of what
was drawn (used for annotations and the manifest). Class identity enters only through the
motion; shape, texture, colour, size, position and background are drawn independently.
"""

from __future__ import annotations

import numpy as np

from vidssl.data.world.appearance import (
    SHAPES_A,
    SHAPES_B,
    Backdrop,
    make_backdrop,
    sample_appearance,
)
from vidssl.data.world.interactions import apart, closer, push
from vidssl.data.world.motions import (
    AOT_CLASSES,
    COARSE_CLASSES,
    FINE_CLASSES,
    TAU,
    MotionClass,
    Track,
)
from vidssl.data.world.render import place_group, render
from vidssl.data.world.repetition import REP_CLASSES, cycle_phase, repeat_track, sample_cycle_bounds

PRETRAIN_CLASSES: tuple[MotionClass, ...] = COARSE_CLASSES + FINE_CLASSES
MASK_DOMAINS = ("studio", "arena", "home")

# ssv2_like templates: seven motions shared with ucf_like plus three two-actor interactions.
SSV2_TEMPLATES: tuple[tuple[str, object], ...] = (
    ("Sliding [something] across the scene", COARSE_CLASSES[0]),
    ("Moving [something] in a circle", COARSE_CLASSES[1]),
    ("Zigzagging [something] across the scene", COARSE_CLASSES[2]),
    ("Bouncing [something]", COARSE_CLASSES[3]),
    ("Spinning [something]", COARSE_CLASSES[4]),
    ("Squeezing and releasing [something]", COARSE_CLASSES[5]),
    ("Swinging [something] back and forth", COARSE_CLASSES[6]),
    ("Pushing [something] with [something]", push),
    ("Moving [something] and [something] closer to each other", closer),
    ("Moving [something] and [something] away from each other", apart),
)


def _oriented(track: Track, rng) -> Track:
    """Add a random resting orientation (a nuisance: it never depends on the class)."""
    return Track(track.pos, track.angle + rng.uniform(0, TAU), track.scale)


def _solo(rng, backdrop: Backdrop, motion_track: Track, shapes, radius=(0.12, 0.17)):
    app = sample_appearance(rng, shapes, backdrop.luma, radius)
    [track] = place_group(rng, [_oriented(motion_track, rng)], [app.radius], backdrop.pan)
    return app, track


def _windowed(track: Track, start: int, total: int) -> Track:
    """A track of ``L`` frames placed at ``start`` in a clip of ``total``: still before and after."""
    index = np.clip(np.arange(total) - start, 0, len(track.angle) - 1)
    return Track(track.pos[index], track.angle[index], track.scale[index])


def pretrain_scene(job, preset, rng):
    """Mixed domains; 1-2 actors; the background hue follows the motion with P = shortcut."""
    names = list(preset.pretrain_domains)
    weights = np.array([preset.pretrain_domains[n] for n in names], dtype=float)
    domain = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    shortcut = bool(rng.uniform() < preset.background_shortcut)
    hue = job.label / len(PRETRAIN_CLASSES) if shortcut else None
    size, n = preset.size, preset.num_frames
    backdrop = make_backdrop(domain, rng, size, n, hue)
    actors = [_solo(rng, backdrop, PRETRAIN_CLASSES[job.label].sample(rng, n), SHAPES_A)]
    if rng.uniform() < 0.3:
        other = PRETRAIN_CLASSES[int(rng.integers(len(PRETRAIN_CLASSES)))]
        actors.append(_solo(rng, backdrop, other.sample(rng, n), SHAPES_A))
    frames, ids = render(backdrop, actors, size)
    return frames, ids, {"domain": domain, "shortcut": shortcut}


def _classification_scene(classes, domain):
    def scene(job, preset, rng):
        backdrop = make_backdrop(domain, rng, preset.size, preset.num_frames)
        track = classes[job.label].sample(rng, preset.num_frames)
        frames, ids = render(backdrop, [_solo(rng, backdrop, track, SHAPES_A)],
                             preset.size)
        return frames, ids, {}
    return scene


ucf_scene = _classification_scene(COARSE_CLASSES, "studio")
gym_scene = _classification_scene(FINE_CLASSES, "arena")
aot_scene = _classification_scene(AOT_CLASSES, "studio")


def ssv2_scene(job, preset, rng):
    """Wild domain, other shapes, two actors: one moves (or both interact), one may be still."""
    size, n = preset.size, preset.num_frames
    backdrop = make_backdrop("wild", rng, size, n)
    apps = [sample_appearance(rng, SHAPES_B, backdrop.luma, (0.1, 0.14)) for _ in range(2)]
    radii = [a.radius for a in apps]
    kind = SSV2_TEMPLATES[job.label][1]
    if isinstance(kind, MotionClass):
        moving = place_group(rng, [_oriented(kind.sample(rng, n), rng)], radii[:1], backdrop.pan)
        still = place_group(rng, [_oriented(Track.still(n), rng)], radii[1:], backdrop.pan)
        tracks = moving + still
    else:
        pair = kind(rng, np.linspace(0.0, 1.0, n), *radii)
        tracks = place_group(rng, [_oriented(t, rng) for t in pair], radii, backdrop.pan)
    order = [1, 0] if rng.uniform() < 0.5 else [0, 1]  # which actor is in front
    frames, ids = render(backdrop, [(apps[i], tracks[i]) for i in order], size)
    return frames, ids, {"placeholders": [apps[0].shape, apps[1].shape]}


def rep_scene(job, preset, rng):
    """Studio domain; one actor rests, repeats its movement ``job.count`` times, rests."""
    n = preset.rep_frames
    backdrop = make_backdrop("studio", rng, preset.size, n)
    bounds = sample_cycle_bounds(rng, n, job.count, preset.rep_min_period)
    track = repeat_track(REP_CLASSES[job.label], rng, cycle_phase(bounds, n))
    frames, ids = render(backdrop, [_solo(rng, backdrop, track, SHAPES_A)],
                         preset.size)
    return frames, ids, {"bounds": bounds.tolist()}


def charades_scene(job, preset, rng):
    """Home domain; 2-3 actors each act (one coarse motion) over a window; maybe an idle one."""
    size, n = preset.size, preset.num_frames
    backdrop = make_backdrop("home", rng, size, n)
    labels = rng.choice(len(COARSE_CLASSES), size=int(rng.integers(2, 4)), replace=False)
    actors, actions = [], []
    for label in labels:
        length = int(rng.integers((n + 1) // 2, n + 1))
        start = int(rng.integers(0, n - length + 1))
        track = _windowed(COARSE_CLASSES[label].sample(rng, length), start, n)
        actors.append(_solo(rng, backdrop, track, SHAPES_A, (0.1, 0.14)))
        actions.append([int(label), start, start + length])
    if rng.uniform() < 0.3:
        actors.append(_solo(rng, backdrop, Track.still(n), SHAPES_A, (0.1, 0.14)))
    frames, ids = render(backdrop, actors, size)
    return frames, ids, {"actions": actions, "shapes": [a.shape for a, _ in actors]}


def mask_scene(job, preset, rng):
    """DAVIS-style sequence: 1-2 actors with coarse motions over a studio/arena/home backdrop."""
    size, n = preset.mask_size, preset.num_frames
    domain = MASK_DOMAINS[int(rng.integers(len(MASK_DOMAINS)))]
    backdrop = make_backdrop(domain, rng, size, n)
    motions = [COARSE_CLASSES[job.label]]
    if rng.uniform() < 0.5:
        motions.append(COARSE_CLASSES[int(rng.integers(len(COARSE_CLASSES)))])
    actors = [_solo(rng, backdrop, m.sample(rng, n), SHAPES_A) for m in motions]
    frames, ids = render(backdrop, actors, size)
    return frames, ids, {"domain": domain, "motions": [m.name for m in motions]}


# ---- detection parts ------------------------------------------------------------------------

# ava_like actions: where an actor goes (at most one of the first four) and how it turns or
# grows (each of the last two independently): per-actor multi-label, as AVA's pose + object
# + interaction actions.
AVA_ACTIONS: tuple[MotionClass, ...] = COARSE_CLASSES[:6]
_AVA_MOVES, _AVA_POSES = (0, 1, 2, 3), (4, 5)
UCF24_ACTIONS: tuple[MotionClass, ...] = COARSE_CLASSES[:6]


def _ava_actor(rng, n: int) -> tuple[Track, list[int]]:
    """One actor's track and its (sorted, non-empty) action ids (0-based)."""
    labels = [int(rng.choice(_AVA_MOVES))] if rng.uniform() < 0.8 else []
    labels += [k for k in _AVA_POSES if rng.uniform() < 0.4]
    labels = labels or [int(rng.integers(len(AVA_ACTIONS)))]
    pos, angle, scale = np.zeros((n, 2)), np.zeros(n), np.ones(n)
    for label in labels:
        part = AVA_ACTIONS[label].sample(rng, n)
        pos, angle, scale = pos + part.pos, angle + part.angle, scale * part.scale
    return Track(pos, angle, scale), sorted(labels)


def actor_box(app, track: Track, frame: int) -> list[float]:
    """Normalized ``x1, y1, x2, y2`` of the actor's bounding circle at ``frame``."""
    reach = app.radius * track.scale[frame]
    x, y = track.pos[frame]
    return [float(np.clip(v, 0.0, 1.0)) for v in (x - reach, y - reach, x + reach, y + reach)]


def _detected(rng, box: list[float], jitter: float = 0.015) -> tuple[list[float], float]:
    """A detector's view of a person box: coordinates jittered, a score (missed: < 0.9)."""
    noisy = np.clip(np.asarray(box) + rng.normal(0.0, jitter, 4), 0.0, 1.0)
    noisy[2:] = np.maximum(noisy[2:], noisy[:2] + 0.01)
    score = rng.uniform(0.9, 1.0) if rng.uniform() < 0.95 else rng.uniform(0.3, 0.9)
    return np.clip(noisy, 0.0, 1.0).round(3).tolist(), round(float(score), 6)


def ava_scene(job, preset, rng):
    """Home domain; 2-3 actors, each with 1-3 simultaneous actions for the whole video; boxes
    of every actor at each inner second (the keyframes), and detector boxes: the true boxes
    jittered with scores (5% missed) plus a false positive on 30% of the keyframes."""
    size, fps = preset.det_size, preset.ava_fps
    n = fps * preset.ava_seconds
    backdrop = make_backdrop("home", rng, size, n)
    actors, actions = [], []
    for _ in range(int(rng.integers(2, 4))):
        track, labels = _ava_actor(rng, n)
        actors.append(_solo(rng, backdrop, track, SHAPES_A, (0.1, 0.14)))
        actions.append(labels)
    frames, ids = render(backdrop, actors, size)
    seconds = list(range(1, preset.ava_seconds))
    people = [{"actions": labels, "boxes": [actor_box(app, track, s * fps) for s in seconds]}
              for (app, track), labels in zip(actors, actions)]
    detections = []
    for i, second in enumerate(seconds):
        detections += [[second, *_detected(rng, p["boxes"][i])] for p in people]
        if rng.uniform() < 0.3:
            x, y = rng.uniform(0, 0.7, 2)
            side = rng.uniform(0.15, 0.3)
            detections.append([second, [round(float(v), 3) for v in (x, y, x + side, y + side)],
                               round(float(rng.uniform(0.5, 1.0)), 6)])
    return frames, ids, {"seconds": seconds, "people": people, "detections": detections}


def ucf24_scene(job, preset, rng):
    """Studio domain; 1-2 actors doing the video's action over a window (the tube: frames
    1-based, pixel boxes), still before and after; sometimes an idle bystander."""
    size, n = preset.det_size, preset.ucf24_frames
    backdrop = make_backdrop("studio", rng, size, n)
    actors, windows = [], []
    for _ in range(1 + int(rng.uniform() < 0.3)):
        length = int(rng.integers((n + 1) // 2, n + 1))
        start = int(rng.integers(0, n - length + 1))
        track = _windowed(UCF24_ACTIONS[job.label].sample(rng, length), start, n)
        actors.append(_solo(rng, backdrop, track, SHAPES_A, (0.1, 0.14)))
        windows.append((start, start + length))
    if rng.uniform() < 0.3:
        actors.append(_solo(rng, backdrop, Track.still(n), SHAPES_A, (0.1, 0.14)))
    frames, ids = render(backdrop, actors, size)
    tubes = [[[f + 1, *(v * size for v in actor_box(app, track, f))] for f in range(*window)]
             for (app, track), window in zip(actors, windows)]
    return frames, ids, {"tubes": tubes}
