"""The suite runner on real files: a tiny UCF101-layout dataset, the real adapter and backbone."""
import json

import av
import numpy as np
import torch
import yaml

from vidssl.evaluation import run_suite

torch.set_num_threads(1)

COLOURS = {"Red": (200, 40, 40), "Blue": (40, 40, 200)}


def _write_video(path, colour, seed, frames=8, size=32, step=None):
    """A coloured backdrop with a grey square moving ``step`` px per frame (default: 2 px to
    the right, wrapping around; class = colour, so even random features separate the classes)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=16)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        if step is None:
            x0 = int(rng.integers(0, size - 8))
            xs = [(x0 + 2 * t) % (size - 8) for t in range(frames)]
        else:  # no wrap: start where the whole path stays inside the frame
            travel = abs(step) * (frames - 1)
            x0 = int(rng.integers(0, size - 8 - travel + 1)) + (travel if step < 0 else 0)
            xs = [x0 + step * t for t in range(frames)]
        for x in xs:
            image = np.empty((size, size, 3), np.uint8)
            image[:] = colour
            image[10:18, x:x + 8] = 128
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _ucf_layout(root):
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 Red\n2 Blue\n")
    train, test = [], []
    for label, (name, colour) in enumerate(COLOURS.items()):
        for i in range(10):
            rel = f"{name}/v_{name}_g{i:02d}_c01.avi"
            _write_video(root / "UCF-101" / rel, colour, seed=10 * label + i)
            (train if i < 7 else test).append(rel)
    (lists / "trainlist01.txt").write_text(
        "".join(f"{r} {1 + list(COLOURS).index(r.split('/')[0])}\n" for r in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r in test))


def test_suite_on_a_real_layout_with_the_real_adapter_and_backbone(tmp_path):
    _ucf_layout(tmp_path / "data" / "ucf")
    base = {"num_frames": 8, "target_fps": None, "frame_stride": 1, "size": 32, "batch_size": 4,
            "num_workers": 0, "val_fraction": 0.3, "val_clips": 1, "test_clips": 2,
            "feature_clips": 2, "linear_epochs": 20, "linear_lr": 0.01, "crop_scale": [0.5, 1.0]}
    suite = {"name": "colours", "recipes": {"base": base}, "factors": {
        "domain": [{"name": "linear", "dataset": "ucf101", "root": "ucf", "recipe": "base",
                    "overrides": {"protocol": "linear"}},
                   {"name": "knn", "dataset": "ucf101", "root": "ucf", "recipe": "base",
                    "overrides": {"protocol": "knn", "knn_k": 3}}],
        "samples": [{"name": "finetune4", "dataset": "ucf101", "root": "ucf", "num_samples": 4,
                     "recipe": "base", "overrides": {"epochs": 2, "lr": 0.01}}]}}
    path = tmp_path / "colours.yaml"
    path.write_text(yaml.safe_dump(suite))
    block = run_suite(path, model="r2plus1d_18", model_kwargs={"width": 0.25},
                      data_root=tmp_path / "data", out=tmp_path / "run", progress=False)
    experiments = block["experiments"]
    assert block["name"] == "scratch" and block["initialization"] == "random init"
    assert all(e["status"] == "done" for e in experiments.values()), experiments
    assert experiments["linear"]["metrics"]["top1"]["mean"] >= 80.0
    assert experiments["knn"]["metrics"]["top1"]["mean"] >= 80.0
    assert experiments["linear"]["videos"] == {"train": 10, "select": 4, "test": 6}
    assert experiments["finetune4"]["videos"]["train"] == 4  # 2 per class, val carved first
    result = json.loads((tmp_path / "run" / "experiments" / "finetune4" / "seed_0" /
                         "result.json").read_text())
    assert result["selected"]["steps"] == 2  # 2 epochs of one batch of 4
    assert (tmp_path / "run" / "plots" / "factor_domain.png").is_file()


def _linear_suite(tmp_path, name: str, linear_epochs: int):
    """A suite file with one linear-probe experiment ``name`` on ``data/ucf``."""
    base = {"num_frames": 8, "target_fps": None, "frame_stride": 1, "size": 32, "batch_size": 4,
            "num_workers": 0, "val_fraction": 0.3, "val_clips": 1, "test_clips": 1,
            "feature_clips": 1, "linear_epochs": linear_epochs, "linear_lr": 0.01,
            "protocol": "linear"}
    suite = {"name": name, "recipes": {"base": base}, "factors": {"domain": [
        {"name": name, "dataset": "ucf101", "root": "ucf", "recipe": "base"}]}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_motion_energy_reference_separates_directions_that_share_every_colour(tmp_path):
    """Classes differ only in where the square goes: the parameter-free motion descriptor
    separates them, its features are shared by all seeds, and its row is named after it."""
    from vidssl.evaluation.runner import BackboneSource

    root = tmp_path / "data" / "ucf"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 Right\n2 Left\n")
    train, test = [], []
    for label, (name, step) in enumerate((("Right", 2), ("Left", -2))):
        for i in range(10):
            rel = f"{name}/v_{name}_g{i:02d}_c01.avi"
            _write_video(root / "UCF-101" / rel, (90, 120, 90), seed=10 * label + i, step=step)
            (train if i < 7 else test).append(rel)
    (lists / "trainlist01.txt").write_text(
        "".join(f"{r} {1 + ('Left' in r)}\n" for r in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r in test))
    path = _linear_suite(tmp_path, "direction", linear_epochs=100)
    block = run_suite(path, model="motion_energy", data_root=tmp_path / "data",
                      out=tmp_path / "run", seeds=2, progress=False)
    assert block["name"] == "motion_energy" and block["initialization"] == "no parameters"
    assert "| motion_energy | motion_energy | none (no parameters) | 0, 1 |" in (
        tmp_path / "run" / "report.md").read_text()
    assert block["experiments"]["direction"]["metrics"]["top1"]["mean"] >= 80.0  # chance: 50
    assert BackboneSource(None, model="motion_energy").feature_key(1) is None
    fixed = BackboneSource(None, model="appearance_motion", model_kwargs={"image_size": 32})
    assert fixed.initialization == "fixed weights" and fixed.feature_key(1) is None
    assert BackboneSource(None, model="r2plus1d_18", model_kwargs={"width": 0.25}).feature_key(1) == 1


def test_each_seed_reads_its_own_pretraining_run(tmp_path):
    """Two checkpoints for two seeds: seed 0 reads the informative backbone, seed 1 one whose
    weights are all zero (constant features: a chance-level probe), so the rows' spread covers
    the runs; the frozen features are not shared between the runs. Mismatched counts and
    backbones are refused, naming the files."""
    import pytest

    from vidssl.models import build_backbone

    _ucf_layout(tmp_path / "data" / "ucf")
    torch.manual_seed(0)
    net = build_backbone("r2plus1d_18", width=0.25)
    files = []
    for name, state in (("a", net.state_dict()),
                        ("b", {k: torch.zeros_like(v) for k, v in net.state_dict().items()})):
        path = tmp_path / name / "checkpoints" / "last.pt"
        path.parent.mkdir(parents=True)
        torch.save({"format": "vidssl", "backbone_prefix": "backbone.",
                    "model": {f"backbone.{k}": v for k, v in state.items()},
                    "model_spec": net.model_spec}, path)
        files.append(str(path))
    path = _linear_suite(tmp_path, "colour", linear_epochs=40)
    block = run_suite(path, checkpoint=files, data_root=tmp_path / "data", out=tmp_path / "run",
                      seeds=2, progress=False, name="two runs")
    assert block["checkpoint"] == files and block["initialization"] == "checkpoint"
    per_seed = block["experiments"]["colour"]["metrics"]["top1"]["values"]
    assert per_seed[0] >= 80.0 and per_seed[1] == 50.0  # chance: 50
    assert f"| two runs | r2plus1d_18 | 2 runs: {files[0]}, {files[1]} | 0, 1 |" in (
        tmp_path / "run" / "report.md").read_text()
    with pytest.raises(ValueError, match="2 checkpoints for 3 seeds"):
        run_suite(path, checkpoint=files, data_root=tmp_path / "data", out=tmp_path / "x",
                  seeds=3, progress=False)
    other = tmp_path / "c.pt"
    vit = build_backbone("vit_tiny", img_size=32, num_frames=8, patch_size=8)
    torch.save({"format": "vidssl", "backbone_prefix": "backbone.", "model_spec": vit.model_spec,
                "model": {f"backbone.{k}": v for k, v in vit.state_dict().items()}}, other)
    with pytest.raises(ValueError, match=f"{other}: a different backbone"):
        run_suite(path, checkpoint=[files[0], str(other)], data_root=tmp_path / "data",
                  out=tmp_path / "y", seeds=2, progress=False)
