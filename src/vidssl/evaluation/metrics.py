"""Metrics of the SEVERE tasks, and how multi-clip test views are merged into one prediction.

Every metric takes plain tensors (``scores [N, K]``, targets) and returns a Python float in
[0, 1] (accuracies, mAP) or a non-negative ratio (counting error). Tasks convert to the units
the papers report (percent for accuracy and mAP).
"""
from __future__ import annotations

import torch


def _check_rows(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{name}: {a.shape[0]} predictions but {b.shape[0]} targets")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: no samples to score")


def top1_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose highest score is the true class: mean(argmax_k s_nk == y_n)."""
    _check_rows("top1_accuracy", scores, labels)
    return (scores.argmax(dim=1) == labels.long()).double().mean().item()


def mean_class_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over the classes present in ``labels`` of the per-class recall.

    ``(1/|C|) sum_c |{n : y_n = c, argmax s_n = c}| / |{n : y_n = c}|`` (SEVERE's
    "Video@MeanTop1"); insensitive to class imbalance, unlike top-1.
    """
    _check_rows("mean_class_accuracy", scores, labels)
    labels = labels.long()
    correct = (scores.argmax(dim=1) == labels).double()
    classes = labels.unique()
    per_class = [correct[labels == c].mean() for c in classes]
    return torch.stack(per_class).mean().item()


def average_precision(scores: torch.Tensor, positives: torch.Tensor) -> float:
    """Average precision of one class: ``AP = sum_i (R_i - R_{i-1}) P_i``.

    Precision ``P_i`` and recall ``R_i`` are taken at each distinct score threshold, from the
    highest down (equal scores enter together), as scikit-learn's ``average_precision_score``.
    """
    positives = positives.bool()
    num_positive = int(positives.sum())
    if num_positive == 0:
        raise ValueError("average_precision: the class has no positive sample")
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_scores = scores[order]
    hits = positives[order].double()
    true_pos = hits.cumsum(0)
    # last position of each run of equal scores = one threshold
    last_of_run = torch.ones_like(sorted_scores, dtype=torch.bool)
    last_of_run[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    true_pos = true_pos[last_of_run]
    predicted_pos = torch.arange(1, len(scores) + 1, dtype=torch.float64)[last_of_run]
    precision = true_pos / predicted_pos
    recall = true_pos / num_positive
    recall_step = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((recall_step * precision).sum())


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """mAP over classes for multi-label scores ``[N, K]`` and multi-hot targets ``[N, K]``.

    Classes without any positive test sample are skipped (their AP is undefined), as in the
    Charades evaluation of PySlowFast that SEVERE uses.
    """
    _check_rows("mean_average_precision", scores, targets)
    if scores.shape != targets.shape:
        raise ValueError(
            f"mean_average_precision: scores {tuple(scores.shape)} vs targets "
            f"{tuple(targets.shape)}"
        )
    present = targets.bool().any(dim=0)
    if not present.any():
        raise ValueError("mean_average_precision: no class has a positive sample")
    aps = [average_precision(scores[:, k], targets[:, k]) for k in torch.nonzero(present)[:, 0]]
    return sum(aps) / len(aps)


def normalized_count_error(predicted: torch.Tensor, counts: torch.Tensor) -> float:
    """Counting MAE normalized by the true count: ``mean_n |c_hat_n - c_n| / c_n`` (lower is
    better), the "UCF-RC" error of SEVERE and Deep-Temporal-Repetition-Counting."""
    _check_rows("normalized_count_error", predicted, counts)
    counts = counts.double()
    if (counts <= 0).any():
        raise ValueError("normalized_count_error: true counts must be positive")
    return ((predicted.double() - counts).abs() / counts).mean().item()


def rounded_count_error(predicted: torch.Tensor, counts: torch.Tensor) -> float:
    """The UCF-RC error as SEVERE reports it: ``mean_n |round(c_hat_n) - c_n| / c_n``, the
    predicted count rounded first (half to even, as Python's ``round`` in ``val_2stream.py``)."""
    return normalized_count_error(predicted.double().round(), counts)


def off_by_one_accuracy(predicted: torch.Tensor, counts: torch.Tensor) -> float:
    """Fraction of videos whose rounded predicted count is within one of the true count:
    ``mean_n [ |round(c_hat_n) - c_n| <= 1 ]`` (OBOA)."""
    _check_rows("off_by_one_accuracy", predicted, counts)
    return ((predicted.double().round() - counts.double()).abs() <= 1).double().mean().item()


def average_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Merge test views ``[N, V, K]`` of a single-label classifier: mean of softmax over V."""
    return logits.float().softmax(dim=-1).mean(dim=1)


def max_sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """Merge test views ``[N, V, K]`` of a multi-label classifier: max of sigmoid over V
    (PySlowFast's ``ENSEMBLE_METHOD: max``, which SEVERE uses for Charades)."""
    return logits.float().sigmoid().amax(dim=1)


def average_views(outputs: torch.Tensor) -> torch.Tensor:
    """Merge test views ``[N, V, ...]`` of a regressor: the mean over V."""
    return outputs.float().mean(dim=1)
