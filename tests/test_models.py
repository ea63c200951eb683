"""Backbones and heads: torchvision / VideoMAE layouts, parameter counts, forward semantics."""
import numpy as np
import pytest
import torch

from vidssl.models import (
    BACKBONES,
    LinearClassifier,
    MultiLabelHead,
    ProjectionMLP,
    RepetitionCountingHead,
    VideoMAEDecoder,
    build_backbone,
    r2plus1d_18,
    r2plus1d_18_tclr,
    r3d_18,
    temporal_features,
    vit_base,
    vit_small,
    vit_tiny,
)
from vidssl.models.transformer import DropPath, sinusoid_table

torch.set_num_threads(1)


def count(model):
    return sum(p.numel() for p in model.parameters())


def tiny_vit(**kwargs):
    return vit_tiny(img_size=32, patch_size=8, num_frames=8, depth=2, **kwargs)


def test_parameter_counts_match_torchvision_and_videomae():
    with torch.device("meta"):
        assert count(r2plus1d_18(num_classes=400)) == 31_505_325  # torchvision r2plus1d_18
        assert count(r3d_18(num_classes=400)) == 33_371_472  # torchvision r3d_18
        assert count(vit_base()) == 86_227_200  # VideoMAE ViT-B encoder: 86.2M
        assert count(vit_small()) == 21_879_936  # VideoMAE ViT-S encoder: 21.9M


def test_r2plus1d_state_dict_has_torchvision_names_and_shapes():
    with torch.device("meta"):
        state = r2plus1d_18(num_classes=400).state_dict()
    expected = {
        "stem.0.weight": (45, 3, 1, 7, 7), "stem.3.weight": (64, 45, 3, 1, 1),
        "layer1.0.conv1.0.0.weight": (144, 64, 1, 3, 3),
        "layer2.0.conv1.0.0.weight": (230, 64, 1, 3, 3),
        "layer2.0.conv1.0.3.weight": (128, 230, 3, 1, 1),
        "layer2.0.conv2.0.0.weight": (230, 128, 1, 3, 3),  # conv2 shares conv1's midplanes
        "layer2.1.conv1.0.0.weight": (288, 128, 1, 3, 3),
        "layer2.0.conv1.1.running_var": (128,), "layer2.0.downsample.0.weight": (128, 64, 1, 1, 1),
        "layer2.0.downsample.1.weight": (128,), "fc.weight": (400, 512),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert len(state) == 12 + 8 * 24 + 3 * 6 + 2  # stem, 8 blocks, 3 downsamples, fc


@pytest.mark.parametrize("name", ["r2plus1d_18", "r3d_18", "r2plus1d_18_tclr"])
def test_cnn_features_and_logits(name):
    torch.manual_seed(0)
    model = build_backbone(name, width=0.25, num_classes=7).eval()
    assert model.num_features == 128 and model.model_spec == {
        "name": name, "kwargs": {"width": 0.25, "num_classes": 7}}
    clip = torch.randn(2, 3, 16, 32, 32)
    features = model.forward_features(clip)
    assert features["pooled"].shape == (2, 128)
    temporal = 4 if name.endswith("tclr") else 2  # TCLR keeps layer3's temporal resolution
    assert features["tokens"].shape == (2, 128, temporal, 2, 2)
    torch.testing.assert_close(features["pooled"], features["tokens"].mean(dim=(2, 3, 4)))
    assert model(clip).shape == (2, 7)
    assert build_backbone(name, width=0.25)(clip).shape == (2, 128)


def test_tclr_layer4_is_a_dilated_full_conv():
    with torch.device("meta"):
        model = r2plus1d_18_tclr()
    conv = model.layer4[0].conv1[0]
    assert conv.kernel_size == (3, 3, 3) and conv.dilation == (2, 1, 1)
    assert conv.stride == (1, 2, 2) and model.layer4[0].downsample[0].stride == (1, 2, 2)


def test_channels_last_3d_gives_the_same_output():
    torch.manual_seed(0)
    model = r2plus1d_18(width=0.25).eval()
    clip = torch.randn(1, 3, 8, 32, 32)
    reference = model(clip)
    fast = model.to(memory_format=torch.channels_last_3d)
    out = fast(clip.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-5)


def test_build_backbone_rejects_unknown_names_and_kwargs():
    # vidssl.evaluation adds its bias instrument when imported (the suite collects it first)
    assert set(BACKBONES) - {"appearance_motion"} == {
        "r2plus1d_18", "r3d_18", "r2plus1d_18_tclr", "vit_tiny", "vit_small", "vit_base",
        "vit_large", "motion_energy"}
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        build_backbone("resnet50")
    with pytest.raises(TypeError, match="r2plus1d_18"):
        build_backbone("r2plus1d_18", depth=34)


def test_sinusoid_table_matches_videomae_numpy_formula():
    positions, dim = 10, 6
    ref = np.array([[p / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)]
                    for p in range(positions)])
    ref[:, 0::2] = np.sin(ref[:, 0::2])
    ref[:, 1::2] = np.cos(ref[:, 1::2])
    torch.testing.assert_close(sinusoid_table(positions, dim)[0], torch.tensor(ref).float())


def test_vit_layout_pooling_and_attention_kernels_agree():
    torch.manual_seed(0)
    model = tiny_vit(num_classes=5).eval()
    state = model.state_dict()
    assert "pos_embed" not in state and "blocks.1.attn.q_bias" in state
    assert "fc_norm.weight" in state and "norm.weight" not in state
    assert tuple(state["patch_embed.proj.weight"].shape) == (192, 3, 2, 8, 8)
    clip = torch.randn(2, 3, 8, 32, 32)
    features = model.forward_features(clip)
    assert model.grid_size == (4, 4, 4) and features["tokens"].shape == (2, 64, 192)
    torch.testing.assert_close(features["pooled"], model.fc_norm(features["tokens"].mean(1)))
    logits = model(clip)
    model.set_fused_attention(False)
    torch.testing.assert_close(model(clip), logits, rtol=1e-4, atol=1e-5)
    pretrain_layout = tiny_vit(use_mean_pooling=False)
    assert "norm.weight" in pretrain_layout.state_dict() and pretrain_layout.fc_norm is None


def test_vit_rejects_input_of_another_geometry():
    with pytest.raises(ValueError, match="tubelet grid"):
        tiny_vit()(torch.randn(1, 3, 16, 32, 32))
    with pytest.raises(ValueError, match="not divisible"):
        vit_tiny(img_size=30, patch_size=8)


def test_encoder_sees_only_visible_tokens():
    torch.manual_seed(0)
    model = tiny_vit(use_mean_pooling=False).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[:, 16:] = True  # tokens 16.. = temporal slots 1..3 = frames 2..7
    visible = model.forward_encoder(clip, mask)
    assert visible.shape == (2, 16, 192)
    perturbed = clip.clone()
    perturbed[:, :, 2:] = torch.randn_like(perturbed[:, :, 2:])
    torch.testing.assert_close(model.forward_encoder(perturbed, mask), visible)
    uneven = mask.clone()
    uneven[0, 0] = True
    with pytest.raises(ValueError, match="same number"):
        model.forward_encoder(clip, uneven)
    unmasked = model.forward_encoder(clip, torch.zeros(2, 64, dtype=torch.bool))
    torch.testing.assert_close(unmasked, model.forward_features(clip)["tokens"])


def test_decoder_predicts_masked_tokens_in_index_order():
    torch.manual_seed(0)
    decoder = VideoMAEDecoder(192, 96, depth=1, num_heads=3, num_patches=64, out_dim=384).eval()
    assert {"decoder_embed.weight", "mask_token", "blocks.0.attn.qkv.weight", "norm.weight",
            "head.weight"} <= set(decoder.state_dict())
    assert "decoder_pos_embed" not in decoder.state_dict()
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[0, 8:] = True
    mask[1, :56] = True
    visible = torch.randn(2, 8, 192)
    out = decoder(visible, mask)
    assert out.shape == (2, 56, 384)
    # Masked positions differ only by their position embedding, so predictions must differ.
    assert (out[0, 0] - out[0, 1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="visible"):
        decoder(torch.randn(2, 9, 192), mask)


def test_drop_path_drops_whole_samples_in_training_only():
    torch.manual_seed(0)
    drop = DropPath(0.5)
    x = torch.ones(64, 3, 4)
    out = drop(x)
    per_sample = out.flatten(1)
    assert set(per_sample[:, 0].tolist()) == {0.0, 2.0}
    assert bool((per_sample == per_sample[:, :1]).all())
    assert torch.equal(drop.eval()(x), x)


def test_projection_and_classifier_heads():
    mlp = ProjectionMLP(32, 64, 16, num_layers=3, bn=True)
    layer_types = [type(m).__name__ for m in mlp.layers]
    assert layer_types == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    assert mlp(torch.randn(4, 32)).shape == (4, 16)
    assert LinearClassifier(32, 10, dropout=0.5)(torch.randn(4, 32)).shape == (4, 10)
    head = MultiLabelHead(32, 157, prior=0.01)
    probs = torch.sigmoid(head(torch.zeros(2, 32)))
    torch.testing.assert_close(probs, torch.full((2, 157), 0.01))
    targets = torch.zeros(2, 157)
    expected = -np.log(0.99)
    assert abs(MultiLabelHead.loss(head(torch.zeros(2, 32)), targets).item() - expected) < 1e-6


def test_repetition_counting_head_integrates_density():
    torch.manual_seed(0)
    head = RepetitionCountingHead(16, hidden_dim=8, num_frames=16)
    cnn_tokens = torch.randn(3, 16, 4, 2, 2)
    out = head(cnn_tokens)
    assert out["density"].shape == (3, 16) and bool((out["density"] >= 0).all())
    torch.testing.assert_close(out["density"].sum(-1), out["count"])
    native = RepetitionCountingHead(16, hidden_dim=8)
    native.load_state_dict(head.state_dict())
    torch.testing.assert_close(native(cnn_tokens)["count"], out["count"])
    vit_tokens = torch.randn(3, 4 * 2 * 2, 16)
    assert head(vit_tokens, grid=(4, 2, 2))["density"].shape == (3, 16)
    torch.testing.assert_close(temporal_features(vit_tokens, (4, 2, 2))[:, 1],
                               vit_tokens[:, 4:8].mean(1))
    with pytest.raises(ValueError, match="grid"):
        head(vit_tokens)
    # A few steps of L1 on the count fit a constant target.
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    target = torch.full((3,), 5.0)
    first = head.loss(head(cnn_tokens)["count"], target).item()
    for _ in range(30):
        loss = head.loss(head(cnn_tokens)["count"], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first


def test_motion_energy_measures_where_and_how_much_the_frame_changes():
    from vidssl.models import motion_energy

    model = motion_energy(grid=2, bins=3)
    assert model.num_features == 3 * (2 * 2 + 2) and not list(model.parameters())
    still = torch.rand(1, 3, 1, 8, 8).expand(2, 3, 5, 8, 8)
    assert torch.equal(model(still), torch.zeros(2, 18))  # no motion: no energy, centroid (0, 0)
    # A bright 2x2 square moves right by 2 px per frame along the top rows.
    video = torch.zeros(1, 3, 4, 8, 8)
    for t in range(4):
        video[:, :, t, 0:2, 2 * t:2 * t + 2] = 1.0
    energy = model.frame_energy(video)[0]  # [T-1, 2*2 cells + (x, y)]
    cells = energy[:, :4].reshape(3, 2, 2)
    assert torch.all(cells[:, 1] == 0)  # bottom cells never change
    # Pair 0 changes columns 0-3: all in the left cell, 8 px of 16 -> energy 8 / 16.
    torch.testing.assert_close(cells[0, 0], torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(cells[2, 0], torch.tensor([0.0, 0.5]))  # columns 4-7
    x_centroid = energy[:, 4]
    assert torch.all(x_centroid[1:] > x_centroid[:-1])  # the energy travels right
    torch.testing.assert_close(energy[:, 5], torch.full((3,), -1.0 + 2.0 / 7 * 0.5))  # rows 0-1
    pooled = model.forward_features(video)
    assert pooled["pooled"].shape == (1, 18) and pooled["tokens"].shape == (1, 18, 1, 1, 1)
    # bins = T-1: every frame pair in order; fewer bins average equal spans of pairs.
    torch.testing.assert_close(pooled["pooled"].reshape(3, 6), energy)
    video = torch.cat([video, video.flip(2)[:, :, 1:]], dim=2)  # 7 frames: there and back
    energy = model.frame_energy(video)[0]  # 6 pairs
    torch.testing.assert_close(model(video).reshape(3, 6), energy.reshape(3, 2, 6).mean(1))
    with pytest.raises(ValueError, match="T >= 2"):
        model(torch.zeros(1, 3, 1, 8, 8))
