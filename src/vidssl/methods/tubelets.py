"""Synthetic tubelets (Thoker et al., ICCV 2023): the same moving, transforming patch pasted
onto clips of two different videos.

A tubelet is a static image patch cut from one frame of a source clip, with a shape mask
(rectangle / ellipse / rhombus, hard or soft edge) and a per-frame opacity, that moves along a
trajectory and may scale, rotate and shear over time. Frame ``t`` of a view is

    out_t = frame_t * (1 - alpha_t) + patch(M_t^-1 (p - c_t)) * alpha_t,

pasted tubelet by tubelet, largest first, where ``c_t`` is the centre, ``M_t = s_t R(theta_t)
Sh(kx_t, ky_t)`` the patch's linear transform and ``alpha_t = mask(M_t^-1 (p - c_t)) * o_t``.
Everything is batched: one ``affine_grid`` + ``grid_sample`` per tubelet rank over the whole
batch (in windows around the tubelets), never a Python loop over frames.

Coordinates are pixels in index units: the centre of pixel ``(row i, column j)`` is
``(x, y) = (j, i)``. Positive angles turn the patch clockwise on screen (y points down).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from vidssl.errors import ConfigError

SHAPES = ("rectangle", "ellipse", "rhombus")
MOTIONS = ("nonlinear", "linear", "none")
PATCH_SOURCES = ("a", "b", "other")
RECTANGLE, ELLIPSE, RHOMBUS = range(3)
SHEAR_X, SHEAR_Y, SHEAR_XY = range(3)
MAX_INNER_KEY_FRAMES = 2
CPU_CHUNK_PIXELS = 64 * 64  # CPU: clips per chunk = this / frame area (at least 1)


def _float32(function: Callable) -> Callable:
    """Run ``function`` with autocast off: pixel coordinates need float32 under AMP."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return function(*args, **kwargs)
    return wrapper


@dataclass
class TubeletConfig:
    """Every knob of tubelet synthesis; defaults follow the published configs (rotation on).

    Pixel sizes (``scales``, ``trajectory_extent``) are given for frames whose short side is
    ``reference_size`` and are scaled with the actual short side. Velocities are per frame;
    key-frame walks add ``U(-v, v) * (frames between key frames)`` at each key frame.
    """

    num_tubelets: int = 2
    reference_size: int = 112
    scales: tuple[float, ...] = (16, 24, 28, 32, 48, 64)
    aspect_ratios: tuple[float, ...] = (0.5, 0.67, 0.75, 1.0, 1.33, 1.5, 2.0)
    scale_jitter: float = 0.18
    shape_probs: tuple[float, float, float] = (0.5, 0.35, 0.15)
    soft_edge_prob: float = 0.5
    soft_edge_start: tuple[float, float] = (0.30, 0.45)
    opacity_range: tuple[float, float] = (0.8, 1.0)
    motion: str = "nonlinear"
    trajectory_points: int = 48
    trajectory_sigma: float = 8.0
    trajectory_extent: tuple[float, float] = (20, 89)
    scale: bool = False
    rotation: bool = True
    shear: bool = False
    scale_velocity: float = 0.03
    rotation_velocity: float = 6.0
    shear_velocity: float = 0.066
    inner_key_frame_probs: tuple[float, float, float] = (0.5, 0.3, 0.2)
    easing_probs: tuple[float, float, float] = (0.7, 0.15, 0.15)
    patch_source: str = "a"

    def __post_init__(self) -> None:
        for name in ("scales", "aspect_ratios", "shape_probs", "soft_edge_start",
                     "opacity_range", "trajectory_extent", "inner_key_frame_probs",
                     "easing_probs"):
            setattr(self, name, tuple(float(v) for v in getattr(self, name)))
        checks = [
            (self.num_tubelets >= 0, "num_tubelets must be >= 0"),
            (self.reference_size > 0, "reference_size must be > 0"),
            (len(self.scales) > 0 and min(self.scales) > 0, "scales must be positive"),
            (len(self.aspect_ratios) > 0 and min(self.aspect_ratios) > 0,
             "aspect_ratios must be positive"),
            (self.scale_jitter >= 0, "scale_jitter must be >= 0"),
            (0 <= self.soft_edge_prob <= 1, "soft_edge_prob must be in [0, 1]"),
            (len(self.soft_edge_start) == 2
             and 0 <= self.soft_edge_start[0] <= self.soft_edge_start[1] < 0.5,
             "soft_edge_start must be (lo, hi) with 0 <= lo <= hi < 0.5"),
            (len(self.opacity_range) == 2
             and 0 <= self.opacity_range[0] <= self.opacity_range[1] <= 1,
             "opacity_range must be (lo, hi) with 0 <= lo <= hi <= 1"),
            (self.motion in MOTIONS, f"motion must be one of {MOTIONS}"),
            (self.trajectory_points >= 2, "trajectory_points must be >= 2"),
            (self.trajectory_sigma >= 0, "trajectory_sigma must be >= 0"),
            (len(self.trajectory_extent) == 2
             and 0 <= self.trajectory_extent[0] <= self.trajectory_extent[1] < self.reference_size,
             "trajectory_extent must be (lo, hi) with 0 <= lo <= hi < reference_size"),
            (min(self.scale_velocity, self.rotation_velocity, self.shear_velocity) >= 0,
             "velocities must be >= 0"),
            (self.patch_source in PATCH_SOURCES, f"patch_source must be one of {PATCH_SOURCES}"),
        ]
        for name, size in (("shape_probs", 3), ("inner_key_frame_probs", 3),
                           ("easing_probs", 3)):
            probs = getattr(self, name)
            checks.append((len(probs) == size and min(probs) >= 0 and sum(probs) > 0,
                           f"{name} must be {size} non-negative numbers with a positive sum"))
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"TubeletConfig: {message}")

    @classmethod
    def from_dict(cls, values: dict) -> TubeletConfig:
        """Build from a (YAML) mapping, naming unknown keys instead of a bare TypeError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"TubeletConfig: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**values)


@dataclass
class TubeletParams:
    """Sampled tubelets of a batch, indexed ``[b, n]`` in paste order (largest first).

    centers ``[B,N,T,2]`` (x, y); sizes ``[B,N,2]`` base (w, h) of the patch; scales, angles
    (degrees), opacity ``[B,N,T]``; shears ``[B,N,T,2]`` (kx, ky), applied x then y; shape
    ``[B,N]`` (index into ``SHAPES``); edge ``[B,N]``: alpha falls linearly from 1 at
    normalized distance ``edge`` to 0 at 0.5 (0.5 = hard edge); source_frame ``[B,N]`` and
    source_center ``[B,N,2]``: where the patch was cut in the source clip.
    """

    centers: torch.Tensor
    sizes: torch.Tensor
    scales: torch.Tensor
    angles: torch.Tensor
    shears: torch.Tensor
    opacity: torch.Tensor
    shape: torch.Tensor
    edge: torch.Tensor
    source_frame: torch.Tensor
    source_center: torch.Tensor
    frame_size: tuple[int, int]

    @property
    def num_tubelets(self) -> int:
        return self.centers.shape[1]

    @_float32
    def linear_maps(self) -> torch.Tensor:
        """``M_t = s_t R(theta_t) Sh_y(ky_t) Sh_x(kx_t)`` as ``[B,N,T,2,2]`` (patch -> frame)."""
        theta = torch.deg2rad(self.angles)
        cos, sin = torch.cos(theta), torch.sin(theta)
        rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        kx, ky = self.shears.unbind(-1)
        one = torch.ones_like(kx)
        shear = torch.stack([torch.stack([one, kx], -1), torch.stack([ky, kx * ky + one], -1)], -2)
        return self.scales[..., None, None] * rotation @ shear

    def boxes(self) -> torch.Tensor:
        """Axis-aligned bounds ``[B,N,T,4]`` (x1, y1, x2, y2) of each transformed patch."""
        half = self.half_extents()
        return torch.cat([self.centers - half, self.centers + half], dim=-1)

    @_float32
    def half_extents(self) -> torch.Tensor:
        """Half width and height ``[B,N,T,2]`` of the transformed patch's bounding box."""
        half_size = self.sizes[:, :, None, :, None] / 2
        return (self.linear_maps().abs() @ half_size).squeeze(-1)

    @_float32
    def alpha_maps(self) -> torch.Tensor:
        """Per-tubelet alpha (mask x opacity) over whole frames, ``[B,N,T,H,W]``, rendered by
        the same path as ``paste_tubelets``."""
        B, N, T = self.opacity.shape
        batch = torch.arange(B, device=self.centers.device)
        origins = torch.zeros(B, T, 2, dtype=torch.long, device=self.centers.device)
        return torch.cat([_warp_sprites(_cut_sprites(None, self, n), self, n, batch, origins,
                                        self.frame_size) for n in range(N)], dim=1)


def add_tubelets(clips_a: torch.Tensor, clips_b: torch.Tensor,
                 config: TubeletConfig | None = None,
                 generator: torch.Generator | None = None,
                 source: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, TubeletParams]:
    """Paste the same random tubelets on ``clips_a`` and ``clips_b`` (float ``[B,C,T,H,W]``).

    The patches are cut from clip A (the paper), from clip B (``config.patch_source="b"``) or
    from ``source``, clips of third videos (``"other"``: then neither background hides the
    patch it was cut from). Randomness comes from ``generator`` (a CPU ``torch.Generator``;
    default: torch's global RNG), so the result does not depend on the clips' device.
    Returns ``(views_a, views_b, params)``.
    """
    config = config or TubeletConfig()
    _check_clips(clips_a, clips_b)
    if (config.patch_source == "other") != (source is not None):
        raise ValueError("add_tubelets: pass source clips exactly when patch_source='other' "
                         f"(patch_source={config.patch_source!r})")
    if source is not None:
        _check_clips(clips_a, source)
    B, _, T, H, W = clips_a.shape
    params = sample_tubelets(B, T, (H, W), config, generator)
    params = _to_device(params, clips_a.device)
    source = {"a": clips_a, "b": clips_b}.get(config.patch_source, source)
    views_a, views_b = paste_tubelets([clips_a, clips_b], source, params)
    return views_a, views_b, params


@_float32
def sample_tubelets(batch_size: int, num_frames: int, frame_size: tuple[int, int],
                    config: TubeletConfig | None = None,
                    generator: torch.Generator | None = None) -> TubeletParams:
    """Draw tubelet parameters for ``batch_size`` clips of ``num_frames`` frames of
    ``frame_size = (H, W)``; returned on CPU, sorted largest first within each clip."""
    config = config or TubeletConfig()
    H, W = frame_size
    B, N, T = batch_size, config.num_tubelets, num_frames
    M = B * N
    dims = torch.tensor([W, H], dtype=torch.float32)
    pixel_scale = min(H, W) / config.reference_size
    g = generator

    sizes = _box_sizes(M, config, pixel_scale, dims, g)
    shape = _categorical(config.shape_probs, M, g)
    soft = torch.rand(M, generator=g) < config.soft_edge_prob
    lo, hi = config.soft_edge_start
    edge = torch.where(soft, lo + (hi - lo) * torch.rand(M, generator=g), torch.full((M,), 0.5))

    lo, hi = config.opacity_range
    keys = _key_frames(M, T, config, g)
    opacity = _interpolate(keys, lo + (hi - lo) * torch.rand(M, keys.shape[1], generator=g),
                           torch.zeros(M, keys.shape[1] - 1, dtype=torch.long), T)

    centers = _trajectories(M, T, sizes, config, pixel_scale, dims, g)
    scales = torch.exp(_transform_curve(M, T, config.scale, config.scale_velocity, config, g))
    angles = _transform_curve(M, T, config.rotation, config.rotation_velocity, config, g)
    shears = torch.stack([_transform_curve(M, T, config.shear, config.shear_velocity, config, g)
                          for _ in range(2)], dim=-1)
    shear_kind = torch.randint(3, (M,), generator=g)
    shears[shear_kind == SHEAR_Y, :, 0] = 0.0
    shears[shear_kind == SHEAR_X, :, 1] = 0.0

    source_frame = torch.randint(T, (M,), generator=g)
    source_center = centers[torch.arange(M), source_frame]
    source_center = torch.minimum(torch.maximum(source_center, sizes / 2), dims - 1 - sizes / 2)

    params = TubeletParams(
        centers=centers.view(B, N, T, 2), sizes=sizes.view(B, N, 2),
        scales=scales.view(B, N, T), angles=angles.view(B, N, T),
        shears=shears.view(B, N, T, 2), opacity=opacity.view(B, N, T),
        shape=shape.view(B, N), edge=edge.view(B, N),
        source_frame=source_frame.view(B, N), source_center=source_center.view(B, N, 2),
        frame_size=(H, W))
    return _largest_first(params)


@torch.no_grad()
@_float32
def paste_tubelets(clips: Sequence[torch.Tensor], source: torch.Tensor, params: TubeletParams,
                   chunk_size: int | None = None, inplace: bool = False) -> list[torch.Tensor]:
    """Alpha-blend the tubelets of ``params`` (cut from ``source``) onto each clip of ``clips``.

    All tensors are ``[B,C,T,H,W]`` on one device. Each patch becomes a premultiplied RGBA
    sprite (all cut before anything is pasted, so ``source`` may be one of ``clips``), warped
    into every frame by one ``grid_sample`` over a window that just covers the transformed
    patch, and blended as ``out = out * (1 - a) + rgb * a``, largest tubelet first. Clips are
    processed ``chunk_size`` at a time, sorted by tubelet extent (default: all at once on CUDA;
    on CPU, where tight windows beat fewer calls, ``CPU_CHUNK_PIXELS / (H W)``). Returns new
    tensors, or ``clips`` themselves (contiguous ones) modified when ``inplace``.
    """
    B, C, T, H, W = source.shape
    if chunk_size is None:
        chunk_size = B if source.is_cuda else max(1, CPU_CHUNK_PIXELS // (H * W))
    if inplace and not all(clip.is_contiguous() for clip in clips):
        raise ValueError("paste_tubelets: inplace needs contiguous clips")
    sprites = [_cut_sprites(source[torch.arange(B, device=source.device), :,
                                   params.source_frame[:, n]], params, n)
               for n in range(params.num_tubelets)]
    outputs = list(clips) if inplace else [clip.contiguous().clone() for clip in clips]
    flats = [out.view(-1) for out in outputs]
    for n in range(params.num_tubelets):
        need = (2 * params.half_extents()[:, n].amax(dim=1).ceil() + 3).long()  # [B,2] (x,y)
        for chunk in torch.argsort(need[:, 0] * need[:, 1]).split(chunk_size):
            window = (min(int(need[chunk, 1].max()), H), min(int(need[chunk, 0].max()), W))
            origins = _window_origins(params.centers[chunk, n], window, (H, W))
            rgba = _warp_sprites(sprites[n][chunk], params, n, chunk, origins, window)
            color, alpha = rgba[:, :C], rgba[:, C:]
            keep = 1 - alpha
            index = _window_index(chunk, origins, window, (C, T, H, W)).flatten()
            for flat in flats:
                region = flat.index_select(0, index).view_as(color)
                flat.index_copy_(0, index, torch.addcmul(color, region, keep).flatten())
    return outputs


# ---------------------------------------------------------------------------------------------
# sampling helpers (CPU, float32)

def _categorical(probs: Sequence[float], count: int, generator) -> torch.Tensor:
    weights = torch.tensor(probs, dtype=torch.float32).expand(count, len(probs))
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def _box_sizes(count: int, config: TubeletConfig, pixel_scale: float, dims: torch.Tensor,
               generator) -> torch.Tensor:
    """Base (w, h): ``w = s sqrt(r)``, ``h = s / sqrt(r)``, each times ``exp(U(-j, j))``."""
    scales = torch.tensor(config.scales)[torch.randint(len(config.scales), (count,),
                                                       generator=generator)]
    ratios = torch.tensor(config.aspect_ratios)[torch.randint(len(config.aspect_ratios),
                                                              (count,), generator=generator)]
    base = (scales * pixel_scale)[:, None] * torch.stack([ratios.sqrt(), ratios.rsqrt()], -1)
    jitter = torch.exp(config.scale_jitter * (2 * torch.rand(count, 2, generator=generator) - 1))
    return torch.minimum((base * jitter).clamp_min(1.0), (dims - 1).clamp_min(1.0))


def _key_frames(count: int, num_frames: int, config: TubeletConfig, generator) -> torch.Tensor:
    """Sorted key frames ``[count, 4]``: 0, 0-2 jittered inner ones, T-1 (padding: T-1).

    With ``k`` inner key frames, key ``i`` sits at ``i T // (k+1)`` plus an integer jitter in
    ``[-j, j-1]``, ``j = (T // (k+1)) // 3`` (the published ``sample_key_frames``, any T).
    """
    T = num_frames
    inner = _categorical(config.inner_key_frame_probs, count, generator)  # 0, 1 or 2
    slots = torch.arange(1, MAX_INNER_KEY_FRAMES + 1)[None, :]
    segment = T // (inner[:, None] + 1)
    half_range = segment // 3
    jitter = (torch.rand(count, MAX_INNER_KEY_FRAMES, generator=generator)
              * 2 * half_range).floor().long() - half_range
    positions = (slots * segment + jitter).clamp(min(1, T - 1), max(T - 2, 0))
    positions = torch.where(slots <= inner[:, None], positions, torch.full_like(positions, T - 1))
    ends = torch.tensor([0, T - 1]).expand(count, 2)
    return torch.cat([ends[:, :1], positions, ends[:, 1:]], dim=1).sort(dim=1).values


def _interpolate(keys: torch.Tensor, values: torch.Tensor, easing: torch.Tensor,
                 num_frames: int) -> torch.Tensor:
    """Per-frame curves ``[count, T]`` through ``values`` at ``keys``; segment easing
    0 linear ``u``, 1 accelerating ``u^2``, 2 decelerating ``1-(1-u)^2``."""
    frames = torch.arange(num_frames, dtype=keys.dtype).expand(keys.shape[0], num_frames)
    segment = (torch.searchsorted(keys.contiguous(), frames.contiguous()) - 1)
    segment = segment.clamp(0, keys.shape[1] - 2)
    start, end = keys.gather(1, segment), keys.gather(1, segment + 1)
    u = ((frames - start).float() / (end - start).clamp_min(1).float()).clamp(0, 1)
    mode = easing.gather(1, segment)
    eased = torch.where(mode == 1, u * u, torch.where(mode == 2, 1 - (1 - u) ** 2, u))
    v0, v1 = values.gather(1, segment), values.gather(1, segment + 1)
    return v0 + (v1 - v0) * eased


def _transform_curve(count: int, num_frames: int, enabled: bool, velocity: float,
                     config: TubeletConfig, generator) -> torch.Tensor:
    """Key-frame random walk from 0: ``v_{i+1} = v_i + U(-v, v) (k_{i+1} - k_i)``."""
    keys = _key_frames(count, num_frames, config, generator)
    steps = (keys[:, 1:] - keys[:, :-1]).float()
    increments = velocity * (2 * torch.rand(count, steps.shape[1], generator=generator) - 1)
    values = torch.cat([torch.zeros(count, 1), (increments * steps).cumsum(1)], dim=1)
    easing = _categorical(config.easing_probs, count * steps.shape[1], generator)
    curve = _interpolate(keys, values, easing.view(count, steps.shape[1]), num_frames)
    return curve if enabled else torch.zeros_like(curve)


def _trajectories(count: int, num_frames: int, sizes: torch.Tensor, config: TubeletConfig,
                  pixel_scale: float, dims: torch.Tensor, generator) -> torch.Tensor:
    """Per-frame centres ``[count, T, 2]`` for ``config.motion``.

    nonlinear: ``P`` random points per axis, Gaussian-smoothed (sigma in points, 'reflect'
    borders), min-max normalized, scaled to one random extent ``s`` and offset by
    ``U(0, dim - s)``, then sampled at T equally spaced positions. linear: constant velocity
    from a random start to a random end. none: one random position. Non-linear centres may
    touch the border (the published clip to the image); linear and static keep the box inside.
    """
    T = num_frames
    low, high = sizes / 2, (dims - 1 - sizes / 2).clamp_min(0)
    high = torch.maximum(high, low)

    def uniform_inside() -> torch.Tensor:
        return low + (high - low) * torch.rand(count, 2, generator=generator)

    if config.motion == "none":
        return uniform_inside()[:, None, :].expand(count, T, 2).contiguous()
    if config.motion == "linear":
        start, end = uniform_inside(), uniform_inside()
        t = torch.linspace(0, 1, T) if T > 1 else torch.zeros(1)
        return start[:, None, :] + (end - start)[:, None, :] * t[None, :, None]
    points = torch.rand(count * 2, 1, config.trajectory_points, generator=generator)
    path = _gaussian_smooth(points, config.trajectory_sigma).view(count, 2, points.shape[-1])
    path_min, path_max = path.amin(-1, keepdim=True), path.amax(-1, keepdim=True)
    path = (path - path_min) / (path_max - path_min).clamp_min(1e-12)
    lo, hi = config.trajectory_extent
    extent = pixel_scale * (lo + (hi - lo) * torch.rand(count, 1, 1, generator=generator))
    offset = (dims[None, :, None] - extent) * torch.rand(count, 2, 1, generator=generator)
    path = (path * extent + offset).clamp(min=torch.zeros(1), max=dims[None, :, None] - 1)
    position = torch.linspace(0, config.trajectory_points - 1, T) if T > 1 else torch.zeros(1)
    left = position.floor().long().clamp(max=config.trajectory_points - 2)
    frac = position - left
    sampled = path[..., left] * (1 - frac) + path[..., left + 1] * frac
    return sampled.transpose(1, 2).contiguous()


def _gaussian_smooth(signal: torch.Tensor, sigma: float) -> torch.Tensor:
    """1-D Gaussian filter of ``[M, 1, P]`` with scipy's 'reflect' (half-sample) borders."""
    if sigma == 0:
        return signal
    length = signal.shape[-1]
    radius = min(int(4.0 * sigma + 0.5), length)
    x = torch.arange(-radius, radius + 1, dtype=signal.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    padded = torch.cat([signal[..., :radius].flip(-1), signal,
                        signal[..., length - radius:].flip(-1)], dim=-1)
    return F.conv1d(padded, kernel)


def _largest_first(params: TubeletParams) -> TubeletParams:
    area = (params.sizes.prod(-1)[:, :, None] * params.scales ** 2).mean(-1)
    order = torch.argsort(area, dim=1, descending=True, stable=True)
    values = {}
    for field in fields(params):
        value = getattr(params, field.name)
        if isinstance(value, torch.Tensor):
            index = order.view(*order.shape, *([1] * (value.dim() - 2))).expand_as(value)
            value = value.gather(1, index)
        values[field.name] = value
    return TubeletParams(**values)


def _to_device(params: TubeletParams, device: torch.device) -> TubeletParams:
    return TubeletParams(**{f.name: (getattr(params, f.name).to(device)
                                     if isinstance(getattr(params, f.name), torch.Tensor)
                                     else getattr(params, f.name)) for f in fields(params)})


def _check_clips(clips_a: torch.Tensor, clips_b: torch.Tensor) -> None:
    for name, clips in (("clips_a", clips_a), ("clips_b (or source)", clips_b)):
        if clips.dim() != 5 or not clips.is_floating_point():
            raise ValueError(f"add_tubelets: {name} must be float [B,C,T,H,W], got "
                             f"{clips.dtype} {tuple(clips.shape)}")
    if clips_a.shape != clips_b.shape or clips_a.device != clips_b.device:
        raise ValueError(f"add_tubelets: clips_a {tuple(clips_a.shape)} on {clips_a.device} and "
                         f"clips_b {tuple(clips_b.shape)} on {clips_b.device} must match")
    if min(clips_a.shape[-2:]) < 2:
        raise ValueError(f"add_tubelets: frames must be at least 2x2, got {clips_a.shape[-2:]}")


# ---------------------------------------------------------------------------------------------
# rendering helpers (batched, on the clips' device)

def _window_origins(centers: torch.Tensor, window: tuple[int, int],
                    frame_size: tuple[int, int]) -> torch.Tensor:
    """Top-left ``[b,T,2]`` (x, y) of windows centred on the tubelets, kept inside the frame."""
    (height, width), (H, W) = window, frame_size
    centers = centers.round().long()
    return torch.stack([(centers[..., 0] - width // 2).clamp(0, W - width),
                        (centers[..., 1] - height // 2).clamp(0, H - height)], dim=-1)


def _warp_sprites(sprites: torch.Tensor, params: TubeletParams, n: int, chunk: torch.Tensor,
                  origins: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Sprites ``[b,K,Sh,Sw]`` of tubelet rank ``n`` in every frame's window, times the
    frame's opacity: ``[b,K,T,h,w]``."""
    local = _local_coordinates(params, n, chunk, origins, window)
    b, T, height, width, _ = local.shape
    warped = F.grid_sample(sprites, local.view(b, T * height, width, 2).to(sprites.dtype),
                           mode="bilinear", padding_mode="zeros", align_corners=False)
    warped = warped.view(b, -1, T, height, width)
    return warped * params.opacity[chunk, n].to(warped.dtype).view(b, 1, T, 1, 1)


def _cut_sprites(frames: torch.Tensor | None, params: TubeletParams, n: int) -> torch.Tensor:
    """Patches of rank ``n`` as premultiplied RGBA sprites ``[B, C+1, Sh, Sw]`` (only the mask,
    ``[B,1,Sh,Sw]``, when ``frames`` is None). One sprite size for the batch: the largest box.

    Sprite pixel centres ``u`` (``align_corners=False`` units, the box is ``|u| <= 1``) read the
    source frame at ``src_c + D u`` and carry the shape mask at ``u`` (see ``_shape_mask``).
    """
    sizes = params.sizes[:, n]
    sprite_w, sprite_h = (int(v) for v in params.sizes.flatten(0, 1).amax(0).ceil()
                          .clamp_min(2).tolist())
    device = sizes.device
    u = torch.stack(torch.meshgrid(
        (2 * torch.arange(sprite_h, device=device) + 1) / sprite_h - 1,
        (2 * torch.arange(sprite_w, device=device) + 1) / sprite_w - 1, indexing="ij")[::-1], -1)
    u = u.expand(len(sizes), -1, -1, -1)
    mask = _shape_mask(u, params.shape[:, n], params.edge[:, n]).unsqueeze(1)
    if frames is None:
        return mask
    H, W = frames.shape[-2:]
    span = torch.tensor([max(W - 1, 1), max(H - 1, 1)], device=device)
    scale = (sizes / span).view(-1, 1, 1, 2)
    shift = (2 * params.source_center[:, n] / span - 1).view(-1, 1, 1, 2)
    grid = torch.addcmul(shift, u, scale).to(frames.dtype)
    rgb = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=True)
    mask = mask.to(rgb.dtype)
    return torch.cat([rgb * mask, mask], dim=1)


def _shape_mask(local: torch.Tensor, shape: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
    """Mask ``[b,h,w]`` at patch coordinates ``local`` ``[b,h,w,2]``: with the shape's norm
    ``m`` (rectangle max, ellipse L2, rhombus L1), mask = clip((1 - m) / (1 - 2 edge), 0, 1)
    for a soft edge; a hard edge (``edge = 0.5``) is 1 inside, 0 outside, 1/2 on the border."""
    ax, ay = local.abs().unbind(-1)
    shape = shape.view(-1, 1, 1)
    norm = torch.where(shape == RECTANGLE, torch.maximum(ax, ay),
                       torch.where(shape == ELLIPSE, torch.hypot(ax, ay), ax + ay))
    ramp = (1 - 2 * edge).clamp_min(1e-6).view(-1, 1, 1)
    border = (edge >= 0.5).to(norm.dtype).view(-1, 1, 1) / 2
    return ((1 - norm) / ramp + border).clamp_(0, 1)


def _local_coordinates(params: TubeletParams, n: int, chunk: torch.Tensor,
                       origins: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Patch coordinates ``l = D^-1 M_t^-1 (p - c_t)`` of every window pixel ``p``,
    ``[b,T,h,w,2]``, with ``D = diag(w/2, h/2)``: the patch box is ``|l| <= 1``.

    One ``affine_grid`` over the chunk: window index coordinates come from its normalized
    output grid, ``p = o + (g + 1) (L - 1) / 2``.
    """
    height, width = window
    b, T = origins.shape[:2]
    inverse = torch.linalg.inv(params.linear_maps()[chunk, n])  # [b,T,2,2]
    to_local = inverse / (params.sizes[chunk, n, None, :, None] / 2)
    half_window = torch.tensor([(width - 1) / 2, (height - 1) / 2], device=origins.device)
    linear = to_local * half_window  # scales columns: grid units -> pixels -> local
    offset = origins.float() + half_window - params.centers[chunk, n]
    translation = to_local @ offset.unsqueeze(-1)
    theta = torch.cat([linear, translation], dim=-1).view(b * T, 2, 3)
    grid = F.affine_grid(theta, [b * T, 1, height, width], align_corners=True)
    return grid.view(b, T, height, width, 2)


def _window_index(chunk: torch.Tensor, origins: torch.Tensor, window: tuple[int, int],
                  shape: tuple[int, int, int, int]) -> torch.Tensor:
    """Flat indices ``[b,C,T,h,w]`` of each window pixel in contiguous ``[B,C,T,H,W]``:
    a per-(clip, channel, frame) start plus the window's row/column offsets (one full-size add)."""
    C, T, H, W = shape
    height, width = window
    device = origins.device
    frame = (chunk.view(-1, 1) * (C * T) + torch.arange(T, device=device)) * (H * W)
    start = frame + origins[..., 1] * W + origins[..., 0]  # [b,T]
    start = start[:, None] + (torch.arange(C, device=device) * (T * H * W))[:, None]  # [b,C,T]
    offsets = (torch.arange(height, device=device)[:, None] * W
               + torch.arange(width, device=device))  # [h,w]
    return start[..., None, None] + offsets
