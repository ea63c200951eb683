import colorsys

import pytest
import torch
import torch.nn.functional as F

from vidssl.data import clip_ops
from vidssl.data import transforms as T

torch.set_num_threads(1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def ramp_clip(frames=4, height=24, width=32):
    """float [C,T,H,W]: a spatial pattern plus a per-frame offset t / 10."""
    y = torch.linspace(0, 0.5, height).view(1, 1, height, 1)
    x = torch.linspace(0, 0.3, width).view(1, 1, 1, width)
    c = torch.tensor([0.1, 0.0, 0.05]).view(3, 1, 1, 1)
    t = torch.arange(frames).view(1, frames, 1, 1) / 20
    return (y + x + c + t).expand(3, frames, height, width).contiguous()


def test_train_transform_maps_uint8_frames_to_normalized_float_cthw():
    frames = torch.randint(0, 256, (8, 40, 50, 3), dtype=torch.uint8)
    out = T.train_transform(16)(frames, gen())
    assert out.shape == (3, 8, 16, 16) and out.dtype == torch.float32
    again = T.train_transform(16)(frames, gen())
    assert torch.equal(out, again)  # deterministic given the generator
    assert not torch.equal(out, T.train_transform(16)(frames, gen(1)))


@pytest.mark.parametrize(
    "transform",
    [T.RandomResizedCrop(12), T.MultiScaleCrop(12), T.CenterCrop(12), T.ShortSideResize(10)],
)
def test_geometric_transforms_use_one_box_for_all_frames(transform):
    clip = ramp_clip()
    for seed in range(5):
        out = transform(clip, gen(seed))
        # frames differ by a constant offset before, so they must after the same crop
        offsets = out - out[:, :1]
        expected = (torch.arange(4) / 20).view(1, 4, 1, 1).expand_as(out)
        assert torch.allclose(offsets, expected, atol=1e-5)


def test_color_jitter_uses_one_parameter_set_for_all_frames():
    frame = torch.rand(3, 1, 10, 10)
    clip = frame.expand(3, 6, 10, 10)
    out = T.ColorJitter(0.4, 0.4, 0.4, 0.2)(clip, gen(3))
    assert not torch.allclose(out, clip)
    assert torch.allclose(out, out[:, :1].expand_as(out), atol=1e-6)


def test_random_resized_crop_boxes_respect_scale_and_ratio():
    boxes = clip_ops.sample_resized_crop_boxes(500, 100, 120, (0.2, 0.6), (0.75, 4 / 3), gen())
    top, left, h, w = boxes.unbind(1)
    assert torch.all(top >= 0) and torch.all(left >= 0)
    assert torch.all(top + h <= 100) and torch.all(left + w <= 120)
    area = (h * w).float() / (100 * 120)
    assert area.min() > 0.18 and area.max() < 0.62  # rounding of w, h
    ratio = w.float() / h.float()
    assert ratio.min() > 0.72 and ratio.max() < 1.38
    assert len(set(top.tolist())) > 20  # placement is random


def test_flip_is_exact_mirror():
    frames = torch.randint(0, 256, (3, 5, 4, 7), dtype=torch.uint8)
    flipped = T.RandomHorizontalFlip(p=1.0)(frames)
    assert torch.equal(flipped, frames.flip(-1))
    assert torch.equal(T.RandomHorizontalFlip(p=0.0)(frames), frames)
    batch = torch.rand(6, 3, 2, 4, 5)
    flip = T.RandomHorizontalFlip(0.5)
    mask = flip.get_params(batch, gen(1))
    out = flip.apply(batch, mask)
    for i in range(6):
        assert torch.equal(out[i], batch[i].flip(-1) if mask[i] else batch[i])
    assert 0 < int(mask.sum()) < 6


def test_normalize_uses_imagenet_statistics():
    zeros, full = (
        torch.zeros(3, 1, 2, 2, dtype=torch.uint8),
        torch.full((3, 1, 2, 2), 255, dtype=torch.uint8),
    )
    mean, std = torch.tensor(T.IMAGENET_MEAN), torch.tensor(T.IMAGENET_STD)
    assert torch.allclose(T.Normalize()(zeros)[:, 0, 0, 0], -mean / std)
    assert torch.allclose(T.Normalize()(full)[:, 0, 0, 0], (1 - mean) / std)
    assert T.IMAGENET_MEAN == (0.485, 0.456, 0.406) and T.IMAGENET_STD == (0.229, 0.224, 0.225)


def test_resized_crop_matches_interpolate_of_the_crop():
    clip = torch.rand(3, 2, 20, 30)
    out = clip_ops.resized_crop(clip, (3, 5, 10, 16), (7, 9))
    expected = F.interpolate(
        clip[:, :, 3:13, 5:21], size=(7, 9), mode="bilinear", align_corners=False
    )
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize(
    "transform",
    [
        T.RandomResizedCrop(12, scale=(0.05, 1.0)),  # up- and down-scaling crops
        T.MultiScaleCrop((10, 14), fix_crop=False),
        T.RandomHorizontalFlip(0.5),
        T.ColorJitter(0.4, 0.4, 0.4, 0.2, p=0.7),
        T.RandomGrayscale(0.5),
        T.CenterCrop(9),
        T.GaussianBlur((0.1, 2.0), p=0.6),
        T.WeakColorJitter(p=0.5),
    ],
)
def test_batched_equals_per_sample_for_the_same_params(transform):
    batch = torch.rand(8, 3, 3, 20, 26)
    params = transform.get_params(batch, gen(5))
    batched = transform.apply(batch, params)
    single = torch.stack([transform.apply(batch[i], T.select_params(params, i)) for i in range(8)])
    assert batched.shape == single.shape
    assert torch.allclose(batched, single, atol=1e-5)


def test_hue_shift_matches_hsv_rotation():
    pixels = torch.rand(2, 3, 1, 4, 4)
    pixels[0, :, 0, 0, 0] = 0.5  # a grey pixel keeps its colour
    shift = torch.tensor([0.13, -0.4])
    out = clip_ops.adjust_hue(pixels, shift)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                h, s, v = colorsys.rgb_to_hsv(*pixels[b, :, 0, i, j].tolist())
                expected = colorsys.hsv_to_rgb((h + shift[b].item()) % 1.0, s, v)
                assert torch.allclose(out[b, :, 0, i, j], torch.tensor(expected), atol=1e-5)


def test_brightness_contrast_saturation_grayscale_semantics():
    x = torch.rand(2, 3, 2, 5, 5) * 0.5
    one = torch.ones(2)
    assert torch.allclose(clip_ops.adjust_brightness(x, one * 1.5), (x * 1.5).clamp(0, 1))
    flat = clip_ops.adjust_contrast(x, torch.zeros(2))  # factor 0 -> the clip's mean luma
    luma = clip_ops.grayscale(x)
    assert torch.allclose(flat[0], luma[0].mean().expand_as(flat[0]), atol=1e-6)
    gray = clip_ops.adjust_saturation(x, torch.zeros(2))
    assert torch.allclose(gray, luma.expand_as(x), atol=1e-6)
    assert torch.allclose(luma[0, 0], 0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2])
    out = T.RandomGrayscale(p=1.0)(x)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert torch.equal(T.ColorJitter(p=0.0)(x), x)


def test_test_transform_is_short_side_resize_then_center_crop():
    frames = torch.randint(0, 256, (2, 64, 96, 3), dtype=torch.uint8)
    out = T.test_transform(28, normalize=False)(frames)
    clip = frames.permute(3, 0, 1, 2).float() / 255  # resize to short side 32 -> 32x48
    resized = F.interpolate(
        clip, size=(32, 48), mode="bilinear", align_corners=False, antialias=True
    )
    assert torch.allclose(out, resized[:, :, 2:30, 10:38], atol=1e-5)
    crops = T.test_transform(28, num_crops=3, normalize=False)(frames)
    assert crops.shape == (3, 3, 2, 28, 28)
    assert torch.allclose(crops[1], out) and torch.allclose(
        crops[0], resized[:, :, 2:30, :28], atol=1e-5
    )
    assert torch.allclose(crops[2], resized[:, :, 2:30, -28:], atol=1e-5)


def test_multi_view_gives_independent_views_and_batched_pipeline_runs():
    frames = torch.randint(0, 256, (4, 30, 30, 3), dtype=torch.uint8)
    views = T.MultiView(T.train_transform(16), 2)(frames, gen())
    assert views.shape == (2, 3, 4, 16, 16) and not torch.equal(views[0], views[1])
    batch_t = T.train_transform(16, from_frames=False, jitter_p=0.8, grayscale_p=0.2)
    out = batch_t(torch.randint(0, 256, (5, 3, 4, 30, 30), dtype=torch.uint8), gen())
    assert out.shape == (5, 3, 4, 16, 16) and torch.isfinite(out).all()


def test_multiscale_crop_sides_come_from_the_scales():
    boxes = clip_ops.sample_multiscale_crop_boxes(200, 100, 160, (1.0, 0.75, 0.5), 1, True, gen())
    sides = {100, 75, 50}
    assert set(boxes[:, 2].tolist()) <= sides and set(boxes[:, 3].tolist()) <= sides
    assert torch.all((boxes[:, 2] - boxes[:, 3]).abs() <= 25)  # max_distort = 1 step
    for top, left, h, w in boxes.tolist():  # one of the 5 fixed places
        assert top in (0, (100 - h) // 2, 100 - h) and left in (0, (160 - w) // 2, 160 - w)
    assert len({tuple(b) for b in boxes.tolist()}) > 10
