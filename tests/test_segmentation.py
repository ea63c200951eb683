"""UVOS evaluation: matching metrics by hand, k-means, and the DAVIS-layout pipeline end to end."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from vidssl.evaluation.segmentation import (
    confusion_matrix,
    evaluate_segmentation,
    find_videos,
    hungarian_miou,
    kmeans,
    many_to_one_miou,
    read_annotation,
)
from vidssl.models import build_backbone

torch.set_num_threads(1)


def miou(pred, gt, num_pred, num_gt, metric):
    return metric(confusion_matrix(torch.tensor(pred), torch.tensor(gt), num_pred, num_gt))


def test_hungarian_finds_the_permutation():
    gt = [0, 0, 1, 1, 2, 2]
    assert miou([2, 2, 0, 0, 1, 1], gt, 3, 3, hungarian_miou) == pytest.approx(1.0)


def test_hungarian_by_hand():
    # gt:   0 0 0 0 1 1     pred: 1 1 1 0 0 0  -> best one-to-one: pred1->gt0, pred0->gt1
    # gt0: tp 3, union 4 -> 0.75;  gt1: tp 2, union 3 -> 2/3
    value = miou([1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1], 2, 2, hungarian_miou)
    assert value == pytest.approx((0.75 + 2 / 3) / 2)


def test_hungarian_sends_surplus_clusters_to_background():
    # 3 clusters, 2 classes: cluster 2 is unmatched and becomes background (class 0)
    # gt: 0 0 0 1 1 1, pred: 0 0 2 1 1 2 -> pred0->gt0 (iou 2/3) and pred1->gt1 (2/3) win;
    # after merging cluster 2 into background: gt0 tp 3, fp 1 -> 3/4; gt1 tp 2, fn 1 -> 2/3
    value = miou([0, 0, 2, 1, 1, 2], [0, 0, 0, 1, 1, 1], 3, 2, hungarian_miou)
    assert value == pytest.approx((0.75 + 2 / 3) / 2)


def test_many_to_one_merges_overclusters_by_precision():
    # 4 clusters split 2 classes exactly -> perfect after many-to-one
    assert miou([0, 1, 1, 2, 3, 3], [0, 0, 0, 1, 1, 1], 4, 2, many_to_one_miou) == 1.0
    # cluster 3 is 2/3 class 1 (precision 2/3 vs 1/3): class 1 gets it
    # gt: 0 0 0 1 1 1 1, pred: 0 0 3 1 1 3 3 -> class0: tp 2, fn 1 -> 2/3; class1: tp 4, fp 1 -> 4/5
    value = miou([0, 0, 3, 1, 1, 3, 3], [0, 0, 0, 1, 1, 1, 1], 4, 2, many_to_one_miou)
    assert value == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_void_pixels_are_ignored_and_bad_labels_refused():
    confusion = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 255, 1]), 2, 2)
    assert confusion.tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="out of range"):
        confusion_matrix(torch.tensor([5]), torch.tensor([0]), 2, 2)


def test_kmeans_recovers_separated_blobs_deterministically():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.3 * torch.randn(40, 2, generator=generator) for c in centres])
    labels, found = kmeans(points, 3, seed=1)
    truth = torch.arange(3).repeat_interleave(40)
    assert miou(labels.tolist(), truth.tolist(), 3, 3, hungarian_miou) == 1.0
    assert torch.cdist(found, centres).min(dim=1).values.max() < 0.3
    again, _ = kmeans(points, 3, seed=1)
    assert torch.equal(labels, again)
    with pytest.raises(ValueError):
        kmeans(points, 0)


def test_read_annotation_palette_and_rgb(tmp_path):
    ids = np.zeros((4, 6), dtype=np.uint8)
    ids[1:3, 2:5] = 2
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "p.png")
    assert np.array_equal(read_annotation(tmp_path / "p.png"), ids)
    palette.convert("RGB").save(tmp_path / "rgb.png")
    assert np.array_equal(read_annotation(tmp_path / "rgb.png") > 0, ids > 0)


# ---------------------------------------------------------------- end to end


def write_davis(root, videos=2, frames=8, size=32):
    """A white square (object 1) and a grey bar (object 2) moving over black, DAVIS layout."""
    for v in range(videos):
        (root / "JPEGImages" / f"v{v}").mkdir(parents=True)
        (root / "Annotations" / f"v{v}").mkdir(parents=True)
        for t in range(frames):
            ids = np.zeros((size, size), dtype=np.uint8)
            x = 2 + t + 3 * v
            ids[8:20, x:x + 12] = 1
            ids[24:30, 4:28] = 2
            image = np.stack([np.choose(ids, [0, 250, 120]).astype(np.uint8)] * 3, axis=-1)
            Image.fromarray(image).save(root / "JPEGImages" / f"v{v}" / f"{t:05d}.jpg",
                                        quality=95)
            Image.fromarray(ids, mode="P").save(root / "Annotations" / f"v{v}" / f"{t:05d}.png")


class ColourTokens(nn.Module):
    """Oracle-ish backbone: token feature = mean colour of its 2x4x4 tube (+ a constant)."""

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, 3, (2, 4, 4), stride=(2, 4, 4))
        self.patch_embed.grid_size = (4, 8, 8)
        self.bias = nn.Parameter(torch.ones(1, 1, 3))

    def forward_features(self, video):
        pooled = F.avg_pool3d(video, (2, 4, 4)).flatten(2).transpose(1, 2)
        return {"tokens": pooled + self.bias, "pooled": pooled.mean(1)}


def test_colour_features_segment_the_objects(tmp_path):
    write_davis(tmp_path)
    result = evaluate_segmentation(ColourTokens(), tmp_path, verbose=False, out=tmp_path / "o")
    assert result.num_clips == 2 and not result.skipped
    assert result.clustering_miou > 80.0  # only 4x4 tube boundaries are wrong
    assert result.overclustering_miou >= result.clustering_miou - 1.0
    saved = json.loads((tmp_path / "o" / "segmentation.json").read_text())
    assert saved["clustering_miou"] == pytest.approx(result.clustering_miou)
    assert [c["video"] for c in saved["clips"]] == ["v0", "v1"]


def test_vit_checkpoint_geometry_and_short_videos(tmp_path):
    write_davis(tmp_path, videos=1, frames=3)  # shorter than the 4-frame clip: padded
    vit = build_backbone("vit_tiny", img_size=32, patch_size=8, tubelet_size=2, num_frames=4,
                         depth=1, embed_dim=32, num_heads=2)
    result = evaluate_segmentation(vit, tmp_path, verbose=False, overclustering_k=5)
    assert result.num_clips == 1 and 0.0 <= result.clustering_miou <= 100.0


def test_unreadable_video_is_skipped_and_reported(tmp_path):
    write_davis(tmp_path)
    (tmp_path / "Annotations" / "v1" / "00003.png").write_bytes(b"not a png")
    result = evaluate_segmentation(ColourTokens(), tmp_path, verbose=False)
    assert result.num_clips == 1 and result.skipped[0].startswith("v1:")


def test_layout_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        find_videos(tmp_path)


def test_cnn_backbone_needs_and_uses_an_explicit_clip_geometry(tmp_path):
    write_davis(tmp_path, videos=1)
    cnn = build_backbone("r3d_18", width=0.125)
    with pytest.raises(ValueError, match="num_frames and size"):
        evaluate_segmentation(cnn, tmp_path, verbose=False)
    result = evaluate_segmentation(cnn, tmp_path, num_frames=8, size=64, verbose=False)
    assert result.num_clips == 1 and 0.0 < result.overclustering_miou <= 100.0
