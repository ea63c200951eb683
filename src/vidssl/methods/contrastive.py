"""Contrastive machinery shared by ``tubelet_contrast`` and ``video_moco``.

MoCo v2 (He et al. 2020; Chen et al. 2020): a query encoder (backbone + projection MLP) sees
view A, a momentum key encoder sees view B, and a queue holds the keys of past batches as
negatives. With L2-normalized ``q``, ``k+`` and queue keys ``k-``,

    L = -log( exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_{k-} exp(q.k- / tau)) ).

``negatives="batch"`` swaps the queue for SimCLR's in-batch NT-Xent (Chen et al. 2020) with
both views through the query encoder: no momentum encoder, suited to small runs. Under DDP the
keys of all ranks are enqueued and shuffle-BN hides the batch statistics of a query from its
key; set ``train.sync_bn`` for SyncBN instead.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidssl.engine.distributed import (
    all_gather_nograd,
    all_gather_with_grad,
    get_rank,
    get_world_size,
)
from vidssl.errors import ConfigError
from vidssl.methods.base import SSLMethod
from vidssl.models.heads import ProjectionMLP

NEGATIVES = ("queue", "batch")
MOMENTUM_SCHEDULES = ("constant", "cosine")


@dataclass
class ContrastiveParams:
    """MoCo v2 / SimCLR hyperparameters (defaults: the Tubelet-Contrast recipe).

    ``proj_hidden_dim`` defaults to the backbone's feature width (512 -> 512 -> 128 for a
    full-width R(2+1)D-18). ``momentum_schedule="cosine"`` raises m from ``momentum`` to 1 over
    training (BYOL). ``shuffle_bn`` only acts under DDP.
    """

    proj_hidden_dim: int | None = None
    proj_dim: int = 128
    temperature: float = 0.2
    negatives: str = "queue"
    queue_size: int = 16384
    momentum: float = 0.999
    momentum_schedule: str = "constant"
    shuffle_bn: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.negatives in NEGATIVES, f"negatives must be one of {NEGATIVES}"),
            (self.momentum_schedule in MOMENTUM_SCHEDULES,
             f"momentum_schedule must be one of {MOMENTUM_SCHEDULES}"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.queue_size > 0, "queue_size must be > 0"),
            (0.0 <= self.momentum <= 1.0, "momentum must be in [0, 1]"),
            (self.proj_dim > 0, "proj_dim must be > 0"),
            (self.proj_hidden_dim is None or self.proj_hidden_dim > 0,
             "proj_hidden_dim must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{type(self).__name__}: {message}")


# ---------------------------------------------------------------------------------- losses
def info_nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor,
             temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MoCo's InfoNCE: cross-entropy over ``[q.k+, q.negatives^T] / tau`` with the positive at
    index 0. ``query``, ``key`` ``[B,D]``, ``negatives`` ``[K,D]``, all L2-normalized.
    Returns ``(loss, logits [B, 1+K], labels)``."""
    positive = (query * key).sum(dim=1, keepdim=True)
    logits = torch.cat([positive, query @ negatives.T], dim=1) / temperature
    labels = torch.zeros(len(query), dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, labels), logits, labels


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimCLR's NT-Xent over the global batch of 2N L2-normalized embeddings:
    ``l(i, j) = -log( exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau) )`` for each positive pair
    (i, j), averaged. This rank's rows against every rank's columns (gathered with gradient).
    Returns ``(loss, logits [2B, 2N], labels)``, self-similarities masked to ``-inf``."""
    local = z_a.shape[0]
    everything_a, everything_b = all_gather_with_grad(z_a), all_gather_with_grad(z_b)
    total = everything_a.shape[0]
    columns = torch.cat([everything_a, everything_b])
    logits = torch.cat([z_a, z_b]) @ columns.T / temperature
    mine = get_rank() * local + torch.arange(local, device=z_a.device)
    self_index = torch.cat([mine, total + mine])
    positive_index = torch.cat([total + mine, mine])
    rows = torch.arange(2 * local, device=z_a.device)
    logits = logits.index_put((rows, self_index), torch.tensor(float("-inf"), device=z_a.device))
    return F.cross_entropy(logits, positive_index), logits, positive_index


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose largest logit is the positive: the pretext task's accuracy."""
    return (logits.argmax(dim=1) == labels).float().mean()


# ------------------------------------------------------------------------- momentum + queue
@torch.no_grad()
def momentum_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """EMA of parameters: ``theta_k <- m theta_k + (1 - m) theta_q`` (buffers untouched)."""
    for key_param, query_param in zip(target.parameters(), online.parameters(), strict=True):
        key_param.lerp_(query_param.detach(), 1.0 - momentum)


def momentum_at(base: float, progress: float, schedule: str = "constant") -> float:
    """Momentum at ``progress`` in [0, 1]: constant, or BYOL's cosine increase
    ``1 - (1 - m0) (cos(pi p) + 1) / 2`` (reaches 1 at the end)."""
    if schedule == "constant":
        return base
    return 1.0 - (1.0 - base) * (math.cos(math.pi * min(max(progress, 0.0), 1.0)) + 1.0) / 2.0


class NegativeQueue(nn.Module):
    """FIFO of ``size`` L2-normalized keys ``[size, dim]`` (random unit vectors at start)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Overwrite the oldest entries with ``keys`` (wrapping around; only the newest
        ``size`` survive when more come at once)."""
        size = self.keys.shape[0]
        keys = keys.detach()[-size:].to(self.keys.dtype)
        index = (self.pointer + torch.arange(len(keys), device=keys.device)) % size
        self.keys[index] = keys
        self.pointer.fill_(int((self.pointer + len(keys)) % size))


# --------------------------------------------------------------------------------- method
class ContrastiveMethod(SSLMethod):
    """Query encoder on ``views(batch)[0]``, keys from ``views(batch)[1]``; subclasses only
    say how the two views are made."""

    Params = ContrastiveParams

    def __init__(self, backbone: nn.Module, params: ContrastiveParams):
        super().__init__(backbone, params)
        if not hasattr(backbone, "num_features") or not hasattr(backbone, "forward_features"):
            raise TypeError(f"{self.name}: the backbone needs num_features and forward_features")
        hidden = params.proj_hidden_dim or backbone.num_features
        self.projector = ProjectionMLP(backbone.num_features, hidden, params.proj_dim)
        if params.negatives == "queue":
            self.key_backbone = copy.deepcopy(backbone).requires_grad_(False)
            self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
            self.queue = NegativeQueue(params.queue_size, params.proj_dim)
            self.register_buffer("shuffles", torch.zeros((), dtype=torch.long))

    def views(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The (query, key) views ``[B,C,T,H,W]`` of a batch."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Query embedding: ``normalize(projector(backbone(x)))`` in float32."""
        return F.normalize(self.projector(self.backbone.forward_features(x)["pooled"]).float(),
                           dim=1)

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        query_view, key_view = self.views(batch)
        no_autocast = torch.autocast(query_view.device.type, enabled=False)  # float32 logits
        if self.params.negatives == "batch":
            z_a, z_b = self.embed(torch.cat([query_view, key_view])).chunk(2)
            with no_autocast:
                loss, logits, labels = nt_xent(z_a, z_b, self.params.temperature)
        else:
            query, key = self.embed(query_view), self._keys(key_view)
            with no_autocast:
                loss, logits, labels = info_nce(query, key, self.queue.keys.clone(),
                                                self.params.temperature)
            self.queue.enqueue(all_gather_nograd(key))
        return {"loss": loss, "acc": top1_accuracy(logits.detach(), labels)}

    def after_optimizer_step(self, progress: float) -> None:
        """Momentum update of the key encoder (queue variant)."""
        if self.params.negatives != "queue":
            return
        m = momentum_at(self.params.momentum, progress, self.params.momentum_schedule)
        momentum_update(self.key_backbone, self.backbone, m)
        momentum_update(self.key_projector, self.projector, m)

    @torch.no_grad()
    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        """Key embeddings; under DDP with ``shuffle_bn``, computed on a batch shuffled across
        ranks and unshuffled afterwards (MoCo's shuffle-BN). All ranks draw the same
        permutation from a seed that is the number of shuffles so far (resumes exactly)."""
        def encode(v: torch.Tensor) -> torch.Tensor:
            features = self.key_backbone.forward_features(v)["pooled"]
            return F.normalize(self.key_projector(features).float(), dim=1)

        world = get_world_size()
        if world == 1 or not self.params.shuffle_bn:
            return encode(x)
        local, rank = x.shape[0], get_rank()
        everything = all_gather_nograd(x)
        order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(
            int(self.shuffles))).to(x.device)
        self.shuffles += 1
        mine = slice(rank * local, (rank + 1) * local)
        keys = all_gather_nograd(encode(everything[order[mine]]))
        return keys[torch.argsort(order)][mine]
