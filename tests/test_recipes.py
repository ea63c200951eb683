"""Each method's pretraining inputs follow its published recipe (``vidssl.data.recipes``)."""
import colorsys

import numpy as np
import pytest
import torch

import vidssl.data.datasets.base as dataset_base
from vidssl.data import clip_ops
from vidssl.data import transforms as T
from vidssl.data.recipes import PretrainRecipe, RandomVideoPairs
from vidssl.io import write_video
from vidssl.methods import METHODS
from vidssl.methods.tubelet_contrast import recolor_pair
from vidssl.methods.tubelets import add_tubelets
from vidssl.models import build_backbone
from vidssl.pretrain import build_pretrain_dataset, load_pretrain_config

torch.set_num_threads(1)
MEAN = torch.tensor(T.IMAGENET_MEAN).view(3, 1, 1, 1)
STD = torch.tensor(T.IMAGENET_STD).view(3, 1, 1, 1)
VIDEO_FRAMES, CLIP_FRAMES = 64, 8


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pixels(clip: torch.Tensor) -> torch.Tensor:
    """A normalised clip ``[..., C,T,H,W]`` back in [0, 1]."""
    return clip * STD + MEAN


def flat_frames(frames: int = 6, height: int = 20, width: int = 28, seed: int = 0):
    """``uint8 [T,H,W,3]``: every frame a single random colour."""
    colours = torch.randint(20, 236, (frames, 1, 1, 3), generator=gen(seed), dtype=torch.uint8)
    return colours.expand(frames, height, width, 3).contiguous()


def colour_error(frames: torch.Tensor, clip: torch.Tensor) -> float:
    """Largest distance of any output pixel from its input frame's colour."""
    expected = frames[:, 0, 0].float().T.div(255)[:, :, None, None]  # [C,T,1,1]
    return float((pixels(clip) - expected).abs().max())


def step(name: str, kind: type, size: int = 112):
    return next(s for s in METHODS[name].recipe.augmentation.transform(size).steps
                if isinstance(s, kind))


def test_every_method_declares_its_published_recipe():
    for name, method in METHODS.items():
        assert isinstance(method.recipe, PretrainRecipe), name
        assert method.recipe.source, name
    pairing = {name: method.recipe.pairing for name, method in METHODS.items()}
    assert pairing == {"videomae": "one_clip", "sigma": "one_clip", "supervised": "one_clip",
                       "video_moco": "two_clips", "tubelet_contrast": "random_video"}


# ------------------------------------------------------------------- VideoMAE and SIGMA
@pytest.mark.parametrize("name", ["videomae", "sigma"])
def test_masked_video_models_see_no_colour_change(name):
    """Crops, resizes and flips only move pixels around: a frame of one colour keeps exactly
    that colour. Any jitter, grayscale or blur of a changing colour would move it."""
    frames = flat_frames()
    transform = METHODS[name].recipe.augmentation.transform(16)
    assert max(colour_error(frames, transform(frames, gen(s))) for s in range(40)) < 1e-5
    moco = METHODS["video_moco"].recipe.augmentation.transform(16)  # the check has teeth
    changed = [colour_error(frames, moco(frames, gen(s))) > 0.01 for s in range(40)]
    assert sum(changed) >= 25  # P(changed) = 1 - 0.2 * 0.8 = 0.84


@pytest.mark.parametrize("name", ["videomae", "sigma"])
def test_masked_video_models_use_the_multi_scale_crop_without_flip(name):
    crop = step(name, T.MultiScaleCrop)
    height, width = 128, 171
    boxes = crop.get_params(torch.zeros(1, 3, 1, height, width).expand(3000, -1, -1, -1, -1),
                            gen(0))
    sides = [128, 112, 96, 84]  # int(128 * s) for s in (1, .875, .75, .66)
    expected = {(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= 1}
    assert {(h, w) for _, _, h, w in boxes.tolist()} == expected
    places = set()
    for top, left, h, w in boxes.tolist():
        quarter_top = [q for q in range(5) if (height - h) * q // 4 == top]
        quarter_left = [q for q in range(5) if (width - w) * q // 4 == left]
        assert quarter_top and quarter_left
        if len(quarter_top) == len(quarter_left) == 1:  # free room on both sides
            places.add((quarter_top[0], quarter_left[0]))
    assert len(places) == 13  # corners, centre, edge centres, quarter points
    ramp = torch.linspace(0, 255, width).round().to(torch.uint8)
    frames = ramp.view(1, 1, width, 1).expand(4, height, width, 3).contiguous()
    transform = METHODS[name].recipe.augmentation.transform(32)
    for seed in range(20):  # never mirrored: the ramp always rises to the right
        red = pixels(transform(frames, gen(seed)))[0, 0, 0]
        assert bool((red.diff() > 0).all())


# ---------------------------------------------------------------------------- video MoCo
@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    """video_list: a moving video and a static one, 64 frames of 16 x 16 each."""
    root = tmp_path_factory.mktemp("long_videos")
    g = torch.Generator().manual_seed(0)
    moving = torch.randint(0, 256, (VIDEO_FRAMES, 16, 16, 3), generator=g, dtype=torch.uint8)
    static = moving[:1].expand(VIDEO_FRAMES, -1, -1, -1).contiguous()
    write_video(root / "moving.mp4", moving.numpy(), fps=16)
    write_video(root / "static.mp4", static.numpy(), fps=16)
    (root / "train.txt").write_text("moving.mp4\nstatic.mp4\n")
    return root


def pretrain_dataset(config: str, root):
    cfg = load_pretrain_config(config, [f"data.root={root}", f"data.num_frames={CLIP_FRAMES}",
                                        "data.size=16"])
    return build_pretrain_dataset(cfg)


@pytest.fixture
def decoded(monkeypatch):
    """Records ``(path, frame indices)`` of every clip the datasets decode."""
    calls = []

    def recording_read_clip(path, indices, **kwargs):
        calls.append((str(path), list(indices)))
        return original(path, indices, **kwargs)

    original = dataset_base.read_clip
    monkeypatch.setattr(dataset_base, "read_clip", recording_read_clip)
    return calls


def test_moco_views_come_from_independent_random_times(long_videos, decoded):
    dataset = pretrain_dataset("video_moco_world", long_videos)
    starts = []
    for epoch in range(30):
        dataset.set_epoch(epoch)
        sample = dataset[0]
        assert sample["video"].shape == (2, 3, CLIP_FRAMES, 16, 16)
        indices = decoded[-1][1]
        first, second = indices[:CLIP_FRAMES], indices[CLIP_FRAMES:]
        assert first == list(range(first[0], first[0] + CLIP_FRAMES)) and len(second) == len(first)
        starts.append((first[0], second[0]))
    starts = np.array(starts)
    assert (starts[:, 0] != starts[:, 1]).mean() >= 0.9  # P(same start) = 1 / 57
    assert abs(np.corrcoef(starts.T)[0, 1]) < 0.4  # drawn independently
    assert np.ptp(starts) > VIDEO_FRAMES // 2  # anywhere in the video


def test_moco_views_are_augmented_independently(long_videos):
    """A static video's two clips have the same frames: only their augmentation differs."""
    dataset = pretrain_dataset("video_moco_world", long_videos)
    for epoch in range(10):
        dataset.set_epoch(epoch)
        views = dataset[1]["video"]
        assert (views[0] - views[1]).abs().max() > 0.1


def test_moco_augmentation_is_mocov2s():
    crop = step("video_moco", T.RandomResizedCrop)
    boxes = crop.get_params(torch.zeros(1, 3, 1, 128, 171).expand(2000, -1, -1, -1, -1), gen(1))
    area = (boxes[:, 2] * boxes[:, 3]).float() / (128 * 171)
    assert area.min() >= 0.19 and area.max() <= 1.0 and area.quantile(0.05) < 0.3
    frames = flat_frames(frames=2)
    transform = METHODS["video_moco"].recipe.augmentation.transform(16)
    outputs = [pixels(transform(frames, gen(s))) for s in range(400)]
    gray = np.mean([bool((o[0] - o[1]).abs().max() < 1e-5) for o in outputs])
    untouched = np.mean([colour_error(frames, transform(frames, gen(s))) < 1e-5
                         for s in range(400)])
    assert 0.15 < gray < 0.25  # grayscale p = 0.2
    assert 0.11 < untouched < 0.21  # no jitter (0.2) and no grayscale (0.8): 0.16
    blur = step("video_moco", T.GaussianBlur, size=112)
    assert blur.p == 0.5 and blur.sigma == pytest.approx((0.05, 1.0))  # 0.1-2.0 px at 224


# ------------------------------------------------------------------------ Tubelet-Contrast
class NumberedClips(torch.utils.data.Dataset):
    """Clip ``i`` is filled with ``i``; its randomness depends on (seed, epoch, i)."""

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed, self.epoch = size, seed, 0

    def __len__(self):
        return self.size

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, index):
        noise = torch.rand(1, generator=gen(hash((self.seed, self.epoch, index)) % 2**31))
        return {"video": torch.full((1, 2, 2, 2), float(index)), "noise": noise,
                "index": index, "bad": 0}


def test_random_video_pairs_draw_another_video_uniformly_and_reproducibly():
    pairs = RandomVideoPairs(NumberedClips(5, seed=3), seed=11)
    partners = []
    for epoch in range(2000):
        pairs.set_epoch(epoch)
        sample = pairs[2]
        assert sample["video"][:, 0, 0, 0, 0].tolist() == [2.0, float(sample["partner"])]
        partners.append(sample["partner"])
    counts = np.bincount(partners, minlength=5) / len(partners)
    assert counts[2] == 0 and np.abs(counts[[0, 1, 3, 4]] - 0.25).max() < 0.04
    resumed = RandomVideoPairs(NumberedClips(5, seed=3), seed=11)
    resumed.set_epoch(1999)
    assert resumed[2]["partner"] == partners[-1]
    # the partner clip is drawn apart from the partner's own sample in the same epoch
    partner = resumed[2]["partner"]
    assert resumed.partners.seed != resumed.dataset.seed
    assert not torch.equal(resumed.partners[partner]["noise"], resumed.dataset[partner]["noise"])


def test_tubelet_contrast_pairs_clips_of_two_videos(long_videos, decoded):
    dataset = pretrain_dataset("tubelet_contrast_world", long_videos)
    assert isinstance(dataset, RandomVideoPairs)
    for index in range(2):
        sample = dataset[index]
        assert sample["video"].shape == (2, 3, CLIP_FRAMES, 16, 16)
        (path_a, _), (path_b, _) = decoded[-2:]
        assert path_a != path_b and sample["partner"] == 1 - index


def test_tubelet_contrast_views_share_tubelets_and_colour():
    """Pairs of identical clips give identical views only if the tubelets and the colour
    change are the same on both; the colour change does happen (p = 0.2 per op)."""
    method = METHODS["tubelet_contrast"]
    model = method(build_backbone("r2plus1d_18", width=0.25), method.Params(negatives="batch"))
    clips = ((torch.rand(32, 3, 8, 16, 16, generator=gen(0)) - MEAN) / STD)
    torch.manual_seed(5)
    view_a, view_b = model.views({"video": torch.stack([clips, clips], dim=1)})
    assert torch.equal(view_a, view_b)
    torch.manual_seed(5)
    pasted, _, _ = add_tubelets(clips, clips, model.params.tubelets)
    recoloured = (view_a - pasted).flatten(1).abs().amax(dim=1) > 1e-3
    assert 8 <= int(recoloured.sum()) <= 24  # P(any op) = 1 - 0.8 ** 3 = 0.49


def test_paired_colour_is_one_draw_for_both_views():
    color = T.WeakColorJitter(p=1.0)
    a = (torch.rand(6, 3, 2, 4, 4, generator=gen(1)) - MEAN) / STD
    b = (torch.rand(6, 3, 2, 4, 4, generator=gen(2)) - MEAN) / STD
    torch.manual_seed(0)
    out_a, out_b = recolor_pair(a, b, color)
    torch.manual_seed(0)
    params = color.get_params(a)
    for view, out in ((a, out_a), (b, out_b)):
        expected = (color.apply(pixels(view), params) - MEAN) / STD
        torch.testing.assert_close(out, expected)


def test_weak_colour_jitter_values():
    brightness = T.WeakColorJitter(contrast=0.0, hue=0.0, saturation=0.0, p=1.0)
    grey = torch.full((500, 3, 2, 1, 1), 0.5)
    shift = brightness(grey, gen(0)) - 0.5
    assert shift.abs().max() <= 32 / 255 + 1e-6 and shift.min() < -0.11 and shift.max() > 0.11
    assert torch.equal(shift.amin(dim=(1, 2, 3, 4)), shift.amax(dim=(1, 2, 3, 4)))
    off = T.WeakColorJitter(p=0.0)
    assert torch.equal(off(grey, gen(0)), grey)


def test_hsv_saturation_scaling_matches_colorsys():
    rgb = torch.rand(20, 3, generator=gen(3))
    factors = torch.linspace(0.5, 2.5, 20)
    out = clip_ops.scale_hsv_saturation(rgb.view(20, 3, 1, 1, 1), factors).view(20, 3)
    for colour, factor, result in zip(rgb.tolist(), factors.tolist(), out.tolist(), strict=True):
        h, s, v = colorsys.rgb_to_hsv(*colour)
        assert result == pytest.approx(colorsys.hsv_to_rgb(h, min(s * factor, 1.0), v), abs=1e-5)


def test_gaussian_blur_has_the_requested_spread():
    impulse = torch.zeros(2, 1, 1, 31, 31)
    impulse[..., 15, 15] = 1.0
    out = clip_ops.gaussian_blur(impulse, torch.tensor([1.0, 2.0]))
    offsets = torch.arange(31.0) - 15
    for sample, sigma in zip(out[:, 0, 0], (1.0, 2.0), strict=True):
        assert float(sample.sum()) == pytest.approx(1.0, abs=1e-5)
        variance = float((sample.sum(dim=0) * offsets**2).sum())
        assert variance == pytest.approx(sigma**2, rel=0.03)
    flat = torch.full((2, 3, 2, 5, 7), 0.3)
    torch.testing.assert_close(clip_ops.gaussian_blur(flat, torch.tensor([0.5, 3.0])), flat)
