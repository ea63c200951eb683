"""SIGMA (Salehi et al., ECCV 2024): Sinkhorn-guided masked video modeling.

VideoMAE's pixel targets are replaced by *features* of the masked tubes, and both sides are
clustered jointly. For the masked tubes of the batch:

- target features ``z = phi(x)``: ``mlp`` (SIGMA-MLP), a small MLP on each tube's normalised
  pixels, learned jointly; or ``dino`` (SIGMA-DINO), a frozen image teacher's patch features
  of the tube's first frame (any teacher of :mod:`vidssl.methods.teachers`), standardised per
  video and channel over all tokens, optionally followed by a learnable head;
- predicted features ``y = psi(x)``: the encoder on the visible tubes + the decoder;
- prototypes ``C`` [K,d], L2-normalised at every step; scores ``s = <z/|z|, C_k>``;
- codes ``q = sinkhorn(s)`` (no gradient; equipartition over the *global* batch);
- loss ``L = CE(s_z / tau, argmax q_y) + CE(s_y / tau, argmax q_z)`` (hard codes, tau = 0.1).

Gradient routing (as the published code): ``s_y`` uses detached prototypes, so the second term
trains only the encoder and decoder; the first term trains the prototypes and ``phi`` (the MLP,
or the teacher head). With the frozen teacher and no head, it trains the prototypes only.

``loss: l2`` regresses ``z`` with an MSE instead (no prototypes, no Sinkhorn): with the MLP
target both sides can meet at a constant, which is the collapse the paper describes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.data.recipes import ClipAugmentation, PretrainRecipe
from vidssl.errors import ConfigError
from vidssl.methods.base import register_method
from vidssl.methods.sinkhorn import sinkhorn
from vidssl.methods.teachers import TEACHERS, ImageTeacher, build_teacher
from vidssl.methods.videomae import (
    MASKED_VIDEO_CROP,
    MaskedVideoModel,
    VideoMAEParams,
    tube_pixel_targets,
    tubelet_shape,
    unnormalize,
)

# VideoMAE's recipe: ``--augmentation multi_scale_crop`` in every pretraining script, and the
# grayscale SIGMA adds (``--gray_scale_prob``) defaults to 0 and is never set.
SIGMA_RECIPE = PretrainRecipe(
    source="QUVA-Lab/SIGMA datasets.py (DataAugmentationForVideoMAE), run_mae_pretraining.py, "
           "scripts_pretrain/*.sh",
    augmentation=ClipAugmentation(crop=MASKED_VIDEO_CROP, flip_p=0.0),
)


@dataclass
class SIGMAParams(VideoMAEParams):
    """target: ``mlp`` | ``dino`` (frozen image teacher ``teacher`` loaded from
    ``teacher_checkpoint``; EfficientNet teachers default to the pip package's file).
    teacher_head: ``identity`` (published SIGMA-DINO) | ``mlp`` (learnable, 2 layers).
    target_dim: output size of the tube MLP / teacher MLP head (256).
    num_prototypes (K), sinkhorn_eps, sinkhorn_iters, temperature (tau): see module docstring.
    hard_codes: argmax codes as targets (published) vs the soft Sinkhorn codes.
    loss: ``swav`` (swapped prediction) | ``l2`` (feature regression, the collapse ablation).
    normalize_target: per-tube pixel standardisation of the MLP input / per-video, per-channel
    standardisation of teacher features."""

    target: str = "mlp"
    teacher: str = "dino_vitb16"
    teacher_checkpoint: str | None = None
    teacher_head: str = "identity"
    target_dim: int = 256
    num_prototypes: int = 3000
    sinkhorn_eps: float = 0.05
    sinkhorn_iters: int = 10
    temperature: float = 0.1
    hard_codes: bool = True
    loss: str = "swav"

    def __post_init__(self) -> None:
        super().__post_init__()
        for key, value, choices in (("target", self.target, ("mlp", "dino")),
                                    ("teacher", self.teacher, tuple(TEACHERS)),
                                    ("teacher_head", self.teacher_head, ("identity", "mlp")),
                                    ("loss", self.loss, ("swav", "l2"))):
            if value not in choices:
                raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")
        if self.num_prototypes < 2 or self.sinkhorn_eps <= 0 or self.sinkhorn_iters < 1 \
                or self.temperature <= 0 or self.target_dim < 1:
            raise ConfigError("need num_prototypes >= 2, sinkhorn_eps > 0, sinkhorn_iters >= 1, "
                              "temperature > 0 and target_dim >= 1")


def tube_mlp(in_dim: int, out_dim: int = 256) -> nn.Sequential:
    """SIGMA-MLP's projection: widths ``in -> 2/3 in -> 2/3 in -> 1/3 in -> out`` with GELU
    (1536 -> 1024 -> 1024 -> 512 -> 256 for 2x16x16 tubes, the published ``init_proj_mlp``)."""
    wide, narrow = max(2 * in_dim // 3, 1), max(in_dim // 3, 1)
    return nn.Sequential(nn.Linear(in_dim, wide), nn.GELU(), nn.Linear(wide, wide), nn.GELU(),
                         nn.Linear(wide, narrow), nn.GELU(), nn.Linear(narrow, out_dim))


def standardize_per_video(features: torch.Tensor) -> torch.Tensor:
    """``[B,N,D]``: each channel of each video to zero mean, unit (unbiased) std over N (+1e-6)."""
    mean = features.mean(dim=1, keepdim=True)
    return (features - mean) / (features.var(dim=1, unbiased=True, keepdim=True).sqrt() + 1e-6)


def direction_spread(features: torch.Tensor) -> torch.Tensor:
    """``1 - |mean_n f_n / |f_n||^2`` of features ``[M,d]``, in [0, 1]: 0 when every feature
    points the same way (collapse), near 1 for directions spread over the sphere."""
    return 1.0 - F.normalize(features.detach().float(), dim=1).mean(dim=0).square().sum()


def teacher_token_features(teacher: ImageTeacher, video: torch.Tensor,
                           grid: tuple[int, int, int], tubelet_frames: int) -> torch.Tensor:
    """Frozen teacher features on the token grid, ``[B, T'H'W', D]`` in token order.

    Token ``(t', h', w')`` gets the feature of frame ``t' * tubelet_frames`` at ``(h', w')``.
    Frames are resized so that the teacher's patch grid equals the token grid
    (``H' * stride``); a map of another size is resized bilinearly onto the grid.
    """
    slots, height, width = grid
    frames = unnormalize(video.float())[:, :, ::tubelet_frames][:, :, :slots]
    batch = frames.shape[0]
    images = frames.transpose(1, 2).flatten(0, 1)
    size = (height * teacher.stride, width * teacher.stride)
    if tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="bilinear", antialias=True,
                               align_corners=False)
    features = teacher(images)
    if tuple(features.shape[-2:]) != (height, width):
        features = F.interpolate(features, size=(height, width), mode="bilinear",
                                 align_corners=False)
    features = features.reshape(batch, slots, -1, height, width).permute(0, 1, 3, 4, 2)
    return features.reshape(batch, slots * height * width, -1).float()


def swapped_prediction_loss(target_scores: torch.Tensor, predicted_scores: torch.Tensor,
                            eps: float = 0.05, iters: int = 10, temperature: float = 0.1,
                            hard: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """SIGMA's symmetric loss on scores ``[M,K]`` of the same M tokens.

    ``CE(s_target / tau, code(s_pred))`` and ``CE(s_pred / tau, code(s_target))``, codes from
    :func:`sinkhorn` (argmax when ``hard``). Returns the two terms (target side, predictor side).
    """
    codes_from_target = sinkhorn(target_scores.detach(), eps, iters)
    codes_from_pred = sinkhorn(predicted_scores.detach(), eps, iters)
    if hard:
        codes_from_target = codes_from_target.argmax(dim=1)
        codes_from_pred = codes_from_pred.argmax(dim=1)
    loss_target = F.cross_entropy(target_scores.float() / temperature, codes_from_pred)
    loss_pred = F.cross_entropy(predicted_scores.float() / temperature, codes_from_target)
    return loss_target, loss_pred


@register_method
class SIGMA(MaskedVideoModel):
    """SIGMA-MLP / SIGMA-DINO; ``training_step`` returns ``loss``, for ``swav`` its two terms,
    and ``target_spread`` (:func:`direction_spread` of the target features: watch it for
    collapse)."""

    name = "sigma"
    Params = SIGMAParams
    recipe = SIGMA_RECIPE

    def __init__(self, backbone: nn.Module, params: SIGMAParams):
        t, ph, pw = tubelet_shape(backbone, self.name)
        teacher = None
        if params.target == "mlp":
            target_dim = params.target_dim
        else:
            teacher = build_teacher(params.teacher, params.teacher_checkpoint)
            target_dim = params.target_dim if params.teacher_head == "mlp" \
                else teacher.num_features
        super().__init__(backbone, params, out_dim=target_dim)
        # Frozen teacher kept outside the module tree: not in the state dict, the optimizer or
        # DDP; moved to the batch's device on first use and always in eval mode.
        self._teacher = (teacher,) if teacher is not None else ()
        if params.target == "mlp":
            self.target_mlp = tube_mlp(3 * t * ph * pw, target_dim)
        elif params.teacher_head == "mlp":
            width = teacher.num_features
            self.teacher_head = nn.Sequential(nn.Linear(width, width), nn.GELU(),
                                              nn.Linear(width, target_dim))
        if params.loss == "swav":
            self.prototypes = nn.Parameter(
                F.normalize(torch.randn(params.num_prototypes, target_dim), dim=1))

    def target_features(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``phi(x)`` at the masked tokens, ``[B, N_masked, d]``."""
        if self.params.target == "mlp":
            tubes = tube_pixel_targets(video, self.tubelet, self.params.normalize_target)
            return self.target_mlp(self.masked(tubes, mask))
        teacher = self._teacher[0]
        if next(teacher.parameters()).device != video.device:
            teacher.to(video.device)
        with torch.no_grad():
            features = teacher_token_features(teacher.eval(), video, self.grid, self.tubelet[0])
            if self.params.normalize_target:
                features = standardize_per_video(features)
        features = self.masked(features, mask)
        return self.teacher_head(features) if self.params.teacher_head == "mlp" else features

    def swav_losses(self, video: torch.Tensor, mask: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two terms of the swapped-prediction loss (target side, predictor side) and the
        target features' :func:`direction_spread` (L2-normalises the prototypes in place
        first, as SIGMA does)."""
        with torch.no_grad():
            self.prototypes.copy_(F.normalize(self.prototypes, dim=1))
        predicted = self.predict_masked(video, mask).flatten(0, 1)
        target = self.target_features(video, mask).flatten(0, 1)
        target_scores = F.normalize(target, dim=1) @ self.prototypes.T
        predicted_scores = F.normalize(predicted, dim=1) @ self.prototypes.detach().T
        p = self.params
        loss_target, loss_pred = swapped_prediction_loss(
            target_scores, predicted_scores, p.sinkhorn_eps, p.sinkhorn_iters, p.temperature,
            p.hard_codes)
        return loss_target, loss_pred, direction_spread(target)

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        video = batch["video"]
        mask = self.sample_mask(video.shape[0], video.device)
        if self.params.loss == "l2":
            predicted = self.predict_masked(video, mask)
            target = self.target_features(video, mask)
            return {"loss": F.mse_loss(predicted.float(), target.float()),
                    "target_spread": direction_spread(target.flatten(0, 1))}
        loss_target, loss_pred, spread = self.swav_losses(video, mask)
        return {"loss": loss_target + loss_pred, "loss_target": loss_target.detach(),
                "loss_pred": loss_pred.detach(), "target_spread": spread}

    @torch.no_grad()
    def cluster_assignments(self, video: torch.Tensor, mask: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard prototype index of every masked token, ``[B, N_masked]`` each, from the
        target features and from the prediction (what ``vidssl show masking`` draws)."""
        if self.params.loss != "swav":
            raise ValueError("cluster assignments need prototypes (loss: swav)")
        prototypes = F.normalize(self.prototypes, dim=1)
        target = F.normalize(self.target_features(video, mask), dim=-1) @ prototypes.T
        predicted = F.normalize(self.predict_masked(video, mask), dim=-1) @ prototypes.T
        return target.argmax(dim=-1), predicted.argmax(dim=-1)
