"""Tube masking, VideoMAE pixel targets, and the VideoMAE method end to end on a tiny ViT."""

import pytest
import torch

from vidssl.bundled import bundled_dir
from vidssl.config import ConfigError
from vidssl.methods import METHODS
from vidssl.methods.masking import num_masked_per_slot, tube_mask
from vidssl.methods.videomae import (
    VideoMAE,
    VideoMAEParams,
    tube_pixel_targets,
    tubes_to_video,
    unnormalize,
    video_to_tubes,
)
from vidssl.models import build_backbone
from vidssl.pretrain import load_pretrain_config

torch.set_num_threads(1)
CONFIGS = bundled_dir("pretrain")


def ramp_videos(batch: int, seed: int = 0) -> torch.Tensor:
    """Every 8x8 patch is a left-to-right ramp with its own random contrast and brightness:
    after per-tube normalisation all targets share one shape, which a decoder can learn."""
    generator = torch.Generator().manual_seed(seed)
    ramp = (torch.arange(32.0) % 8).expand(batch, 3, 4, 32, 32)
    contrast = torch.rand(batch, 3, 1, 4, 4, generator=generator) + 0.5
    brightness = torch.randn(batch, 3, 1, 4, 4, generator=generator)
    up = {"repeats": 8, "dim": -1}, {"repeats": 8, "dim": -2}
    contrast = contrast.repeat_interleave(**up[0]).repeat_interleave(**up[1])
    brightness = brightness.repeat_interleave(**up[0]).repeat_interleave(**up[1])
    return ramp / 8 * contrast + brightness


def tiny_vit(**kwargs):
    geometry = {"img_size": 32, "patch_size": 8, "tubelet_size": 2, "num_frames": 4, "depth": 2,
                "embed_dim": 64, "num_heads": 2, "use_mean_pooling": False} | kwargs
    return build_backbone("vit_tiny", **geometry)


# ---------------------------------------------------------------- masking


def test_high_ratio_still_leaves_a_visible_tube():
    assert tube_mask(1, (2, 3, 3), 0.999).sum().item() == 2 * 8


def test_paper_geometry_masks_1408_of_1568_tokens():
    mask = tube_mask(3, (8, 14, 14), 0.9, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (3, 1568) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [1408] * 3
    assert num_masked_per_slot((8, 14, 14), 0.9) == 176


def test_one_spatial_mask_repeated_over_time_and_fresh_per_sample():
    mask = tube_mask(4, (4, 5, 6), 0.75, generator=torch.Generator().manual_seed(1))
    slots = mask.reshape(4, 4, 30)
    assert bool((slots == slots[:, :1]).all())
    assert slots[:, 0].sum(dim=1).tolist() == [22] * 4  # floor(0.75 * 30)
    assert len({tuple(s.tolist()) for s in slots[:, 0]}) == 4


def test_mask_is_deterministic_given_a_generator():
    first = tube_mask(2, (2, 4, 4), 0.5, generator=torch.Generator().manual_seed(7))
    again = tube_mask(2, (2, 4, 4), 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, again)


@pytest.mark.parametrize("ratio", [1.0, -0.1])
def test_ratios_outside_zero_one_are_refused(ratio):
    with pytest.raises(ValueError, match="mask ratio"):
        tube_mask(1, (2, 3, 3), ratio)


# ---------------------------------------------------------------- targets


def test_tubes_follow_the_patch_embedding_token_order():
    video = torch.randn(2, 3, 4, 16, 24)
    tubes = video_to_tubes(video, (2, 8, 8))  # grid (2, 2, 3): token 1*6 + 1*3 + 2 = 11
    assert tubes.shape == (2, 12, 128, 3)
    expected = video[:, :, 2:4, 8:16, 16:24].permute(0, 2, 3, 4, 1).reshape(2, 128, 3)
    assert torch.equal(tubes[:, 11], expected)
    assert torch.equal(tubes_to_video(tubes, (2, 2, 3), (2, 8, 8)), video)


def test_targets_are_standardised_per_tube_and_channel():
    video = torch.randn(2, 3, 4, 32, 32)
    targets = tube_pixel_targets(video, (2, 16, 16))
    assert targets.shape == (2, 8, 1536)
    per_channel = targets.reshape(2, 8, 512, 3)
    torch.testing.assert_close(per_channel.mean(dim=2), torch.zeros(2, 8, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(dim=2), torch.ones(2, 8, 3), atol=1e-4, rtol=0)


def test_raw_targets_are_pixels_in_pixel_then_channel_order():
    pixels = torch.rand(1, 3, 2, 4, 4)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    shape = (1, 3, 1, 1, 1)
    video = (pixels - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)
    torch.testing.assert_close(unnormalize(video), pixels)
    targets = tube_pixel_targets(video, (2, 2, 2), normalize=False)
    assert targets.shape == (1, 4, 24)
    torch.testing.assert_close(targets[0, 0, :3], pixels[0, :, 0, 0, 0])  # first pixel, RGB
    torch.testing.assert_close(targets[0, 0, 3:6], pixels[0, :, 0, 0, 1])  # its right neighbour


def test_constant_tube_gives_a_small_finite_target_not_nan():
    targets = tube_pixel_targets(torch.zeros(1, 3, 2, 8, 8), (2, 8, 8))
    assert bool(torch.isfinite(targets).all()) and targets.abs().max().item() < 0.1


# ---------------------------------------------------------------- method


def test_registered_and_decoder_sized_from_the_encoder():
    model = METHODS["videomae"](tiny_vit(), VideoMAEParams())
    assert model.decoder.head.out_features == 3 * 2 * 8 * 8
    assert model.decoder.decoder_embed.out_features == 32  # half of the 64-wide encoder
    assert len(model.decoder.blocks) == 4


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = VideoMAE(tiny_vit(), VideoMAEParams(mask_ratio=0.75, decoder_depth=1))
    video = ramp_videos(4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = model.training_step({"video": video})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(1.0, abs=0.3)  # predicting ~0 for unit-variance targets
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0]


def test_reconstruction_keeps_visible_tubes():
    torch.manual_seed(0)
    model = VideoMAE(tiny_vit(), VideoMAEParams(decoder_depth=1)).eval()
    video = torch.randn(2, 3, 4, 32, 32)
    mask = model.sample_mask(2, "cpu")
    picture = model.reconstruct(video, mask)
    visible = ~mask.reshape(2, 2, 4, 4)[:, :, :, :, None, None].expand(-1, -1, -1, -1, 8, 8)
    visible = visible.permute(0, 1, 2, 4, 3, 5).reshape(2, 2, 32, 32).repeat_interleave(2, 1)
    expected = unnormalize(video).clamp(0, 1)
    assert torch.allclose(picture.permute(1, 0, 2, 3, 4)[:, visible],
                          expected.permute(1, 0, 2, 3, 4)[:, visible], atol=1e-6)


def test_needs_a_video_vit():
    cnn = build_backbone("r3d_18", width=0.125)
    with pytest.raises(ValueError, match="video ViT"):
        VideoMAE(cnn, VideoMAEParams())


def test_bad_params_name_the_config_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("method:\n  name: videomae\n  mask_ratio: 1.0\n")
    with pytest.raises(ConfigError, match="bad.yaml.*mask_ratio"):
        load_pretrain_config(path)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("videomae_*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_load(path):
    config = load_pretrain_config(path)
    assert config.method.name == "videomae"
    assert config.model.name.startswith("vit_")


def test_show_masking_draws_input_visible_and_reconstruction_rows(tmp_path):
    from PIL import Image

    from vidssl.viz.masking import masking_rows, render_masking

    model = VideoMAE(tiny_vit(), VideoMAEParams(decoder_depth=1))
    clip = torch.rand(3, 4, 32, 32)
    rows, _ = masking_rows(model, clip, torch.Generator().manual_seed(0))
    assert [label for label, _ in rows] == ["input", "visible (12%)", "reconstruction*"]
    torch.testing.assert_close(rows[0][1], clip)
    path = render_masking(tmp_path / "m.png", model=model, seed=0)
    assert Image.open(path).size[0] > 200


def test_show_masking_rebuilds_the_method_from_a_pretraining_checkpoint(tmp_path):
    from vidssl.config import to_dict
    from vidssl.viz.masking import load_masked_model

    config = load_pretrain_config(CONFIGS / "videomae_world.yaml")
    config.model.kwargs.update(img_size=32, patch_size=8, num_frames=4, depth=1)
    torch.manual_seed(0)
    model = METHODS["videomae"](build_backbone(config.model.name, **config.model.kwargs),
                                config.method.params)
    torch.save({"format": "vidssl", "model": model.state_dict(), "config": to_dict(config)},
               tmp_path / "last.pt")
    loaded = load_masked_model(tmp_path / "last.pt")
    assert isinstance(loaded, VideoMAE) and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    torch.save({"format": "vidssl", "model": {}, "config": {"method": {"name": "moco"}}},
               tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt.*VideoMAE/SIGMA"):
        load_masked_model(tmp_path / "other.pt")


@pytest.mark.parametrize("mean_pooling", [False, True])
def test_every_trainable_parameter_gets_a_gradient(mean_pooling):
    """DDP without find_unused_parameters needs this; the unused fc_norm is frozen."""
    model = VideoMAE(tiny_vit(use_mean_pooling=mean_pooling), VideoMAEParams(decoder_depth=1))
    model.training_step({"video": torch.randn(2, 3, 4, 32, 32)})["loss"].backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
