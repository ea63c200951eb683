"""The one training loop used by pretraining and by fine-tuning in the evaluation.

``fit`` trains any ``nn.Module`` that has ``training_step(batch) -> {"loss": tensor, ...}``:

    for each optimizer step:
        for each of accum_steps micro-batches:     # DDP syncs gradients on the last one only
            loss = training_step(batch) / accum_steps; backward (fp16: scaled)
        NaN/inf guard -> clip -> optimizer step -> LR schedule -> after_optimizer_step(progress)
        log every log_every steps; checkpoint every checkpoint_every steps and at the end

Resume restores model, optimizer, scheduler, grad scaler, step, the position inside the epoch
and every RNG, so a killed run continues exactly where its last checkpoint was written.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidssl.config import TrainSettings, to_dict
from vidssl.engine import distributed as D
from vidssl.engine.batchnorm import sync_batchnorm
from vidssl.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from vidssl.engine.data import EpochSampler, SeededSamples, collate
from vidssl.engine.logging import MetricsLog, Progress, console
from vidssl.engine.optim import build_optimizer, build_scheduler


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


@dataclass
class FitResult:
    step: int
    epoch: int
    last_checkpoint: Path | None
    metrics: dict[str, float]
    seconds: float
    bad_samples: int


class _StepModule(nn.Module):
    """Routes ``forward`` to ``training_step`` so DistributedDataParallel hooks fire."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, batch: dict) -> dict:
        return self.module.training_step(batch)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _autocast(device: torch.device, amp: str):
    if amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def resolve_resume(resume: str | None, out_dir: Path) -> Path | None:
    """``auto`` -> ``out_dir/checkpoints/last.pt`` when it exists; a path must exist."""
    if not resume:
        return None
    if resume == "auto":
        last = out_dir / "checkpoints" / "last.pt"
        return last if last.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"--resume {resume}: no such checkpoint")
    return path


def fit(
    module: nn.Module,
    dataset: Dataset,
    settings: TrainSettings,
    out_dir: str | Path,
    *,
    eval_fn: Callable[[nn.Module, int], dict] | None = None,
    config: Any = None,
    checkpoint_extra: dict | None = None,
) -> FitResult:
    """Train ``module`` on ``dataset`` with ``settings``; write ``out_dir/metrics.csv`` and
    ``out_dir/checkpoints/{step_*.pt,last.pt}``. ``eval_fn(module, epoch) -> dict`` runs on every
    rank after each epoch (it may shard its work across them) and rank 0 logs its numbers
    beside the loss. Under DDP each rank trains on ``settings.batch_size`` samples per step;
    ``train.sync_bn`` normalizes over the global batch (``engine.batchnorm``)."""
    train = settings.train
    out_dir = Path(out_dir)
    device = D.init_distributed(train.device)
    rank, world = D.get_rank(), D.get_world_size()
    main = rank == 0
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA device is available")
    if train.amp == "fp16" and device.type != "cuda":
        raise ValueError("fp16 mixed precision needs CUDA; use train.amp=bf16 on CPU")
    seed_everything(train.seed + rank)

    module.to(device)
    if train.sync_bn and world > 1:
        module = sync_batchnorm(module, device)
    stepper: nn.Module = _StepModule(module)
    if world > 1:
        stepper = nn.parallel.DistributedDataParallel(
            stepper, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=train.find_unused_parameters)

    sampler = EpochSampler(len(dataset), seed=train.seed, rank=rank, world_size=world,
                           drop_last=settings.drop_last)
    micro_batches = len(sampler) // settings.batch_size if settings.drop_last else math.ceil(
        len(sampler) / settings.batch_size)
    steps_per_epoch = micro_batches // train.accum_steps
    if steps_per_epoch == 0:
        raise ValueError(
            f"dataset of {len(dataset)} samples is too small for batch {settings.batch_size} x "
            f"accum {train.accum_steps} x {world} processes")
    total_steps = train.epochs * steps_per_epoch
    if train.max_steps is not None:
        total_steps = min(total_steps, train.max_steps) if train.epochs > 0 else train.max_steps
    global_batch = settings.batch_size * train.accum_steps * world
    optimizer = build_optimizer(module, settings.optim, global_batch)
    scheduler = build_scheduler(optimizer, settings.schedule, total_steps, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=train.amp == "fp16")

    step, resumed_from = 0, resolve_resume(settings.resume, out_dir)
    if resumed_from is not None:
        state = load_checkpoint(resumed_from)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        rngs = state["rng"]
        set_rng_state(rngs[rank] if len(rngs) == world else rngs[0])
        if main:
            console.print(f"resumed from {resumed_from} at step {step}")

    log = MetricsLog(out_dir, enabled=main, resume_step=step)
    ckpt_dir = out_dir / "checkpoints"
    last_ckpt: Path | None = resumed_from
    samples = SeededSamples(dataset, train.seed)
    loader_gen = torch.Generator()

    def checkpoint() -> Path | None:
        states = _gather_rng()
        if not main:
            return None
        state = {
            "format": "vidssl", "model": module.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "step": step,
            "epoch": step // steps_per_epoch, "rng": states,
            "config": to_dict(config) if config is not None else {}, **(checkpoint_extra or {}),
        }
        return save_checkpoint(state, ckpt_dir, step, train.keep_last)

    progress = Progress(total_steps, enabled=main and settings.progress, start=step)
    started, bad_total, last_row = time.perf_counter(), 0, {}
    window_clips, window_start = 0, time.perf_counter()
    module.train()
    with progress:
        while step < total_steps:
            epoch, skip = divmod(step, steps_per_epoch)
            sampler.set_epoch(epoch, skip_samples=skip * train.accum_steps * settings.batch_size)
            samples.set_epoch(epoch)
            loader_gen.manual_seed(train.seed * 1000 + epoch)
            loader = DataLoader(
                samples, batch_size=settings.batch_size, sampler=sampler, collate_fn=collate,
                num_workers=settings.num_workers, drop_last=settings.drop_last,
                pin_memory=device.type == "cuda", generator=loader_gen,
                persistent_workers=False)
            epoch_bad, batches = 0, iter(loader)
            while step < total_steps and step // steps_per_epoch == epoch:
                outputs, clips = [], 0
                for micro in range(train.accum_steps):
                    batch = _to_device(next(batches), device)
                    epoch_bad += int(batch.pop("bad").sum()) if "bad" in batch else 0
                    clips += _batch_len(batch)
                    sync = micro == train.accum_steps - 1 or world == 1
                    with (nullcontext() if sync else stepper.no_sync()), _autocast(device, train.amp):
                        out = stepper(batch)
                    scaler.scale(out["loss"] / train.accum_steps).backward()
                    outputs.append({k: v.detach().float() for k, v in out.items()})
                loss = torch.stack([o["loss"] for o in outputs]).mean()
                if not _finite_everywhere(loss):
                    raise TrainingDiverged(
                        f"loss is {loss.item()} at step {step + 1}; stopping. The last good "
                        f"checkpoint is {last_ckpt or 'none (no checkpoint written yet)'}.")
                if train.grad_clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(module.parameters(), train.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                step += 1
                if hasattr(module, "after_optimizer_step"):
                    module.after_optimizer_step(step / total_steps)
                window_clips += clips * world
                progress.advance(loss.item())
                if step % train.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    row = {"step": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                           **_mean_over_global_batch(outputs),
                           "clips_per_s": window_clips / max(1e-9, now - window_start)}
                    log.write(row)
                    last_row = row
                    window_clips, window_start = 0, now
                if train.checkpoint_every and step % train.checkpoint_every == 0 and step < total_steps:
                    last_ckpt = checkpoint() or last_ckpt
            bad_total += _sum_across_ranks(epoch_bad, device)
            if main and epoch_bad:
                console.print(f"epoch {epoch}: {epoch_bad} bad samples were replaced by others")
            epoch_done = step % steps_per_epoch == 0
            if eval_fn is not None and epoch_done:  # every rank: eval_fn may shard its work
                module.eval()
                metrics = eval_fn(module, epoch)
                module.train()
                log.write({"step": step, "epoch": epoch, **metrics})
                last_row = {**last_row, **metrics}
            D.barrier()
    last_ckpt = checkpoint() or last_ckpt
    D.barrier()  # every rank leaves together: none exits while another still talks to it
    seconds = time.perf_counter() - started
    log.close()
    if main and settings.progress:
        console.print(f"done: {step} steps in {seconds:.1f}s, loss {last_row.get('loss', float('nan')):.4f}"
                      f", checkpoint {last_ckpt}")
    return FitResult(step=step, epoch=step // steps_per_epoch, last_checkpoint=last_ckpt,
                     metrics=last_row, seconds=seconds, bad_samples=bad_total)


def _mean_over_global_batch(outputs: list[dict]) -> dict[str, float]:
    """Each logged scalar averaged over the micro-batches and then over the ranks (equal
    per-rank batches), i.e. its mean over the global batch, as one process would log it."""
    keys = list(outputs[0])
    means = torch.stack([torch.stack([o[k] for o in outputs]).mean() for k in keys])
    return dict(zip(keys, D.all_reduce(means, op="mean").tolist(), strict=True))


def _batch_len(batch: dict) -> int:
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            return value.shape[0]
    return 0


def _finite_everywhere(loss: torch.Tensor) -> bool:
    flag = torch.tensor([float(torch.isfinite(loss))], device=loss.device)
    return bool(D.all_reduce(flag, op="sum").item() == D.get_world_size())


def _sum_across_ranks(value: int, device: torch.device) -> int:
    return round(D.all_reduce(torch.tensor([float(value)], device=device)).item())


def _gather_rng() -> list[dict]:
    state = rng_state()
    if not D.is_distributed():
        return [state]
    states: list = [None] * D.get_world_size()
    torch.distributed.all_gather_object(states, state)
    return states
