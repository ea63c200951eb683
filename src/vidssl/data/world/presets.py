"""World presets: how big the synthetic world is (frame size, clip length, video counts).

``tiny`` feeds the ``vidssl demo --quick`` smoke run; ``mini`` is what ``vidssl demo`` uses
(32 px, 16 frames, ~2,000 videos, under a minute to generate on 2 cores); ``small`` (64 px,
~7,000 videos) is a larger world, not yet timed as a demo; ``full`` (112 px, 32 frames)
matches the SEVERE input size. Customize with :func:`dataclasses.replace`, e.g.
``replace(PRESETS["mini"], p_context=0.0)`` (the motion-only ablation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class WorldPreset:
    """Sizes of every part of the world. Counts are per class unless named ``*_videos``."""

    name: str
    size: int  # frame height = width in pixels (even: yuv420p)
    num_frames: int  # frames per video in every part except rep_like
    fps: int = 16
    pretrain_videos: int = 2400  # Kinetics-like: 10x the ucf_like training videos
    pretrain_takes: int = 3  # a pretraining video is this many clips long (num_frames each)
    # P(a ucf_like / pretrain video shows its class's typical prop shape, prop hue, scene hue),
    # per cue; otherwise the cue is random. 0 = the label is motion only.
    p_context: float = 0.5
    ucf_train: int = 24
    ucf_test: int = 10
    gym_train: int = 20
    gym_test: int = 8
    ssv2_train: int = 24
    ssv2_test: int = 10
    rep_train_videos: int = 100
    rep_val_videos: int = 50
    rep_frames: int = 32  # repetition videos are longer: up to rep_max_count cycles
    rep_max_count: int = 5
    rep_min_period: int = 6  # frames per cycle at least (>= 3 samples at stride 2)
    charades_train_videos: int = 100
    charades_test_videos: int = 50
    aot_train_videos: int = 100
    aot_test_videos: int = 50
    mask_videos: int = 10
    mask_size: int = 64  # DAVIS-style frames are written larger than the clips
    # detection parts: frames larger than the clips so that person boxes cover feature cells
    det_size: int = 64
    ava_train_videos: int = 40  # ava_like: several actors, keyframes at 1 Hz
    ava_test_videos: int = 20
    ava_seconds: int = 4  # video length; keyframes at every inner second
    ava_fps: int = 8
    ucf24_train: int = 8  # ucf24_like: per class
    ucf24_test: int = 4
    ucf24_frames: int = 24
    qscale: int = 2  # MPEG-4 quantizer, 1 (best) .. 31

    def __post_init__(self):
        for key in ("size", "mask_size", "det_size"):
            value = getattr(self, key)
            if value < 16 or value % 2:
                raise ValueError(f"world preset {self.name!r}: {key} must be even and >= 16, got {value}")
        if self.num_frames < 4:
            raise ValueError(f"world preset {self.name!r}: num_frames must be >= 4")
        if self.rep_max_count * self.rep_min_period > self.rep_frames - 2:
            raise ValueError(
                f"world preset {self.name!r}: rep_max_count * rep_min_period must fit in "
                f"rep_frames - 2 ({self.rep_max_count} * {self.rep_min_period} > {self.rep_frames - 2})"
            )
        if not 0.0 <= self.p_context <= 1.0:
            raise ValueError(f"world preset {self.name!r}: p_context must be in [0, 1]")
        if self.pretrain_takes < 1:
            raise ValueError(f"world preset {self.name!r}: pretrain_takes must be >= 1")

    @property
    def pretrain_frames(self) -> int:
        """Frames of a pretraining video (``pretrain_takes`` clips)."""
        return self.num_frames * self.pretrain_takes

    @property
    def ava_frames(self) -> int:
        """Frames of an ava_like video (``ava_seconds`` at ``ava_fps``)."""
        return self.ava_fps * self.ava_seconds

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, WorldPreset] = {
    "tiny": WorldPreset(
        name="tiny", size=32, num_frames=16, pretrain_videos=64, pretrain_takes=2,
        ucf_train=6, ucf_test=3, gym_train=6, gym_test=3, ssv2_train=6, ssv2_test=3,
        rep_train_videos=20, rep_val_videos=10, charades_train_videos=20,
        charades_test_videos=10, aot_train_videos=20, aot_test_videos=10, mask_videos=2,
        ava_train_videos=8, ava_test_videos=4, ucf24_train=2, ucf24_test=1,
    ),
    "mini": WorldPreset(name="mini", size=32, num_frames=16),
    "small": WorldPreset(
        name="small", size=64, num_frames=16, pretrain_videos=6000,
        ucf_train=60, ucf_test=20, gym_train=50, gym_test=20, ssv2_train=60, ssv2_test=20,
        rep_train_videos=300, rep_val_videos=100, charades_train_videos=300,
        charades_test_videos=100, aot_train_videos=300, aot_test_videos=100,
        mask_videos=20, mask_size=128, ava_train_videos=150, ava_test_videos=50,
        ucf24_train=25, ucf24_test=10, ucf24_frames=32,
    ),
    "full": WorldPreset(
        name="full", size=112, num_frames=32, pretrain_videos=20000,
        ucf_train=200, ucf_test=50, gym_train=150, gym_test=50, ssv2_train=200, ssv2_test=50,
        rep_train_videos=1000, rep_val_videos=250, rep_frames=64, rep_max_count=8,
        rep_min_period=7, charades_train_videos=1000, charades_test_videos=250,
        aot_train_videos=1000, aot_test_videos=250, mask_videos=30, mask_size=224,
        det_size=224, ava_train_videos=500, ava_test_videos=150, ava_seconds=8, ava_fps=16,
        ucf24_train=80, ucf24_test=20, ucf24_frames=64,
    ),
}


def resolve_preset(preset: str | WorldPreset, p_context: float | None = None) -> WorldPreset:
    """A preset by name (or as given), with ``p_context`` replaced when not None."""
    if not isinstance(preset, WorldPreset):
        if preset not in PRESETS:
            raise ValueError(f"unknown world preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[preset]
    return preset if p_context is None else replace(preset, p_context=p_context)
