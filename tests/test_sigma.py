"""SIGMA: target networks, gradient routing, collapse (L2) vs no collapse (Sinkhorn), teachers."""
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from vidssl.bundled import bundled_dir
from vidssl.config import ConfigError
from vidssl.methods import METHODS
from vidssl.methods.sigma import (
    SIGMA,
    SIGMAParams,
    direction_spread,
    standardize_per_video,
    teacher_token_features,
    tube_mlp,
)
from vidssl.methods.teachers import DinoViT, ImageTeacher, build_teacher
from vidssl.models import build_backbone
from vidssl.pretrain import load_pretrain_config

torch.set_num_threads(1)
CONFIGS = bundled_dir("pretrain")


def tiny_vit(**kwargs):
    geometry = {"img_size": 32, "patch_size": 8, "tubelet_size": 2, "num_frames": 4, "depth": 1,
                "embed_dim": 64, "num_heads": 2, "use_mean_pooling": False} | kwargs
    return build_backbone("vit_tiny", **geometry)


def tiny_sigma(**params):
    defaults = {"mask_ratio": 0.75, "num_prototypes": 32, "decoder_dim": 64, "decoder_depth": 1,
                "target_dim": 32}
    return SIGMA(tiny_vit(), SIGMAParams(**(defaults | params)))


def grads_of(model: nn.Module, loss: torch.Tensor) -> set[str]:
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {name.split(".")[0] for name, p in model.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0}


def test_published_mlp_widths_for_2x16x16_tubes():
    widths = [(m.in_features, m.out_features) for m in tube_mlp(1536, 256)
              if isinstance(m, nn.Linear)]
    assert widths == [(1536, 1024), (1024, 1024), (1024, 512), (512, 256)]


def test_registered_with_prototypes_and_decoder_sized_to_the_target():
    model = METHODS["sigma"](tiny_vit(), SIGMAParams(num_prototypes=40, target_dim=24))
    assert model.prototypes.shape == (40, 24)
    assert model.decoder.head.out_features == 24
    assert model.target_mlp[0].in_features == 3 * 2 * 8 * 8


def test_gradient_routing_follows_the_paper():
    torch.manual_seed(0)
    model = tiny_sigma()
    video = torch.randn(2, 3, 4, 32, 32)
    loss_target, loss_pred, spread = model.swav_losses(video, model.sample_mask(2, "cpu"))
    assert grads_of(model, loss_pred) == {"backbone", "decoder"}
    assert grads_of(model, loss_target) == {"prototypes", "target_mlp"}
    assert 0.0 <= spread.item() <= 1.0 and not spread.requires_grad
    torch.testing.assert_close(model.prototypes.norm(dim=1), torch.ones(32))


def test_soft_codes_switch_changes_the_targets_not_the_routing():
    torch.manual_seed(0)
    hard, soft = tiny_sigma(), tiny_sigma(hard_codes=False)
    soft.load_state_dict(hard.state_dict())
    video, mask = torch.randn(2, 3, 4, 32, 32), hard.sample_mask(2, "cpu")
    hard_losses, soft_losses = hard.swav_losses(video, mask), soft.swav_losses(video, mask)
    assert not torch.isclose(hard_losses[1], soft_losses[1])
    assert grads_of(soft, soft_losses[1]) == {"backbone", "decoder"}


def _target_spread(model: SIGMA, probe: torch.Tensor) -> tuple[float, float]:
    """(mean per-channel variance of phi(x), direction_spread of phi(x)) over all tubes."""
    with torch.no_grad():
        mask = torch.ones(probe.shape[0], model.backbone.patch_embed.num_patches, dtype=torch.bool)
        features = model.target_features(probe, mask).flatten(0, 1)
    return features.var(dim=0).mean().item(), direction_spread(features).item()


@pytest.mark.parametrize("loss", ["l2", "swav"])
def test_mlp_target_collapses_under_l2_but_not_under_sinkhorn(loss):
    torch.manual_seed(0)
    model = tiny_sigma(loss=loss)
    generator = torch.Generator().manual_seed(1)
    data = torch.randn(16, 3, 4, 32, 32, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    variance_before, spread_before = _target_spread(model, data[:8])
    for _ in range(100):
        out = model.training_step({"video": data[torch.randint(16, (8,), generator=generator)]})
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    variance_after, spread_after = _target_spread(model, data[:8])
    if loss == "l2":  # both sides meet at a constant: the paper's collapse
        assert variance_after < 0.3 * variance_before
        assert spread_after < 0.05 and spread_after < 0.5 * spread_before
    else:  # equipartition keeps the targets apart and the prototypes in use
        assert spread_after > 0.5 > spread_before
        assert out["target_spread"].item() > 0.5
        assert out["loss"].item() < 0.6 * 2 * np.log(32)


class PatchColour(ImageTeacher):
    """Stand-in teacher: feature = mean colour of each 4x4 patch, in [0, 1] pixel units."""

    num_features, stride = 3, 4
    input_mean, input_std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def forward(self, images):
        return F.avg_pool2d(self.normalize_input(images), self.stride)


def test_teacher_features_map_each_tube_to_its_first_frame_and_place():
    pixels = torch.rand(2, 3, 4, 8, 8)
    video = (pixels - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
    features = teacher_token_features(PatchColour(), video, grid=(2, 2, 2), tubelet_frames=2)
    assert features.shape == (2, 8, 3)
    # token (t'=1, h'=0, w'=1) = index 1*4 + 0*2 + 1 = 5: frame 2, rows 0-3, cols 4-7
    torch.testing.assert_close(features[:, 5], pixels[:, :, 2, :4, 4:].mean(dim=(2, 3)))


def test_teacher_features_are_resized_onto_the_token_grid():
    video = torch.randn(1, 3, 4, 16, 16)
    features = teacher_token_features(PatchColour(), video, grid=(2, 4, 4), tubelet_frames=2)
    assert features.shape == (1, 32, 3)  # frames resized to 4 * stride = 16: no interpolation


def test_direction_spread_by_hand():
    same = torch.tensor([[1.0, 0.0], [2.0, 0.0], [5.0, 0.0]])
    opposite = torch.tensor([[1.0, 0.0], [-3.0, 0.0]])
    assert direction_spread(same).item() == pytest.approx(0.0, abs=1e-6)
    assert direction_spread(opposite).item() == pytest.approx(1.0)
    assert direction_spread(torch.eye(4)).item() == pytest.approx(0.75)


def test_standardised_per_video_and_channel():
    features = torch.randn(3, 50, 4) * torch.tensor([1.0, 5.0, 0.1, 2.0]) + 7.0
    out = standardize_per_video(features)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(3, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=1), torch.ones(3, 4), atol=1e-4, rtol=0)


def test_efficientnet_lite0_package_weights_recognise_grace_hopper():
    teacher = build_teacher("efficientnet_lite0")
    image = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    image = image.convert("RGB").resize((224, 224), Image.BICUBIC)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255.0
    with torch.no_grad():
        top = teacher.classify(pixels).softmax(dim=1).topk(3).indices[0].tolist()
    assert 652 in top  # "military uniform" (ImageNet class 652)
    assert teacher(pixels).shape == (1, 1280, 7, 7)
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training


def _dino_like_state(embed_dim=32, depth=2, patch=8, grid=2) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = DinoViT(embed_dim=embed_dim, depth=depth, num_heads=2, patch_size=patch,
                    pretrain_grid=grid)
    state = {f"module.backbone.{k}": torch.randn_like(v) * 0.02
             for k, v in model.state_dict().items()}
    state["module.head.mlp.0.weight"] = torch.zeros(4, embed_dim)  # DINO head: dropped
    return {"teacher": state}


def test_dino_teacher_loads_a_dino_layout_file_and_reads_its_architecture(tmp_path):
    path = tmp_path / "dino.pth"
    torch.save(_dino_like_state(), path)
    teacher = build_teacher("dino_vitb16", str(path))
    assert (teacher.num_features, teacher.stride, len(teacher.blocks)) == (32, 8, 2)
    assert teacher(torch.rand(2, 3, 24, 32)).shape == (2, 32, 3, 4)  # table interpolated


def test_dino_teacher_refuses_a_file_that_does_not_fit(tmp_path):
    state = _dino_like_state()
    del state["teacher"]["module.backbone.norm.weight"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="broken.pth.*missing: norm.weight"):
        build_teacher("dino_vitb16", str(path))
    with pytest.raises(ValueError, match="teacher_checkpoint"):
        build_teacher("dino_vitb16")


def test_teacher_variant_trains_prototypes_only_and_stays_out_of_the_state_dict(tmp_path):
    path = tmp_path / "dino.pth"
    torch.save(_dino_like_state(patch=8, grid=4), path)
    torch.manual_seed(0)
    model = tiny_sigma(target="dino", teacher_checkpoint=str(path))
    assert not any(key.startswith(("_teacher", "teacher")) for key in model.state_dict())
    assert model.decoder.head.out_features == 32 and model.prototypes.shape[1] == 32
    video = torch.randn(2, 3, 4, 32, 32)
    loss_target, loss_pred, _ = model.swav_losses(video, model.sample_mask(2, "cpu"))
    assert grads_of(model, loss_target) == {"prototypes"}
    assert grads_of(model, loss_pred) == {"backbone", "decoder"}
    headed = tiny_sigma(target="dino", teacher_checkpoint=str(path), teacher_head="mlp")
    losses = headed.swav_losses(video, headed.sample_mask(2, "cpu"))
    assert grads_of(headed, losses[0]) == {"prototypes", "teacher_head"}


def test_bad_params_name_the_config_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("method:\n  name: sigma\n  target: pixels\n")
    with pytest.raises(ConfigError, match="bad.yaml.*target"):
        load_pretrain_config(path)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("sigma_*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_load(path):
    config = load_pretrain_config(path)
    assert config.method.name == "sigma"
    assert config.method.params.num_prototypes >= 2


def test_show_masking_draws_both_cluster_assignments():
    from vidssl.viz.masking import masking_rows

    torch.manual_seed(0)
    rows, title = masking_rows(tiny_sigma(), torch.rand(3, 4, 32, 32),
                               torch.Generator().manual_seed(0))
    assert [label for label, _ in rows][2:] == ["target cluster", "predicted cluster"]
    assert "predicted = target prototype" in title
    assert rows[2][1].shape == (3, 4, 32, 32)


@pytest.mark.parametrize("target", ["mlp", "dino"])
def test_every_trainable_parameter_gets_a_gradient(target, tmp_path):
    """DDP without find_unused_parameters needs this."""
    path = tmp_path / "dino.pth"
    torch.save(_dino_like_state(patch=8, grid=4), path)
    model = tiny_sigma(target=target, teacher_checkpoint=str(path))
    model.training_step({"video": torch.randn(2, 3, 4, 32, 32)})["loss"].backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
