"""SEVERE's UCF-RC counter (Zhang et al. 2020): labels, decoding, inference loop, metric, and a
fine-tuning run on an official-format UCFRep fixture."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import scipy.io
import torch
import yaml
from PIL import Image

from vidssl.evaluation import counting
from vidssl.evaluation.counting import (
    ANCHORS,
    CounterConfig,
    anchor_targets,
    best_anchor,
    count_metrics,
    count_repetitions,
    counter_loss,
    cycle_offsets,
    initial_state,
    training_segment,
    window_frames,
)
from vidssl.evaluation.counting_protocol import CountingSegments, letterbox

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- labels
def test_cycle_offsets_follow_the_interpolation_rule():
    pre, nxt = cycle_offsets([0, 10, 22, 33])  # cycles of 10, 12, 11 frames
    assert len(pre) == len(nxt) == 34
    assert nxt[0] == 10 and nxt[5] == 11  # 5/10 of the way: 5 + 12 * 0.5 -> 11 frames on
    assert pre[16] == 11                  # 6/12 into cycle 1: 16 - 10 * 0.5 -> 11 frames back
    assert (pre[:10] == -1).all() and pre[10] == 10  # a boundary frame opens the later cycle
    assert (nxt[22:] == -1).all() and nxt[21] != -1  # the last cycle has no next one
    pre, nxt = cycle_offsets([0, 10, 16])  # 10 vs 6 frames: too irregular to interpolate
    assert (nxt == -1).all() and (pre == -1).all()


def test_anchor_targets_by_hand():
    offsets = [9] * 20  # true cycle: 10 frames
    classes, boxes = anchor_targets(offsets, 5, 4, 20)
    # anchors x 4 = 2, 2.68, 3.2, 4, 5, 6, 8 -> IoU .2 .27 .32 .4 .5 .6 .8
    assert classes == [0, 0, 0, 0, 1, 1, 1]
    assert boxes[:4] == [None] * 4
    assert boxes[4:] == pytest.approx([math.log(10 / 5), math.log(10 / 6), math.log(10 / 8)])
    assert anchor_targets(offsets, 20, 4, 20) == ([-1] * 7, [None] * 7)  # off the segment
    assert anchor_targets([-1] * 20, 3, 4, 20)[0] == [-1] * 7            # undefined offset


def test_counter_loss_ignores_and_averages_like_the_official_code():
    outputs = {"cls_pre": torch.zeros(1, 2, 7), "cls_next": torch.zeros(1, 2, 7),
               "box_pre": torch.zeros(1, 7), "box_next": torch.zeros(1, 7)}
    nan = math.nan
    targets = {"cls_pre": torch.tensor([[1, 0, -1, -1, -1, -1, -1]]),
               "cls_next": torch.full((1, 7), -1),
               "box_pre": torch.tensor([[0.5, nan, nan, nan, nan, nan, nan]]),
               "box_next": torch.full((1, 7), nan)}
    losses = counter_loss(outputs, targets)
    # CE of uniform 2-way logits = log 2 (head "next" all ignored: 0); SmoothL1(0, .5) = .125
    # summed over positives and divided by all 7 anchors
    assert float(losses["loss_cls"]) == pytest.approx(math.log(2))
    assert float(losses["loss_box"]) == pytest.approx(0.125 / 7)
    assert float(losses["loss"]) == pytest.approx(math.log(2) + 50 * 0.125 / 7)


# ----------------------------------------------------------------------------- decoding
def test_best_anchor_decodes_ratio_of_the_most_confident_anchor():
    cls = torch.zeros(1, 2, 7)
    cls[0, 1, 2] = 3.0  # anchor 0.8 is the most confident
    cls[0, 1, 3] = 1.0
    box = torch.zeros(1, 7)
    box[0, 2] = math.log(1.1)
    score, ratio = best_anchor(cls, box)
    assert float(score) == pytest.approx(1 / (1 + math.exp(-3)))
    assert float(ratio) == pytest.approx(0.8 * 1.1)
    box[0, 2] = 1.0  # clamped to +0.5 at inference, +2 in training
    assert float(best_anchor(cls, box)[1]) == pytest.approx(0.8 * math.exp(0.5))
    assert float(best_anchor(cls, box, clamp=2.0)[1]) == pytest.approx(0.8 * math.e)
    score, ratio = best_anchor(cls, box, only=3)  # the search uses the unit anchor only
    assert float(score) == pytest.approx(1 / (1 + math.exp(-1))) and float(ratio) == 1.0


def test_window_frames_by_hand():
    # left: 16 positions over [10 - 10, 19]; right: over [20, 29 + 10]; round half to even
    left = [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18, 19]
    assert window_frames((10, 19, 29), 100).tolist() == left + [p + 20 for p in left]
    assert window_frames((2, 5, 9), 100)[0] == -2  # context before the segment: padding
    assert len(window_frames((10, 19, 29), 100, CounterConfig(input_frames=8))) == 8


def test_count_metrics_round_the_count_first():
    predicted = torch.tensor([9.6, 12.5, 3.0, 0.4])
    truth = torch.tensor([10.0, 10.0, 5.0, 1.0])
    # rounded 10, 12 (half to even), 3, 0 -> errors 0, .2, .4, 1 -> MAE .4 (unrounded: .3225)
    # within one: yes, no, no, yes -> 50%
    assert count_metrics(predicted, truth) == pytest.approx({"mae": 0.4, "obo": 50.0})


def _oracle(period: float, calls: list | None = None):
    """A perfect cycle-length predictor: every anchor scores ``-10 |log(r / a_k)|`` and
    regresses ``log(r / a_k)`` exactly, with ``r = period / hypothesised length``."""
    anchors = torch.tensor(ANCHORS)

    def head(length):
        ratio = period / max(length, 1e-3)
        cls = torch.zeros(2, 7)
        cls[1] = -10 * (math.log(ratio) - anchors.log()).abs()
        return cls, math.log(ratio) - anchors.log()

    def predict(states):
        if calls is not None:
            calls.append(len(states))
        out = {"cls_pre": [], "box_pre": [], "cls_next": [], "box_next": []}
        for lp, mp, rp in states:
            for name, length in (("pre", mp - lp + 1), ("next", rp - mp)):
                cls, box = head(length)
                out[f"cls_{name}"].append(cls)
                out[f"box_{name}"].append(box)
        return {k: torch.stack(v) for k, v in out.items()}
    return predict


@pytest.mark.parametrize("length,period", [(120, 12), (100, 10), (200, 25), (90, 30), (75, 15),
                                           (64, 16)])
def test_inference_with_a_perfect_predictor_recovers_the_count(length, period):
    assert round(count_repetitions(_oracle(period), length)) == length // period


def test_inference_loop_structure():
    calls = []
    count_repetitions(_oracle(10, calls), 100)
    # 30 search scales at once, 4 centre refinements, then the merge tree: level 1 (2
    # hypotheses x 4 iterations), level 2 (4 x 2), level 3 (8 x 1), level 4 (16 x 1)
    assert calls == [30, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 8, 16]


# ----------------------------------------------------------------------------- training
def test_training_segments_follow_the_official_draw():
    rng = random.Random(0)
    bounds, seen = [0, 10, 20, 30, 40], set()
    for _ in range(300):
        begin, stop, count = training_segment(bounds, 0, 40, 300, rng)
        seen.add(count)
        assert 0 <= begin < stop <= 40 and 2 <= count <= len(bounds)
    assert seen == {2, 3, 4, 5}  # j - i for i in 0..2, j in i+2..5 (the official count)
    begin, stop, _ = training_segment([0, 200, 400, 600], 0, 600, 300, random.Random(1))
    assert stop - begin + 1 <= 300


def test_initial_state_is_a_valid_hypothesis_near_the_first_cycle():
    rng = random.Random(0)
    offsets = [10] * 60
    for _ in range(200):
        lp, mp, rp = initial_state(offsets, 6, 60, rng)
        assert 0 <= lp <= 10 and lp <= mp < rp < 60
        assert rp - mp == mp - lp + 1


class _MeanColour(torch.nn.Module):
    """Mean colour per input frame -> the anchor head: a counter small enough to train here."""

    def __init__(self, frames: int):
        super().__init__()
        self.linear = torch.nn.Linear(3 * frames, 4)
        self.head = counting.AnchorCountingHead(4)

    def forward(self, video):
        return self.head(self.linear(video.mean(dim=(3, 4)).flatten(1)))


def test_training_episode_steps_and_learns():
    torch.manual_seed(0)
    cfg = CounterConfig(input_frames=8)
    model = _MeanColour(8)
    batch = {"length": torch.tensor([40, 50]), "count": torch.tensor([4.0, 5.0]),
             "label_pre": torch.tensor([[-1] * 10 + [9] * 30 + [-1] * 10, [-1] * 10 + [9] * 40]),
             "label_next": torch.tensor([[9] * 30 + [-1] * 20, [9] * 40 + [-1] * 10])}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.linear.weight.detach().clone()

    def inputs(states):
        return torch.randn(len(states), 3, 8, 2, 2)

    rngs = [random.Random(0), random.Random(1)]  # one generator per segment
    result = counting.training_episode(model, inputs, batch, optimizer, rngs, cfg)
    assert 1 <= result["steps"] <= cfg.episode_steps and math.isfinite(result["loss"])
    assert not torch.equal(before, model.linear.weight)
    capped = counting.training_episode(model, inputs, batch, optimizer, rngs, cfg,
                                       max_steps=2)
    assert capped["steps"] == 2


def test_letterbox_keeps_the_aspect_ratio():
    frames = torch.full((2, 30, 40, 3), 200, dtype=torch.uint8)
    boxed = letterbox(frames, 16)
    assert boxed.shape == (2, 16, 16, 3)
    rows = boxed[0, :, 8, 0]
    assert rows.tolist() == [0, 0] + [200] * 12 + [0, 0]  # 40x30 -> 16x12, centred


# ----------------------------------------------------------------------------- end to end
def _write_ucfrep(root, split, video, num_frames, bounds, offsets=True, period=8):
    """Official layout: ``annotations/<split>/<video>.mat`` (1-based frames) and
    ``imgs/<split>/<Class>/<video>/image_%05d.jpg``: a bright square bobbing with ``period``."""
    cls = video[2:-8]
    frames = root / "imgs" / split / cls / video
    frames.mkdir(parents=True)
    for t in range(num_frames):
        image = np.zeros((30, 40, 3), np.uint8)
        y = int(12 + 8 * math.sin(2 * math.pi * (t - bounds[0]) / period))
        image[y:y + 6, 16:24] = 255
        Image.fromarray(image).save(frames / f"image_{t + 1:05d}.jpg")
    label = {"duration": np.array([[float(bounds[-1] - bounds[0] + 1)]]),
             "start_frame": np.array([[bounds[0] + 1.0]]),
             "end_frame": np.array([[bounds[-1] + 1.0]]),
             "temporal_bound": (np.asarray(bounds) + 1.0).reshape(-1, 1)}
    if offsets:
        pre, nxt = cycle_offsets(bounds)
        label["offset_pre_estimate"] = pre.astype(float).reshape(1, -1)
        label["offset_next_estimate"] = nxt.astype(float).reshape(1, -1)
    path = root / "annotations" / split / f"{video}.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"label": label})


@pytest.fixture
def ucfrep(tmp_path):
    root = tmp_path / "data" / "ucfrep"
    # segments of 1.3 to 6 s at 25 fps (UCFRep: 2 to 53 cycles, mostly a few seconds)
    for i, (start, cycles, period) in enumerate([(2, 5, 8), (0, 6, 20), (3, 4, 10)]):
        bounds = [start + period * k for k in range(cycles + 1)]
        _write_ucfrep(root, "train", f"v_JumpingJack_g0{i + 1}_c01", bounds[-1] + 4, bounds,
                      offsets=i != 2, period=period)
    for i, (start, cycles, period) in enumerate([(1, 6, 25), (2, 4, 8)]):
        bounds = [start + period * k for k in range(cycles + 1)]
        _write_ucfrep(root, "val", f"v_JumpingJack_g1{i}_c01", bounds[-1] + 3, bounds,
                      period=period)
    return root


def test_counting_segments_read_the_official_files(ucfrep):
    from vidssl.data import build_dataset

    videos = build_dataset("ucfrep", ucfrep, "train", mode="test", num_frames=8, size=16,
                           index_workers=1)
    train = CountingSegments(videos, train=True, size=16, samples_per_video=10, seed=0)
    assert len(train) == 30  # 10 fixed samples per video
    assert train.items == CountingSegments(videos, train=True, size=16, seed=0).items
    sample = train[0]
    assert sample["frames"].shape == (sample["length"], 16, 16, 3)
    assert sample["label_pre"].shape == (sample["length"],)
    # the file's offsets and the ones derived from the bounds agree (same rule)
    derived = CountingSegments(videos.subset([2]), train=False, size=16)
    pre, nxt = derived.offsets(videos.records[2])
    assert "offsets_pre" not in videos.records[2].meta and nxt[0] == 10 and pre[0] == -1
    assert videos.records[0].meta["offsets_next"][:2] == (8, 8)
    test = CountingSegments(build_dataset("ucfrep", ucfrep, "val", mode="test", num_frames=8,
                                          size=16, index_workers=1), train=False, size=16)
    assert [test[i]["count"] for i in range(len(test))] == [6.0, 4.0]
    assert [test[i]["length"] for i in range(len(test))] == [151, 33]


def test_suite_counting_row_fine_tunes_the_anchor_counter(ucfrep, tmp_path):
    from vidssl.evaluation.runner import run_suite
    from vidssl.evaluation.suite import load_suite

    suite = {"name": "rc", "protocol": "paper",
             "recipes": {"counting": {"lr": 5e-5, "weight_decay": 1e-3, "schedule": "constant",
                                      "epochs": 2, "batch_size": 2, "num_frames": 8,
                                      "size": 16, "train_clips_per_video": 2,
                                      "num_workers": 0}},
             "factors": {"tasks": [{"name": "ucf_rc", "dataset": "ucfrep", "root": "ucfrep",
                                    "task": "counting", "recipe": "counting"}]}}
    path = tmp_path / "rc.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert load_suite(path).recipe_for(load_suite(path).experiment("ucf_rc")).counting_head \
        == "anchor"
    block = run_suite(path, model="r2plus1d_18", model_kwargs={"width": 0.125},
                      data_root=tmp_path / "data", out=tmp_path / "run", max_steps=3,
                      progress=False, fail_fast=True)
    result = block["experiments"]["ucf_rc"]
    assert result["status"] == "done"
    mae, obo = result["metrics"]["mae"]["mean"], result["metrics"]["obo"]["mean"]
    assert math.isfinite(mae) and mae >= 0 and 0 <= obo <= 100
    assert result["videos"] == {"train": 3, "select": 2, "test": 2}
    log = (tmp_path / "run" / "experiments" / "ucf_rc" / "seed_0" / "metrics.csv").read_text()
    assert log.splitlines()[1].split(",")[1] == "3"  # max_steps optimizer steps, one epoch

    density = run_suite(path, model="r2plus1d_18", model_kwargs={"width": 0.125},
                        data_root=tmp_path / "data", out=tmp_path / "density", max_steps=2,
                        progress=False, fail_fast=True,
                        overrides=["ucf_rc.counting_head=density"])
    assert density["experiments"]["ucf_rc"]["status"] == "done"


def test_bundled_suites_count_with_the_official_counter():
    from vidssl.evaluation.suite import load_suite

    for name in ("severe", "full"):
        suite = load_suite(name)
        recipe = suite.recipe_for(suite.experiment("ucf_rc"))
        assert recipe.counting_head == "anchor"
        assert (recipe.lr, recipe.weight_decay, recipe.schedule, recipe.epochs,
                recipe.batch_size, recipe.train_clips_per_video, recipe.num_frames,
                recipe.size) == (5e-5, 1e-3, "constant", 100, 32, 10, 32, 112)


class _TinyBackbone(torch.nn.Module):
    num_features = 4

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 4)

    def forward_features(self, video):
        return {"pooled": self.proj(video.mean(dim=(2, 3, 4)))}


def test_unreadable_test_video_is_dropped_and_counted_not_swapped(tmp_path):
    import shutil

    from vidssl.data import build_dataset
    from vidssl.evaluation.counting_protocol import CounterModel, count_dataset
    from vidssl.evaluation.suite import Recipe

    root = tmp_path / "ucfrep"
    for video in ("v_JumpingJack_g10_c01", "v_JumpingJack_g11_c01"):
        _write_ucfrep(root, "val", video, 40, [1, 9, 17, 25])
    shutil.rmtree(root / "imgs" / "val" / "JumpingJack" / "v_JumpingJack_g11_c01")
    videos = build_dataset("ucfrep", root, "val", mode="test", num_frames=8, size=16,
                           index_workers=1)
    segments = CountingSegments(videos, train=False, size=16)
    predicted, truth, bad = count_dataset(
        CounterModel(_TinyBackbone()), segments, Recipe(num_frames=8, size=16, num_workers=0),
        CounterConfig(input_frames=8), torch.device("cpu"))
    assert len(videos) == 1  # build_dataset drops the missing video at load, with a warning
    assert truth.tolist() == [3.0] and len(predicted) == 1 and bad == 0
    assert predicted[0] > 0


# ----------------------------------------------------------------------------- resume, torchrun
class _BatchNormBackbone(torch.nn.Module):
    """Conv + BatchNorm + mean pool: small, and its BatchNorm makes the global batch matter."""

    num_features = 4

    def __init__(self):
        super().__init__()
        # no bias before BatchNorm (as in ResNets): its true gradient is 0 and Adam would
        # turn round-off into steps of size lr
        self.conv = torch.nn.Conv3d(3, 4, (1, 3, 3), stride=(1, 2, 2), bias=False)
        self.norm = torch.nn.BatchNorm3d(4)

    def forward_features(self, video):
        return {"pooled": torch.relu(self.norm(self.conv(video))).mean(dim=(2, 3, 4))}


def _counter_recipe(batch_size: int = 4, epochs: int = 2, lr: float = 1e-2):
    from vidssl.evaluation.suite import Recipe

    return Recipe(num_frames=8, size=16, num_workers=0, batch_size=batch_size, epochs=epochs,
                  lr=lr, weight_decay=1e-3, schedule="constant")


# Adam turns round-off in near-zero gradients into steps of up to lr: the 2-process run is
# compared at the official rate's scale (5e-5), where that stays below 1e-5
DDP_LR = 1e-4


def _counter_sets(root, samples_per_video: int):
    from vidssl.data import build_dataset

    def videos(split):
        return build_dataset("ucfrep", root, split, mode="test", num_frames=8, size=16,
                             index_workers=1)

    return (CountingSegments(videos("train"), train=True, size=16,
                             samples_per_video=samples_per_video, seed=0),
            CountingSegments(videos("val"), train=False, size=16))


def _run_counter(train, test, out_dir, recipe, **kwargs) -> dict:
    """``finetune_counter`` (select on test, as the paper protocol) of a fresh seeded backbone;
    returns the result, the selected backbone, the last weights and the log's losses."""
    import csv

    from vidssl.engine.checkpoint import load_checkpoint
    from vidssl.evaluation.counting_protocol import finetune_counter

    torch.manual_seed(0)
    backbone = _BatchNormBackbone()
    result = finetune_counter(backbone, train, test, test, recipe, out_dir, seed=0,
                              progress=False, keep_checkpoints=True,
                              cfg=CounterConfig(input_frames=8), **kwargs)
    state = load_checkpoint(out_dir / "counter.pt") if (out_dir / "counter.pt").is_file() \
        else None
    rows = []
    if (out_dir / "metrics.csv").is_file():
        with open(out_dir / "metrics.csv", newline="") as handle:
            rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(handle)]
    return {"result": result, "backbone": {k: v.clone() for k, v in backbone.state_dict().items()},
            "last": None if state is None else state["model"], "log": rows}


class _Interrupted(Exception):
    pass


def test_interrupted_counter_resumes_exactly(ucfrep, tmp_path, monkeypatch):
    from vidssl.evaluation import counting_protocol

    train, test = _counter_sets(ucfrep, samples_per_video=2)
    recipe = _counter_recipe(epochs=3)
    whole = _run_counter(train, test, tmp_path / "whole", recipe)

    real_save, saves = counting_protocol.atomic_save, []

    def save_then_die(obj, path):  # the process is killed right after epoch 1's checkpoint
        real_save(obj, path)
        saves.append(obj["epoch"])
        raise _Interrupted

    monkeypatch.setattr(counting_protocol, "atomic_save", save_then_die)
    with pytest.raises(_Interrupted):
        _run_counter(train, test, tmp_path / "cut", recipe)
    monkeypatch.setattr(counting_protocol, "atomic_save", real_save)
    assert saves == [1] and not list((tmp_path / "cut").glob(".*.tmp-*"))  # atomic write
    resumed = _run_counter(train, test, tmp_path / "cut", recipe, resume="auto")

    assert [r["epoch"] for r in resumed["log"]] == ["1", "2", "3"]
    assert resumed["log"] == whole["log"]  # losses, steps, selection scores of every epoch
    assert resumed["result"] == whole["result"]
    for key, value in whole["last"].items():
        assert torch.equal(resumed["last"][key], value), key
    for key, value in whole["backbone"].items():
        assert torch.equal(resumed["backbone"][key], value), key
    # a fresh run (no resume) ignores the checkpoint and starts from epoch 0 again
    fresh = _run_counter(train, test, tmp_path / "cut", _counter_recipe(epochs=1))
    assert [r["epoch"] for r in fresh["log"]] == ["1"]


def _counter_worker(rank: int, world: int, port: int, train, test, out_dir, results) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    from vidssl.evaluation.counting_protocol import GlobalBatches, finetune_counter

    shares = [len(b) for b in GlobalBatches(len(train), 4, seed=0)]
    run = _run_counter(train, test, out_dir / f"rank{rank}", _counter_recipe(lr=DDP_LR))
    with pytest.raises(ValueError, match="does not split over 2 processes"):
        finetune_counter(_BatchNormBackbone(), train, test, test, _counter_recipe(batch_size=3),
                         out_dir / "odd", seed=0, progress=False)
    results[rank] = {**run, "shares": shares}
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes, two short counter runs: ~10-20 s
def test_two_process_counter_equals_one_process_on_the_same_global_batch(ucfrep, tmp_path):
    import socket

    import torch.multiprocessing as mp

    # 9 training samples, global batch 4: batches of 4, 4, 1; on 2 ranks 2+2, 2+2, 1+0 (an
    # empty share still joins every collective)
    train, test = _counter_sets(ucfrep, samples_per_video=3)
    one = _run_counter(train, test, tmp_path / "one", _counter_recipe(lr=DDP_LR))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_counter_worker, args=(2, port, train, test, tmp_path / "two", results), nprocs=2,
             join=True)
    assert results[0]["shares"] == [2, 2, 1] and results[1]["shares"] == [2, 2, 0]
    assert len(one["log"]) == 2 and int(one["log"][-1]["steps"]) > 6  # several episode steps
    for rank in range(2):
        two = results[rank]
        # the same optimizer steps, global-batch losses and selection scores every epoch
        assert two["result"]["metrics"] == one["result"]["metrics"]  # MAE and OBO: equal
        assert two["result"]["selected"] == one["result"]["selected"]
        for key, value in one["backbone"].items():  # the selected weights
            torch.testing.assert_close(two["backbone"][key], value, rtol=1e-5, atol=1e-5)
    two = results[0]  # rank 0 alone wrote the log and the checkpoint
    assert results[1]["log"] == [] and results[1]["last"] is None
    for a, b in zip(one["log"], two["log"], strict=True):
        assert a["steps"] == b["steps"]
        for key in ("loss", "loss_cls", "loss_box", "select_mae", "select_obo"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-5, abs=1e-5), key
    for key, value in one["last"].items():  # the last epoch's weights, head included
        torch.testing.assert_close(two["last"][key], value, rtol=1e-5, atol=1e-5)
