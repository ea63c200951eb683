"""Tubelet synthesis speed: batched ``vidssl.methods.tubelets`` vs a per-frame implementation.

The per-frame baseline is written here the way the published code works (one clip pair at a
time, uint8 frames, per frame: resize the patch and its alpha, rotate both on an enlarged
canvas with ``cv2.warpAffine`` -- PIL when OpenCV is missing -- and alpha-blend the region in
NumPy), rendering the *same* sampled tubelets, so both produce the same views. Also prints the
synthesis time as a fraction of one full-width R(2+1)D-18 Tubelet-Contrast training step.

    python benchmarks/tubelets.py [--batch 32] [--frames 16] [--size 112] [--device cpu]
    python benchmarks/tubelets.py --size 32 --batch 16 --step-batch 16 --width 0.25  # world
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from vidssl.methods.tubelets import (
    ELLIPSE,
    RECTANGLE,
    TubeletConfig,
    TubeletParams,
    add_tubelets,
    paste_tubelets,
    sample_tubelets,
)

try:
    import cv2
except ImportError:  # optional: fall back to PIL
    cv2 = None


def shape_alpha(shape: int, edge: float, width: int, height: int) -> np.ndarray:
    """The tubelet's mask on its (height, width) box, as ``pick_alphas`` draws it."""
    ys = (np.arange(height) + 0.5) / height * 2 - 1
    xs = (np.arange(width) + 0.5) / width * 2 - 1
    ax, ay = np.abs(xs)[None, :], np.abs(ys)[:, None]
    if shape == RECTANGLE:
        norm = np.maximum(ax, ay)
    elif shape == ELLIPSE:
        norm = np.hypot(ax, ay)
    else:
        norm = ax + ay
    return np.clip((1 - norm) / max(1 - 2 * edge, 1e-6), 0, 1).astype(np.float32)


def warp_bound(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply the 2x2 ``matrix`` about the image centre on a canvas that holds the result
    (``imutils.rotate_bound`` generalized to rotation + shear + scale)."""
    h, w = image.shape[:2]
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) - [w / 2, h / 2]
    mapped = corners @ matrix.T
    out_w = max(1, math.ceil(np.ptp(mapped[:, 0])))
    out_h = max(1, math.ceil(np.ptp(mapped[:, 1])))
    affine = np.concatenate([matrix, (np.array([out_w / 2, out_h / 2]) - matrix @ [w / 2, h / 2]
                                      )[:, None]], axis=1)
    if cv2 is not None:
        return cv2.warpAffine(image, affine, (out_w, out_h), flags=cv2.INTER_LINEAR,
                              borderValue=0)
    from PIL import Image
    inverse = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2].flatten()
    channels = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    warped = [np.asarray(Image.fromarray(ch).transform((out_w, out_h), Image.AFFINE,
                                                       tuple(inverse), Image.BILINEAR))
              for ch in channels]
    return warped[0] if image.ndim == 2 else np.stack(warped, -1)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if cv2 is not None:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    from PIL import Image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def paste_per_frame(frames_a: list, frames_b: list, params: TubeletParams, b: int) -> None:
    """Reference-style synthesis for clip pair ``b``, in place on lists of uint8 HxWxC frames."""
    maps = params.linear_maps()[b].numpy()
    for n in range(params.num_tubelets):
        w, h = params.sizes[b, n].tolist()
        sx, sy = params.source_center[b, n].tolist()
        x1, y1 = round(sx - w / 2), round(sy - h / 2)
        patch = frames_a[int(params.source_frame[b, n])][y1:y1 + max(1, round(h)),
                                                        x1:x1 + max(1, round(w))].copy()
        alpha = shape_alpha(int(params.shape[b, n]), float(params.edge[b, n]),
                            patch.shape[1], patch.shape[0])
        for t in range(len(frames_a)):
            scale = float(params.scales[b, n, t])
            size = (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale)))
            rotation = maps[n, t] / scale
            frame_patch = warp_bound(resize(patch, *size), rotation)
            frame_alpha = warp_bound(resize(alpha, *size), rotation)
            frame_alpha = frame_alpha * float(params.opacity[b, n, t])
            cx, cy = params.centers[b, n, t].tolist()
            ph, pw = frame_alpha.shape
            left, top = round(cx - pw / 2), round(cy - ph / 2)
            H, W = frames_a[t].shape[:2]
            fx1, fy1, fx2, fy2 = max(left, 0), max(top, 0), min(left + pw, W), min(top + ph, H)
            if fx1 >= fx2 or fy1 >= fy2:
                continue
            a = frame_alpha[fy1 - top:fy2 - top, fx1 - left:fx2 - left, None]
            p = frame_patch[fy1 - top:fy2 - top, fx1 - left:fx2 - left].astype(np.float32)
            for frames in (frames_a, frames_b):
                region = frames[t][fy1:fy2, fx1:fx2].astype(np.float32)
                frames[t][fy1:fy2, fx1:fx2] = (region * (1 - a) + p * a).round().astype(np.uint8)


def training_step_seconds(batch: int, frames: int, size: int, device: str,
                          width: float = 1.0) -> float:
    """One full Tubelet-Contrast step: R(2+1)D-18 query forward/backward, key forward, SGD
    step, momentum update (tubelet synthesis included)."""
    from vidssl.methods.tubelet_contrast import TubeletContrast
    from vidssl.models import build_backbone
    method = TubeletContrast(build_backbone("r2plus1d_18", width=width),
                             TubeletContrast.Params()).to(device)
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.01,
                                momentum=0.9)
    clips = torch.randn(batch, 3, frames, size, size, device=device)

    def step():
        loss = method.training_step({"video": clips})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.after_optimizer_step(0.0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    step()
    return best_of(step, 1)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--baseline-pairs", type=int, default=8)
    parser.add_argument("--step-batch", type=int, default=2,
                        help="batch of the training step the synthesis is compared with")
    parser.add_argument("--width", type=float, default=1.0,
                        help="R(2+1)D-18 width of that step (0.25: the CPU world configs)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if cv2 is not None:
        cv2.setNumThreads(args.threads)
    config = TubeletConfig(num_tubelets=2, rotation=True)
    B, T, S = args.batch, args.frames, args.size
    generator = torch.Generator().manual_seed(0)
    uint8_a = torch.randint(0, 256, (B, 3, T, S, S), dtype=torch.uint8, generator=generator)
    uint8_b = torch.randint(0, 256, (B, 3, T, S, S), dtype=torch.uint8, generator=generator)
    params = sample_tubelets(B, T, (S, S), config, generator)
    print(f"tubelet synthesis, {T}x{S}x{S}, 2 tubelets, rotation, threads={args.threads}, "
          f"per-frame backend: {'OpenCV' if cv2 is not None else 'PIL'}")

    pairs = min(args.baseline_pairs, B)
    numpy_frames = [(list(uint8_a[b].permute(1, 2, 3, 0).numpy().copy()),
                     list(uint8_b[b].permute(1, 2, 3, 0).numpy().copy())) for b in range(pairs)]

    def per_frame():  # in place, like the batched run below: no copies timed
        for b, (frames_a, frames_b) in enumerate(numpy_frames):
            paste_per_frame(frames_a, frames_b, params, b)
    per_frame_s = best_of(per_frame, args.repeats) / pairs
    print(f"  per-frame (reference style)  {per_frame_s * 1e3:8.2f} ms / clip pair")

    results, step_costs = {}, {}
    for device in dict.fromkeys(["cpu", args.device]):
        clips_a, clips_b = uint8_a.to(device).float(), uint8_b.to(device).float()
        moved = TubeletParams(**{k: (v.to(device) if isinstance(v, torch.Tensor) else v)
                                 for k, v in vars(params).items()})

        def batched(clips_a=clips_a, clips_b=clips_b, moved=moved, device=device):
            paste_tubelets([clips_a, clips_b], clips_a, moved, inplace=True)
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        def end_to_end(clips_a=clips_a, clips_b=clips_b, device=device):
            add_tubelets(clips_a, clips_b, config, torch.Generator().manual_seed(1))  # + copies
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        batched()
        results[device] = best_of(batched, args.repeats) / B
        print(f"  batched on {device:5s} (batch {B})  {results[device] * 1e3:8.2f} ms / clip pair"
              f"   speed-up x{per_frame_s / results[device]:.1f}")
        whole = best_of(end_to_end, args.repeats) / B
        step_costs[device] = whole
        print(f"  add_tubelets on {device:5s}        {whole * 1e3:8.2f} ms / clip pair"
              f"   speed-up x{per_frame_s / whole:.1f}  (incl. sampling and output copies)")

    # Both implementations render the same tubelets. Check it on smooth frames (on noise any
    # sub-pixel resampling difference is a large one).
    ys, xs = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    smooth_a = torch.stack([127 + 100 * torch.sin((xs * (c + 1) + ys * 2) / 30 + t / 3)
                            for c in range(3) for t in range(T)]).view(1, 3, T, S, S).round()
    smooth_b = smooth_a.flip(-1)
    numpy_a = list(smooth_a[0].permute(1, 2, 3, 0).to(torch.uint8).numpy().copy())
    numpy_b = list(smooth_b[0].permute(1, 2, 3, 0).to(torch.uint8).numpy().copy())
    first = TubeletParams(**{k: (v[:1] if isinstance(v, torch.Tensor) else v)
                             for k, v in vars(params).items()})
    paste_per_frame(numpy_a, numpy_b, first, 0)
    reference = torch.from_numpy(np.stack(numpy_a)).permute(3, 0, 1, 2).float()
    ours = paste_tubelets([smooth_a], smooth_a, first)[0][0].round()
    changed = (reference != smooth_a[0]).any(0) | (ours != smooth_a[0]).any(0)
    difference = (reference - ours).abs().mean(0)[changed].mean()
    print(f"  same output: mean |batched - per-frame| = {difference:.2f} / 255 on pasted pixels")

    for device, per_pair in step_costs.items():  # add_tubelets, as the method calls it
        step_s = training_step_seconds(args.step_batch, T, S, device, args.width)
        cost = per_pair * args.step_batch
        print(f"  Tubelet-Contrast step, R(2+1)D-18 x{args.width:g}, batch {args.step_batch}, "
              f"{device}: "
              f"{step_s:.3f} s; its tubelets take {cost / step_s * 100:.2f}% of it")

if __name__ == "__main__":
    main()
