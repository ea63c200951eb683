"""SEVERE's published protocol in the bundled suites: metrics, model selection and training
set (paper vs validation), per-method recipe variants (scratch, AVID-CMA, TCLR,
Tubelet-Contrast) and the authors' arrow-of-time protocol."""
import pytest
import torch
import yaml
from torch import nn

import vidssl.data
from vidssl.config import ConfigError
from vidssl.data.transforms import ShortSideJitterCrop
from vidssl.evaluation.finetune import FinetuneModel, finetune
from vidssl.evaluation.metrics import mean_class_accuracy, top1_accuracy
from vidssl.evaluation.report import severe_mean
from vidssl.evaluation.runner import BackboneSource
from vidssl.evaluation.splits import ExperimentSplits
from vidssl.evaluation.suite import Recipe, load_suite, parse_suite
from vidssl.evaluation.tasks import ForwardAndReversed, build_task

torch.set_num_threads(1)

SEVERE = ("ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1", "ucf_rc",
          "charades")


# ----------------------------------------------------------------------------- item 2: metric
def test_mean_class_accuracy_weights_every_class_equally():
    # class 0: 3 of 4 right, class 1: 0 of 1, class 2: 1 of 1 -> top-1 4/6, mean-class 7/12
    labels = torch.tensor([0, 0, 0, 0, 1, 2])
    predicted = torch.tensor([0, 0, 0, 2, 0, 2])
    scores = nn.functional.one_hot(predicted, 3).float()
    assert top1_accuracy(scores, labels) == pytest.approx(4 / 6)
    assert mean_class_accuracy(scores, labels) == pytest.approx((3 / 4 + 0 + 1) / 3)


def test_finegym_subsets_report_mean_class_and_the_severe_mean_uses_it():
    full = load_suite("full")
    metric = {e.name: e.metric for e in full.experiments}
    for name in ("gym_vault", "gym_floor", "gym_fx_s1", "gym_ub_s1", "gym288"):
        assert metric[name] == "mean_class"
    for name in ("gym99", "gym99_1000", "ucf101_1000", "ssv2", "ucf101", "ntu60"):
        assert metric[name] is None  # the task's top-1
    severe = load_suite("severe")
    assert severe.benchmark == list(SEVERE)

    def done(metric, top1, mean_class):
        return {"status": "done", "metric": metric,
                "metrics": {"top1": {"values": [top1]}, "mean_class": {"values": [mean_class]},
                            "map": {"values": [top1]}, "mae": {"values": [0.2]}}}

    experiments = {n: done("top1", 50.0, 10.0) for n in SEVERE}
    experiments["gym_fx_s1"] = done("mean_class", 90.0, 60.0)
    experiments["gym_ub_s1"] = done("mean_class", 90.0, 80.0)
    experiments["ucf_rc"] = done("mae", 0.0, 0.0)
    experiments["charades"] = done("map", 20.0, 0.0)
    block = {"benchmark": list(SEVERE), "experiments": experiments}
    # 4 x 50 (top-1) + 60 + 80 (mean-class) + 100 (1 - 0.2) + 20 (mAP), over 8
    assert severe_mean(block)["mean"] == pytest.approx((4 * 50 + 60 + 80 + 80 + 20) / 8)


# ------------------------------------------------------------------- item 3: paper / validation
def test_severe_defaults_to_the_paper_protocol_and_validation_is_an_option():
    paper = load_suite("severe")
    assert paper.protocol == "paper"
    selection = {n: r.selection for n, r in paper.recipes.items()}
    assert selection == {**{n: "test" for n in SEVERE}, "charades": "last"}
    validation = load_suite("severe", protocol="validation")
    assert {r.selection for r in validation.recipes.values()} == {"val"}
    assert {r.val_fraction for r in validation.recipes.values()} == {0.1}
    assert paper.resolved(protocol="validation").recipes == validation.recipes
    # the command line still decides a single experiment
    mixed = load_suite("severe", ["charades.selection=val"])
    assert mixed.recipes["charades"].selection == "val"
    assert mixed.recipes["gym99"].selection == "test"
    assert load_suite("mini").protocol == "validation"
    with pytest.raises(ConfigError, match="protocol"):
        load_suite("severe", protocol="published")


class _Labelled:
    """A 'dataset' of 40 videos, 4 classes x 10 (what ExperimentSplits plans from)."""

    num_classes = 4
    task = "classification"

    def __init__(self):
        self.targets = [i % 4 for i in range(40)]

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return {"video": torch.zeros(3, 2, 4, 4), "label": self.targets[i]}


@pytest.mark.parametrize("protocol, train, select, role",
                         [("paper", 40, None, "test"), ("validation", 36, 4, "val")])
def test_paper_trains_on_all_of_train_and_selects_on_test(tmp_path, monkeypatch, protocol,
                                                          train, select, role):
    monkeypatch.setattr(vidssl.data, "build_dataset", lambda *a, **k: _Labelled())
    suite = load_suite("severe", protocol=protocol)
    (tmp_path / "finegym").mkdir()
    experiment = suite.experiment("gym99")
    splits = ExperimentSplits(experiment, suite.recipe_for(experiment), build_task("classification"),
                              tmp_path, seed=0)
    assert len(splits.train_index) == train
    assert splits.select_role == role
    assert (None if splits.select_index is None else len(splits.select_index)) == select
    if select:
        assert not set(splits.train_index) & set(splits.select_index)


# --------------------------------------------------------------- items 4 and 8: recipe variants
def _schedule(suite, name):
    r = suite.recipes[name]
    return r.epochs, r.milestones, r.weight_decay, r.lr


def test_scratch_recipes_follow_the_official_scratch_configs_per_experiment():
    base = load_suite("full")
    scratch = load_suite("full", variant="scratch")
    assert _schedule(scratch, "ucf101") == (20, [10, 15, 18], 1e-4, 1e-4)
    assert _schedule(scratch, "gym99") == (20, [10, 15, 18], 1e-4, 1e-4)
    assert _schedule(scratch, "gym288") == (20, [10, 15, 18], 1e-4, 1e-4)
    assert _schedule(scratch, "ssv2") == (25, [12, 19, 22], 1e-4, 1e-4)
    assert _schedule(scratch, "gym_fx_s1") == (18, [7, 12, 16], 1e-5, 1e-4)
    assert _schedule(scratch, "gym_ub_s1") == (18, [7, 12, 16], 1e-5, 1e-4)
    unchanged = ("gym_vault", "gym_floor", "ucf101_1000", "gym99_1000", "ntu60", "charades",
                 "ucf_rc", "arrow_of_time", "epic100_verbs")
    for name in unchanged:
        assert scratch.recipes[name] == base.recipes[name], name
    assert scratch.variant_experiments("scratch") == ["ucf101", "gym99", "ssv2", "gym_fx_s1",
                                                      "gym_ub_s1", "gym288"]
    # the command line still wins over a variant
    cli = load_suite("full", ["ssv2.epochs=3"], variant="scratch")
    assert _schedule(cli, "ssv2") == (3, [12, 19, 22], 1e-4, 1e-4)
    # a randomly initialized backbone is the scratch variant
    assert BackboneSource(model="r2plus1d_18").variant == "scratch"


def test_method_variants_avid_lr_tubelet_schedule():
    avid = load_suite("severe", variant="avid_cma")
    assert {n: r.lr for n, r in avid.recipes.items()} == {
        **{n: 1e-3 for n in SEVERE}, "ucf_rc": 5e-5, "charades": 0.0375}
    tubelet = load_suite("severe", variant="tubelet_contrast")
    assert _schedule(tubelet, "ucf101_1000") == (18, [8, 13, 16], 0.0, 1e-4)
    assert _schedule(tubelet, "gym99_1000") == (18, [8, 13, 16], 0.0, 1e-4)
    assert _schedule(tubelet, "gym99") == (16, [6, 10, 14], 0.0, 1e-4)
    with pytest.raises(ConfigError, match="variants.avid"):
        parse_suite({"factors": {"domain": [{"name": "a", "dataset": "d", "root": "r"}]},
                     "variants": {"avid": [{"experiments": ["a"], "recipe": {"lr": 1}}]}})
    with pytest.raises(ConfigError, match="no experiment"):
        parse_suite({"factors": {"domain": [{"name": "a", "dataset": "d", "root": "r"}]},
                     "variants": {"tclr": [{"experiments": ["b"], "recipe": {"lr": 1}}]}})


class _Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 2, 1)


def test_a_tclr_checkpoint_gets_unnormalized_bgr_input(tmp_path, monkeypatch):
    path = tmp_path / "rpd18kin400.pth"
    weights = _Stem().state_dict()
    torch.save({"state_dict": {f"module.0.{k}": v for k, v in weights.items()}}, path)
    source = BackboneSource(path, model=_Stem())
    assert source.variant == "tclr"
    # a converted file (`vidssl weights convert`) keeps its source's variant
    converted = tmp_path / "tclr_vidssl.pt"
    torch.save({"format": "vidssl", "model": {f"backbone.{k}": v for k, v in weights.items()},
                "backbone_prefix": "backbone.", "source": {"path": str(path), "format": "tclr"}},
               converted)
    assert BackboneSource(converted, model=_Stem()).variant == "tclr"
    suite = load_suite("severe").resolved(variant=source.variant)
    assert (suite.recipes["gym99"].normalize, suite.recipes["gym99"].channel_order) == ("none",
                                                                                       "bgr")
    for name in ("charades", "ucf_rc"):
        assert suite.recipes[name].channel_order == "rgb" and suite.recipes[name].normalize != "none"

    monkeypatch.setattr(vidssl.data, "build_dataset", lambda *a, **k: _Labelled())
    (tmp_path / "finegym").mkdir()
    frames = torch.zeros(2, 128, 160, 3, dtype=torch.uint8)
    frames[..., 0] = 255  # pure red
    frames[:, :, 80:, 1] = 128  # and a half with some green, for the colour jitter
    clips = {}
    for variant in (None, "tclr"):
        suite = load_suite("severe").resolved(variant=variant)
        experiment = suite.experiment("gym99")
        splits = ExperimentSplits(experiment, suite.recipe_for(experiment),
                                  build_task("classification"), tmp_path, seed=0)
        for mode in ("train", "test"):
            clip = splits.transform(mode)(frames, torch.Generator().manual_seed(0))
            assert clip.shape == (3, 2, 112, 112)
            clips[variant, mode] = clip
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    # test view, left column (pure red): ImageNet-normalized RGB vs [0, 1] BGR
    assert clips[None, "test"][:, 0, 0, 0].tolist() == pytest.approx(
        ((torch.tensor([1.0, 0, 0]) - mean) / std).tolist(), abs=1e-5)
    assert clips["tclr", "test"][:, 0, 0, 0].tolist() == pytest.approx([0, 0, 1], abs=1e-6)
    # training views: the same crop and jitter, only the input convention differs
    for mode in ("train", "test"):
        unnormalized = clips[None, mode] * std.view(3, 1, 1, 1) + mean.view(3, 1, 1, 1)
        assert torch.allclose(clips["tclr", mode], unnormalized.flip(0), atol=1e-5)


# --------------------------------------------------------------------- item 9: arrow of time
class _Ramps(torch.utils.data.Dataset):
    """Clips whose brightness rises over 4 frames (forward in time)."""

    num_frames = 4

    def __init__(self, n, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.offsets = torch.rand(n, generator=g)
        self.targets = [0] * n

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, i):
        ramp = torch.linspace(0, 1, 4).view(1, 4, 1, 1) + self.offsets[i]
        return {"video": ramp.expand(3, 4, 4, 4).clone(), "label": 0, "index": i, "bad": 0}


class _TimeBackbone(nn.Module):
    num_features = 4

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv3d(3, 4, (2, 1, 1))

    def forward_features(self, x):
        tokens = self.proj(x)
        return {"pooled": tokens.mean((2, 3, 4)), "tokens": tokens}


def test_arrow_of_time_shows_every_clip_in_both_directions(tmp_path):
    task = build_task("arrow_of_time")
    clips = _Ramps(3)
    train = task.prepare(clips, train=True, seed=0)
    assert len(train) == 3
    sample = train[1]
    assert sample["video"].shape == (2, 3, 4, 4, 4)
    assert torch.equal(sample["video"][1], sample["video"][0].flip(1))
    batch = {"video": torch.stack([train[i]["video"] for i in range(3)]),
             "label": torch.stack([train[i]["label"] for i in range(3)])}
    video, target = task.training_inputs(batch)
    assert video.shape == (6, 3, 4, 4, 4) and target.tolist() == [0, 1, 0, 1, 0, 1]
    test = task.prepare_finetune_eval(clips, seed=0)
    assert isinstance(test, ForwardAndReversed) and len(test) == 6
    assert [test[i]["label"] for i in range(6)] == [0, 1, 0, 1, 0, 1]
    assert torch.equal(test[3]["video"], clips[1]["video"].flip(1))

    recipe = Recipe(epochs=4, batch_size=4, lr=0.05, milestones=[3.0], num_workers=0,
                    selection="last")
    result = finetune(_TimeBackbone(), task, task.prepare(_Ramps(16), train=True, seed=0), None,
                      task.prepare_finetune_eval(_Ramps(8, seed=1), seed=0), recipe, tmp_path,
                      metric="top1", seed=0, progress=False)
    assert result["metrics"]["top1"] == 100.0  # 16 test clips: 8 videos x 2 directions


def test_arrow_of_time_recipe_is_the_authors():
    suite = load_suite("full")
    experiment = suite.experiment("arrow_of_time")
    r = suite.recipes["arrow_of_time"]
    assert experiment.dataset_options == {"sampling": "segments"}  # 8 frames over the video
    assert (r.num_frames, r.target_fps, r.train_augmentation) == (8, None, "none")
    assert (r.optimizer, r.lr, r.milestones, r.gamma, r.epochs, r.batch_size) == (
        "adam", 1e-4, [5, 8], 0.1, 10, 12)
    assert (r.val_clips, r.test_clips, r.selection) == (1, 1, "last")


# ------------------------------------------------------------------------ item 10: EPIC-100
def test_epic100_recipe_is_the_authors():
    suite = load_suite("full")
    r = suite.recipes["epic100_verbs"]
    assert (r.target_fps, r.frame_stride, r.num_frames) == (60, 2, 32)
    assert (r.train_augmentation, r.jitter_scales, r.normalize) == (
        "short_side_jitter", [256, 320], "slowfast")
    assert (r.optimizer, r.lr, r.weight_decay, r.milestones, r.epochs) == (
        "sgd", 0.0025, 1e-4, [20, 25], 30)
    assert (r.dropout, r.freeze_bn, r.selection) == (0.5, True, "last")
    assert suite.experiment("epic100_verbs").dataset_options == {"decode_size": 320}


def test_short_side_jitter_crop_covers_size_over_short_side_of_the_frame():
    frames = torch.zeros(1, 3, 4, 240, 320)
    fixed = ShortSideJitterCrop(112, (256, 256))
    boxes = fixed.get_params(frames, torch.Generator().manual_seed(0))
    assert boxes[0, 2:].tolist() == [105, 105]  # 112 px of a 256-px short side = 105 of 240
    jitter = ShortSideJitterCrop(112, (256, 340), inverse_uniform=True)
    boxes = jitter.get_params(frames.expand(4000, -1, -1, -1, -1),
                              torch.Generator().manual_seed(0))
    sides = boxes[:, 2]
    assert sides.min() >= round(112 * 240 / 340) and sides.max() <= 105
    assert (boxes[:, 0] + sides).max() <= 240 and (boxes[:, 1] + sides).max() <= 320
    # 1/s uniform on [1/340, 1/256]: the crop side (proportional to 1/s) is uniform too
    assert sides.double().mean().item() == pytest.approx(112 * 240 * (1 / 340 + 1 / 256) / 2,
                                                         abs=0.5)


class _NormBackbone(nn.Module):
    num_features = 4

    def __init__(self):
        super().__init__()
        self.proj, self.norm = nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4)

    def forward_features(self, x):
        tokens = self.norm(self.proj(x))
        return {"pooled": tokens.mean((2, 3, 4)), "tokens": tokens}


def test_frozen_batchnorm_keeps_pretrained_statistics_and_parameters():
    backbone = _NormBackbone()
    model = FinetuneModel(backbone, nn.Linear(4, 2), build_task("classification"),
                          freeze_bn=True).train()
    assert not backbone.norm.training and backbone.proj.training
    assert not any(p.requires_grad for p in backbone.norm.parameters())
    model(torch.randn(2, 3, 2, 4, 4) + 5)
    assert torch.equal(backbone.norm.running_mean, torch.zeros(4))
    trained = FinetuneModel(_NormBackbone(), nn.Linear(4, 2), build_task("classification")).train()
    trained(torch.randn(2, 3, 2, 4, 4) + 5)
    assert trained.backbone.norm.running_mean.abs().max() > 0.01  # it moved


class _Colours(torch.utils.data.Dataset):
    """Class 0 red, classes 1 and 2 both green (so class 2 is never predicted)."""

    num_classes = 3
    task = "classification"

    def __init__(self, counts):
        self.targets = [c for c, n in enumerate(counts) for _ in range(n)]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        video = torch.zeros(3, 2, 4, 4)
        video[0 if self.targets[i] == 0 else 1] = 1.0
        return {"video": video, "label": self.targets[i], "index": i, "bad": 0}


class _MeanColour(_Stem):
    """Mean colour features, with a (TCLR-loadable) stem that it does not use."""

    num_features = 3

    def forward_features(self, x):
        return {"pooled": x.mean((2, 3, 4)), "tokens": x}


def test_actions_table_gym99_reports_the_gym99_run_by_mean_class(tmp_path, monkeypatch):
    from vidssl.evaluation.runner import run_suite

    counts = {"train": (10, 10, 2), "test": (4, 4, 2)}
    monkeypatch.setattr(vidssl.data, "build_dataset",
                        lambda name, root, split, **k: _Colours(counts[split]))
    (tmp_path / "gym").mkdir()
    recipe = {"protocol": "knn", "knn_k": 3, "feature_clips": 1, "test_clips": 1,
              "num_workers": 0, "batch_size": 8}
    suite = parse_suite({"recipes": {"knn": recipe}, "factors": {
        "domain": [{"name": "gym", "dataset": "g", "root": "gym", "recipe": "knn"}],
        "actions": [{"name": "gym_actions", "dataset": "g", "root": "gym", "recipe": "knn",
                     "metric": "mean_class", "same_runs_as": "gym"}]},
        "variants": {"tclr": [{"experiments": ["gym"], "recipe": {"channel_order": "bgr"}}]}})
    checkpoint = tmp_path / "tclr.pth"
    torch.save({"state_dict": {f"module.0.{k}": v for k, v in _Stem().state_dict().items()}},
               checkpoint)
    block = run_suite(suite, checkpoint, model=_MeanColour(), data_root=tmp_path,
                      out=tmp_path / "out", progress=False)
    # the checkpoint's format chose the variant, and the run says so
    assert block["variant"] == {"name": "tclr", "experiments": ["gym"]}
    assert block["protocol"]["name"] == "validation"
    resolved = yaml.safe_load((tmp_path / "out" / "suite.yaml").read_text())
    assert resolved["variant"] == "tclr"
    assert resolved["experiments"][0]["recipe_resolved"]["channel_order"] == "bgr"
    report = (tmp_path / "out" / "report.md").read_text()
    assert "- tclr: SEVERE's `tclr` recipe variant on gym." in report
    domain, actions = block["experiments"]["gym"], block["experiments"]["gym_actions"]
    assert domain["metric"] == "top1" and actions["metric"] == "mean_class"
    assert domain["metrics"]["top1"]["mean"] == pytest.approx(80.0)  # 8 of 10 test videos
    assert actions["metrics"]["mean_class"]["mean"] == pytest.approx(200 / 3)  # (1 + 1 + 0) / 3
    assert not (tmp_path / "out" / "experiments" / "gym_actions").exists()  # nothing rerun
    assert "**Protocol: validation**" in (tmp_path / "out" / "report.md").read_text()
    with pytest.raises(ConfigError, match="same_runs_as"):
        parse_suite({"factors": {"domain": [
            {"name": "a", "dataset": "d", "root": "r", "same_runs_as": "b"},
            {"name": "b", "dataset": "d", "root": "r"}]}})


EPIC_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,"
               "stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,"
               "all_nouns,all_noun_classes\n")


def _epic_row(video, start, stop, verb, noun):
    times = "00:00:00.00,00:00:00.04,00:00:00.40"
    return f"{video}_0,P01,{video},{times},{start},{stop},v n,v,{verb},n,{noun},[],[]\n"


def test_epic_annotations_carry_the_noun_and_the_noun_count(tmp_path):
    from vidssl.data.build import load_annotations
    from vidssl.data.datasets.epic100 import EpicDataset

    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/EPIC_100_train.csv").write_text(
        EPIC_HEADER + _epic_row("P01_01", 3, 10, 0, 4) + _epic_row("P01_01", 11, 20, 1, 7))
    (tmp_path / "annotations/EPIC_100_validation.csv").write_text(
        EPIC_HEADER + _epic_row("P01_02", 5, 12, 1, 2))
    annotations = load_annotations("epic100_verbs", tmp_path, "test")
    assert annotations.dataset_cls is EpicDataset
    assert annotations.dataset_options == {"num_nouns": 8}  # largest noun_class (7) + 1
    assert [(r.label, r.meta["noun"]) for r in annotations.records] == [(1, 2)]
    (tmp_path / "annotations/EPIC_100_noun_classes.csv").write_text(
        "id,key,instances,category\n" + "".join(f"{i},n{i},[],c\n" for i in range(300)))
    assert load_annotations("epic100_verbs", tmp_path, "train").dataset_options == {
        "num_nouns": 300}


class _VerbNounClips(torch.utils.data.Dataset):
    """Verb = which of channels 0/1 is bright, noun = whether channel 2 is bright."""

    num_classes, num_nouns = 2, 2

    def __init__(self, n, views=1, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.verbs = torch.randint(0, 2, (n,), generator=g).tolist()
        self.nouns = torch.randint(0, 2, (n,), generator=g).tolist()
        self.targets, self.views = self.verbs, views

    def __len__(self):
        return len(self.verbs)

    def __getitem__(self, i):
        video = torch.zeros(3, 2, 4, 4)
        video[self.verbs[i]] += 1.0
        video[2] += float(self.nouns[i])
        if self.views > 1:
            video = video[None].repeat(self.views, 1, 1, 1, 1)
        return {"video": video, "label": self.verbs[i], "noun": self.nouns[i], "index": i,
                "bad": 0}


def test_verb_noun_task_trains_both_heads_and_scores_verb_noun_action():
    task = build_task("verb_noun")
    head = task.build_head(4, _VerbNounClips(1))
    assert head.fc.out_features == 4 and task.num_verbs == 2
    outputs = torch.tensor([[2.0, 0.0, 0.0, 1.0], [0.0, 1.0, 3.0, 0.0], [1.0, 0.0, 1.0, 0.0]])
    targets = torch.tensor([[0, 1], [1, 1], [1, 0]])
    ce = nn.functional.cross_entropy
    expected = 0.5 * (ce(outputs[:, :2], targets[:, 0]) + ce(outputs[:, 2:], targets[:, 1]))
    assert task.loss(outputs, targets).item() == pytest.approx(expected.item())
    # verbs right: 1, 1, 0; nouns right: 1, 0, 1; both: 1, 0, 0
    merged = task.merge_views(outputs[:, None])
    assert merged[:, :2].sum(1).tolist() == pytest.approx([1, 1, 1])
    assert task.score(merged, targets) == pytest.approx(
        {"top1": 200 / 3, "noun_top1": 200 / 3, "action_top1": 100 / 3})
    batch = {"label": torch.tensor([0, 1]), "noun": torch.tensor([1, 0])}
    assert task.target(batch).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="noun_class"):
        task.target({"label": torch.tensor([0])})


def test_verb_noun_fine_tuning_end_to_end(tmp_path):
    task = build_task("verb_noun")
    recipe = Recipe(epochs=3, batch_size=8, lr=0.05, schedule="constant", num_workers=0,
                    selection="last", dropout=0.5, freeze_bn=True)
    result = finetune(_NormBackbone(), task, _VerbNounClips(48), None,
                      _VerbNounClips(16, views=2, seed=1), recipe, tmp_path, metric="top1",
                      seed=0, progress=False)
    # both heads learn their part of the clip (verb: channel 0 vs 1, noun: channel 2)
    assert result["metrics"] == {"top1": 100.0, "noun_top1": 100.0, "action_top1": 100.0}
    assert load_suite("full").experiment("epic100_verbs").task == "verb_noun"
