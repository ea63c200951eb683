"""The ViT fine-tuning protocol (VideoMAE / SIGMA run_class_finetuning.py) against the
published rules: layer-wise lr decay, the warm-up + cosine schedule, mixup / cutmix label
mixing, RandAugment with one draw per clip, random erasing, drop path, multi-view testing."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from vidssl.config import OptimConfig, ScheduleConfig
from vidssl.data import augment as A
from vidssl.engine.optim import lr_factor, param_groups
from vidssl.evaluation.finetune import FinetuneModel
from vidssl.evaluation.inference import run_over_views
from vidssl.evaluation.suite import Recipe, load_suite
from vidssl.evaluation.tasks import build_task
from vidssl.evaluation.vit_protocol import freeze_backbone, load_vit_state, prepare_vit_protocol
from vidssl.models.vit import vit_base, vit_tiny

torch.set_num_threads(1)


# ------------------------------------------------------------------ VideoMAE's rules, transcribed
def _videomae_layer_id(var_name: str, num_max_layer: int) -> int:
    """optim_factory.get_num_layer_for_vit (MCG-NJU/VideoMAE, QUVA-Lab/SIGMA)."""
    if var_name in ("cls_token", "mask_token", "pos_embed"):
        return 0
    if var_name.startswith("patch_embed"):
        return 0
    if var_name.startswith("rel_pos_bias"):
        return num_max_layer - 1
    if var_name.startswith("blocks"):
        return int(var_name.split(".")[1]) + 1
    return num_max_layer - 1


def _videomae_groups(named_shapes, weight_decay, layer_decay, num_layers):
    """get_parameter_groups with LayerDecayValueAssigner(decay ** (L + 1 - i)): name ->
    (weight decay, lr scale)."""
    values = [layer_decay ** (num_layers + 1 - i) for i in range(num_layers + 2)]
    out = {}
    for name, shape in named_shapes:
        no_decay = len(shape) == 1 or name.endswith(".bias") or name in ("pos_embed", "cls_token")
        out[name] = (0.0 if no_decay else weight_decay,
                     values[_videomae_layer_id(name, len(values))])
    return out


def _videomae_cosine_scheduler(base, final, epochs, niter_per_ep, warmup_epochs):
    """utils.cosine_scheduler as run_class_finetuning.py calls it (start_warmup_value 0)."""
    warmup_iters = warmup_epochs * niter_per_ep
    warmup = np.linspace(0, base, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    cosine = [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / len(iters)))
              for i in iters]
    return np.concatenate((warmup, cosine))


def _videomae_name(name: str) -> str:
    """Our FinetuneModel names -> VideoMAE's VisionTransformer names."""
    return name.replace("backbone.", "").replace("head.fc.", "head.")


def test_layer_decay_and_weight_decay_equal_videomae_get_parameter_groups_on_vit_b():
    with torch.device("meta"):
        backbone = vit_base(img_size=32, num_frames=2, use_mean_pooling=True)
        head = build_task("classification").build_head(768, _Classes(174))
    model = FinetuneModel(backbone, head, build_task("classification"))
    optim = OptimConfig(name="adamw", lr=1.0, weight_decay=0.05, layer_decay=0.75)
    ours = {}
    for group in param_groups(model, optim, lr=1.0):
        for param in group["params"]:
            ours[id(param)] = (group["weight_decay"], group["lr_scale"])
    named = [(_videomae_name(n), tuple(p.shape)) for n, p in model.named_parameters()]
    reference = _videomae_groups(named, 0.05, 0.75, num_layers=12)
    assert len(reference) == 12 * 13 + 2 + 2 + 2  # blocks, patch_embed, fc_norm, head
    for (name, param), (ref_name, _) in zip(model.named_parameters(), named, strict=True):
        wd, scale = ours[id(param)]
        assert wd == reference[ref_name][0], name
        assert scale == pytest.approx(reference[ref_name][1], rel=1e-12), name
    ids = {n: ours[id(p)] for n, p in model.named_parameters()}
    assert ids["backbone.patch_embed.proj.weight"] == (0.05, pytest.approx(0.75 ** 13))
    assert ids["backbone.blocks.0.attn.q_bias"] == (0.0, pytest.approx(0.75 ** 12))
    assert ids["backbone.blocks.11.mlp.fc1.weight"] == (0.05, pytest.approx(0.75))
    assert ids["backbone.fc_norm.weight"] == (0.0, 1.0) and ids["head.fc.weight"] == (0.05, 1.0)


class _Classes:
    def __init__(self, n):
        self.num_classes = n


def test_warmup_from_zero_and_cosine_equal_videomae_cosine_scheduler():
    # lr 1e-3 -> min_lr 1e-6 (both scaled by B/256, so the ratio is 1e-3), 5 warm-up epochs
    epochs, per_epoch, warmup = 12, 7, 5
    reference = _videomae_cosine_scheduler(1.0, 1e-3, epochs, per_epoch, warmup)
    schedule = ScheduleConfig(name="cosine", warmup_epochs=warmup, min_lr_ratio=1e-3,
                              warmup_from_zero=True)
    total = epochs * per_epoch
    ours = [lr_factor(s, schedule, total, per_epoch) for s in range(total)]
    assert ours == pytest.approx(list(reference), abs=1e-12)
    assert ours[0] == 0.0 and ours[warmup * per_epoch - 1] == 1.0


def test_severe_picks_the_vit_recipe_for_vit_backbones_only():
    from vidssl.evaluation.runner import BackboneSource

    assert BackboneSource(model="vit_tiny", model_kwargs={"depth": 1}).variant == "vit"
    assert BackboneSource(model="r2plus1d_18", model_kwargs={"width": 0.25}).variant == "scratch"
    suite = load_suite("severe")
    vit, cnn = suite.resolved(variant="vit"), suite.resolved(variant="scratch")
    assert vit.variant_experiments("vit") == ["gym99", "ssv2", "ucf101_1000", "gym99_1000",
                                              "gym_fx_s1", "gym_ub_s1"]
    ssv2, gym = vit.recipes["ssv2"], vit.recipes["gym_fx_s1"]
    assert (ssv2.sampling, ssv2.hflip, ssv2.epochs, ssv2.test_clips, ssv2.test_crops) == (
        "segments", False, 40, 2, 3)
    assert (gym.frame_stride, gym.hflip, gym.epochs, gym.test_clips) == (4, True, 30, 5)
    for recipe in (ssv2, gym):
        assert (recipe.optimizer, recipe.lr, recipe.lr_batch_ref, recipe.batch_size) == (
            "adamw", 1e-3, 256, 32)
        assert (recipe.layer_decay, recipe.weight_decay, recipe.drop_path, recipe.mixup,
                recipe.cutmix, recipe.label_smoothing, recipe.random_erasing) == (
            0.75, 0.05, 0.1, 0.8, 1.0, 0.1, 0.25)
        assert recipe.rand_augment == "rand-m7-n4-mstd0.5-inc1" and recipe.selection == "last"
    assert vit.recipes["charades"] == cnn.recipes["charades"]  # no published ViT recipe
    assert cnn.recipes["ssv2"].optimizer == "adam" and cnn.recipes["ssv2"].mixup == 0.0


# ------------------------------------------------------------------ mixup / cutmix
def test_mixup_targets_are_the_published_label_mixing():
    mixup = A.Mixup(num_classes=4, smoothing=0.1)
    targets = mixup.targets(torch.tensor([0, 1, 2, 3]), lam=0.3)
    # on = 1 - 0.1 + 0.1/4 = 0.925, off = 0.025; sample i mixes with sample B-1-i
    assert targets[0].tolist() == pytest.approx([0.295, 0.025, 0.025, 0.655])
    assert targets[1].tolist() == pytest.approx([0.025, 0.295, 0.655, 0.025])
    assert targets.sum(1).tolist() == pytest.approx([1.0] * 4)
    videos = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 3, 2, 4, 4)
    mixed, lam = mixup.mix(videos, 0.3, cutmix=False)
    assert lam == 0.3 and mixed[0, 0, 0, 0, 0] == pytest.approx(0.3 * 0 + 0.7 * 3)


class _FixedRng:
    def __init__(self, *values):
        self.values = list(values)

    def integers(self, low, high):
        return self.values.pop(0)


def test_cutmix_box_and_corrected_lambda():
    mixup = A.Mixup(num_classes=2)
    videos = torch.stack([torch.zeros(3, 2, 10, 10), torch.ones(3, 2, 10, 10)])
    # lam 0.64: a 6 x 6 box; centred at (5, 5) it fits, so lam stays 0.64
    assert A.cutmix_box(10, 10, 0.64, _FixedRng(5, 5)) == (2, 8, 2, 8)
    mixed, lam = mixup.mix(videos, 0.64, cutmix=True, rng=_FixedRng(5, 5))
    assert lam == pytest.approx(0.64)
    assert mixed[0, :, :, 2:8, 2:8].eq(1).all() and mixed[0].sum() == 36 * 3 * 2  # every frame
    # centred at (0, 0) the box is clipped to 3 x 3: lam = 1 - 9/100
    mixed, lam = mixup.mix(videos, 0.64, cutmix=True, rng=_FixedRng(0, 0))
    assert lam == pytest.approx(0.91) and mixed[1, 0, 0, :3, :3].eq(0).all()


def test_mixup_switches_to_cutmix_half_the_time_with_beta_lambdas():
    mixup = A.Mixup(num_classes=5, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5)
    generator = torch.Generator().manual_seed(0)
    draws = [mixup.draw(generator) for _ in range(4000)]
    cut = [lam for lam, c in draws if c]
    mix = [lam for lam, c in draws if not c]
    assert len(cut) / len(draws) == pytest.approx(0.5, abs=0.03)
    assert np.var(cut) == pytest.approx(1 / 12, abs=0.01)  # Beta(1, 1)
    assert np.var(mix) == pytest.approx(0.8 * 0.8 / (1.6 ** 2 * 2.6), abs=0.01)  # Beta(.8, .8)
    videos, labels = torch.rand(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 3])
    for seed in range(6):  # the targets carry the (corrected) lambda the videos were mixed with
        out, soft = mixup(videos, labels, torch.Generator().manual_seed(seed))
        replay = torch.Generator().manual_seed(seed)
        lam, cutmix = mixup.draw(replay)
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=replay)))
        expected, lam = mixup.mix(videos, lam, cutmix, rng)
        assert torch.equal(out, expected)
        assert torch.allclose(soft, mixup.targets(labels, lam))
        if cutmix:
            from_partner = (out[0] == videos[3]).all(0).all(0).float().mean()
            assert float(from_partner) == pytest.approx(1 - lam)


# ------------------------------------------------------------------ RandAugment, erasing
def test_rand_augment_applies_one_parameter_set_to_all_frames():
    generator = torch.Generator().manual_seed(0)
    augment = A.RandAugment("rand-m7-n4-mstd0.5-inc1")
    assert (augment.magnitude, augment.num_ops, augment.magnitude_std) == (7.0, 4, 0.5)
    frames = torch.randint(0, 256, (3, 1, 20, 24), generator=generator, dtype=torch.uint8)
    clip = frames.expand(3, 6, 20, 24)  # six identical frames
    for _ in range(20):
        params = augment.get_params(clip, generator)
        assert params["ops"].shape == (1, 4)  # one draw for the whole clip
        out = augment.apply(clip, params)
        assert out.shape == (3, 6, 20, 24)
        assert (out - out[:, :1]).abs().max() == 0  # identical frames stay identical
    # different frames: the clip result equals each frame augmented with the same parameters
    clip = torch.randint(0, 256, (3, 4, 16, 16), generator=generator, dtype=torch.uint8)
    for _ in range(20):
        params = augment.get_params(clip, generator)
        whole = augment.apply(clip, params)
        for t in range(4):
            assert torch.equal(whole[:, t:t + 1], augment.apply(clip[:, t:t + 1], params))


def test_rand_augment_ops_equal_pil():
    image_module = pytest.importorskip("PIL.Image")
    from PIL import ImageEnhance, ImageOps

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:20]
    img = np.stack([xx * 10, yy * 8, 100 + 50 * np.sin(xx / 3.0)], -1).astype(np.uint8)
    noisy = rng.integers(0, 256, img.shape, dtype=np.uint8)
    for array in (img, noisy):
        pil = image_module.fromarray(array)
        x = torch.from_numpy(array.copy()).permute(2, 0, 1)[:, None].float() / 255

        def diff(ours, ref):
            ref = torch.from_numpy(np.array(ref)).permute(2, 0, 1)[:, None].float()
            return float((ours * 255 - ref).abs().max())

        up, down = 1.0 + (7.0 / 10) * 0.9, 1.0 - (7.0 / 10) * 0.9  # rand_augment.py, m = 7
        exact = [(A.auto_contrast(x), ImageOps.autocontrast(pil)),
                 (A.equalize(x), ImageOps.equalize(pil)),
                 (A.posterize(x, 2), ImageOps.posterize(pil, 2)),
                 (A.solarize(x, 100), ImageOps.solarize(pil, 100)),
                 (A.solarize_add(x, 77), pil.point(
                     [min(255, i + 77) if i < 128 else i for i in range(256)] * 3)),
                 (A.apply_op(x, "ColorIncreasing", 7.0, 1), ImageEnhance.Color(pil).enhance(up)),
                 (A.apply_op(x, "ContrastIncreasing", 7.0, -1),
                  ImageEnhance.Contrast(pil).enhance(down)),
                 (A.apply_op(x, "BrightnessIncreasing", 7.0, 1),
                  ImageEnhance.Brightness(pil).enhance(up)),
                 (A.apply_op(x, "SharpnessIncreasing", 7.0, 1),
                  ImageEnhance.Sharpness(pil).enhance(up))]
        for ours, ref in exact:
            assert diff(ours, ref) == 0
    # geometric ops (bicubic, fill 128): same geometry; kernels differ slightly (a=-.75/-.5)
    pil = image_module.fromarray(img)
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[:, None].float() / 255
    fill = {"resample": image_module.BICUBIC, "fillcolor": (128, 128, 128)}
    assert diff(A.apply_op(x, "Rotate", 7.0, -1), pil.rotate(-21.0, **fill)) <= 2
    assert diff(A.apply_op(x, "ShearX", 7.0, 1),
                pil.transform(pil.size, image_module.AFFINE, (1, 0.21, 0, 0, 1, 0), **fill)) <= 2
    assert diff(A.affine(x, (1, 0, 5, 0, 1, 0)),
                pil.transform(pil.size, image_module.AFFINE, (1, 0, 5, 0, 1, 0), **fill)) == 0


def test_random_erasing_puts_one_box_in_every_frame():
    erase = A.RandomErasing(p=1.0)
    clip = torch.zeros(3, 4, 40, 30)
    out = erase(clip, torch.Generator().manual_seed(1))
    changed = out != 0
    assert changed.any()
    assert torch.equal(changed[:, :1].expand_as(changed), changed)  # the same box in all frames
    assert not torch.equal(out[:, 0], out[:, 1])  # fresh noise per frame
    area = float(changed[0, 0].float().sum()) / (40 * 30)
    assert 0.02 * 0.8 <= area <= 1 / 3 * 1.2
    never = A.RandomErasing(p=0.0)(clip, torch.Generator().manual_seed(1))
    assert torch.equal(never, clip)


# ------------------------------------------------------------------ model side
def test_drop_path_is_active_in_training_only():
    torch.manual_seed(0)
    model = vit_tiny(img_size=32, num_frames=4, depth=4, drop_path_rate=0.5)
    plain = vit_tiny(img_size=32, num_frames=4, depth=4, drop_path_rate=0.0)
    plain.load_state_dict(model.state_dict())
    rates = [block.drop_path.p for block in model.blocks]
    assert rates == pytest.approx([0.0, 0.5 / 3, 1.0 / 3, 0.5])
    video = torch.randn(4, 3, 4, 32, 32)
    model.eval()
    plain.eval()
    with torch.no_grad():
        assert torch.equal(model(video), model(video))
        assert torch.allclose(model(video), plain(video), atol=1e-6)
        model.train()
        assert not torch.allclose(model(video), model(video))


def test_pretraining_weights_load_into_the_mean_pooled_vit():
    pretrained = vit_tiny(img_size=32, num_frames=4, depth=2, use_mean_pooling=False)
    model = vit_tiny(img_size=32, num_frames=4, depth=2, use_mean_pooling=True)
    fresh_fc_norm = model.fc_norm.weight.clone()
    load_vit_state(model, pretrained.state_dict())  # norm dropped, fc_norm fresh
    assert torch.equal(model.blocks[1].mlp.fc2.weight, pretrained.blocks[1].mlp.fc2.weight)
    assert torch.equal(model.fc_norm.weight, fresh_fc_norm)
    broken = dict(pretrained.state_dict())
    broken.pop("blocks.0.attn.qkv.weight")
    with pytest.raises(RuntimeError, match="blocks.0.attn.qkv.weight"):
        load_vit_state(model, broken)


def test_linear_probing_trains_head_and_fc_norm_and_head_init_is_scaled():
    task = build_task("classification")
    backbone = vit_tiny(img_size=32, num_frames=4, depth=2, use_mean_pooling=True)
    model = FinetuneModel(backbone, task.build_head(192, _Classes(5)), task)
    recipe = Recipe(freeze_backbone=True, head_init_scale=0.001, mixup=0.8, cutmix=1.0,
                    label_smoothing=0.1)
    prepare_vit_protocol(model, recipe, num_classes=5)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained == ["backbone.fc_norm.weight", "backbone.fc_norm.bias", "head.fc.weight",
                       "head.fc.bias"]
    assert freeze_backbone(model) == trained
    assert float(model.head.fc.weight.detach().std()) == pytest.approx(0.02 * 0.001, rel=0.15)
    assert float(model.head.fc.bias.detach().abs().max()) == 0.0
    batch = {"video": torch.randn(4, 3, 4, 32, 32), "label": torch.tensor([0, 1, 2, 3])}
    loss = model.training_step(batch)["loss"]
    # a near-zero head: the loss of soft targets against a uniform prediction is log(5)
    assert float(loss.detach()) == pytest.approx(math.log(5), abs=1e-3)


def test_multi_segment_three_crop_testing_averages_softmax_scores():
    class Views(torch.utils.data.Dataset):  # 2 segments x 3 crops = 6 views per video
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"video": torch.randn(6, 3, 2, 4, 4, generator=torch.Generator().manual_seed(i)),
                    "label": i % 2}

    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, 2))
    task = build_task("classification")
    outputs, _, _ = run_over_views(net, Views(), task, clips_per_batch=12, device="cpu",
                                   progress=False)
    assert outputs.shape == (3, 6, 2)
    merged = task.merge_views(outputs)
    for i in range(3):
        with torch.no_grad():
            views = net(Views()[i]["video"]).softmax(-1)
        assert torch.allclose(merged[i], views.mean(0), atol=1e-6)
