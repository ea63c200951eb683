"""SEVERE's UCF-RC protocol: fine-tune a backbone with the official anchor counter
(``vidssl.evaluation.counting``) on UCFRep segments, select an epoch, score the test split.

What the counter sees (``Repetition-Counting/datasets/ucf_aug.py``, ``main.py``):

- a sample is a whole segment at the video's own frame rate; the annotated segment at test
  time, and in training ``samples_per_video`` (10) random sub-segments of at most 300 frames
  per video, drawn once when the set is built and the same every epoch;
- every frame is letterboxed (longer side to ``size``, zero-padded to ``size x size``),
  flipped horizontally at random in training (one coin per sample, no other augmentation),
  then normalized in the network input (``Recipe.normalize`` / ``channel_order``).

Training runs ``training_episode`` per batch (Adam on all parameters, constant rate; the
recipe's ``lr``, ``weight_decay``, ``epochs``, ``batch_size``); after each epoch the selection
split is counted with ``count_repetitions`` and the epoch with the lowest MAE is kept (SEVERE:
the test split; the validation protocol: held-out training videos).

Under torchrun every rank calls ``finetune_counter``: ``batch_size`` stays the global batch
(the same seeded batches as one process; rank ``r`` takes positions ``r, r + W, ...`` of each),
BatchNorm spans the global batch, the loss is normalized over it and the gradients summed, so
every rank takes the same optimizer steps as one process on the whole batch; the selection and
test videos are sharded and their counts gathered in dataset order. After every epoch rank 0
writes ``counter.pt`` atomically (model, optimizer, epoch, selection state, RNG); ``resume=
"auto"`` continues from it exactly (the training draws are seeded per epoch and sample, so they
need no saved state).
"""
from __future__ import annotations

import csv
import math
import random
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from vidssl.engine import distributed as D
from vidssl.engine.batchnorm import sync_batchnorm
from vidssl.engine.checkpoint import atomic_save, load_checkpoint, rng_state, set_rng_state
from vidssl.engine.logging import console
from vidssl.evaluation.counting import (
    AnchorCountingHead,
    CounterConfig,
    State,
    count_metrics,
    count_repetitions,
    cycle_offsets,
    training_episode,
    training_segment,
    window_frames,
)
from vidssl.evaluation.suite import NORMALIZATIONS, Recipe
from vidssl.io import VideoReadError, read_clip


def letterbox(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[T, H, W, C]`` -> ``[T, size, size, C]``: the longer side scaled to ``size``
    (bilinear; the shorter to ``int(size * short / long)``), centred on zeros
    (``Scale_longerside`` + ``CenterCrop``)."""
    height, width = frames.shape[1:3]
    if width >= height:
        new_h, new_w = int(size * height / width), size
    else:
        new_h, new_w = size, int(size * width / height)
    video = frames.permute(0, 3, 1, 2).float()
    if (new_h, new_w) != (height, width):
        video = F.interpolate(video, size=(new_h, new_w), mode="bilinear", align_corners=False,
                              antialias=True)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    video = F.pad(video, (left, size - new_w - left, top, size - new_h - top))
    return video.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class CountingSegments(Dataset):
    """UCFRep segments for the anchor counter, from a built ``ucfrep`` dataset (its records,
    metadata index and decoder). Videos with fewer than two cycles are left out, as the
    official loader does. A sample: ``frames`` uint8 ``[L, S, S, 3]``, ``length`` L,
    ``label_pre`` / ``label_next`` (per-frame offsets to the same phase in the previous / next
    cycle, ``-1`` = none; from the ``.mat`` file, else ``cycle_offsets``) and ``count`` (test:
    the video's number of cycles)."""

    def __init__(self, videos: Dataset, train: bool, size: int, samples_per_video: int = 10,
                 max_frames: int = 300, seed: int = 0):
        records = getattr(videos, "records", None)
        if records is None or any("bounds" not in r.meta for r in records):
            raise ValueError(f"{videos!r}: the anchor counter needs UCFRep annotations (cycle "
                             "bounds per video); use recipe counting_head: density")
        self.videos, self.train, self.size, self.seed = videos, train, size, seed
        self.epoch = 0
        rng = random.Random(seed)
        self.items: list[tuple[int, int, int, float]] = []  # (record, begin, stop, count)
        for i, record in enumerate(records):
            meta = record.meta
            if len(meta["bounds"]) < 3:
                continue
            if train:
                self.items += [(i, *training_segment(meta["bounds"], meta["start"], meta["end"],
                                                     max_frames, rng))
                               for _ in range(samples_per_video)]
            else:
                self.items.append((i, meta["start"], meta["end"], len(meta["bounds"]) - 1))
        if not self.items:
            raise ValueError(f"{videos!r}: no video with at least two annotated cycles")

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def offsets(self, record) -> tuple[np.ndarray, np.ndarray]:
        meta = record.meta
        if "offsets_pre" in meta and "offsets_next" in meta:
            return np.asarray(meta["offsets_pre"]), np.asarray(meta["offsets_next"])
        pre, nxt = cycle_offsets(meta["bounds"])
        # the annotation's segment [start, end] is [b_0, b_K] on UCFRep; align anyway
        shift = meta["start"] - meta["bounds"][0]
        size = meta["end"] - meta["start"] + 1
        def window(a):
            return np.asarray([a[f + shift] if 0 <= f + shift < len(a) else -1
                               for f in range(size)])
        return window(pre), window(nxt)

    def __getitem__(self, index: int) -> dict:
        i, begin, stop, count = self.items[index]
        record = self.videos.records[i]
        try:
            available = self.videos.index(record.path).num_frames
            last = min(stop, available - 1)
            if last < begin:
                raise VideoReadError(record.path, f"segment starts at frame {begin} but the "
                                     f"video has {available} frames")
            frames = read_clip(record.path, range(begin, last + 1), backend=self.videos.backend)
        except VideoReadError as error:
            return {"bad": str(error), "index": index}
        frames = letterbox(frames, self.size)
        length = stop - begin + 1
        if len(frames) < length:  # frames missing at the end are black, as the official loader
            frames = torch.cat([frames, frames.new_zeros(length - len(frames), *frames.shape[1:])])
        if self.train:
            coin = np.random.default_rng([self.seed, self.epoch, index]).random()
            frames = frames.flip(2) if coin < 0.5 else frames
        pre, nxt = self.offsets(record)
        start = record.meta["start"]
        return {"frames": frames, "length": length, "count": float(count),
                "label_pre": torch.as_tensor(pre[begin - start: stop - start + 1]),
                "label_next": torch.as_tensor(nxt[begin - start: stop - start + 1]),
                "index": index}


def collate_segments(samples: list[dict]) -> dict:
    """Segments padded to the longest (frames with zeros, offsets with -1); unreadable ones
    dropped and counted in ``bad``. A batch with no readable segment has ``length`` empty."""
    good = [s for s in samples if "bad" not in s]
    batch = {"bad": len(samples) - len(good)}
    longest = max((s["length"] for s in good), default=0)
    frame_shape = good[0]["frames"].shape[1:] if good else (0, 0, 3)
    frames = torch.zeros(len(good), longest, *frame_shape, dtype=torch.uint8)
    pre = torch.full((len(good), longest), -1, dtype=torch.long)
    nxt = torch.full((len(good), longest), -1, dtype=torch.long)
    for b, s in enumerate(good):
        frames[b, :s["length"]] = s["frames"]
        pre[b, :s["length"]], nxt[b, :s["length"]] = s["label_pre"], s["label_next"]
    return {**batch, "frames": frames, "label_pre": pre, "label_next": nxt,
            "length": torch.tensor([s["length"] for s in good], dtype=torch.long),
            "count": torch.tensor([s["count"] for s in good], dtype=torch.float32),
            "index": torch.tensor([s["index"] for s in good], dtype=torch.long)}


class GlobalBatches(Sampler[list[int]]):
    """This rank's share of the training batches: each epoch a permutation seeded by
    ``(seed, epoch)`` is cut into global batches of ``batch_size`` (the last may be smaller),
    and rank ``r`` of ``W`` takes positions ``r, r + W, ...`` of each (possibly none of a last
    batch smaller than ``W``). Every rank yields the same number of batches; in one process
    they are the whole batches."""

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size, self.seed, self.epoch = size, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist()
        rank, world = D.get_rank(), D.get_world_size()
        for start in range(0, self.size, self.batch_size):
            yield order[start:start + self.batch_size][rank::world]


def hypothesis_rngs(seed: int, epoch: int, indices) -> list[random.Random]:
    """One generator per training sample for ``training_episode``, seeded by ``(seed, epoch,
    sample index)``: the same draws however the batch is split, and after a resume."""
    return [random.Random(int(np.random.SeedSequence([seed, epoch, int(i), 1])
                              .generate_state(1)[0])) for i in indices]


class InputBuilder:
    """Network inputs ``[B, C, T, S, S]`` of hypotheses on segments held on the device: the
    ``window_frames`` of each, normalized; positions off the segment hold ``pad_value``."""

    def __init__(self, recipe: Recipe, cfg: CounterConfig, device: torch.device):
        self.cfg, self.device, self.size = cfg, device, recipe.size
        mean, std = NORMALIZATIONS[recipe.normalize] or ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        self.mean, self.std = torch.tensor(mean, device=device), torch.tensor(std, device=device)
        self.channels = [2, 1, 0] if recipe.channel_order == "bgr" else [0, 1, 2]
        self.pad = torch.tensor(cfg.pad_value, device=device)

    def __call__(self, frames: torch.Tensor, lengths, states: list[State],
                 rows: list[int] | None = None) -> torch.Tensor:
        """``frames`` uint8 ``[B, T, S, S, C]``; ``rows[i]``: the segment of ``states[i]``."""
        if not states:  # a rank's empty share of a training batch
            return torch.zeros(0, 3, self.cfg.input_frames, self.size, self.size,
                               device=self.device)
        rows = list(range(len(states))) if rows is None else rows
        positions = torch.as_tensor(np.stack([window_frames(s, int(lengths[r]), self.cfg)
                                              for s, r in zip(states, rows)]), device=self.device)
        limits = torch.as_tensor([int(lengths[r]) for r in rows], device=self.device)[:, None]
        inside = (positions >= 0) & (positions < limits)
        row_index = torch.as_tensor(rows, device=self.device)[:, None]
        clips = frames[row_index, positions.clamp(0, frames.shape[1] - 1)].float() / 255
        clips = ((clips - self.mean) / self.std)[..., self.channels]
        clips = torch.where(inside[..., None, None, None], clips, self.pad)
        return clips.permute(0, 4, 1, 2, 3).contiguous()  # [B, T, H, W, C] -> [B, C, T, H, W]


class CounterModel(nn.Module):
    """Backbone + ``AnchorCountingHead`` on its pooled features."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = AnchorCountingHead(backbone.num_features)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.backbone.forward_features(video)["pooled"])


@torch.no_grad()
def count_dataset(model: CounterModel, dataset: CountingSegments, recipe: Recipe,
                  cfg: CounterConfig, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Unrounded predicted and true counts of every readable segment, in dataset order, and
    the bad count. Under torchrun each rank counts its shard (``D.shard``) and every rank gets
    all counts back (``D.gather_shards``)."""
    was_training = model.training
    model.eval()
    build = InputBuilder(recipe, cfg, device)
    rows, bad = [], 0  # (predicted, true) per video of this rank's shard; NaN = unreadable
    loader = DataLoader(dataset, batch_size=1, sampler=D.shard(len(dataset)),
                        num_workers=recipe.num_workers, collate_fn=collate_segments)
    for batch in loader:
        bad += batch["bad"]
        if not len(batch["length"]):
            rows.append([float("nan"), float("nan")])
            continue
        frames, lengths = batch["frames"].to(device), batch["length"]

        def predict(states, frames=frames, lengths=lengths):
            outputs = []
            for i in range(0, len(states), recipe.batch_size):
                chunk = states[i:i + recipe.batch_size]
                outputs.append(_forward(model, recipe, device,
                                        build(frames, lengths, chunk, [0] * len(chunk))))
            return {k: torch.cat([o[k] for o in outputs]).float().cpu() for k in outputs[0]}

        rows.append([count_repetitions(predict, int(lengths[0]), cfg), float(batch["count"][0])])
    model.train(was_training)
    local = torch.tensor(rows, dtype=torch.float64) if rows else None
    counts = D.gather_shards(local, len(dataset))
    readable = counts[~counts[:, 1].isnan()] if counts is not None else torch.zeros(0, 2)
    if not len(readable):
        raise ValueError(f"{dataset.videos!r}: no readable test segment")
    return readable[:, 0].float(), readable[:, 1].float(), round(D.sum_scalar(bad))


def _check_recipe(recipe: Recipe) -> None:
    """The counter trains as the official code does; refuse recipe fields it would ignore."""
    needed = {"optimizer": "adam", "schedule": "constant", "warmup_epochs": 0.0,
              "grad_clip": None, "dropout": 0.0}
    wrong = [f"{k}={getattr(recipe, k)!r} (needs {v!r})" for k, v in needed.items()
             if getattr(recipe, k) != v]
    if recipe.amp == "fp16":
        wrong.append("amp='fp16' (use 'none' or 'bf16')")
    if wrong:
        raise ValueError("the anchor counter (counting_head: anchor) trains with Adam at a "
                         "constant rate, as the official code: " + ", ".join(wrong))


def _forward(model: nn.Module, recipe: Recipe, device: torch.device, video: torch.Tensor
             ) -> dict[str, torch.Tensor]:
    """The model's outputs, under bf16 autocast if ``recipe.amp`` asks for it."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.amp == "bf16"):
        return model(video)


def finetune_counter(backbone: nn.Module, train: CountingSegments, select: CountingSegments | None,
                     test: CountingSegments, recipe: Recipe, out_dir: str | Path, *, seed: int,
                     device: str = "cpu", max_steps: int | None = None,
                     resume: str | None = None, progress: bool = True,
                     keep_checkpoints: bool = False, cfg: CounterConfig | None = None) -> dict:
    """Fine-tune ``backbone`` with the anchor counter, select on ``select`` (lowest MAE; the
    last epoch when ``None``), score ``test``. Returns what ``evaluation.finetune`` returns:
    ``metrics`` (``mae``, ``obo``), ``selected``, ``selection_score``, ``bad_samples``.

    Under torchrun every rank calls it (see the module docstring). ``resume="auto"`` (or a
    checkpoint path) continues from ``out_dir/counter.pt``, written after every epoch and
    removed at the end unless ``keep_checkpoints``."""
    _check_recipe(recipe)
    cfg = cfg or CounterConfig(input_frames=recipe.num_frames)
    out_dir, device = Path(out_dir), D.init_distributed(device)
    batch_size = _global_batch(recipe, len(train))
    torch.manual_seed(seed)
    model = CounterModel(backbone).to(device)
    if D.get_world_size() > 1:
        model = sync_batchnorm(model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr,
                                 weight_decay=recipe.weight_decay)
    state = _fresh_state()
    checkpoint = _resume_path(resume, out_dir)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state.pop("model"))
        optimizer.load_state_dict(state.pop("optimizer"))
        rngs = state.pop("rng")
        state["bad"] = state["bad"] if D.is_main_process() else 0  # saved: the sum over ranks
        set_rng_state(rngs[D.get_rank()] if len(rngs) == D.get_world_size() else rngs[0])
        if progress and D.is_main_process():
            console.print(f"counter: resumed from {checkpoint} after epoch {state['epoch']}")
    build = InputBuilder(recipe, cfg, device)
    batches = GlobalBatches(len(train), batch_size, seed)
    loader = DataLoader(train, batch_sampler=batches, num_workers=recipe.num_workers,
                        collate_fn=collate_segments)
    while not state["finished"] and state["epoch"] < recipe.epochs:
        epoch, started = state["epoch"], time.perf_counter()
        train.set_epoch(epoch)
        batches.set_epoch(epoch)
        losses = _train_epoch(model, loader, optimizer, build, recipe, cfg, device, seed, epoch,
                              state, max_steps)
        last = epoch + 1 == recipe.epochs or (max_steps is not None
                                               and state["steps"] >= max_steps)
        scores = {"mae": float("nan"), "obo": float("nan")}
        if select is not None and ((epoch + 1) % recipe.eval_every == 0 or last):
            predicted, truth, _ = count_dataset(model, select, recipe, cfg, device)
            scores = D.broadcast_object(count_metrics(predicted, truth))
            if state["best_score"] is None or scores["mae"] < state["best_score"]:
                state.update(best_score=scores["mae"], best_epoch=epoch,
                             best_model={k: v.detach().cpu().clone()
                                         for k, v in model.state_dict().items()})
        state["log"].append([epoch + 1, state["steps"], *[round(x, 6) for x in losses],
                             scores["mae"], scores["obo"],
                             round(time.perf_counter() - started, 1)])
        state.update(epoch=epoch + 1, finished=last)
        _save_state(state, model, optimizer, out_dir)
        if progress and D.is_main_process():
            console.print(f"counter epoch {epoch + 1}/{recipe.epochs}: loss {losses[0]:.4f}, "
                          f"select MAE {scores['mae']:.3f}, OBO {scores['obo']:.1f}")
    selected = {"epoch": None, "score": None, "steps": state["steps"]}
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
        selected.update(epoch=state["best_epoch"] + 1, score=state["best_score"])
    predicted, truth, test_bad = count_dataset(model, test, recipe, cfg, device)
    if not keep_checkpoints and D.is_main_process():
        (out_dir / CHECKPOINT).unlink(missing_ok=True)
    return {"metrics": count_metrics(predicted, truth), "selected": selected,
            "selection_score": selected["score"],
            "bad_samples": round(D.sum_scalar(state["bad"])) + test_bad}


CHECKPOINT = "counter.pt"
LOG_COLUMNS = ["epoch", "steps", "loss", "loss_cls", "loss_box", "select_mae", "select_obo",
               "seconds"]


def _global_batch(recipe: Recipe, train_size: int) -> int:
    """``recipe.batch_size`` (at most the training set) is the global batch; under torchrun
    each of the W ranks takes a W-th of it."""
    batch_size, world = min(recipe.batch_size, train_size), D.get_world_size()
    if batch_size % world:
        raise ValueError(f"counter batch {batch_size} (recipe.batch_size, or the number of "
                         f"training samples if smaller) does not split over {world} "
                         f"processes; use a multiple of {world}")
    return batch_size


def _train_epoch(model: CounterModel, loader: DataLoader, optimizer: torch.optim.Optimizer,
                 build: InputBuilder, recipe: Recipe, cfg: CounterConfig, device: torch.device,
                 seed: int, epoch: int, state: dict, max_steps: int | None) -> list[float]:
    """One epoch of ``training_episode`` over the batches; updates ``state`` (``steps``, this
    rank's ``bad``) and returns the mean global-batch losses (loss, loss_cls, loss_box)."""
    model.train()
    sums, episodes = np.zeros(3), 0
    for batch in loader:
        state["bad"] += batch["bad"]
        if D.sum_scalar(len(batch["length"])) == 0:  # no readable segment on any rank
            continue
        frames, lengths = batch["frames"].to(device, non_blocking=True), batch["length"]
        left = None if max_steps is None else max_steps - state["steps"]
        result = training_episode(
            partial(_forward, model, recipe, device), partial(build, frames, lengths), batch,
            optimizer, hypothesis_rngs(seed, epoch, batch["index"].tolist()), cfg,
            max_steps=left)
        state["steps"] += result["steps"]
        sums += [result["loss"], result["loss_cls"], result["loss_box"]]
        episodes += 1
        if max_steps is not None and state["steps"] >= max_steps:
            break
    return (sums / max(episodes, 1)).tolist()


def _fresh_state() -> dict:
    return {"epoch": 0, "steps": 0, "bad": 0, "finished": False, "best_score": None,
            "best_epoch": None, "best_model": None, "log": []}


def _resume_path(resume: str | None, out_dir: Path) -> Path | None:
    """``None``: start afresh; ``"auto"``: ``out_dir/counter.pt`` if it exists; else a path."""
    if resume is None:
        return None
    if resume == "auto":
        path = out_dir / CHECKPOINT
        return path if path.is_file() else None
    if not Path(resume).is_file():
        raise FileNotFoundError(f"counter checkpoint not found: {resume}")
    return Path(resume)


def _save_state(state: dict, model: nn.Module, optimizer: torch.optim.Optimizer,
                out_dir: Path) -> None:
    """Rank 0 writes ``counter.pt`` atomically (with every rank's RNG state and the bad
    samples summed over the ranks) and ``metrics.csv`` (the log so far)."""
    bad, rngs = round(D.sum_scalar(state["bad"])), [rng_state()]
    if D.is_distributed():
        rngs = [None] * D.get_world_size()
        torch.distributed.all_gather_object(rngs, rng_state())
    if not D.is_main_process():
        return
    atomic_save({**state, "bad": bad, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "rng": rngs}, out_dir / CHECKPOINT)
    with open(out_dir / "metrics.csv", "w", newline="") as handle:
        log = csv.writer(handle)
        log.writerow(LOG_COLUMNS)
        log.writerows(state["log"])


def counting_sets(splits) -> tuple[CountingSegments, CountingSegments | None, CountingSegments]:
    """(train, select, test) segment sets of an ``ExperimentSplits`` for the anchor counter:
    ``train_clips_per_video`` fixed samples per training video (seeded by the run's seed)."""
    from vidssl.evaluation.splits import subset

    e, r = splits.experiment, splits.recipe
    videos = splits.build(e.train_split, "test", 1)
    train = CountingSegments(subset(videos, splits.train_index), train=True, size=r.size,
                             samples_per_video=r.train_clips_per_video, seed=splits.seed)
    test = CountingSegments(splits.build(e.test_split, "test", 1), train=False, size=r.size)
    select = None
    if splits.select_role == "val":
        select = CountingSegments(subset(videos, splits.select_index), train=False, size=r.size)
    elif splits.select_role == "test":
        select = test
    return train, select, test
