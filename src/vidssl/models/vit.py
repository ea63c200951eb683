"""Video ViT (VideoMAE, Tong et al. NeurIPS 2022) and its MAE decoder, in plain torch.

A clip ``[B,3,T,H,W]`` is cut into tubelets of ``tubelet_size x patch_size x patch_size`` by a
strided Conv3d (``patch_embed.proj``): ``N = T/t * H/p * W/p`` tokens (16x224x224 -> 1568),
flattened in (t, h, w) order. A fixed 1D sin-cos table over the N tokens is added (not a
parameter, not in the state dict). Key names follow VideoMAE, so its finetune (``module``)
weights load directly and its pretrain (``model``, ``encoder.*``) weights after a prefix strip.

Pooling: ``use_mean_pooling=True`` (VideoMAE finetuning) has no final ``norm``; the pooled
feature is ``fc_norm(mean(tokens))``. ``use_mean_pooling=False`` (VideoMAE pretraining
encoder) applies ``norm`` to the tokens and pools with a plain mean.
"""
from __future__ import annotations

import torch
from torch import nn

from vidssl.models.transformer import (
    LAYER_NORM_EPS,
    Block,
    drop_path_rates,
    init_vit_weights,
    sinusoid_table,
)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class TubeletEmbed(nn.Module):
    """Non-overlapping tubelet embedding: Conv3d with kernel = stride = (t, p, p)."""

    def __init__(self, img_size: tuple[int, int], patch_size: int, num_frames: int,
                 tubelet_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        height, width = img_size
        if height % patch_size or width % patch_size or num_frames % tubelet_size:
            raise ValueError(
                f"input {num_frames}x{height}x{width} is not divisible into tubelets of "
                f"{tubelet_size}x{patch_size}x{patch_size}")
        self.grid_size = (num_frames // tubelet_size, height // patch_size, width // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1] * self.grid_size[2]
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = tuple(x.shape[2 + i] // k for i, k in enumerate(self.proj.kernel_size)) \
            if x.dim() == 5 else None
        if grid != self.grid_size:
            raise ValueError(
                f"expected video [B,C,T,H,W] giving a tubelet grid {self.grid_size}, got shape "
                f"{tuple(x.shape)}; build the ViT with matching num_frames / img_size")
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """Video ViT encoder with optional classification head.

    Args:
        img_size, patch_size, num_frames, tubelet_size: input geometry (224, 16, 16, 2).
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: transformer size.
        drop_rate, attn_drop_rate, drop_path_rate: dropout / stochastic depth.
        num_classes: size of ``head``; ``None`` -> ``forward`` returns pooled features.
        use_mean_pooling: VideoMAE finetune layout (``fc_norm``) vs pretrain layout (``norm``).
        fc_drop_rate: dropout before ``head``. head_init_scale: multiply the head init
            (VideoMAE finetuning uses 0.001).
        fused_attention: SDPA kernels (True) or explicit attention (False).
    """

    head_prefixes = ("head.",)  # task classifier: trained per task, never a pretrained feature
    layout_prefixes = ("fc_norm.", "norm.")  # final norm, present depending on use_mean_pooling

    def __init__(self, img_size: int | tuple[int, int] = 224, patch_size: int = 16,
                 num_frames: int = 16, tubelet_size: int = 2, in_chans: int = 3,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 num_classes: int | None = None, use_mean_pooling: bool = True,
                 fc_drop_rate: float = 0.0, head_init_scale: float = 1.0,
                 fused_attention: bool = True):
        super().__init__()
        self.patch_embed = TubeletEmbed(_pair(img_size), patch_size, num_frames, tubelet_size,
                                        in_chans, embed_dim)
        self.grid_size = self.patch_embed.grid_size
        self.num_patches = self.patch_embed.num_patches
        self.num_features = self.embed_dim = embed_dim
        self.register_buffer("pos_embed", sinusoid_table(self.num_patches, embed_dim),
                             persistent=False)
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, rate,
                  fused_attention)
            for rate in drop_path_rates(drop_path_rate, depth)])
        self.norm = nn.Identity() if use_mean_pooling else nn.LayerNorm(embed_dim, LAYER_NORM_EPS)
        self.fc_norm = nn.LayerNorm(embed_dim, LAYER_NORM_EPS) if use_mean_pooling else None
        self.fc_dropout = nn.Dropout(fc_drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else None
        self.apply(init_vit_weights)
        if self.head is not None:
            self.head.weight.data.mul_(head_init_scale)
            self.head.bias.data.mul_(head_init_scale)

    def set_fused_attention(self, fused: bool) -> None:
        """Switch every block between SDPA and explicit attention."""
        for block in self.blocks:
            block.attn.fused = fused

    def forward_encoder(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode the visible tokens.

        Args:
            x: video ``[B,C,T,H,W]``.
            mask: optional bool ``[B,N]``, True = masked (dropped before the encoder); every
                sample must mask the same number of tokens.
        Returns:
            ``[B,N_vis,D]`` tokens (after ``norm``), in increasing token-index order.
        """
        tokens = self.patch_embed(x) + self.pos_embed.to(x.dtype)
        if mask is not None:
            tokens = select_tokens(tokens, ~mask)
        tokens = self.pos_drop(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` [B,3,T,H,W] -> ``{"pooled": [B,D], "tokens": [B,N,D]}``."""
        tokens = self.forward_encoder(x)
        pooled = tokens.mean(dim=1)
        if self.fc_norm is not None:
            pooled = self.fc_norm(pooled)
        return {"pooled": pooled, "tokens": tokens}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.forward_features(x)["pooled"]
        return pooled if self.head is None else self.head(self.fc_dropout(pooled))


def select_tokens(tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Gather ``tokens[b, keep[b]]`` -> ``[B, K, D]``; every row of ``keep`` must have K Trues."""
    if keep.shape != tokens.shape[:2] or keep.dtype != torch.bool:
        raise ValueError(f"mask must be bool {tuple(tokens.shape[:2])}, got "
                         f"{keep.dtype} {tuple(keep.shape)}")
    counts = keep.sum(dim=1)
    if bool((counts != counts[0]).any()):
        raise ValueError(f"every sample must mask the same number of tokens, got visible counts "
                         f"{counts.tolist()}")
    return tokens[keep].reshape(tokens.shape[0], -1, tokens.shape[-1])


class VideoMAEDecoder(nn.Module):
    """VideoMAE's MAE decoder: visible encoder tokens + mask tokens -> predictions.

    ``decoder_embed`` (VideoMAE ``encoder_to_decoder``, bias-free) maps encoder tokens to
    ``decoder_dim``; each masked position gets the shared ``mask_token``; both get the fixed
    sin-cos table; ``depth`` blocks, ``norm`` and ``head`` run on the full sequence with the
    masked tokens placed last (VideoMAE's order), and only the masked outputs are returned.

    Args:
        embed_dim: encoder width. decoder_dim, depth, num_heads: decoder size.
        num_patches: N tokens of the full clip. out_dim: prediction size per token (pixels:
            ``3 * tubelet * patch^2`` = 1536 for 2x16x16).
    """

    def __init__(self, embed_dim: int, decoder_dim: int, depth: int, num_heads: int,
                 num_patches: int, out_dim: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path_rate: float = 0.0, fused_attention: bool = True):
        super().__init__()
        self.num_patches = num_patches
        self.decoder_embed = nn.Linear(embed_dim, decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sinusoid_table(num_patches, decoder_dim),
                             persistent=False)
        self.blocks = nn.ModuleList([
            Block(decoder_dim, num_heads, mlp_ratio, qkv_bias, drop_path=rate,
                  fused_attention=fused_attention)
            for rate in drop_path_rates(drop_path_rate, depth)])
        self.norm = nn.LayerNorm(decoder_dim, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(decoder_dim, out_dim)
        self.apply(init_vit_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, visible: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``visible`` [B,N_vis,D_enc], ``mask`` bool [B,N] (True = masked) -> [B,N_mask,out_dim].

        Row ``j`` of the output predicts the j-th masked token in increasing index order, i.e.
        it aligns with ``target[mask].reshape(B, -1, out_dim)``.
        """
        if mask.shape[1] != self.num_patches:
            raise ValueError(f"mask covers {mask.shape[1]} tokens, decoder expects "
                             f"{self.num_patches}")
        batch = visible.shape[0]
        pos = self.decoder_pos_embed.to(visible.dtype).expand(batch, -1, -1)
        pos_visible = select_tokens(pos, ~mask)
        pos_masked = select_tokens(pos, mask)
        if pos_visible.shape[1] != visible.shape[1]:
            raise ValueError(f"mask leaves {pos_visible.shape[1]} visible tokens, encoder gave "
                             f"{visible.shape[1]}")
        x = torch.cat([self.decoder_embed(visible) + pos_visible,
                       self.mask_token.to(visible.dtype) + pos_masked], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, -pos_masked.shape[1]:]))


# Encoder sizes (VideoMAE's; ViT-Ti as DeiT). VideoMAE pairs them with decoders of width/heads
# S 192/3, B 384/6, L 512/8 and depth 4 (12 for L).
VIT_SIZES = {
    "vit_tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "vit_small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "vit_base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "vit_large": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
}


def vit_tiny(**kwargs) -> VisionTransformer:
    """ViT-Ti/16 video encoder (192 wide, 12 blocks, 3 heads; 5.6M parameters)."""
    return VisionTransformer(**{**VIT_SIZES["vit_tiny"], **kwargs})


def vit_small(**kwargs) -> VisionTransformer:
    """ViT-S/16 video encoder (384 wide, 12 blocks, 6 heads; 21.9M parameters)."""
    return VisionTransformer(**{**VIT_SIZES["vit_small"], **kwargs})


def vit_base(**kwargs) -> VisionTransformer:
    """ViT-B/16 video encoder (768 wide, 12 blocks, 12 heads; 86.2M parameters)."""
    return VisionTransformer(**{**VIT_SIZES["vit_base"], **kwargs})


def vit_large(**kwargs) -> VisionTransformer:
    """ViT-L/16 video encoder (1024 wide, 24 blocks, 16 heads; 303.9M parameters)."""
    return VisionTransformer(**{**VIT_SIZES["vit_large"], **kwargs})
