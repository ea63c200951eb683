"""One function per world part: draw a scene from a per-video RNG and render it.

Each scene function takes ``(job, preset, rng)`` and returns ``(frames, ids, meta)``:
``uint8 [T,H,W,3]`` frames, ``uint8 [T,H,W]`` actor-id masks and a JSON-able dict of what
was drawn (used for annotations and the manifest).

What carries each part's label mirrors the real dataset's bias profile (``docs/world.md``):

- ucf_like (UCF101): an activity = a body motion program plus a limb program, **and** a
  context prior: the class's typical prop shape and set layout, each present with
  probability ``preset.p_context`` and drawn at random otherwise (UCF101's scenes and objects).
- pretrain (Kinetics-like, unlabelled): the ucf_like activities with the same context priors
  and the gym_like elements in their arena, every video ``pretrain_takes`` clips long (the
  activity performed again and again by the same actor, with the same prop, in the same scene).
- gym_like (FineGym): one arena; the event is visible from its apparatus in a single frame,
  the elements of an event differ in motion only.
- ssv2_like (SSv2): object interactions defined by motion and temporal order only: five
  pairs of templates that are each other's time reversal; no context (``p_context = 0``).

Everything else (the body's shape, texture and colours, the figure's size, position and
heading) is drawn independently of the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidssl.data.world.appearance import (
    APPARATUS,
    SCENE_LAYOUTS,
    SHAPES_A,
    SHAPES_B,
    Appearance,
    Backdrop,
    make_backdrop,
    sample_appearance,
)
from vidssl.data.world.figures import (
    LIMB_PROGRAMS,
    Figure,
    articulate,
    figure_reach,
    prop_appearance,
)
from vidssl.data.world.interactions import apart, closer, push
from vidssl.data.world.motions import (
    AOT_CLASSES,
    COARSE_CLASSES,
    FINE_CLASSES,
    TAU,
    MotionClass,
    Track,
    draw,
    spiral,
)
from vidssl.data.world.render import place_group, render
from vidssl.data.world.repetition import REP_CLASSES, cycle_phase, repeat_track, sample_cycle_bounds

MASK_DOMAINS = ("studio", "arena", "home")
ACTOR_RADIUS = (0.15, 0.2)  # body radius in frame widths (UCF101-like framing)
GYM_RADIUS = (0.12, 0.15)  # a wider, broadcast-like shot
GROUP_RADIUS = (0.12, 0.16)  # several actors or objects in one scene
PROP_SHAPES = SHAPES_A

# ---- context priors --------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """The scene and object cues a class typically comes with: a prop's shape and the set's
    layout. Both are structure, not colour (hues are always random): in real video a pool or
    a violin is recognised by its form, and colour jitter, a standard augmentation, must not
    erase a context cue."""

    prop_shape: str
    scene_layout: str


def typical_context(label: int) -> Context:
    """Class ``label``'s typical prop and set layout: ``label = 6 a + b`` gets prop ``b`` and
    layout ``a + b`` (mod 6), so no two of the first 36 classes share both."""
    n = len(PROP_SHAPES)
    return Context(PROP_SHAPES[label % n], SCENE_LAYOUTS[(label // n + label) % len(SCENE_LAYOUTS)])


def draw_context(rng: np.random.Generator, typical: Context, p_context: float) -> Context:
    """Each cue is the typical one with probability ``p_context``, otherwise uniformly random."""
    shape = typical.prop_shape if rng.uniform() < p_context else PROP_SHAPES[int(rng.integers(len(PROP_SHAPES)))]
    layout = typical.scene_layout if rng.uniform() < p_context else SCENE_LAYOUTS[int(rng.integers(len(SCENE_LAYOUTS)))]
    return Context(shape, layout)


# ---- activities -------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """What an actor does: a body motion, a limb program, and where it happens.

    ``context`` is the typical prop and scene (None: no prop, a random scene); ``apparatus``
    puts it in the arena with that apparatus (gym elements)."""

    motion: MotionClass
    limb: str
    context: Context | None = None
    apparatus: str | None = None

    @property
    def name(self) -> str:
        return self.motion.name if self.limb == "hold" else f"{self.motion.name}+{self.limb}"


# ucf_like: every coarse program with its own limb program and context prior.
UCF_ACTIVITIES: tuple[Activity, ...] = tuple(
    Activity(m, LIMB_PROGRAMS[i % len(LIMB_PROGRAMS)], typical_context(i))
    for i, m in enumerate(COARSE_CLASSES))
# FineGym's events per motion family (four variants each): vault, floor (circles, zigzags), bars.
GYM_EVENTS: tuple[str, ...] = ("table", "mat", "mat", "bars")
GYM_ACTIVITIES: tuple[Activity, ...] = tuple(
    Activity(m, "hold", apparatus=GYM_EVENTS[i // 4]) for i, m in enumerate(FINE_CLASSES))
PRETRAIN_ACTIVITIES: tuple[Activity, ...] = UCF_ACTIVITIES + GYM_ACTIVITIES
assert set(GYM_EVENTS) <= set(APPARATUS)


def _oriented(track: Track, rng) -> Track:
    """Add a random resting orientation (a nuisance: it never depends on the class)."""
    return Track(track.pos, track.angle + rng.uniform(0, TAU), track.scale)


def _concat(tracks: list[Track]) -> Track:
    return Track(np.concatenate([t.pos for t in tracks]), np.concatenate([t.angle for t in tracks]),
                 np.concatenate([t.scale for t in tracks]))


def _clock(num_frames: int, clip_frames: int) -> np.ndarray:
    """Clip time of every frame: 0 .. 1 over ``clip_frames`` frames, continuing beyond."""
    return np.arange(num_frames) / max(clip_frames - 1, 1)


def _actor(rng, backdrop: Backdrop, tracks: list[Track], shapes, radius, limb: str | None,
           clip_frames: int, prop: Appearance | None = None) -> Figure:
    """A figure performing ``tracks`` one after another (one take each, each placed in frame
    on its own, so a new take may start elsewhere), with a limb program and a prop."""
    body = sample_appearance(rng, shapes, backdrop.luma, radius)
    reach, placed, start = figure_reach(body, limb is not None), [], 0
    for track in tracks:
        window = backdrop.pan[start:start + len(track.angle)]
        [screen] = place_group(rng, [_oriented(track, rng)], [reach], window)
        placed.append(screen)
        start += len(track.angle)
    return articulate(rng, body, _concat(placed), limb, _clock(start, clip_frames), prop)


def _render(backdrop: Backdrop, figures: list[Figure], size: int, rng):
    shapes = [shape for f in figures for shape in f.shapes]
    owners = [k for k, f in enumerate(figures) for _ in f.shapes]
    return render(backdrop, shapes, size, rng, owners)


def _perform(rng, activity: Activity, domain: str, size: int, clip_frames: int, takes: int,
             p_context: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render one actor performing ``activity`` for ``takes`` clips in one scene; an activity
    with a context is in a studio with its drawn layout, and holds its drawn prop."""
    context = draw_context(rng, activity.context, p_context) if activity.context else None
    if activity.apparatus is not None:
        domain = "arena"
    elif context is not None:
        domain = "studio"
    backdrop = make_backdrop(domain, rng, size, clip_frames * takes, apparatus=activity.apparatus,
                             layout=context.scene_layout if context else None)
    prop = prop_appearance(rng, context.prop_shape, rng.uniform()) if context else None
    radius = GYM_RADIUS if activity.apparatus else ACTOR_RADIUS
    tracks = [activity.motion.sample(rng, clip_frames) for _ in range(takes)]
    figure = _actor(rng, backdrop, tracks, SHAPES_A, radius, activity.limb, clip_frames, prop)
    frames, ids = _render(backdrop, [figure], size, rng)
    meta = {"domain": domain, "activity": activity.name}
    if context:
        meta["context"] = {"prop": context.prop_shape, "layout": context.scene_layout,
                           "typical": [context.prop_shape == activity.context.prop_shape,
                                       context.scene_layout == activity.context.scene_layout]}
    return frames, ids, meta


def pretrain_scene(job, preset, rng):
    """Kinetics-like: an activity performed for ``pretrain_takes`` clips with its context
    prior (gym elements: in their arena)."""
    return _perform(rng, PRETRAIN_ACTIVITIES[job.label], "studio", preset.size, preset.num_frames,
                    preset.pretrain_takes, preset.p_context)


def ucf_scene(job, preset, rng):
    return _perform(rng, UCF_ACTIVITIES[job.label], "studio", preset.size, preset.num_frames, 1,
                    preset.p_context)


def gym_scene(job, preset, rng):
    return _perform(rng, GYM_ACTIVITIES[job.label], "arena", preset.size, preset.num_frames, 1, 0.0)


def aot_scene(job, preset, rng):
    n = preset.num_frames
    backdrop = make_backdrop("studio", rng, preset.size, n)
    track = AOT_CLASSES[job.label].sample(rng, n)
    figure = _actor(rng, backdrop, [track], SHAPES_A, ACTOR_RADIUS, "hold", n)
    frames, ids = _render(backdrop, [figure], preset.size, rng)
    return frames, ids, {}


# ---- ssv2_like: five pairs of time-reversed templates ------------------------------------


def _reversed(track: Track) -> Track:
    return Track(track.pos[::-1].copy(), track.angle[::-1].copy(), track.scale[::-1].copy())


def lift(rng, t, height=(0.3, 0.45)) -> Track:
    """Raised straight up with a smooth start and stop: ``y = -h (3 t^2 - 2 t^3)``."""
    rise = draw(rng, height) * (3 * t**2 - 2 * t**3)
    drift = rng.uniform(-0.05, 0.05) * t
    return Track(np.stack([drift, -rise], 1), np.zeros_like(t), np.ones_like(t))


def approach_camera(rng, t, growth=(1.6, 2.0)) -> Track:
    """Brought towards the camera: the apparent size grows smoothly by a factor ``g``."""
    scale = 1.0 + (draw(rng, growth) - 1.0) * (3 * t**2 - 2 * t**3)
    return Track(np.zeros((len(t), 2)), np.zeros_like(t), scale)


@dataclass(frozen=True)
class Template:
    """An SSv2-like template: ``pair(rng, t, r_a, r_b)`` gives two tracks (object A, object B),
    played backwards when ``reverse``."""

    name: str
    pair: object
    reverse: bool = False

    def tracks(self, rng, t, r_a, r_b) -> list[Track]:
        tracks = list(self.pair(rng, t, r_a, r_b))
        return [_reversed(tr) for tr in tracks] if self.reverse else tracks


def _moving_and_still(motion):
    """Object A does ``motion``, object B stays where it is."""
    def pair(rng, t, r_a, r_b):
        return motion(rng, t), Track.still(len(t))
    return pair


_LIFT, _CAMERA = _moving_and_still(lift), _moving_and_still(approach_camera)
_SPIRAL = _moving_and_still(spiral)
SSV2_TEMPLATES: tuple[tuple[str, Template], ...] = tuple((t.name, t) for t in (
    Template("Moving [something] and [something] closer to each other", closer),
    Template("Moving [something] and [something] away from each other", apart),
    Template("Pushing [something] with [something]", push),
    Template("Pulling [something] back from [something]", push, reverse=True),
    Template("Lifting [something] up", _LIFT),
    Template("Putting [something] down", _LIFT, reverse=True),
    Template("Moving [something] towards the camera", _CAMERA),
    Template("Moving [something] away from the camera", _CAMERA, reverse=True),
    Template("Moving [something] along a widening spiral", _SPIRAL),
    Template("Moving [something] along a narrowing spiral", _SPIRAL, reverse=True),
))


def ssv2_scene(job, preset, rng):
    """Wild domain, SHAPES_B objects, two of them: they interact or one moves, one stays."""
    size, n = preset.size, preset.num_frames
    backdrop = make_backdrop("wild", rng, size, n)
    apps = [sample_appearance(rng, SHAPES_B, backdrop.luma, GROUP_RADIUS) for _ in range(2)]
    radii = [a.radius * 2.0 for a in apps]  # room for growing towards the camera
    template = SSV2_TEMPLATES[job.label][1]
    pair = template.tracks(rng, np.linspace(0.0, 1.0, n), apps[0].radius, apps[1].radius)
    tracks = place_group(rng, [_oriented(t, rng) for t in pair], radii, backdrop.pan)
    order = [1, 0] if rng.uniform() < 0.5 else [0, 1]  # which object is in front
    figures = [Figure([(apps[i], tracks[i])], (apps[i], tracks[i])) for i in order]
    frames, ids = _render(backdrop, figures, size, rng)
    return frames, ids, {"placeholders": [apps[0].shape, apps[1].shape]}


def rep_scene(job, preset, rng):
    """Studio domain; one actor rests, repeats its movement ``job.count`` times, rests."""
    n = preset.rep_frames
    backdrop = make_backdrop("studio", rng, preset.size, n)
    bounds = sample_cycle_bounds(rng, n, job.count, preset.rep_min_period)
    track = repeat_track(REP_CLASSES[job.label], rng, cycle_phase(bounds, n))
    figure = _actor(rng, backdrop, [track], SHAPES_A, ACTOR_RADIUS, "hold", preset.num_frames)
    frames, ids = _render(backdrop, [figure], preset.size, rng)
    return frames, ids, {"bounds": bounds.tolist()}


def _windowed(track: Track, start: int, total: int) -> Track:
    """A track of ``L`` frames placed at ``start`` in a clip of ``total``: still before and after."""
    index = np.clip(np.arange(total) - start, 0, len(track.angle) - 1)
    return Track(track.pos[index], track.angle[index], track.scale[index])


def charades_scene(job, preset, rng):
    """Home domain; 2-3 actors each act (one coarse motion) over a window; maybe an idle one.
    Limb programs are a nuisance here (any actor may wave or hold)."""
    size, n = preset.size, preset.num_frames
    backdrop = make_backdrop("home", rng, size, n)
    labels = rng.choice(len(COARSE_CLASSES), size=int(rng.integers(2, 4)), replace=False)
    figures, actions = [], []
    for label in labels:
        length = int(rng.integers((n + 1) // 2, n + 1))
        start = int(rng.integers(0, n - length + 1))
        track = _windowed(COARSE_CLASSES[label].sample(rng, length), start, n)
        limb = LIMB_PROGRAMS[int(rng.integers(len(LIMB_PROGRAMS)))]
        figures.append(_actor(rng, backdrop, [track], SHAPES_A, GROUP_RADIUS, limb, n))
        actions.append([int(label), start, start + length])
    if rng.uniform() < 0.3:
        figures.append(_actor(rng, backdrop, [Track.still(n)], SHAPES_A, GROUP_RADIUS, "hold", n))
    frames, ids = _render(backdrop, figures, size, rng)
    return frames, ids, {"actions": actions, "shapes": [f.body[0].shape for f in figures]}


def mask_scene(job, preset, rng):
    """DAVIS-style sequence: 1-2 actors with coarse motions over a studio/arena/home backdrop."""
    size, n = preset.mask_size, preset.num_frames
    domain = MASK_DOMAINS[int(rng.integers(len(MASK_DOMAINS)))]
    backdrop = make_backdrop(domain, rng, size, n)
    motions = [COARSE_CLASSES[job.label]]
    if rng.uniform() < 0.5:
        motions.append(COARSE_CLASSES[int(rng.integers(len(COARSE_CLASSES)))])
    figures = [_actor(rng, backdrop, [m.sample(rng, n)], SHAPES_A, GROUP_RADIUS, "hold", n)
               for m in motions]
    frames, ids = _render(backdrop, figures, size, rng)
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
        actors.append(_actor(rng, backdrop, [track], SHAPES_A, GROUP_RADIUS, None, n))
        actions.append(labels)
    frames, ids = _render(backdrop, actors, size, rng)
    actors = [figure.body for figure in actors]
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
        actors.append(_actor(rng, backdrop, [track], SHAPES_A, GROUP_RADIUS, None, n))
        windows.append((start, start + length))
    if rng.uniform() < 0.3:
        actors.append(_actor(rng, backdrop, [Track.still(n)], SHAPES_A, GROUP_RADIUS, None, n))
    frames, ids = _render(backdrop, actors, size, rng)
    actors = [figure.body for figure in actors]
    tubes = [[[f + 1, *(v * size for v in actor_box(app, track, f))] for f in range(*window)]
             for (app, track), window in zip(actors, windows)]
    return frames, ids, {"tubes": tubes}
