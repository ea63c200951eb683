from collections import Counter

import pytest
import torch

from vidssl.data.subsets import balanced_subset, random_subset, split_train_val


def ucf_like_targets():
    """101 classes of 70..130 videos (UCF101-sized), plus one tiny class of 4."""
    targets = [c for c in range(101) for _ in range(70 + (c * 7) % 61)]
    return targets + [101] * 4


def test_severe_1000_samples_of_101_classes_gives_1010_videos():
    targets = [c for c in range(101) for _ in range(70 + (c * 7) % 61)]
    subset = balanced_subset(targets, 1000)
    assert len(subset) == 1010
    assert set(Counter(targets[i] for i in subset).values()) == {10}
    assert subset == sorted(set(subset))


def test_smaller_classes_are_kept_whole_and_subsets_are_seeded():
    targets = ucf_like_targets()  # 102 classes -> ceil(1000 / 102) = 10 per class
    subset = balanced_subset(targets, 1000)
    counts = Counter(targets[i] for i in subset)
    assert counts[101] == 4 and len(subset) == 101 * 10 + 4
    assert subset == balanced_subset(targets, 1000)
    assert subset != balanced_subset(targets, 1000, seed=1)
    assert len(balanced_subset(targets, 1000, num_classes=200)) == 101 * 5 + 4


def test_random_subset_and_errors():
    picked = random_subset(50, 10, seed=3)
    assert len(picked) == 10 == len(set(picked)) and picked == sorted(picked)
    assert random_subset(5, 10) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        balanced_subset([0, 1], 0)


def test_split_train_val_is_stratified_disjoint_and_seeded():
    targets = [c for c in range(5) for _ in range(20)] + [5]  # class 5 has one video
    train, val = split_train_val(targets, 0.2, seed=0)
    assert sorted(train + val) == list(range(len(targets))) and not set(train) & set(val)
    counts = Counter(targets[i] for i in val)
    assert all(counts[c] == 4 for c in range(5)) and counts[5] == 0
    assert (train, val) == split_train_val(targets, 0.2, seed=0)
    assert val != split_train_val(targets, 0.2, seed=1)[1]


def test_split_train_val_of_multilabel_targets_is_random():
    targets = torch.zeros(30, 4)
    targets[:, 1] = 1
    train, val = split_train_val(targets, 0.1, seed=0)
    assert len(val) == 3 and len(train) == 27
    with pytest.raises(ValueError):
        split_train_val([0, 1], 1.0)
