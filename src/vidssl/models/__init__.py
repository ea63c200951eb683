"""Backbones (R(2+1)D-18 family, video ViT, a hand-crafted motion-energy reference), heads and
checkpoint interop.

``build_backbone(name, **kwargs)`` builds any of ``BACKBONES``; every backbone has
``num_features`` and ``forward_features(x) -> {"pooled": [B,D], "tokens": ...}``.
Checkpoints: ``vidssl.models.checkpoints.load_pretrained``.
"""
from vidssl.models.build import (
    BACKBONES,
    build_backbone,
    motion_energy,
    r2plus1d_18,
    r2plus1d_18_tclr,
    r3d_18,
    register_backbone,
    vit_base,
    vit_large,
    vit_small,
    vit_tiny,
)
from vidssl.models.heads import (
    LinearClassifier,
    MultiLabelHead,
    ProjectionMLP,
    RepetitionCountingHead,
    temporal_features,
)
from vidssl.models.resnet3d import VideoResNet
from vidssl.models.roi import RoIActionHead, roi_align
from vidssl.models.vit import VideoMAEDecoder, VisionTransformer

__all__ = [
    "BACKBONES",
    "LinearClassifier",
    "MultiLabelHead",
    "ProjectionMLP",
    "RepetitionCountingHead",
    "RoIActionHead",
    "VideoMAEDecoder",
    "VideoResNet",
    "VisionTransformer",
    "build_backbone",
    "motion_energy",
    "r2plus1d_18",
    "r2plus1d_18_tclr",
    "r3d_18",
    "register_backbone",
    "roi_align",
    "temporal_features",
    "vit_base",
    "vit_large",
    "vit_small",
    "vit_tiny",
]
