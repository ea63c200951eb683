"""Online monitoring of pretraining: a weighted kNN probe (Wu et al. 2018) on frozen, pooled,
L2-normalized backbone features, as ``eval_fn`` for ``vidssl.engine.fit`` (``knn_monitor``)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


@torch.no_grad()
def extract_pooled_features(backbone: nn.Module, dataset: Dataset, batch_size: int = 16,
                     device: torch.device | str | None = None, num_workers: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalized pooled features ``[N,D]`` and integer labels ``[N]`` of a labelled
    dataset (``video`` ``[C,T,H,W]``, or ``[V,C,T,H,W]`` whose views are averaged)."""
    device = torch.device(device) if device is not None else next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()
    features, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        video = batch["video"].to(device)
        views = video.shape[1] if video.dim() == 6 else 1
        pooled = backbone.forward_features(video.flatten(0, 1) if views > 1 else video)["pooled"]
        features.append(F.normalize(pooled.float().view(len(video), views, -1).mean(1), dim=1))
        label = torch.as_tensor(batch["label"])
        if label.dim() != 1 or label.is_floating_point():
            raise ValueError("kNN probe needs single-label integer 'label' samples")
        labels.append(label)
    backbone.train(was_training)
    return torch.cat(features).cpu(), torch.cat(labels)


def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor,
                test_features: torch.Tensor, k: int = 20, temperature: float = 0.07,
                num_classes: int | None = None) -> torch.Tensor:
    """Weighted kNN (Wu et al. 2018): each of the ``k`` nearest training features (cosine)
    votes for its class with weight ``exp(s / tau)``; returns predicted labels."""
    num_classes = num_classes or int(train_labels.max()) + 1
    k = min(k, len(train_features))
    similarity, index = (test_features @ train_features.T).topk(k, dim=1)
    votes = torch.zeros(len(test_features), num_classes)
    votes.scatter_add_(1, train_labels[index], (similarity / temperature).exp())
    return votes.argmax(dim=1)


def knn_probe(backbone: nn.Module, train_dataset: Dataset, test_dataset: Dataset, k: int = 20,
              temperature: float = 0.07, batch_size: int = 16,
              device: torch.device | str | None = None) -> float:
    """Top-1 accuracy of a weighted kNN classifier on frozen backbone features."""
    train_features, train_labels = extract_pooled_features(backbone, train_dataset, batch_size, device)
    test_features, test_labels = extract_pooled_features(backbone, test_dataset, batch_size, device)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    predictions = knn_predict(train_features, train_labels, test_features, k, temperature,
                              num_classes)
    return float((predictions == test_labels).float().mean())


def knn_monitor(train_dataset: Dataset, test_dataset: Dataset, k: int = 20,
                temperature: float = 0.07, batch_size: int = 16
                ) -> Callable[[nn.Module, int], dict]:
    """``eval_fn(module, epoch) -> {"knn_acc": ...}`` for ``vidssl.engine.fit``: kNN accuracy
    of ``module.backbone`` on a held-out labelled set after each epoch."""
    def evaluate(module: nn.Module, epoch: int) -> dict:
        return {"knn_acc": knn_probe(module.backbone, train_dataset, test_dataset, k,
                                     temperature, batch_size)}
    return evaluate
