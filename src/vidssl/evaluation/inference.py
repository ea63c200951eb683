"""Running a network over every clip of a multi-view dataset, and frozen-feature extraction."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidssl.engine import distributed as D
from vidssl.evaluation.tasks import Task


def _progress(total: int, label: str, enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from vidssl.engine.logging import console

    return Progress(TextColumn(f"  {label}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=console, transient=True, disable=not enabled)


@torch.no_grad()
def run_over_views(fn: Callable[[torch.Tensor], torch.Tensor], dataset: Dataset, task: Task, *,
                   clips_per_batch: int, device: torch.device | str, num_workers: int = 0,
                   label: str = "inference", progress: bool = True
                   ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Apply ``fn`` to every clip: videos ``[B,V,C,T,H,W]`` (or ``[B,C,T,H,W]``, V = 1) are
    flattened to ``[B*V,C,T,H,W]``, outputs regrouped as ``[N, V, ...]`` on the CPU. A batch
    holds ``clips_per_batch // V`` videos (at least one).

    Under torchrun the videos are sharded (rank ``r`` runs ``r, r + W, ...``, no padding) and
    the outputs gathered back in dataset order on every rank, so each video counts once and
    the result equals the single-process one.

    Returns ``(outputs [N,V,...], targets [N,...], bad_samples)``.
    """
    if len(dataset) == 0:
        raise ValueError(f"{label}: the dataset is empty")
    device = torch.device(device)
    first = dataset[0]["video"]
    views = first.shape[0] if first.dim() == 5 else 1
    loader = DataLoader(dataset, batch_size=max(1, clips_per_batch // views),
                        sampler=D.shard(len(dataset)), num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    outputs, targets, bad = [], [], 0
    with _progress(len(loader), label, progress and D.is_main_process()) as bar:
        job = bar.add_task(label, total=len(loader))
        for batch in loader:
            video = batch["video"]
            if video.dim() == 5:
                video = video[:, None]
            n, v = video.shape[:2]
            out = fn(video.flatten(0, 1).to(device, non_blocking=True).float())
            outputs.append(out.float().cpu().unflatten(0, (n, v)))
            targets.append(task.target(batch).cpu())
            if "bad" in batch:
                bad += int(torch.as_tensor(batch["bad"]).sum())
            bar.advance(job)
    size = len(dataset)
    outputs = D.gather_shards(torch.cat(outputs) if outputs else None, size)
    targets = D.gather_shards(torch.cat(targets) if targets else None, size)
    return outputs, targets, round(D.sum_scalar(bad))


def extract_features(backbone: nn.Module, dataset: Dataset, task: Task, *, clips_per_batch: int,
                     device, num_workers: int = 0, label: str = "features", progress: bool = True
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Frozen features ``task.features(backbone.forward_features(clip))`` of every clip, with the
    backbone in eval mode: ``(features [N,V,...], targets, bad_samples)``."""
    was_training = backbone.training
    backbone.eval().to(device)
    grid = getattr(backbone, "grid_size", None)
    try:
        return run_over_views(lambda x: task.features(backbone.forward_features(x), grid), dataset,
                              task, clips_per_batch=clips_per_batch, device=device,
                              num_workers=num_workers, label=label, progress=progress)
    finally:
        backbone.train(was_training)
