"""Sampling machinery of the loop: a resumable distributed sampler and per-sample seeding."""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

collate = default_collate


class EpochSampler(Sampler[int]):
    """Shuffled indices for one rank: permutation ``randperm(n, seed + epoch)``, trimmed (or
    padded) to a multiple of ``world_size``, then ``perm[rank::world_size]``.

    With one process and batch ``world_size * b`` a step sees exactly the union of the samples
    the ranks see with batch ``b`` (DistributedSampler's rule). ``set_epoch(e, skip_samples=k)``
    drops this rank's first ``k`` indices, which is how a resumed run continues mid-epoch.
    """

    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True):
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.drop_last = drop_last
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_samples: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_samples

    def _per_rank(self) -> int:
        if self.drop_last:
            return self.size // self.world_size
        return -(-self.size // self.world_size)

    def __len__(self) -> int:
        return max(0, self._per_rank() - self.skip)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        total = self._per_rank() * self.world_size
        order = (order * (1 + total // max(1, self.size)))[:total]
        return iter(order[self.rank::self.world_size][self.skip:])


class SeededSamples(Dataset):
    """Makes every sample's randomness a function of ``(seed, epoch, index)`` only.

    Loading sample ``i`` seeds torch, NumPy and ``random`` from ``(seed, epoch, i)`` inside a
    forked RNG scope, so augmentations are identical whichever worker loads the sample, in which
    order, and whether the run was resumed, and the caller's RNG streams are left untouched.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        sample_seed = hash((self.seed, self.epoch, int(index))) % 2**62
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed)
            random.seed(sample_seed)
            np.random.seed(sample_seed % 2**32)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
