"""Metrics against hand-computed values, view merging, and the tasks' scoring."""
import pytest
import torch

from vidssl.evaluation import metrics
from vidssl.evaluation.tasks import ArrowOfTimeDataset, build_task

torch.set_num_threads(1)


def test_top1_and_mean_class_accuracy_by_hand():
    # predictions: 0, 0, 1, 1, 2 ; labels: 0, 1, 1, 1, 0
    scores = torch.tensor([[.9, .1, 0], [.6, .4, 0], [.2, .7, .1], [.1, .8, .1], [.1, .2, .7]])
    labels = torch.tensor([0, 1, 1, 1, 0])
    assert metrics.top1_accuracy(scores, labels) == pytest.approx(3 / 5)
    # class 0: 1 of 2 right; class 1: 2 of 3 right -> (1/2 + 2/3) / 2
    assert metrics.mean_class_accuracy(scores, labels) == pytest.approx((0.5 + 2 / 3) / 2)


def test_average_precision_by_hand():
    # ranking by score: pos, neg, pos, neg, pos -> precisions at hits 1, 2/3, 3/5
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    positives = torch.tensor([1, 0, 1, 0, 1])
    expected = (1 + 2 / 3 + 3 / 5) / 3
    assert metrics.average_precision(scores, positives) == pytest.approx(expected)


def test_average_precision_groups_tied_scores():
    # both samples share one threshold: precision 1/2 at recall 1 (scikit-learn gives 0.5)
    assert metrics.average_precision(torch.tensor([0.5, 0.5]), torch.tensor([1, 0])) == 0.5


def test_mean_average_precision_skips_classes_without_positives():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.6, 0.7, 0.2]])
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 1, 0]])  # class 2 has no positive
    # class 0: ranking 0.9(pos) 0.6 0.2 -> AP 1; class 1: 0.8(pos) 0.7(pos) 0.1 -> AP 1
    assert metrics.mean_average_precision(scores, targets) == pytest.approx(1.0)
    targets = torch.tensor([[0, 0, 0], [1, 1, 0], [0, 1, 0]])
    # class 0: ranking 0.9, 0.6, 0.2(pos) -> AP 1/3; class 1 -> 1
    assert metrics.mean_average_precision(scores, targets) == pytest.approx((1 / 3 + 1) / 2)


def test_counting_metrics_by_hand():
    predicted = torch.tensor([4.4, 2.0, 9.0, 5.6])
    counts = torch.tensor([4, 4, 10, 4])
    # |0.4|/4 + 2/4 + 1/10 + 1.6/4 = 0.1 + 0.5 + 0.1 + 0.4 -> mean 0.275
    assert metrics.normalized_count_error(predicted, counts) == pytest.approx(0.275)
    # rounded: 4, 2, 9, 6 -> off by 0, 2, 1, 2 -> 2 of 4 within one
    assert metrics.off_by_one_accuracy(predicted, counts) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="positive"):
        metrics.normalized_count_error(predicted, torch.tensor([0, 1, 1, 1]))


def test_view_merging_rules():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 4.0]]])  # one video, two views
    softmax = logits.softmax(-1).mean(1)
    assert torch.allclose(metrics.average_softmax(logits), softmax)
    assert torch.allclose(metrics.max_sigmoid(logits), torch.sigmoid(torch.tensor([[2.0, 4.0]])))
    assert torch.allclose(metrics.average_views(torch.tensor([[3.0, 5.0]])), torch.tensor([4.0]))


def test_task_scores_are_in_report_units():
    classification = build_task("classification")
    scores = classification.score(torch.eye(3), torch.tensor([0, 1, 1]))
    assert scores == pytest.approx({"top1": 200 / 3, "mean_class": 75.0})
    counting = build_task("counting")
    assert counting.score(torch.tensor([3.0, 6.0]), torch.tensor([3.0, 4.0])) == pytest.approx(
        {"mae": 0.25, "obo": 50.0})
    assert not counting.higher_is_better


class _Clips(torch.utils.data.Dataset):
    num_classes = 5

    def __len__(self):
        return 10

    def __getitem__(self, i):
        video = torch.arange(4.0).view(1, 4, 1, 1).expand(3, 4, 2, 2) + i
        return {"video": video, "label": i % 5, "index": i}


def test_arrow_of_time_reverses_a_fixed_balanced_half_in_evaluation():
    data = ArrowOfTimeDataset(_Clips(), train=False, seed=3)
    labels = [data[i]["label"] for i in range(len(data))]
    assert sum(labels) == 5
    for i in range(len(data)):
        time_axis = data[i]["video"][0, :, 0, 0]
        expected = torch.arange(4.0) + i
        assert torch.equal(time_axis, expected.flip(0) if labels[i] else expected)
    again = ArrowOfTimeDataset(_Clips(), train=False, seed=3)
    assert [again[i]["label"] for i in range(10)] == labels
    other = ArrowOfTimeDataset(_Clips(), train=False, seed=4)
    assert [other[i]["label"] for i in range(10)] != labels


def test_arrow_of_time_training_draws_a_coin_per_access():
    data = ArrowOfTimeDataset(_Clips(), train=True, seed=0)
    torch.manual_seed(0)
    labels = [data[0]["label"] for _ in range(200)]
    assert 60 < sum(labels) < 140
