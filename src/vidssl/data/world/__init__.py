"""Synthetic motion world: procedural videos in the official layouts of real datasets.

``generate_world(out, preset="mini", seed=0)`` writes ``pretrain/`` (video_list),
``ucf_like/`` (ucf101), ``gym_like/`` (gym99), ``ssv2_like/`` (ssv2), ``rep_like/`` (ucfrep),
``charades_like/`` (charades), ``aot_like/`` (video_list) and ``masks/`` (DAVIS) plus
``manifest.json``; the real dataset adapters read them unchanged. Classes differ only in
motion; appearance is drawn independently of the label.
"""

from vidssl.data.world.generate import GENERATOR_VERSION, Manifest, generate_world
from vidssl.data.world.motions import GYM_SUBSETS
from vidssl.data.world.presets import PRESETS, WorldPreset

__all__ = [
           "GENERATOR_VERSION",
           "GYM_SUBSETS",
           "PRESETS",
           "Manifest",
           "WorldPreset",
           "generate_world",
]
