"""RoIAlign and the AVA action-detection head, in plain PyTorch (no torchvision).

``roi_align`` has exactly the semantics of torchvision's / Detectron2's ``RoIAlign`` kernel
(He et al., Mask R-CNN, 2017; ``aligned=True`` is Detectron2's half-pixel correction).
``RoIActionHead`` is PySlowFast's ``ResNetRoIHead`` as SEVERE's AVA configs use it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _interpolation_matrix(start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor,
                          bins: int, length: int) -> torch.Tensor:
    """Sum of the bilinear weights of each bin's samples along one axis: ``[K, bins, length]``.

    Bin ``p`` of box ``k`` samples ``c = start + p*bin + (i + 0.5)*bin/grid`` for
    ``i < grid``. A sample with ``c < -1`` or ``c > length`` contributes nothing; otherwise
    ``c`` is clamped at 0, ``low = floor(c)``, ``high = low + 1`` (both ``length-1`` at the
    border) and the weights are ``1 - (c - low)`` on ``low`` and ``c - low`` on ``high``.
    """
    num_samples = max(int(grid.max()), 1)
    p = torch.arange(bins, dtype=start.dtype, device=start.device)
    i = torch.arange(num_samples, dtype=start.dtype, device=start.device)
    bin_size, samples = bin_size[:, None, None], grid.clamp(min=1).to(start.dtype)[:, None, None]
    coord = (start[:, None, None] + p[None, :, None] * bin_size
             + (i[None, None, :] + 0.5) * bin_size / samples)                # [K, bins, S]
    used = (i[None, None, :] < grid[:, None, None]) & (coord >= -1.0) & (coord <= length)
    coord = coord.clamp(min=0.0)
    low = coord.floor().long()
    at_border = low >= length - 1
    low = low.clamp(max=length - 1)
    high = torch.where(at_border, low, low + 1)
    frac = torch.where(at_border, torch.zeros_like(coord), coord - low.to(coord.dtype))
    used = used.to(coord.dtype)
    weights = ((1.0 - frac) * used)[..., None] * F.one_hot(low, length).to(coord.dtype)
    weights = weights + (frac * used)[..., None] * F.one_hot(high, length).to(coord.dtype)
    return weights.sum(dim=2)


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int | tuple[int, int],
              spatial_scale: float, sampling_ratio: int = 0, aligned: bool = True
              ) -> torch.Tensor:
    """RoIAlign: average of bilinear samples on a regular grid in each output bin.

    ``features`` ``[N,C,H,W]``; ``rois`` ``[K,5]`` rows ``(batch_index, x1, y1, x2, y2)`` in
    input-image pixels, mapped to the feature map by ``* spatial_scale`` (then ``- 0.5`` when
    ``aligned``, so that pixel centres line up; otherwise sizes are clamped to at least 1).
    Each of the ``h x w`` bins averages ``grid_h x grid_w`` samples, ``grid = sampling_ratio``
    or, when ``sampling_ratio <= 0``, ``ceil(roi_size / bins)`` per box. Returns
    ``[K,C,h,w]``. Bilinear weights are separable, so each box is
    ``A_y @ features[b] @ A_x^T / (grid_h * grid_w)`` with the interpolation matrices of
    ``_interpolation_matrix``: no loop over boxes or samples, differentiable in ``features``
    (boxes are constants, as in torchvision).
    """
    if features.dim() != 4:
        raise ValueError(f"features must be [N,C,H,W], got shape {tuple(features.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be [K,5] (batch_index, x1, y1, x2, y2), "
                         f"got shape {tuple(rois.shape)}")
    out_h, out_w = _pair(output_size)
    _, channels, height, width = features.shape
    rois = rois.detach().to(device=features.device, dtype=features.dtype)
    if rois.shape[0] == 0:
        return features.new_zeros(0, channels, out_h, out_w)
    batch_index = rois[:, 0].round().long()
    if batch_index.min() < 0 or batch_index.max() >= features.shape[0]:
        raise ValueError(f"roi batch indices must lie in [0, {features.shape[0] - 1}], got "
                         f"{batch_index.min().item()}..{batch_index.max().item()}")
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, j] * spatial_scale - offset for j in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(batch_index, sampling_ratio)
        grid_w = torch.full_like(batch_index, sampling_ratio)
    else:
        grid_h = bin_h.ceil().long().clamp(min=0)
        grid_w = bin_w.ceil().long().clamp(min=0)
    rows = _interpolation_matrix(y1, bin_h, grid_h, out_h, height)          # [K, h, H]
    cols = _interpolation_matrix(x1, bin_w, grid_w, out_w, width)           # [K, w, W]
    count = (grid_h * grid_w).clamp(min=1).to(features.dtype)
    pooled = torch.einsum("kph,kchw,kqw->kcpq", rows, features[batch_index], cols)
    return pooled / count[:, None, None, None]


def boxes_to_rois(boxes: list[torch.Tensor], input_size: tuple[int, int]) -> torch.Tensor:
    """Per-clip normalized ``[K_i,4]`` ``x1,y1,x2,y2`` boxes -> ``[sum K_i, 5]`` pixel rois.

    ``input_size = (height, width)`` of the clip the backbone saw; row ``(i, x1*W, y1*H,
    x2*W, y2*H)`` for each box of clip ``i``.
    """
    height, width = input_size
    rois = []
    for index, clip_boxes in enumerate(boxes):
        clip_boxes = torch.as_tensor(clip_boxes, dtype=torch.float32).reshape(-1, 4)
        scale = clip_boxes.new_tensor([width, height, width, height])
        batch_column = clip_boxes.new_full((clip_boxes.shape[0], 1), float(index))
        rois.append(torch.cat([batch_column, clip_boxes * scale], dim=1))
    if not rois:
        return torch.zeros(0, 5)
    return torch.cat(rois)


class RoIActionHead(nn.Module):
    """Per-person action logits from a clip's last feature map (PySlowFast ``ResNetRoIHead``).

    ``[B,C,T,H,W]`` -> average over ``T`` -> RoIAlign (aligned, ``resolution x resolution``,
    adaptive sampling, ``spatial_scale = H / input_height``) on each person box -> spatial
    max-pool -> dropout -> ``Linear(C, num_classes)``. Returns logits; AVA trains them with
    ``BCE-with-logits`` (``RoIActionHead.loss``) and predicts ``sigmoid(logits)`` (PySlowFast
    applies the sigmoid inside the head and uses plain BCE: the same numbers). The linear
    layer starts from ``N(0, 0.01)`` weights and zero bias (PySlowFast ``FC_INIT_STD``).
    """

    def __init__(self, in_dim: int, num_classes: int, resolution: int = 7,
                 dropout: float = 0.5, sampling_ratio: int = 0, aligned: bool = True):
        super().__init__()
        self.resolution = resolution
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(in_dim, num_classes)
        nn.init.normal_(self.projection.weight, std=0.01)
        nn.init.zeros_(self.projection.bias)

    def pool(self, feature_map: torch.Tensor, boxes: list[torch.Tensor],
             input_size: tuple[int, int]) -> torch.Tensor:
        """Per-box features ``[sum K_i, C]`` (temporal mean, RoIAlign, spatial max)."""
        if feature_map.dim() != 5:
            raise ValueError(f"feature_map must be [B,C,T,H,W], got {tuple(feature_map.shape)}")
        if len(boxes) != feature_map.shape[0]:
            raise ValueError(f"got {len(boxes)} box lists for a batch of "
                             f"{feature_map.shape[0]} clips")
        frame = feature_map.mean(dim=2)
        rois = boxes_to_rois(boxes, input_size).to(frame.device)
        spatial_scale = frame.shape[2] / input_size[0]
        regions = roi_align(frame, rois, self.resolution, spatial_scale,
                            self.sampling_ratio, self.aligned)
        return regions.amax(dim=(2, 3))

    def forward(self, feature_map: torch.Tensor, boxes: list[torch.Tensor],
                input_size: tuple[int, int]) -> torch.Tensor:
        """Logits ``[sum K_i, num_classes]``, boxes in the order given (clip by clip)."""
        return self.projection(self.dropout(self.pool(feature_map, boxes, input_size)))

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Binary cross-entropy over boxes and classes (``reduction`` as in ``F``'s);
        ``targets`` multi-hot."""
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype),
                                                  reduction=reduction)


__all__ = ["RoIActionHead", "boxes_to_rois", "roi_align"]
