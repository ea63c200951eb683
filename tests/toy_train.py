"""A tiny training job through ``vidssl.engine.fit`` used by the engine tests (run as a script,
also under torchrun)."""
from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

from vidssl.config import OptimConfig, ScheduleConfig, TrainConfig, TrainSettings
from vidssl.engine import fit
from vidssl.engine.distributed import shutdown


class ToyClips(torch.utils.data.Dataset):
    """Sample ``i``: a fixed random clip plus a random flip (randomness seeded by the engine)."""

    def __len__(self):
        return 64

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        clip = torch.randn(3, 4, 6, 6, generator=g)
        if torch.rand(()) < 0.5:
            clip = clip.flip(-1)
        return {"video": clip, "label": index % 3, "index": index}


class ToyModel(nn.Module):
    def __init__(self, dropout: float, nan_at: int | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1),
                                 nn.Flatten(), nn.Dropout(dropout), nn.Linear(4, 3))
        self.nan_at, self.calls = nan_at, 0

    def training_step(self, batch):
        self.calls += 1
        time.sleep(float(os.environ.get("TOY_STEP_SLEEP", "0")))
        loss = nn.functional.cross_entropy(self.net(batch["video"]), batch["label"])
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return {"loss": loss, "acc": (self.net(batch["video"]).argmax(1) == batch["label"]).float().mean()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--checkpoint-every", type=int, default=2)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--nan-at", type=int, default=None)
    parser.add_argument("--optim", default="sgd")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ToyModel(args.dropout, args.nan_at)
    settings = TrainSettings(
        optim=OptimConfig(name=args.optim, lr=0.1, weight_decay=1e-3),
        schedule=ScheduleConfig(name="cosine", warmup_steps=2),
        train=TrainConfig(epochs=100, max_steps=args.steps, checkpoint_every=args.checkpoint_every,
                          log_every=1, seed=3, accum_steps=args.accum, keep_last=2),
        batch_size=args.batch, num_workers=0, resume=args.resume, progress=False)
    fit(model, ToyClips(), settings, args.out)
    shutdown()


if __name__ == "__main__":
    main()
