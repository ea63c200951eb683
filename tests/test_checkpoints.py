"""Checkpoint interop: every published layout round-trips, unsafe and broken files are refused.

Each test writes a checkpoint in a published layout from a small vidssl model, using the
*inverse* key map restated here from the reference loaders (not derived from the library's
forward map), loads it back and checks the outputs are identical.
"""
import argparse
import re

import pytest
import torch

from vidssl.models import VideoMAEDecoder, build_backbone, r2plus1d_18, vit_tiny
from vidssl.models.checkpoints import (
    CheckpointError,
    build_from_checkpoint,
    convert_checkpoint,
    inspect_checkpoint,
    load_pretrained,
    read_checkpoint,
)

torch.set_num_threads(1)

CLIP = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
VIT_KWARGS = {"img_size": 32, "patch_size": 8, "num_frames": 8, "depth": 2}


def source_model(name="r2plus1d_18", seed=1, **kwargs):
    """A small backbone with random weights and BatchNorm statistics."""
    torch.manual_seed(seed)
    if name.startswith("vit"):
        model = build_backbone(name, **VIT_KWARGS, **kwargs)
    else:
        model = build_backbone(name, width=0.25, **kwargs)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) * 0.2 + 0.9 if tensor.dim() == 1
                             else tensor + 0.01 * torch.randn_like(tensor))
    return model.eval()


def fresh_like(model, **overrides):
    spec = model.model_spec
    return build_backbone(spec["name"], **{**spec["kwargs"], **overrides}).eval()


def assert_same_output(a, b):
    torch.testing.assert_close(a.forward_features(CLIP)["pooled"],
                               b.forward_features(CLIP)["pooled"], rtol=0, atol=0)


def rename(state, rules):
    """Apply (regex, replacement) rules (first match per key) to every key."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            if re.search(pattern, key):
                key = re.sub(pattern, replacement, key, count=1)
                break
        out[key] = value
    return out


# Inverse of SEVERE's regex map: torchvision Sequential indices -> pyvrl (CtP) block names.
TO_CTP = [(r"^stem\.0\.", "stem.conv_s."), (r"^stem\.1\.", "stem.bn_s."),
          (r"^stem\.3\.", "stem.conv_t."), (r"^stem\.4\.", "stem.bn_t."),
          (r"\.conv(\d)\.0\.0\.", r".conv\1.conv_s."), (r"\.conv(\d)\.0\.1\.", r".conv\1.bn_s."),
          (r"\.conv(\d)\.0\.3\.", r".conv\1.conv_t."), (r"\.conv(\d)\.1\.", r".bn\1."),
          (r"\.downsample\.0\.", ".downsample.conv."), (r"\.downsample\.1\.", ".downsample_bn.")]
TO_CTP_R3D = [(r"^stem\.0\.", "stem.conv."), (r"^stem\.1\.", "stem.bn."),
              (r"\.conv(\d)\.0\.", r".conv\1.conv."), (r"\.conv(\d)\.1\.", r".bn\1."),
              (r"\.downsample\.0\.", ".downsample.conv."),
              (r"\.downsample\.1\.", ".downsample_bn.")]
BASE_NETWORK = [(r"^stem\.", "0."), (r"^layer(\d)\.", r"\1.")]


def backbone_of(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}


def prefixed(prefix, state):
    return {prefix + k: v for k, v in state.items()}


def resnet_layout(fmt, model):
    """Checkpoint dict of ``model`` in published format ``fmt`` (with the usual extras)."""
    sd = backbone_of(model)
    junk = torch.zeros(4, 4)
    if fmt == "torchvision":
        return model.state_dict()
    if fmt == "selavi":
        return {"model": {**prefixed("module.video_network.base.", sd),
                          "module.audio_network.base.conv1.weight": junk,
                          "module.mlp_v.0.weight": junk}, "epoch": 100}
    if fmt in ("moco", "video_moco"):
        return {"state_dict": {**prefixed("module.encoder_q.", sd),
                               "module.encoder_q.fc.0.weight": junk,
                               **prefixed("module.encoder_k.", sd),
                               "module.queue": junk, "module.queue_ptr": torch.zeros(1)},
                "arch": "r2plus1d_18", "epoch": 200}
    if fmt == "pretext_contrast":
        return {**prefixed("module.base_network.", rename(sd, BASE_NETWORK)),
                "module.fc.weight": junk}
    if fmt == "rspnet":
        base = prefixed("encoder.base_network.", rename(sd, BASE_NETWORK))
        return {"model": {**prefixed("encoder_q.", base), **prefixed("encoder_k.", base),
                          "encoder_q.fc8.weight": junk, "queue": junk}}
    if fmt == "avid_cma":
        return {"model": {**prefixed("module.video_model.", sd),
                          "module.audio_model.conv1.weight": junk}, "epoch": 20}
    if fmt == "gdt":
        return {"model": {**prefixed("video_network.base.", sd), "audio_network.w": junk,
                          "mlp_a.0.weight": junk, "mlp_v.0.weight": junk}}
    if fmt == "tclr":
        return {"state_dict": {**prefixed("module.0.", sd), "module.1.0.weight": junk}}
    ctp = prefixed("backbone.", rename(sd, TO_CTP_R3D if fmt.endswith("r3d") else TO_CTP))
    meta = {"epoch": 100, "iter": 1000, "mmcv_version": "1.6.1"}
    if fmt == "ctp":
        return {"meta": meta, "state_dict": {**ctp, "head.fc.weight": junk}}
    return {"meta": meta, "optimizer": {"state": {}, "param_groups": []},
            "state_dict": {**ctp, **rename(ctp, [(r"^backbone\.", "key_encoder.")]),
                           "fc.0.weight": junk, "key_fc.0.weight": junk, "queue": junk,
                           "queue_ptr": torch.zeros(1, dtype=torch.long)}}


RESNET_FORMATS = {  # format -> (backbone name, format name auto-detection gives)
    "torchvision": ("r2plus1d_18", "torchvision"), "selavi": ("r2plus1d_18", "selavi"),
    "moco": ("r2plus1d_18", "moco"), "video_moco": ("r2plus1d_18", "moco"),
    "pretext_contrast": ("r2plus1d_18", "pretext_contrast"), "rspnet": ("r2plus1d_18", "rspnet"),
    "avid_cma": ("r2plus1d_18", "avid_cma"), "ctp": ("r2plus1d_18", "ctp"),
    "tclr": ("r2plus1d_18_tclr", "tclr"), "gdt": ("r2plus1d_18", "gdt"),
    "tubelet_contrast": ("r2plus1d_18", "tubelet_contrast"),
    "tubelet_contrast_r3d": ("r3d_18", "tubelet_contrast_r3d"),
}


@pytest.mark.parametrize("fmt", sorted(RESNET_FORMATS))
def test_resnet_formats_round_trip(tmp_path, fmt):
    name, detected = RESNET_FORMATS[fmt]
    source = source_model(name, num_classes=400 if fmt == "torchvision" else None)
    path = tmp_path / f"{fmt}.pth"
    torch.save(resnet_layout(fmt, source), path)
    target = fresh_like(source, num_classes=None)
    report = load_pretrained(target, path)
    assert report.ok and report.format.startswith(detected)
    assert len(report.loaded) == len(target.state_dict())
    assert_same_output(target, source)
    explicit = load_pretrained(fresh_like(source, num_classes=None), path, format=fmt)
    assert explicit.loaded == report.loaded
    if fmt != "torchvision":
        assert report.ignored, "the pretext modules must be reported"


def test_ignored_keys_are_reported_with_reasons(tmp_path):
    path = tmp_path / "moco.pth.tar"
    torch.save(resnet_layout("moco", source_model()), path)
    report = load_pretrained(source_model(seed=2), path)
    reasons = dict(report.ignored)
    assert reasons["module.encoder_k.stem.0.weight"] == "momentum (key) encoder"
    assert reasons["module.queue"] == "negative-sample queue"
    assert reasons["module.encoder_q.fc.0.weight"] == "pretext-task head"
    text = str(report)
    assert "momentum (key) encoder: 222 (module.encoder_k.*)" in text and "status: OK" in text


def test_torchvision_classifier_loads_into_a_matching_head_only(tmp_path):
    source = source_model(num_classes=400)
    path = tmp_path / "r2plus1d_18-91a641e6.pth"
    torch.save(source.state_dict(), path)
    same_head = fresh_like(source)
    assert "fc.weight" in load_pretrained(same_head, path).loaded
    torch.testing.assert_close(same_head(CLIP), source(CLIP), rtol=0, atol=0)
    other_head = fresh_like(source, num_classes=101)
    report = load_pretrained(other_head, path)
    assert report.ok and dict(report.initialized) == {
        "fc.weight": "task head, trained from scratch",
        "fc.bias": "task head, trained from scratch"}


def videomae_pretrain_layout(encoder, decoder, sigma=False):
    model = {**prefixed("encoder.", encoder.state_dict()),
             "encoder_to_decoder.weight": decoder.decoder_embed.weight,
             "mask_token": decoder.mask_token,
             **prefixed("decoder.", {k: v for k, v in decoder.state_dict().items()
                                     if k not in ("decoder_embed.weight", "mask_token")})}
    if sigma:
        model |= {"prototypes": torch.randn(30, 96), "head.0.weight": torch.randn(96, 6),
                  "head.6.weight": torch.randn(96, 96)}
    return {"model": model, "epoch": 800, "optimizer": {"state": {}, "param_groups": []},
            "args": argparse.Namespace(model="pretrain_videomae_base", mask_ratio=0.9)}


@pytest.mark.parametrize("sigma", [False, True], ids=["videomae_pretrain", "sigma"])
def test_mae_pretrain_formats_round_trip_encoder_and_decoder(tmp_path, sigma):
    encoder = source_model("vit_tiny", use_mean_pooling=False)
    torch.manual_seed(3)
    decoder = VideoMAEDecoder(192, 96, 1, 3, encoder.num_patches, 96 if sigma else 384).eval()
    path = tmp_path / "checkpoint-799.pth"
    torch.save(videomae_pretrain_layout(encoder, decoder, sigma), path)
    target = fresh_like(encoder)
    report = load_pretrained(target, path)
    assert report.ok and report.format.startswith("sigma" if sigma else "videomae_pretrain")
    assert_same_output(target, encoder)
    reasons = {reason for _, reason in report.ignored}
    assert ("Sinkhorn prototypes" in reasons) == sigma
    torch.manual_seed(4)
    fresh_decoder = VideoMAEDecoder(192, 96, 1, 3, encoder.num_patches, 96 if sigma else 384)
    decoder_report = load_pretrained(fresh_decoder.eval(), path)
    assert decoder_report.ok and len(decoder_report.loaded) == len(decoder.state_dict())
    assert ("encoder.patch_embed.proj.weight", "encoder (load it into the backbone)") in \
        decoder_report.ignored
    mask = torch.zeros(2, encoder.num_patches, dtype=torch.bool)
    mask[:, ::2] = True
    visible = encoder.forward_encoder(CLIP, mask)
    torch.testing.assert_close(fresh_decoder(visible, mask), decoder(visible, mask),
                               rtol=0, atol=0)
    # Finetuning layout (mean pooling + fc_norm): the pretraining norm is ignored by design.
    finetune = fresh_like(encoder, use_mean_pooling=True, num_classes=5)
    report = load_pretrained(finetune, path)
    assert report.ok and ("encoder.norm.weight", "final norm of the other pooling layout") in \
        report.ignored
    assert {k for k, _ in report.initialized} == {"fc_norm.weight", "fc_norm.bias",
                                                  "head.weight", "head.bias"}


def test_videomae_finetune_format_round_trip(tmp_path):
    source = source_model("vit_tiny", num_classes=5)
    path = tmp_path / "vit_t_finetuned.pth"
    torch.save({"module": source.state_dict(), "global_steps": 10}, path)
    target = fresh_like(source)
    report = load_pretrained(target, path)
    assert report.ok and report.format.startswith("videomae_finetune")
    torch.testing.assert_close(target(CLIP), source(CLIP), rtol=0, atol=0)


def test_vidssl_checkpoint_builds_its_backbone(tmp_path):
    source = source_model("r2plus1d_18_tclr")
    path = tmp_path / "last.pt"
    torch.save({"format": "vidssl", "model": {**prefixed("backbone.", source.state_dict()),
                                              "projector.layers.0.weight": torch.zeros(2, 2),
                                              "queue": torch.zeros(2, 8)},
                "backbone_prefix": "backbone.", "model_spec": source.model_spec,
                "optimizer": {"state": {}, "param_groups": []}, "step": 7}, path)
    model, report = build_from_checkpoint(path)
    assert report.ok and model.model_spec == source.model_spec
    model.eval()
    assert len(report.ignored) == 2
    assert_same_output(model, source)


@pytest.mark.parametrize("fmt", ["ctp", "sigma"])
def test_convert_then_build_gives_the_same_network(tmp_path, fmt):
    if fmt == "sigma":
        source = source_model("vit_tiny", use_mean_pooling=False)
        decoder = VideoMAEDecoder(192, 96, 1, 3, source.num_patches, 96)
        checkpoint = videomae_pretrain_layout(source, decoder, sigma=True)
        spec = {"name": "vit_tiny", "kwargs": {**VIT_KWARGS, "use_mean_pooling": False}}
    else:
        source = source_model()
        checkpoint = resnet_layout(fmt, source)
        spec = None
    path, out = tmp_path / "in.pth", tmp_path / "converted" / "out.pt"
    torch.save(checkpoint, path)
    report = convert_checkpoint(path, out, backbone=spec)
    assert report.ok and out.is_file() and not (tmp_path / "converted" / "out.pt.partial").exists()
    written = torch.load(out, weights_only=True)
    assert written["format"] == "vidssl" and written["backbone_prefix"] == "backbone."
    assert written["source"]["format"] == fmt
    model, _ = build_from_checkpoint(out)
    assert_same_output(model.eval(), source)


def test_inspect_reports_format_modules_and_inferred_backbone(tmp_path):
    path = tmp_path / "epoch_100.pth"
    torch.save(resnet_layout("tubelet_contrast", source_model()), path)
    text = inspect_checkpoint(path)
    assert "format: tubelet_contrast (Tubelet-Contrast)" in text
    assert re.search(r"backbone\.layer4\s+\d+\.\d+M", text)
    assert "backbone: r2plus1d_18(width=0.25)" in text and "status: OK" in text
    assert "momentum (key) encoder: 222 (key_encoder.*)" in text


def test_inferred_full_size_architectures(tmp_path):
    with torch.device("meta"):
        r3d = build_backbone("r3d_18", num_classes=400)
        vit = build_backbone("vit_small", num_classes=174)
    # Shape-only tensors: one stored value expanded with zero strides keeps the files tiny.
    r3d_state = {k: torch.zeros(()).expand(v.shape) for k, v in r3d.state_dict().items()}
    vit_state = {k: torch.zeros(()).expand(v.shape) for k, v in vit.state_dict().items()}
    torch.save(r3d_state, tmp_path / "r3d.pth")
    torch.save({"module": vit_state}, tmp_path / "vit.pth")
    assert "backbone: r3d_18(num_classes=400), 33.37M parameters" in \
        inspect_checkpoint(tmp_path / "r3d.pth")
    text = inspect_checkpoint(tmp_path / "vit.pth")
    assert "backbone: vit_small(patch_size=16, tubelet_size=2, num_classes=174)" in text


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('x')",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"stem.0.weight": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pth: refused: .*builtins\.exec"):
        load_pretrained(r2plus1d_18(width=0.25), path)
    assert not marker.exists()


def test_argparse_namespace_is_allowed_but_nothing_else(tmp_path):
    path = tmp_path / "args.pth"
    torch.save({"args": argparse.Namespace(lr=1e-3), "w": torch.ones(1)}, path)
    assert read_checkpoint(path)["args"].lr == 1e-3


def test_truncated_empty_and_missing_files_name_the_file(tmp_path):
    path = tmp_path / "truncated.pth"
    torch.save(source_model().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: cannot read the checkpoint: the "
                                              r"file is truncated"):
        load_pretrained(r2plus1d_18(width=0.25), path)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth: checkpoint file is empty"):
        read_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match=r"nope\.pth: no such checkpoint file"):
        read_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text\.pth: cannot read the checkpoint"):
        read_checkpoint(tmp_path / "text.pth")


def test_wrong_architecture_fails_strictly_and_leaves_the_model_untouched(tmp_path):
    path = tmp_path / "r3d.pth"
    torch.save(source_model("r3d_18").state_dict(), path)
    target = r2plus1d_18(width=0.25)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"r3d\.pth: does not fit the model") as error:
        load_pretrained(target, path)
    assert "missing from the file" in str(error.value) and "DOES NOT FIT" in str(error.value)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    report = load_pretrained(target, path, strict=False)
    assert not report.ok and report.loaded and report.missing and report.mismatched
    file_state = torch.load(path, weights_only=True)
    assert all(torch.equal(target.state_dict()[k], file_state[k]) for k in report.loaded)
    with pytest.raises(CheckpointError, match=r"holds a resnet3d network.*VisionTransformer"):
        load_pretrained(vit_tiny(**VIT_KWARGS), path)
    wrapper = torch.nn.Module()
    wrapper.backbone = target
    with pytest.raises(CheckpointError, match=r"load the checkpoint into its \.backbone"):
        load_pretrained(wrapper, path)


def test_tclr_into_plain_r2plus1d_hints_at_the_tclr_backbone(tmp_path):
    path = tmp_path / "rpd18kin400.pth"
    torch.save(resnet_layout("tclr", source_model("r2plus1d_18_tclr")), path)
    with pytest.raises(CheckpointError, match="usually hold a r2plus1d_18_tclr"):
        load_pretrained(r2plus1d_18(width=0.25), path)


def test_unknown_layouts_and_format_names_are_explained(tmp_path):
    path = tmp_path / "weird.pth"
    torch.save({"weights": {"a.b": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match=r"weird\.pth: cannot tell the checkpoint format"):
        load_pretrained(r2plus1d_18(width=0.25), path)
    with pytest.raises(ValueError, match="unknown checkpoint format 'mocov9'"):
        load_pretrained(r2plus1d_18(width=0.25), path, format="mocov9")
    with pytest.raises(CheckpointError, match=r"not a CtP checkpoint"):
        load_pretrained(r2plus1d_18(width=0.25), path, format="ctp")


def test_num_batches_tracked_may_be_absent(tmp_path):
    source = source_model()
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    torch.save(state, tmp_path / "old.pth")
    target = fresh_like(source)
    report = load_pretrained(target, tmp_path / "old.pth")
    assert report.ok and len(report.initialized) == 37  # one per BatchNorm
    assert_same_output(target, source)
