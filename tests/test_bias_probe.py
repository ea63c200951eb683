"""Bias diagnostics: frame-order probes, label groups, the bias table, the mini_bias suite."""
import json
import logging

import pytest
import torch
import yaml

from vidssl.config import ConfigError
from vidssl.data.frame_order import FrameOrder
from vidssl.data.world import generate_world
from vidssl.evaluation import appearance_motion, load_suite, run_suite
from vidssl.evaluation.bias import bias_rows, bias_table, render_bias_table
from vidssl.evaluation.splits import ClassGroups
from vidssl.evaluation.suite import parse_suite
from vidssl.methods.teachers import build_teacher
from vidssl.models import BACKBONES

torch.set_num_threads(1)


def _clip(frames: int = 8) -> torch.Tensor:
    """``[C,T,H,W]`` whose frame ``t`` is filled with ``t`` (frames are told apart)."""
    return torch.arange(frames, dtype=torch.float32)[None, :, None, None].expand(3, -1, 4, 4)


def _order(clip: torch.Tensor) -> list[int]:
    return clip[0, :, 0, 0].long().tolist()


# ----------------------------------------------------------------------------- frame order
@pytest.mark.parametrize("random", [True, False])
def test_single_repeats_one_frame(random):
    clip = _clip(8)
    out = FrameOrder("single", random)(clip, torch.Generator().manual_seed(3))
    assert out.shape == clip.shape
    assert all(torch.equal(out[:, t], out[:, 0]) for t in range(8))
    if not random:
        assert _order(out) == [4] * 8  # the middle frame, T // 2


def test_single_draws_the_frame_at_random_in_training():
    drawn = {_order(FrameOrder("single", True)(_clip(8), torch.Generator().manual_seed(s)))[0]
             for s in range(40)}
    assert len(drawn) >= 5


def test_shuffled_is_a_permutation_that_moves_frames():
    moved = 0
    for seed in range(50):
        out = FrameOrder("shuffled", True)(_clip(6), torch.Generator().manual_seed(seed))
        order = _order(out)
        assert sorted(order) == list(range(6))
        assert torch.equal(out[:, 0], _clip(6)[:, order[0]])
        moved += order != list(range(6))
    assert moved >= 45  # identity: 1 in 720


def test_batches_get_one_permutation_per_clip():
    batch = torch.stack([_clip(8)] * 4)
    out = FrameOrder("shuffled", True)(batch, torch.Generator().manual_seed(0))
    orders = [_order(clip) for clip in out]
    assert all(sorted(o) == list(range(8)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1


def test_full_keeps_the_clip_and_unknown_orders_fail():
    clip = _clip(5)
    assert torch.equal(FrameOrder("full", True)(clip, torch.Generator()), clip)
    with pytest.raises(ValueError, match="frame_order"):
        FrameOrder("reversed", True)
    with pytest.raises(ConfigError, match="frame_order"):
        load_suite("mini_bias", overrides=["recipe.frame_order=reversed"])


def test_test_time_shuffling_is_deterministic_per_video(tmp_path):
    """The test dataset's generator is seeded per (seed, video): same clips in every run."""
    from vidssl.evaluation.splits import ExperimentSplits
    from vidssl.evaluation.tasks import build_task

    suite = load_suite("mini_bias")
    experiment = suite.experiment("ucf_like_shuffled")
    recipe = suite.recipe_for(experiment)
    splits = ExperimentSplits.__new__(ExperimentSplits)
    splits.recipe, splits.task = recipe, build_task("classification")
    transform = splits.transform("test")
    frames = torch.arange(8, dtype=torch.uint8)[:, None, None, None].expand(8, 32, 32, 3) * 30

    def clip(video_seed):
        return transform(frames.clone(), torch.Generator().manual_seed(video_seed))

    assert torch.equal(clip(7), clip(7))
    assert not torch.equal(clip(7), clip(8))
    means = clip(7).mean((0, 2, 3))
    assert sorted(means.tolist()) == pytest.approx(sorted(
        splits.transform("test").steps[0](frames.clone()).mean((0, 2, 3)).tolist()))


# ----------------------------------------------------------------------------- label groups
class _Labels(torch.utils.data.Dataset):
    def __init__(self, labels):
        self.targets, self.num_classes = list(labels), 99

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return {"video": torch.zeros(1), "label": self.targets[i], "index": i}


def test_label_groups_map_labels_to_their_range_and_drop_the_rest(caplog):
    data = _Labels([0, 5, 6, 40, 41, 74, 88, 90, 3])
    with caplog.at_level(logging.WARNING):
        events = ClassGroups(data, [[0, 5], [6, 40], [74, 88]], "experiment gym_event")
    assert events.num_classes == 3
    assert events.targets == [0, 0, 1, 1, 2, 2, 0]
    assert [events[i]["label"] for i in range(len(events))] == events.targets
    assert events.keep == [0, 1, 2, 3, 5, 6, 8]
    assert "gym_event: dropped 2 of 9 videos" in caplog.text


def _suite(**experiment):
    return {"name": "t", "recipes": {"r": {}},
            "factors": {"actions": [{"name": "ev", "dataset": "gym99", "root": "g",
                                     "recipe": "r", **experiment}]}}


def test_label_groups_errors_name_the_experiment():
    with pytest.raises(ConfigError, match=r"ev\.label_groups: ranges \[0, 5\] and \[5, 9\] "
                                          "overlap"):
        parse_suite(_suite(label_groups=[[0, 5], [5, 9]]))
    with pytest.raises(ConfigError, match=r"ev\.label_groups ranges must be \[first, last\]"):
        parse_suite(_suite(label_groups=[[6, 2]]))
    with pytest.raises(ConfigError, match=r"ev\.label_groups: give label_range or label_groups"):
        parse_suite(_suite(label_groups=[[0, 5]], label_range=[0, 5]))
    groups = parse_suite(_suite(label_groups=[[74, 88], [0, 5]])).experiment("ev").label_groups
    assert groups == [[74, 88], [0, 5]]


# ----------------------------------------------------------------------------- bias table
def _experiment(name, order, **data):
    return {"name": name, "label": name, "dataset": "d", "root": name.split("_")[0],
            "recipe_resolved": {"frame_order": order}, **data}


def _result(top1, classes):
    return {"status": "done", "metric": "top1", "classes": classes,
            "metrics": {"top1": {"mean": top1, "std": 0.0, "values": [top1]}}}


def test_bias_rows_compute_chance_and_ratios_per_split():
    experiments = [_experiment("ucf", "full"), _experiment("ucf_single", "single"),
                   _experiment("ucf_shuffled", "shuffled"),
                   _experiment("ssv2", "full"), _experiment("ssv2_single", "single"),
                   _experiment("gym", "full", label_groups=[[0, 5], [6, 9]]),
                   _experiment("gym_single", "single", label_groups=[[0, 5], [6, 9]])]
    results = {"ucf": _result(80.0, 10), "ucf_single": _result(48.0, 10),
               "ucf_shuffled": _result(78.0, 10), "ssv2": _result(60.0, 20),
               "ssv2_single": _result(6.0, 20), "gym": _result(90.0, 2),
               "gym_single": {"status": "failed", "error": "x"}}
    ucf, ssv2, gym = bias_rows(experiments, results)
    assert ucf["label"] == "ucf" and ucf["chance"] == pytest.approx(10.0)
    assert (ucf["full"], ucf["single"], ucf["shuffled"]) == (80.0, 48.0, 78.0)
    assert ucf["single_over_full"] == pytest.approx(0.6)
    assert ucf["single_over_chance"] == pytest.approx(4.8)
    assert ucf["reading"].startswith("mixed") and "barely matters" in ucf["reading"]
    assert ssv2["single_over_chance"] == pytest.approx(1.2)
    assert ssv2["reading"].startswith("temporal") and ssv2["shuffled"] is None
    assert gym["single"] is None and gym["reading"].startswith("incomplete")
    table = render_bias_table([ucf, ssv2, gym])
    assert table.startswith("## Bias profile")
    assert "| ucf | 10.0 | 80.0 | 48.0 | 78.0 | 0.60 | 4.80 | mixed" in table
    assert "| gym | 50.0 | 90.0 | – | – | – | – | incomplete" in table


# ----------------------------------------------------------------------------- the instrument

def _normalized(frames01: torch.Tensor) -> torch.Tensor:
    """[B,3,T,H,W] in [0, 1] -> ImageNet-normalized, the evaluation clips' convention."""
    from vidssl.data.clip_ops import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN)[:, None, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None, None]
    return (frames01 - mean) / std


def test_appearance_motion_reads_the_frame_and_the_motion_apart():
    """Two clips that pass through the same middle frame in opposite directions: repeated
    single frames give identical descriptors (one frame cannot tell them apart), full clips
    differ in the motion part only where the motion differs; the ImageNet part sees the frame
    as the frozen encoder does, in train mode too."""
    model = appearance_motion(image_size=32, frames=3, grid=2, bins=3)
    assert model.num_features == 112 + 3 * (2 * 2 + 2)
    assert not any(p.requires_grad for p in model.parameters())
    rng = torch.Generator().manual_seed(0)
    backdrop = torch.rand(3, 1, 32, 32, generator=rng).expand(3, 7, 32, 32).clone()
    right = backdrop.clone()
    for t in range(7):
        right[:, t, 12:20, 4 + 3 * t:12 + 3 * t] = 1.0
    left = right.flip(1)  # the same frames backwards: middle frame t=3 shared
    clips = _normalized(torch.stack([right, left]))
    full = model(clips)
    single = model(clips[:, :, 3:4].expand(-1, -1, 7, -1, -1))
    torch.testing.assert_close(single[0], single[1])
    assert torch.equal(single[:, 112:], torch.zeros(2, 18))  # no motion in one frame
    assert (full[0, 112:] - full[1, 112:]).abs().max() > 0.1  # x-centroids run opposite ways
    # frames=3 of 7 are t = 0, 3, 6: the same set for both directions, so the same appearance
    torch.testing.assert_close(full[0, :112], full[1, :112])
    teacher = build_teacher("efficientnet_lite0_s16")
    middle = right[:, 3][None].clamp(0, 1)
    expected = teacher(middle).mean(dim=(2, 3))[0]
    model.train()
    assert not model.image_encoder.training
    torch.testing.assert_close(single[0, :112], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model(clips), full)
    with pytest.raises(ValueError, match="image_size"):
        appearance_motion(image_size=16)
    assert "appearance_motion" in BACKBONES  # registered by importing vidssl.evaluation


# ----------------------------------------------------------------------------- the suite
def test_mini_bias_suite_runs_one_step_on_a_tiny_world(tiny_world, tmp_path):
    out = tmp_path / "bias"
    block = run_suite("mini_bias", model="r2plus1d_18", model_kwargs={"width": 0.125},
                      data_root=tiny_world, out=out, max_steps=1, progress=False,
                      fail_fast=True,
                      overrides=["recipe.num_frames=4", "recipe.size=16", "recipe.epochs=1",
                                 "recipe.batch_size=8"])
    assert all(e["status"] == "done" for e in block["experiments"].values())
    assert block["experiments"]["gym_event"]["classes"] == 3
    resolved = yaml.safe_load((out / "suite.yaml").read_text())["experiments"]
    assert {e["name"]: e["recipe_resolved"]["frame_order"] for e in resolved}[
        "ssv2_like_shuffled"] == "shuffled"
    table = bias_table(out)
    assert [line.split(" | ")[0] for line in table.splitlines()[6:]] == [
        "| UCF-like", "| SSv2-like", "| Gym-like event", "| FX-S1-like elements"]
    assert json.loads((out / "results.json").read_text())["methods"][0]["suite"]["name"] == \
        "mini_bias"


def test_test_clips_of_the_world_shuffle_the_same_way_in_every_run(tiny_world):
    from vidssl.evaluation.splits import ExperimentSplits
    from vidssl.evaluation.tasks import build_task

    suite = load_suite("mini_bias", overrides=["recipe.size=16"])

    def test_clips(name):
        experiment = suite.experiment(name)
        splits = ExperimentSplits(experiment, suite.recipe_for(experiment),
                                  build_task("classification"), tiny_world, seed=0)
        _, _, test = splits.finetune_sets()
        return [test[i]["video"] for i in range(3)]

    first, again = test_clips("ucf_like_shuffled"), test_clips("ucf_like_shuffled")
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    full = test_clips("ucf_like")
    for shuffled, ordered in zip(first, full, strict=True):  # the same frames, reordered
        frames = [ordered[:, t] for t in range(ordered.shape[1])]
        assert all(any(torch.equal(shuffled[:, t], f) for f in frames)
                   for t in range(shuffled.shape[1]))
    assert any(not torch.equal(s, f) for s, f in zip(first, full, strict=True))


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_world(root, preset="tiny", seed=0, workers=1, progress=False)
    return root
