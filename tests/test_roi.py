"""RoIAlign against a naive reference of the published kernel; the AVA RoI head."""
import math

import pytest
import torch

from vidssl.models.roi import RoIActionHead, boxes_to_rois, roi_align

torch.set_num_threads(1)


def _bilinear(plane: list[list[float]], height: int, width: int, y: float, x: float) -> float:
    """One bilinear sample with the RoIAlign kernel's border rules."""
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * plane[y_low][x_low] + hy * lx * plane[y_low][x_high]
            + ly * hx * plane[y_high][x_low] + ly * lx * plane[y_high][x_high])


def reference_roi_align(features, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned):
    """Loops per box, channel, bin and sample (Mask R-CNN RoIAlign as torchvision runs it)."""
    data = features.double().tolist()
    height, width = features.shape[2], features.shape[3]
    output = torch.zeros(rois.shape[0], features.shape[1], out_h, out_w, dtype=torch.float64)
    for k, (b, x1, y1, x2, y2) in enumerate(rois.double().tolist()):
        offset = 0.5 if aligned else 0.0
        start_w, start_h = x1 * spatial_scale - offset, y1 * spatial_scale - offset
        roi_w = x2 * spatial_scale - offset - start_w
        roi_h = y2 * spatial_scale - offset - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        count = max(grid_h * grid_w, 1)
        for c in range(features.shape[1]):
            plane = data[int(b)][c]
            for ph in range(out_h):
                for pw in range(out_w):
                    total = 0.0
                    for iy in range(grid_h):
                        y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                            total += _bilinear(plane, height, width, y, x)
                    output[k, c, ph, pw] = total / count
    return output


def _random_rois(generator, num, batch, image_h, image_w):
    """Boxes of every kind: inside, partly or fully outside the frame, tiny, degenerate."""
    rows = []
    for _ in range(num):
        b = int(torch.randint(batch, (1,), generator=generator))
        x1, x2 = sorted((torch.rand(2, generator=generator) * 1.6 - 0.3).tolist())
        y1, y2 = sorted((torch.rand(2, generator=generator) * 1.6 - 0.3).tolist())
        rows.append([b, x1 * image_w, y1 * image_h, x2 * image_w, y2 * image_h])
    rows.append([0, 10.0, 12.0, 10.4, 12.3])              # tiny
    rows.append([batch - 1, 20.0, 20.0, 20.0, 20.0])      # zero size
    rows.append([0, -40.0, -40.0, -20.0, -30.0])          # entirely outside
    rows.append([0, 30.0, 10.0, 5.0, 2.0])                # inverted
    return torch.tensor(rows)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_matches_reference(aligned, sampling_ratio):
    generator = torch.Generator().manual_seed(3 + sampling_ratio + int(aligned))
    features = torch.randn(2, 3, 9, 11, generator=generator)
    rois = _random_rois(generator, 10, 2, image_h=72, image_w=88)     # spatial scale 1/8
    ours = roi_align(features, rois, (3, 4), 0.125, sampling_ratio, aligned)
    reference = reference_roi_align(features, rois, 3, 4, 0.125, sampling_ratio, aligned)
    assert ours.shape == (rois.shape[0], 3, 3, 4)
    assert torch.allclose(ours.double(), reference, atol=1e-5, rtol=0)
    assert reference.abs().sum() > 0


def test_roi_align_hand_checked_values():
    # A ramp f(y, x) = x: bilinear sampling is exact, so each bin is the mean x of its samples.
    features = torch.arange(8.0).repeat(8, 1)[None, None]             # [1,1,8,8]
    out = roi_align(features, torch.tensor([[0, 2.0, 2.0, 6.0, 6.0]]), 2, 1.0, 0, True)
    # aligned: box [1.5, 5.5], bins [1.5,3.5] and [3.5,5.5], centres 2.5 and 4.5
    assert torch.allclose(out[0, 0], torch.tensor([[2.5, 4.5], [2.5, 4.5]]))
    out = roi_align(features, torch.tensor([[0, 2.0, 2.0, 6.0, 6.0]]), 2, 1.0, 0, False)
    assert torch.allclose(out[0, 0], torch.tensor([[3.0, 5.0], [3.0, 5.0]]))
    # A box that lies more than one pixel outside the map samples nothing.
    outside = roi_align(features, torch.tensor([[0, -30.0, -30.0, -20.0, -20.0]]), 2, 1.0)
    assert torch.count_nonzero(outside) == 0


def test_roi_align_gradcheck():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 2, 5, 6, dtype=torch.float64, generator=generator,
                           requires_grad=True)
    rois = torch.tensor([[0, 1.0, 1.5, 9.0, 8.0], [1, -2.0, 3.0, 4.0, 12.0]],
                        dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda f: roi_align(f, rois, 2, 0.5, 0, True), (features,), eps=1e-6, atol=1e-6)


def test_roi_align_rejects_bad_inputs():
    features = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(features, torch.tensor([[1, 0.0, 0.0, 2.0, 2.0]]), 2, 1.0)
    with pytest.raises(ValueError, match=r"\[K,5\]"):
        roi_align(features, torch.zeros(3, 4), 2, 1.0)
    assert roi_align(features, torch.zeros(0, 5), 2, 1.0).shape == (0, 1, 2, 2)


def test_boxes_to_rois_scales_normalized_boxes_to_pixels():
    rois = boxes_to_rois([torch.tensor([[0.0, 0.5, 0.5, 1.0]]), torch.zeros(0, 4),
                          torch.tensor([[0.25, 0.0, 1.0, 0.25]])], input_size=(100, 200))
    assert torch.equal(rois, torch.tensor([[0, 0.0, 50.0, 100.0, 100.0],
                                           [2, 50.0, 0.0, 200.0, 25.0]]))


def test_roi_head_shapes_and_loss():
    head = RoIActionHead(in_dim=8, num_classes=5)
    features = torch.randn(2, 8, 4, 7, 7)
    boxes = [torch.tensor([[0.1, 0.1, 0.6, 0.9], [0.0, 0.0, 1.0, 1.0]]),
             torch.tensor([[0.5, 0.5, 0.9, 0.9]])]
    logits = head(features, boxes, input_size=(112, 112))
    assert logits.shape == (3, 5)
    loss = RoIActionHead.loss(logits, torch.tensor([[1, 0, 0, 0, 1], [0] * 5, [0, 1, 0, 0, 0]]))
    loss.backward()
    assert head.projection.weight.grad.abs().sum() > 0
    assert head.projection.weight.std().item() == pytest.approx(0.01, rel=0.5)


def test_roi_head_output_depends_only_on_features_inside_the_box():
    head = RoIActionHead(in_dim=4, num_classes=3).eval()
    features = torch.randn(1, 4, 2, 8, 8)
    box = [torch.tensor([[0.25, 0.25, 0.5, 0.5]])]                  # feature cells 2..3
    before = head(features, box, input_size=(64, 64))
    changed = features.clone()
    changed[..., 5:, :] += 10.0                                       # rows below the box
    changed[..., :, 5:] -= 10.0                                       # columns right of it
    changed[..., :1, :] *= 3.0                                        # a row above it
    assert torch.allclose(head(changed, box, input_size=(64, 64)), before)
    changed[..., 3, 3] += 10.0                                        # inside the box
    assert not torch.allclose(head(changed, box, input_size=(64, 64)), before)


def test_roi_head_temporal_average():
    """The head sees the temporal mean: permuting time changes nothing."""
    head = RoIActionHead(in_dim=4, num_classes=2).eval()
    features = torch.randn(1, 4, 3, 7, 7)
    box = [torch.tensor([[0.1, 0.2, 0.8, 0.7]])]
    assert torch.allclose(head(features, box, (112, 112)),
                          head(features.flip(2), box, (112, 112)), atol=1e-6)
    pooled = head.pool(features, box, (112, 112))
    regions = roi_align(features.mean(2), boxes_to_rois(box, (112, 112)), 7, 7 / 112)
    assert torch.allclose(pooled, regions.amax(dim=(2, 3)))
