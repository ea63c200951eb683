"""The official UCF-RC counter: Zhang et al., "Context-aware and scale-insensitive temporal
repetition counting" (CVPR 2020), as SEVERE runs it (``Repetition-Counting/`` of
fmthoker/SEVERE-BENCHMARK, a fork of Xiaodomgdomg/Deep-Temporal-Repetition-Counting).

The network looks at a *hypothesis* ``(lp, mp, rp)`` on a repeated segment of ``L`` frames:
the cycle ``[lp, mp]`` that ends at ``mp`` and the cycle ``[mp + 1, rp]`` that starts after it.
Its 32-frame input (``window_frames``) samples 16 frames over ``[lp, mp]`` with one cycle of
context before it and 16 over ``[mp + 1, rp]`` with one cycle after it. Two heads (``pre``:
the cycle ending at ``mp``, ``next``: the one starting after it) each score ``K = 7`` anchors
``a_k in {0.5, .67, .8, 1, 1.25, 1.5, 2}`` (2-way softmax: does the true cycle length ``c``
match ``a_k l`` with ``IoU = min/max >= 0.5``?) and regress ``log(c / (a_k l))``, where ``l``
is the hypothesised length. Decoding: the best-scoring anchor gives the ratio
``r = a_k exp(box_k)``, i.e. the true cycle is ``r`` times the hypothesis.

- Training (``training_episode``): a batch of segments, each with a random hypothesis near
  its first cycle, is tracked for up to 11 optimizer steps: after every step each hypothesis
  is rescaled by its predicted ratios and moved ``L / U(5, 20)`` frames on; finished or
  degenerate hypotheses restart.
- Inference (``count_repetitions``): a coarse-to-fine search for the cycle length at the
  segment centre (30 scales, then 4 damped rescalings), then 32 hypotheses spread over the
  segment refined on a binary merge tree; count ``= L * mean_k (1 / (2 l_k) + 1 / (2 r_k))``
  over the hypotheses whose context lies inside the segment, rounded.
- Metrics (``count_metrics``): MAE of the rounded count normalized by the true count, and
  off-by-one accuracy.

Integer conventions (``int()`` truncation, Python's round-half-to-even) follow the official
code; they move hypotheses by single frames.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidssl.engine import distributed as D
from vidssl.evaluation import metrics

ANCHORS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)
UNIT_ANCHOR = ANCHORS.index(1.0)


@dataclass(frozen=True)
class CounterConfig:
    """The official counter's constants (``opts.py``, ``train_2stream.py``, ``val_2stream.py``)."""

    anchors: tuple[float, ...] = ANCHORS
    input_frames: int = 32          # basic_duration: 16 frames per side
    left_context: float = 1.0       # l_context_ratio: cycles of context before [lp, mp]
    right_context: float = 2.0      # r_context_ratio: [mp + 1, rp] plus one cycle after it
    iou_threshold: float = 0.5      # iou_ubound = iou_lbound
    box_weight: float = 50.0        # SmoothL1 weight of the box terms
    max_train_frames: int = 300     # sample_duration: longest training segment
    episode_steps: int = 11         # early_stop 10: steps 0..10 per batch
    train_box_clamp: float = 2.0    # |log ratio| clamp while tracking in training
    test_box_clamp: float = 0.5     # ... at inference
    min_scale: float = 0.03         # initial search: half-lengths L * 0.03 ... L * 0.35
    max_scale: float = 0.35
    init_scales: int = 30
    refine_iterations: int = 4      # damped rescalings at the segment centre
    merge_levels: int = 5           # 2^5 = 32 hypotheses over the segment
    merge_weight: float = 0.5       # damping of every update
    min_cycles: int = 2             # a cycle is at most L / 2 frames (UCFRep)
    pad_value: tuple[float, float, float] = (0.485, 0.456, 0.406)  # input value off the segment

    def __post_init__(self) -> None:
        if self.input_frames < 4 or self.input_frames % 2:
            raise ValueError(f"input_frames must be even and >= 4, got {self.input_frames}")


State = tuple[float, float, float]  # (lp, mp, rp)


# ----------------------------------------------------------------------------- network
class AnchorCountingHead(nn.Module):
    """Two anchor heads on pooled clip features ``[B, D]`` (``model.py:Head``): for the cycle
    ending at ``mp`` (``pre``) and the one starting after it (``next``), 2-way anchor logits
    ``[B, 2, K]`` and log-ratio offsets ``[B, K]``."""

    def __init__(self, num_features: int, num_anchors: int = len(ANCHORS)):
        super().__init__()
        self.num_anchors = num_anchors
        self.cls_pre = nn.Linear(num_features, 2 * num_anchors)
        self.box_pre = nn.Linear(num_features, num_anchors)
        self.cls_next = nn.Linear(num_features, 2 * num_anchors)
        self.box_next = nn.Linear(num_features, num_anchors)

    def forward(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        k, b = self.num_anchors, len(pooled)  # (b may be 0: a rank's empty share of a batch)
        return {"cls_pre": self.cls_pre(pooled).reshape(b, 2, k), "box_pre": self.box_pre(pooled),
                "cls_next": self.cls_next(pooled).reshape(b, 2, k),
                "box_next": self.box_next(pooled)}


# ----------------------------------------------------------------------------- labels
def cycle_offsets(bounds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of ``[b_0, b_K]``: frames back to the same phase in the previous cycle
    (``pre``) and on to it in the next one (``next``); ``-1`` where undefined.

    UCFRep's ``label_interpolation_v1.m``: frame ``p`` of cycle ``[b_k, b_{k+1}]`` (length
    ``m``) has ``next = round((p - b_k) / m * r + b_{k+1} - p)`` with ``r`` the next cycle's
    length, and ``pre = round(p - b_{k-1} - (p - b_k) / m * l)`` with ``l`` the previous one's;
    ``-1`` in the last (first) cycle, or when the neighbour differs by more than 2 frames and
    30%. A boundary frame belongs to the later cycle.
    """
    b = [int(x) for x in bounds]
    size = b[-1] - b[0] + 1
    pre, nxt = np.full(size, -1, np.int64), np.full(size, -1, np.int64)
    for k in range(len(b) - 1):
        m = b[k + 1] - b[k]
        for p in range(b[k], b[k + 1] + 1):
            if k < len(b) - 2 and not _irregular(m, b[k + 2] - b[k + 1]):
                nxt[p - b[0]] = round((p - b[k]) / m * (b[k + 2] - b[k + 1]) + b[k + 1] - p)
            else:
                nxt[p - b[0]] = -1
            if k > 0 and not _irregular(m, b[k] - b[k - 1]):
                pre[p - b[0]] = round(p - b[k - 1] - (p - b[k]) / m * (b[k] - b[k - 1]))
            else:
                pre[p - b[0]] = -1
    return pre, nxt


def _irregular(length: int, neighbour: int) -> bool:
    """Neighbouring cycles too different to interpolate: > 2 frames and > 30% apart."""
    return abs(length - neighbour) > 2 and max(length, neighbour) / min(length, neighbour) > 1.3


def anchor_targets(offsets: Sequence[int], frame: int, length: float, sample_len: int,
                   anchors: Sequence[float] = ANCHORS, iou_threshold: float = 0.5
                   ) -> tuple[list[int], list[float | None]]:
    """Anchor labels of a hypothesised cycle of ``length`` frames at ``frame``
    (``update_labels``).

    The true cycle spans ``c = offsets[frame] + 1`` frames. Anchor ``k`` stands for
    ``a_k * length``; with ``IoU = min(c, a_k l) / max(c, a_k l)`` it is positive (class 1,
    box target ``log(c / (a_k l))``) if ``IoU >= iou_threshold``, else negative (class 0, no
    box target). Off the segment or where the offset is undefined (-1) every anchor is ignored
    (class -1, no box target).
    """
    if not 0 <= frame < sample_len or offsets[frame] == -1:
        return [-1] * len(anchors), [None] * len(anchors)
    true_length = float(offsets[frame]) + 1.0
    classes, boxes = [], []
    for anchor in anchors:
        anchored = anchor * length
        iou = min(true_length, anchored) / max(true_length, anchored)
        positive = iou >= iou_threshold
        classes.append(int(positive))
        boxes.append(math.log(true_length / anchored) if positive else None)
    return classes, boxes


def loss_normalizers(targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """The denominators of ``counter_loss`` on a batch: ``[n_pre, n_next, B * K]``, the
    non-ignored anchors of each head and all anchors."""
    return torch.tensor([float((targets["cls_pre"] != -1).sum()),
                         float((targets["cls_next"] != -1).sum()),
                         float(targets["box_pre"].numel())])


def counter_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 box_weight: float = 50.0, normalizers: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    """``sum_{h in pre, next} CE(cls_h, y_h) + box_weight * SmoothL1(box_h, t_h)``.

    CE is averaged over the non-ignored anchors (label -1 ignored; 0 if none is left):
    ``sum CE / n_h``; SmoothL1 (beta 1) is summed over the positive anchors and divided by all
    ``B * K`` anchors (the official code sets the other targets to the detached prediction).
    ``targets`` holds ``cls_pre``/``cls_next`` (long ``[B, K]``) and ``box_pre``/``box_next``
    (float, NaN = no target). ``normalizers`` (``loss_normalizers``, default: of this batch)
    are those of the global batch when the batch is split over processes: the ranks' losses
    then sum to the global-batch loss.
    """
    n = (loss_normalizers(targets) if normalizers is None else normalizers).tolist()
    cls_loss = box_loss = outputs["box_pre"].new_zeros((), dtype=torch.float32)
    for h, head in enumerate(("pre", "next")):
        logits, labels = outputs[f"cls_{head}"], targets[f"cls_{head}"]
        if n[h] > 0:
            cls_loss = cls_loss + F.cross_entropy(logits.float(), labels, ignore_index=-1,
                                                  reduction="sum") / n[h]
        box, goal = outputs[f"box_{head}"].float(), targets[f"box_{head}"]
        positive = ~torch.isnan(goal)
        box_loss = box_loss + F.smooth_l1_loss(box[positive], goal[positive],
                                               reduction="sum") / n[2]
    return {"loss": cls_loss + box_weight * box_loss, "loss_cls": cls_loss.detach(),
            "loss_box": box_loss.detach()}


# ----------------------------------------------------------------------------- decoding
def best_anchor(cls_logits: torch.Tensor, box: torch.Tensor, anchors: Sequence[float] = ANCHORS,
                clamp: float = 0.5, only: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Score and cycle-length ratio of the best anchor, per row.

    ``s_k = softmax(cls[:, k])_1``; ``k* = argmax_k s_k`` (first on ties; ``only`` restricts
    to one anchor); ratio ``r = a_{k*} exp(clip(box_{k*}, -clamp, clamp))``: the true cycle is
    ``r`` times the hypothesis. ``cls_logits [B, 2, K]``, ``box [B, K]`` -> ``[B]``, ``[B]``.
    """
    scores = cls_logits.float().softmax(dim=1)[:, 1, :]
    ratios = torch.as_tensor(anchors, dtype=torch.float32) * box.float().clamp(-clamp, clamp).exp()
    if only is not None:
        return scores[:, only], ratios[:, only]
    k = scores.argmax(dim=1, keepdim=True)
    return scores.gather(1, k)[:, 0], ratios.gather(1, k)[:, 0]


def window_frames(state: State, sample_len: int, cfg: CounterConfig = CounterConfig()
                  ) -> np.ndarray:
    """Frame positions of the network input for hypothesis ``(lp, mp, rp)``
    (``update_inputs_2stream``); positions outside ``[0, sample_len)`` are padding.

    Left half: ``n = input_frames / 2`` positions evenly over ``[lp - c_l (mp - lp + 1), mp]``,
    right half over ``[mp + 1, rp + (c_r - 1)(rp - mp)]``: ``p_j = round(a - 0.5 + j (b - a +
    1) / (n - 1))`` clipped to ``[a, b]``.
    """
    lp, mp, rp = state
    half = cfg.input_frames // 2
    spans = []
    low, high = int(lp - (mp - lp + 1) * cfg.left_context), int(mp)
    spans.append((low, high))
    low = int(mp + 1)
    spans.append((low, int(rp + (rp - low + 1) * (cfg.right_context - 1))))
    positions = []
    for low, high in spans:
        step = (high - low + 1) / (half - 1)
        positions += [int(max(low, min(high, round(low - 0.5 + j * step)))) for j in range(half)]
    return np.asarray(positions, dtype=np.int64)


def count_metrics(predicted: torch.Tensor, counts: torch.Tensor) -> dict[str, float]:
    """UCF-RC metrics (``val_2stream.py``): the count is rounded first (half to even, as
    Python's ``round``); ``mae = mean_n |round(c_hat_n) - c_n| / c_n`` (a ratio, lower is
    better) and ``obo = 100 * mean_n [|round(c_hat_n) - c_n| <= 1]`` (percent)."""
    return {"mae": metrics.rounded_count_error(predicted, counts),
            "obo": 100 * metrics.off_by_one_accuracy(predicted, counts)}


# ----------------------------------------------------------------------------- training
def training_segment(bounds: Sequence[int], start: int, end: int, max_frames: int,
                     rng: random.Random) -> tuple[int, int, int]:
    """One of the fixed training samples of a video (``ucf_aug.make_dataset``): ``(begin,
    stop, count)``, frames inclusive.

    With ``B = len(bounds)``: ``i ~ U{0..B-3}``, ``j ~ U{i+2..B}``; the sample starts at the
    segment start if ``i = 0``, else uniformly in ``[b_{i-1}, b_i]``; it stops at the segment
    end if ``j = B``, else uniformly in ``[b_{j-1}, b_j]``, and after ``max_frames`` frames at
    most; its count is ``j - i`` as in the official code (only its fallback cycle length uses
    it: the loss is per-frame).
    """
    size = len(bounds)
    first = rng.randint(0, size - 3)
    last = rng.randint(first + 2, size)
    begin = start if first == 0 else rng.randint(bounds[first - 1], bounds[first])
    stop = end if last == size else rng.randint(bounds[last - 1], bounds[last])
    return begin, min(stop, begin + max_frames - 1), last - first


def initial_state(next_offsets: Sequence[int], count: float, sample_len: int,
                  rng: random.Random, cfg: CounterConfig = CounterConfig()) -> State:
    """A random training hypothesis near the first cycle (``state_init`` + its caller).

    The first cycle is ``[0, o]`` with ``o = next[0] - 1`` (or ``L / count - 1``); ``lp`` is
    uniform in it and the first cycle's hypothesised length is its length times ``2^U(-1,1)``
    (25%), times ``2^{-1,0,1} + U(-0.05, 0.05)`` (25%), or one of the inference scales
    ``L * 0.03 * (0.35/0.03)^(k/29)``, ``k ~ U{0..30}`` (50%); too long -> the first cycle.
    ``mp`` ends it and ``rp = mp + (mp - lp + 1)``. Redrawn until ``0 < rp < L``.
    """
    for _ in range(1000):
        if next_offsets[0] == -1:
            low, high = 0.0, sample_len / count - 1
        else:
            low, high = 0.0, float(next_offsets[0]) - 1
        lp = low + int(rng.random() * (high - low + 1))
        magic = rng.random()
        if magic < 0.25:
            length = (high - low + 1) * 2 ** ((rng.random() - 0.5) * 2)
        elif magic > 0.75:
            length = (high - low + 1) * (2 ** rng.randint(-1, 1) + (rng.random() - 0.5) * 0.1)
        else:
            k = rng.randint(0, cfg.init_scales)
            length = sample_len * cfg.min_scale * _scale_step(k, cfg)
        mp = max(lp + int(length - 1), lp)
        if mp >= sample_len:
            lp, mp = 0.0, sample_len / count - 1
        if mp * 2 + 1 >= sample_len:
            lp, mp = 0.0, sample_len / 2 - 1
        lp, mp = int(lp), int(mp)
        rp = mp + (mp - lp + 1)
        if 0 < rp < sample_len:
            return lp, mp, rp
    raise ValueError(f"no training hypothesis fits a segment of {sample_len} frames")


def _scale_step(k: int, cfg: CounterConfig) -> float:
    return (cfg.max_scale / cfg.min_scale) ** (k / (cfg.init_scales - 1))


def advance(state: State, ratio_pre: float, ratio_next: float, step: int, sample_len: int
            ) -> tuple[State, bool, bool]:
    """Training move (``train_2stream.action_step``): rescale both cycles by the predicted
    ratios and move ``mp`` by ``step``; returns ``(state, done = mp >= L, failed = a cycle
    shorter than 4 frames)``."""
    lp, mp, rp = state
    left, right = (mp - lp + 1) * ratio_pre, (rp - mp) * ratio_next
    mp = int(mp + step)
    lp, rp = int(mp - left + 1), int(mp + right)
    return (lp, mp, rp), mp >= sample_len, (mp - lp + 1) < 4 or (rp - mp) < 4


def episode_targets(states: Sequence[State], pre: torch.Tensor, nxt: torch.Tensor,
                    lengths: Sequence[int], cfg: CounterConfig) -> dict[str, torch.Tensor]:
    """Anchor targets of a batch of hypotheses (``pre``/``nxt``: per-frame offsets ``[B, T]``)."""
    rows: dict[str, list] = {"cls_pre": [], "box_pre": [], "cls_next": [], "box_next": []}
    for (lp, mp, rp), p, n, length in zip(states, pre.tolist(), nxt.tolist(), lengths):
        for head, offsets, frame, span in (("pre", p, mp, mp - lp + 1),
                                           ("next", n, mp + 1, rp - mp)):
            classes, boxes = anchor_targets(offsets, frame, span, length, cfg.anchors,
                                            cfg.iou_threshold)
            rows[f"cls_{head}"].append(classes)
            rows[f"box_{head}"].append([math.nan if b is None else b for b in boxes])
    return {k: torch.tensor(v, dtype=torch.long if k.startswith("cls") else torch.float32
                            ).reshape(len(states), len(cfg.anchors)) for k, v in rows.items()}


def training_episode(model: Callable[[torch.Tensor], dict], make_inputs: Callable,
                     batch: dict, optimizer: torch.optim.Optimizer,
                     rngs: Sequence[random.Random], cfg: CounterConfig = CounterConfig(),
                     max_steps: int | None = None) -> dict[str, float]:
    """Train on one batch of segments (``train_2stream.train_epoch``, one iteration).

    Every segment starts at ``initial_state``; then, at most ``episode_steps`` times: inputs
    of the current hypotheses -> loss -> optimizer step -> each hypothesis moves by
    ``L / U(5, 20)`` frames with the predicted ratios (box clamped to +-2); a finished
    (``mp >= L``) or degenerate one restarts. The episode ends early when every segment has
    finished once. ``rngs[b]`` draws segment ``b``'s hypotheses and moves (one generator per
    segment, so the draws do not depend on how a batch is split). ``make_inputs(states) ->
    [B, C, T, H, W]``. Returns the mean losses and the number of steps.

    Under torchrun ``batch`` is this rank's share of the global batch (possibly empty): the
    loss is normalized over the global batch, the gradients summed over the ranks, and the
    early stop decided on the global batch, so every rank takes the same steps as one process
    on the whole batch.
    """
    lengths = [int(n) for n in batch["length"]]
    counts = [float(c) for c in batch["count"]]
    nxt, pre = batch["label_next"], batch["label_pre"]
    next_lists = nxt.tolist()
    states = [initial_state(next_lists[b], counts[b], lengths[b], rngs[b], cfg)
              for b in range(len(lengths))]
    finished = [False] * len(lengths)
    totals = torch.zeros(3, dtype=torch.float64)  # loss, loss_cls, loss_box
    steps = 0
    for _ in range(cfg.episode_steps if max_steps is None else min(cfg.episode_steps, max_steps)):
        outputs = model(make_inputs(states))
        device = outputs["box_pre"].device
        targets = {k: v.to(device)
                   for k, v in episode_targets(states, pre, nxt, lengths, cfg).items()}
        normalizers = D.all_reduce(loss_normalizers(targets).to(device))
        losses = counter_loss(outputs, targets, cfg.box_weight, normalizers)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        sum_gradients(optimizer)
        optimizer.step()
        steps += 1
        _, ratio_pre = best_anchor(outputs["cls_pre"].detach(), outputs["box_pre"].detach(),
                                   cfg.anchors, cfg.train_box_clamp)
        _, ratio_next = best_anchor(outputs["cls_next"].detach(), outputs["box_next"].detach(),
                                    cfg.anchors, cfg.train_box_clamp)
        for b, length in enumerate(lengths):
            step = int(max(length / (5 + rngs[b].random() * 15), 1))
            states[b], done, failed = advance(states[b], float(ratio_pre[b]),
                                              float(ratio_next[b]), step, length)
            if done or failed:
                states[b] = initial_state(next_lists[b], counts[b], length, rngs[b], cfg)
            finished[b] = finished[b] or done
        # one collective per step: the global losses and the number of unfinished segments
        step_sums = torch.stack([losses["loss"].detach().double(), losses["loss_cls"].double(),
                                 losses["loss_box"].double(),
                                 torch.tensor(float(finished.count(False)), device=device,
                                              dtype=torch.float64)])
        step_sums = D.all_reduce(step_sums).cpu()
        totals += step_sums[:3]
        if step_sums[3] == 0:
            break
    mean = (totals / max(steps, 1)).tolist()
    return {"loss": mean[0], "loss_cls": mean[1], "loss_box": mean[2], "steps": steps}


@torch.no_grad()
def sum_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Under torchrun, replace every gradient by its sum over the ranks (each rank's loss is
    its part of the global-batch loss); a parameter that has no gradient on any rank keeps
    none, so the optimizer skips it as one process would. Identity in one process."""
    if not D.is_distributed():
        return
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    if not params:
        return
    present = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    present = D.all_reduce(present, op="max").tolist()
    for p, has in zip(params, present):
        if has and p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params if p.grad is not None]
    flat = D.all_reduce(torch.cat([g.reshape(-1) for g in grads]))
    for g, summed in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(summed.view_as(g))


# ----------------------------------------------------------------------------- inference
Predict = Callable[[list[State]], dict[str, torch.Tensor]]


def count_repetitions(predict: Predict, sample_len: int, cfg: CounterConfig = CounterConfig()
                      ) -> float:
    """Iterative multi-scale inference over a whole segment of ``L = sample_len`` frames
    (``val_2stream.val_epoch``); returns the unrounded count.

    1. Search: hypotheses ``(L/2 - h, L/2, L/2 + h + 1)`` for 30 half-lengths ``h`` from
       ``0.03 L`` to ``0.35 L``; the unit anchor of the ``pre`` head proposes ``h r``; keep
       the most confident proposal in ``[4, L / 2)`` (truncated to frames).
    2. Refine 4 times at the centre: ``h <- round(h / 2 + h r / 2)`` (if in ``[4, L / 2)``).
    3. Merge: 32 hypotheses of half-length ``h`` at ``mp_k = int(L / 33 (k + 0.5))``; at tree
       level ``l = 1..4`` the hypothesis at the centre of each block of ``2^(5-l)`` is
       refined (``refine``: 4, 2, 1, 1 damped iterations) and its relative cycle bounds copied
       to the block's left and right halves.
    4. Count ``L * mean_k (1 / (2 (mp_k - lp_k + 1)) + 1 / (2 (rp_k - mp_k)))`` over the
       hypotheses whose context windows fit in the segment (else ``L / (h + 1)``).
    """
    length = sample_len
    half = _search_half_length(predict, length, cfg)
    tree = _merge_tree(predict, length, half, cfg)
    return _count_from_tree(tree, length, half, cfg)


def _search_half_length(predict: Predict, length: int, cfg: CounterConfig) -> int:
    mid, limit = length / 2, length / cfg.min_cycles
    halves = [length * cfg.min_scale * _scale_step(k, cfg) for k in range(cfg.init_scales)]
    out = predict([(mid - h, mid, mid + h + 1) for h in halves])
    scores, ratios = best_anchor(out["cls_pre"], out["box_pre"], cfg.anchors,
                                 cfg.test_box_clamp, only=UNIT_ANCHOR)
    best_score, best = -1e6, 0
    for h, score, ratio in zip(halves, scores.tolist(), ratios.tolist()):
        proposal = h * ratio
        if score > best_score and 4 <= proposal < limit:
            best_score, best = score, int(proposal)
    for _ in range(cfg.refine_iterations):
        out = predict([(mid - best, mid, mid + best + 1)])
        _, ratio = best_anchor(out["cls_pre"], out["box_pre"], cfg.anchors, cfg.test_box_clamp,
                               only=UNIT_ANCHOR)
        proposal = best * float(ratio[0])
        if 4 <= proposal < limit:
            best = round(best * (1 - cfg.merge_weight) + proposal * cfg.merge_weight)
    return best


def refine(state: State, ratio_pre: float, ratio_next: float, sample_len: int,
           min_cycles: int = 2) -> State:
    """Inference move (``val_2stream.action_step`` with step 0): rescale both cycles by the
    predicted ratios, each kept in ``[4, L / min_cycles]`` frames; a cycle shorter than 4
    frames after truncation keeps the old bounds."""
    lp, mp, rp = state
    limit = sample_len / min_cycles
    left = min(max(4, (mp - lp + 1) * ratio_pre), limit)
    right = min(max(4, (rp - mp) * ratio_next), limit)
    mp = int(mp)
    new_lp, new_rp = int(mp - left + 1), int(mp + right)
    if (mp - new_lp + 1) < 4 or (new_rp - mp) < 4:
        return lp, mp, rp
    return new_lp, mp, new_rp


def _merge_tree(predict: Predict, length: int, half: int, cfg: CounterConfig) -> dict:
    """Level-by-level bounds ``mp``, ``lp_l``, ``lp_r``, ``rp_l``, ``rp_r`` ``[levels, 2^levels]``
    (each hypothesis keeps the bounds inherited from its left and right neighbour blocks)."""
    levels, width = cfg.merge_levels, 2 ** cfg.merge_levels
    w = cfg.merge_weight
    mp = np.zeros((levels, width), np.int64)
    lp_l, lp_r, rp_l, rp_r = (np.zeros((levels, width), np.int64) for _ in range(4))
    mp[0] = [int(length / (width + 1) * (k + 0.5)) for k in range(width)]
    lp_l[0] = lp_r[0] = mp[0] - half
    rp_l[0] = rp_r[0] = mp[0] + half + 1
    for level in range(1, levels):
        block = 2 ** (levels - level - 1)
        centres = [block + 2 * block * i for i in range(2 ** level)]
        iterations = {1: 4, 2: 2}.get(level, 1)
        up = level - 1
        loads = [(round(float(lp_l[up, c] + lp_r[up, c]) / 2), int(mp[up, c]),
                  round(float(rp_l[up, c] + rp_r[up, c]) / 2)) for c in centres]
        saves = loads
        for iteration in range(iterations):
            if iteration:
                loads = [(round(s[0] * w + o[0] * (1 - w)), s[1], round(s[2] * w + o[2] * (1 - w)))
                         for s, o in zip(saves, loads)]
            out = predict(loads)
            _, ratio_pre = best_anchor(out["cls_pre"], out["box_pre"], cfg.anchors,
                                       cfg.test_box_clamp)
            _, ratio_next = best_anchor(out["cls_next"], out["box_next"], cfg.anchors,
                                        cfg.test_box_clamp)
            saves = [refine(s, a, b, length, cfg.min_cycles)
                     for s, a, b in zip(loads, ratio_pre.tolist(), ratio_next.tolist())]
        inner = level <= 2 or level == levels - 1
        for i, (c, save, load) in enumerate(zip(centres, saves, loads)):
            left = save[0] * w + load[0] * (1 - w) - mp[up, c]
            right = save[2] * w + load[2] * (1 - w) - mp[up, c]
            for q in range(c - block, c):      # left half: the centre's bounds on its right
                mp[level, q] = mp[up, q]
                lp_r[level, q], rp_r[level, q] = int(mp[up, q] + left), int(mp[up, q] + right)
                if inner or i == 0:
                    lp_l[level, q], rp_l[level, q] = lp_r[level, q], rp_r[level, q]
                else:
                    lp_l[level, q], rp_l[level, q] = lp_l[up, q], rp_l[up, q]
            for q in range(c, c + block):      # right half: the centre's bounds on its left
                mp[level, q] = mp[up, q]
                lp_l[level, q], rp_l[level, q] = int(mp[up, q] + left), int(mp[up, q] + right)
                if inner or i == len(centres) - 1:
                    lp_r[level, q], rp_r[level, q] = lp_l[level, q], rp_l[level, q]
                else:
                    lp_r[level, q], rp_r[level, q] = lp_r[up, q], rp_r[up, q]
    return {"mp": mp[-1], "lp": (lp_l[-1], lp_r[-1]), "rp": (rp_l[-1], rp_r[-1])}


def _count_from_tree(tree: dict, length: int, half: int, cfg: CounterConfig) -> float:
    inverse_left, inverse_right = [], []
    for k, mp in enumerate(tree["mp"].tolist()):
        lp = round(float(tree["lp"][0][k] + tree["lp"][1][k]) / 2)
        rp = round(float(tree["rp"][0][k] + tree["rp"][1][k]) / 2)
        first = int(lp - (mp - lp + 1) * cfg.left_context)
        last = int(rp + (rp - mp) * (cfg.right_context - 1))
        # (the official code would divide by zero on a collapsed cycle; such a one is skipped)
        if first >= 0 and last < length and mp - lp + 1 > 0 and rp - mp > 0:
            inverse_left.append(1.0 / (mp - lp + 1))
            inverse_right.append(1.0 / (rp - mp))
    if not inverse_left:
        return length / (half + 1)
    return length * (0.5 * sum(inverse_left) + 0.5 * sum(inverse_right)) / len(inverse_left)
