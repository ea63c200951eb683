"""Sample-size subsets and train/val carve-outs, seeded and class-balanced.

SEVERE's sample-size factor (``datasets/utils.py:get_subset_data``) keeps
``ceil(N / num_classes)`` videos of every class (all videos of a smaller class), so
``N = 1000`` on UCF101 (101 classes) gives ``101 * 10 = 1010`` videos.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

SEVERE_SUBSET_SEED = 99999  # the seed of SEVERE's subset RNG


def _by_class(targets: Sequence[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for index, target in enumerate(targets):
        groups[int(target)].append(index)
    return dict(sorted(groups.items()))


def balanced_subset(
    targets: Sequence[int],
    num_samples: int,
    seed: int = SEVERE_SUBSET_SEED,
    num_classes: int | None = None,
) -> list[int]:
    """Indices of SEVERE's class-balanced subset (``datasets/utils.py:get_subset_data``).

    ``k = ceil(num_samples / C)`` with ``C`` = ``num_classes``, by default the number of
    distinct targets (``len(set(annotations))``). One ``np.random.RandomState(seed)`` visits
    the classes in ascending order and draws ``choice(n_c, min(k, n_c), replace=False)``
    positions among class ``c``'s videos, in list order; a class with ``n_c <= k`` videos
    is kept whole. The default seed (99999) gives exactly SEVERE's fixed subset; another seed
    gives a per-seed subset drawn the same way. The result is sorted.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    groups = _by_class(targets)
    per_class = math.ceil(num_samples / (num_classes or len(groups)))
    random_state = np.random.RandomState(seed)
    chosen = []
    for members in groups.values():
        picked = random_state.choice(len(members), min(per_class, len(members)), replace=False)
        chosen.extend(members[i] for i in picked)
    return sorted(chosen)


def random_subset(size: int, num_samples: int, seed: int = SEVERE_SUBSET_SEED) -> list[int]:
    """``min(num_samples, size)`` indices drawn without replacement (unlabelled or
    multi-label data, where classes cannot be balanced), sorted."""
    rng = np.random.default_rng(seed)
    return sorted(rng.permutation(size)[:num_samples].tolist())


def split_train_val(
    dataset_targets, val_fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Carve a validation set out of a training split for model selection.

    Integer targets are stratified: each class gives ``round(n_c * val_fraction)`` videos
    to validation, keeping at least one for training. Other targets (multi-hot rows,
    counts) are split at random, ``round(N * val_fraction)`` to validation. Returns sorted
    ``(train_indices, val_indices)``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    targets = list(dataset_targets)
    if all(isinstance(t, (int, np.integer)) for t in targets):
        val = []
        for members in _by_class(targets).values():
            take = min(round(len(members) * val_fraction), len(members) - 1)
            val.extend(members[i] for i in rng.permutation(len(members))[:take])
    else:
        val = rng.permutation(len(targets))[: round(len(targets) * val_fraction)].tolist()
    val_set = set(val)
    return [i for i in range(len(targets)) if i not in val_set], sorted(val_set)
