"""The pretraining monitor: weighted kNN on frozen pooled features."""
import torch
from torch import nn

from vidssl.evaluation.monitor import knn_monitor, knn_predict, knn_probe

torch.set_num_threads(1)


class MeanColour(nn.Module):
    """Stand-in backbone: pooled feature = mean colour (plus a constant), so kNN is exact."""

    num_features = 4

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward_features(self, x):
        pooled = x.mean(dim=(2, 3, 4)) * self.scale
        return {"pooled": torch.cat([pooled, torch.ones(len(x), 1)], dim=1)}


class ColourDataset(torch.utils.data.Dataset):
    def __init__(self, count: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(3, (count,), generator=g)
        colours = torch.eye(3) * 2 - 0.5
        self.videos = colours[self.labels].view(count, 3, 1, 1, 1) + 0.2 * torch.randn(
            count, 3, 2, 4, 4, generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"video": self.videos[index], "label": int(self.labels[index]), "index": index}


def test_knn_probe_and_monitor():
    train, test = ColourDataset(30, 0), ColourDataset(12, 1)
    assert knn_probe(MeanColour(), train, test, k=5) == 1.0
    module = nn.Module()
    module.backbone = MeanColour()
    assert knn_monitor(train, test, k=5)(module, 0) == {"knn_acc": 1.0}
    features = torch.eye(3)
    predictions = knn_predict(features, torch.tensor([0, 1, 2]), torch.eye(3)[[2, 0]], k=1)
    assert predictions.tolist() == [2, 0]
