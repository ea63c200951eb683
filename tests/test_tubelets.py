"""Tubelet synthesis: geometry, sharing between views, every switch."""
import math
from dataclasses import replace

import pytest
import torch

from vidssl.methods.tubelets import (
    SHAPES,
    TubeletConfig,
    TubeletParams,
    _interpolate,
    _key_frames,
    add_tubelets,
    paste_tubelets,
    sample_tubelets,
)

torch.set_num_threads(1)

STATIC = TubeletConfig(num_tubelets=1, motion="none", rotation=False, opacity_range=(1.0, 1.0),
                       soft_edge_prob=0.0, shape_probs=(1.0, 0.0, 0.0))


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tubelet_layer(params: TubeletParams, shape) -> torch.Tensor:
    """Render the tubelets onto zeros from an all-ones source: the result is the alpha map."""
    return paste_tubelets([torch.zeros(shape)], torch.ones(shape), params)[0][:, 0]


def moments(alpha: torch.Tensor):
    """Area, centroid (x, y) and covariance of a [..., H, W] alpha map."""
    H, W = alpha.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                            torch.arange(W, dtype=torch.float64), indexing="ij")
    a = alpha.double()
    area = a.sum((-2, -1))
    cx, cy = (a * xs).sum((-2, -1)) / area, (a * ys).sum((-2, -1)) / area
    dx, dy = xs - cx[..., None, None], ys - cy[..., None, None]
    cov = torch.stack([torch.stack([(a * dx * dx).sum((-2, -1)), (a * dx * dy).sum((-2, -1))], -1),
                       torch.stack([(a * dx * dy).sum((-2, -1)), (a * dy * dy).sum((-2, -1))], -1)],
                      -2) / area[..., None, None]
    return area, torch.stack([cx, cy], -1), cov


@pytest.mark.parametrize("num_frames,height,width", [(8, 40, 40), (16, 48, 64), (32, 36, 28)])
def test_views_carry_identical_tubelets(num_frames, height, width):
    clips_a = torch.rand(3, 3, num_frames, height, width, generator=generator(1))
    clips_b = torch.rand(3, 3, num_frames, height, width, generator=generator(2))
    views_a, views_b, params = add_tubelets(clips_a, clips_b, generator=generator(3))
    assert views_a.shape == clips_a.shape and params.centers.shape == (3, 2, num_frames, 2)
    alpha = params.alpha_maps()
    assert alpha.shape == (3, 2, num_frames, height, width)
    assert (alpha.flatten(2).amax(-1) > 0.5).all()  # every tubelet is visible
    keep = (1 - alpha).prod(dim=1, keepdim=True)
    # out = background * prod(1 - alpha) + tubelet layer: the layer is the same in A and B
    layer_a, layer_b = views_a - clips_a * keep, views_b - clips_b * keep
    torch.testing.assert_close(layer_a, layer_b, atol=1e-5, rtol=0)
    torch.testing.assert_close(views_a[keep.expand_as(views_a) == 1],
                               clips_a[keep.expand_as(views_a) == 1])


def test_opaque_tubelet_pixels_equal_in_both_views():
    config = replace(TubeletConfig(), opacity_range=(1.0, 1.0), soft_edge_prob=0.0)
    clips_a, clips_b = torch.rand(2, 4, 3, 16, 56, 56, generator=generator(4))
    views_a, views_b, params = add_tubelets(clips_a, clips_b, config, generator(5))
    covered = (params.alpha_maps() == 1).any(dim=1, keepdim=True).expand_as(views_a)
    assert covered.float().mean() > 0.02
    torch.testing.assert_close(views_a[covered], views_b[covered])
    assert not torch.allclose(views_a[~covered], views_b[~covered])


def test_patch_comes_from_a_frame_of_clip_a():
    T, H, W = 8, 64, 64
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32),
                            torch.arange(W, dtype=torch.float32), indexing="ij")
    frames = torch.arange(T, dtype=torch.float32).view(T, 1, 1).expand(T, H, W)
    ramp = torch.stack([xs.expand(T, H, W), ys.expand(T, H, W), frames])[None]  # x, y, t
    config = replace(STATIC, scales=(40,), aspect_ratios=(1.0,), scale_jitter=0.0)
    _, views_b, params = add_tubelets(ramp, torch.zeros_like(ramp), config, generator(6))
    inside = tubelet_layer(params, ramp.shape) == 1
    x, y, t = views_b[0, :, inside[0]]
    source = params.source_center[0, 0] - params.centers[0, 0, 0]
    # one frame of A, replicated in time
    torch.testing.assert_close(t, params.source_frame[0, 0].float().expand_as(t), atol=1e-4, rtol=0)
    torch.testing.assert_close(x, xs.expand(T, H, W)[inside[0]] + source[0], atol=1e-3, rtol=0)
    torch.testing.assert_close(y, ys.expand(T, H, W)[inside[0]] + source[1], atol=1e-3, rtol=0)


@pytest.mark.parametrize("motion", ["nonlinear", "linear", "none"])
def test_rendered_centre_follows_the_trajectory(motion):
    config = replace(STATIC, motion=motion, shape_probs=(0.5, 0.35, 0.15), num_tubelets=1)
    params = sample_tubelets(4, 16, (60, 80), config, generator(7))
    alpha = tubelet_layer(params, (4, 3, 16, 60, 80))
    _, centroid, _ = moments(alpha)
    boxes = params.boxes()[:, 0]
    inside = (boxes[..., 0] > 0) & (boxes[..., 1] > 0) & (boxes[..., 2] < 79) & (boxes[..., 3] < 59)
    assert inside.float().mean() > 0.5
    error = (centroid.float() - params.centers[:, 0]).norm(dim=-1)[inside]
    assert error.max() < 0.1


def test_linear_motion_has_constant_velocity_and_none_stays():
    linear = sample_tubelets(8, 16, (48, 64), replace(TubeletConfig(), motion="linear"),
                             generator(8))
    velocity = linear.centers.diff(dim=2)
    torch.testing.assert_close(velocity, velocity[:, :, :1].expand_as(velocity), atol=1e-4,
                               rtol=0)
    assert velocity.abs().sum() > 0
    static = sample_tubelets(8, 16, (48, 64), replace(TubeletConfig(), motion="none"),
                             generator(8))
    assert (static.centers.diff(dim=2) == 0).all()


def test_nonlinear_trajectory_spans_the_sampled_extent_at_any_size():
    config = TubeletConfig()
    for size in [(112, 112), (224, 224), (32, 48)]:
        params = sample_tubelets(64, 16, size, config, generator(9))
        span = params.centers.amax(2) - params.centers.amin(2)  # [B,N,2]
        scale = min(size) / config.reference_size
        assert span.max() <= config.trajectory_extent[1] * scale + 1e-3
        assert span.mean() > config.trajectory_extent[0] * scale
        assert (params.centers >= 0).all()
        assert (params.centers[..., 0] <= size[1] - 1).all()
        assert (params.centers[..., 1] <= size[0] - 1).all()
    curvy = params.centers.diff(dim=2)
    assert not torch.allclose(curvy, curvy[:, :, :1].expand_as(curvy), atol=1e-2)


def test_box_sizes_scale_with_the_frame():
    config = replace(TubeletConfig(), scale_jitter=0.0, scales=(32,), aspect_ratios=(2.0,))
    small = sample_tubelets(4, 8, (112, 112), config, generator(0)).sizes
    large = sample_tubelets(4, 8, (224, 300), config, generator(0)).sizes
    torch.testing.assert_close(small, torch.tensor([32 * math.sqrt(2), 32 / math.sqrt(2)]
                                                   ).expand_as(small))
    torch.testing.assert_close(large, 2 * small)


@pytest.mark.parametrize("switch", ["rotation", "scale", "shear"])
def test_transformations_change_the_patch_as_specified(switch):
    """A rendered rectangle has area |det M_t| w h, covariance M_t diag(w^2, h^2) M_t^T / 12."""
    H = W = 128
    config = replace(STATIC, rotation=switch == "rotation", scale=switch == "scale",
                     shear=switch == "shear", scales=(28,), aspect_ratios=(2.0,),
                     scale_jitter=0.0, reference_size=H, scale_velocity=0.05,
                     shear_velocity=0.066)
    params = sample_tubelets(6, 8, (H, W), config, generator(10))
    params.centers[:] = (W - 1) / 2  # keep the transformed patch inside the frame
    alpha = tubelet_layer(params, (6, 3, 8, H, W))
    area, _, cov = moments(alpha)
    maps = params.linear_maps()[:, 0].double()
    w, h = params.sizes[:, 0].double().unbind(-1)
    base = torch.diag_embed(torch.stack([w * w, h * h], -1) / 12)[:, None]
    expected = maps @ base @ maps.transpose(-1, -2)
    torch.testing.assert_close(area, maps.det().abs() * (w * h)[:, None], rtol=0.03, atol=0)
    torch.testing.assert_close(cov, expected, rtol=0.05, atol=0.5)
    changing = {"rotation": params.angles, "scale": params.scales, "shear": params.shears}[switch]
    assert changing.flatten(2).std(-1).mean() > 0  # the transformation varies over time
    for name, identity in (("angles", 0.0), ("scales", 1.0), ("shears", 0.0)):
        if {"angles": "rotation", "scales": "scale", "shears": "shear"}[name] != switch:
            assert (getattr(params, name) == identity).all()


def test_transformation_curves_follow_the_velocities():
    config = replace(TubeletConfig(), rotation=True, scale=True, shear=True)
    params = sample_tubelets(256, 16, (112, 112), config, generator(11))
    frames = torch.arange(16, dtype=torch.float32)
    assert (params.angles[..., 0] == 0).all() and (params.scales[..., 0] == 1).all()
    assert (params.angles.abs() <= config.rotation_velocity * 15 + 1e-4).all()
    assert (params.shears.abs() <= config.shear_velocity * 15 + 1e-4).all()
    assert (params.scales.log().abs() <= config.scale_velocity * 15 + 1e-4).all()
    # the walk reaches tens of degrees, as the published rot_velocity=6 does
    assert params.angles[..., -1].abs().mean() > 10
    shear_x_only = (params.shears[..., 1] == 0).all(-1) & (params.shears[..., 0] != 0).any(-1)
    shear_y_only = (params.shears[..., 0] == 0).all(-1) & (params.shears[..., 1] != 0).any(-1)
    assert shear_x_only.any() and shear_y_only.any()
    assert frames.numel() == params.angles.shape[-1]


@pytest.mark.parametrize("num_frames", [1, 2, 3, 8, 16, 32])
def test_key_frames_and_interpolation(num_frames):
    keys = _key_frames(500, num_frames, TubeletConfig(), generator(12))
    assert (keys[:, 0] == 0).all() and (keys[:, -1] == num_frames - 1).all()
    assert (keys.diff(dim=1) >= 0).all()
    values = torch.rand(500, keys.shape[1], generator=generator(13))
    easing = torch.randint(3, (500, keys.shape[1] - 1), generator=generator(14))
    curve = _interpolate(keys, values, easing, num_frames)
    # the curve passes through every key value (repeated last keys: the first of them)
    first = torch.stack([(keys == keys[:, i:i + 1]).float().argmax(1) for i in range(4)], 1)
    torch.testing.assert_close(curve.gather(1, keys), values.gather(1, first))
    if num_frames >= 8:
        inner = (keys[:, 1:-1] < num_frames - 1).sum(1)
        assert set(inner.tolist()) == {0, 1, 2}


def test_easing_modes():
    keys = torch.tensor([[0, 4, 4, 4]] * 3)
    values = torch.tensor([[0.0, 1.0, 1.0, 1.0]] * 3)
    easing = torch.tensor([[0, 0, 0], [1, 0, 0], [2, 0, 0]])
    curve = _interpolate(keys, values, easing, 5)
    u = torch.arange(5) / 4
    torch.testing.assert_close(curve, torch.stack([u, u * u, 1 - (1 - u) ** 2]))


def test_shapes_masks_soft_edges_and_opacity():
    config = replace(TubeletConfig(), num_tubelets=2, rotation=False, soft_edge_prob=0.5)
    params = sample_tubelets(400, 8, (112, 112), config, generator(15))
    counts = torch.bincount(params.shape.flatten(), minlength=3).float() / params.shape.numel()
    torch.testing.assert_close(counts, torch.tensor([0.5, 0.35, 0.15]), atol=0.05, rtol=0)
    soft = params.edge < 0.5
    assert 0.4 < soft.float().mean() < 0.6
    assert ((params.edge[soft] >= 0.3) & (params.edge[soft] <= 0.45)).all()
    assert ((params.opacity >= 0.8) & (params.opacity <= 1.0)).all()
    assert (params.opacity.std(-1) > 0).any()
    # a hard rectangle fills its box; ellipse and rhombus fill pi/4 and 1/2 of it
    for shape, fill in ((0, 1.0), (1, math.pi / 4), (2, 0.5)):
        single = replace(STATIC, shape_probs=tuple(float(i == shape) for i in range(3)),
                         scales=(48,), aspect_ratios=(1.0,), scale_jitter=0.0)
        one = sample_tubelets(1, 2, (112, 112), single, generator(16))
        one.centers[:] = 55.5
        area = tubelet_layer(one, (1, 3, 2, 112, 112)).sum((-2, -1))
        torch.testing.assert_close(area / one.sizes[0, 0].prod(), torch.full((1, 2), fill),
                                   rtol=0.03, atol=0)
    assert SHAPES == ("rectangle", "ellipse", "rhombus")


def test_largest_tubelet_is_pasted_first():
    params = sample_tubelets(64, 8, (112, 112), replace(TubeletConfig(), num_tubelets=3,
                                                        scale=True), generator(17))
    area = (params.sizes.prod(-1)[..., None] * params.scales ** 2).mean(-1)
    assert (area.diff(dim=1) <= 0).all()


def test_deterministic_given_a_generator_and_inputs_untouched():
    clips_a, clips_b = torch.rand(2, 2, 3, 8, 32, 32, generator=generator(18))
    saved = clips_a.clone()
    first = add_tubelets(clips_a, clips_b, generator=generator(19))
    second = add_tubelets(clips_a, clips_b, generator=generator(19))
    torch.testing.assert_close(first[0], second[0], rtol=0, atol=0)
    torch.testing.assert_close(first[1], second[1], rtol=0, atol=0)
    assert torch.equal(clips_a, saved)
    third = add_tubelets(clips_a, clips_b, generator=generator(20))
    assert not torch.equal(first[0], third[0])


def test_patch_source_b_and_zero_tubelets():
    clips_a, clips_b = torch.zeros(2, 2, 3, 8, 32, 32)
    clips_b += 1
    config = replace(TubeletConfig(), patch_source="b", opacity_range=(1.0, 1.0))
    views_a, _, _ = add_tubelets(clips_a, clips_b, config, generator(21))
    assert views_a.max() > 0.99  # pixels of B pasted onto A
    none = replace(TubeletConfig(), num_tubelets=0)
    views_a, views_b, _ = add_tubelets(clips_a, clips_b, none, generator(21))
    assert torch.equal(views_a, clips_a) and torch.equal(views_b, clips_b)


def test_chunking_does_not_change_the_result():
    clips = torch.rand(5, 3, 8, 40, 40, generator=generator(22))
    params = sample_tubelets(5, 8, (40, 40), TubeletConfig(), generator(23))
    one = paste_tubelets([clips], clips, params, chunk_size=1)[0]
    all_at_once = paste_tubelets([clips], clips, params, chunk_size=5)[0]
    torch.testing.assert_close(one, all_at_once, atol=1e-5, rtol=0)
    inplace = clips.clone()
    paste_tubelets([inplace], inplace, params, inplace=True)
    torch.testing.assert_close(inplace, one, atol=1e-5, rtol=0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="motion"):
        TubeletConfig(motion="zigzag")
    with pytest.raises(ValueError, match="unknown keys"):
        TubeletConfig.from_dict({"rotations": True})
    with pytest.raises(ValueError, match="clips_a"):
        add_tubelets(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="must match"):
        add_tubelets(torch.zeros(2, 3, 4, 8, 8), torch.zeros(2, 3, 4, 8, 9))


def test_autocast_does_not_change_the_geometry():
    clips_a, clips_b = torch.rand(2, 2, 3, 8, 40, 40, generator=generator(24))
    plain = add_tubelets(clips_a, clips_b, generator=generator(25))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = add_tubelets(clips_a, clips_b, generator=generator(25))
    torch.testing.assert_close(mixed[0], plain[0], rtol=0, atol=0)
    torch.testing.assert_close(mixed[2].alpha_maps(), plain[2].alpha_maps(), rtol=0, atol=0)
