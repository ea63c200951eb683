"""Forward+backward time per clip of R(2+1)D-18 and ViT-S, against a plain eager baseline.

Every optimization is measured in the same run as its baseline on the same weights and input,
interleaved round by round (median per variant):
  R(2+1)D-18: eager fp32 (baseline) vs channels_last_3d, bf16 autocast, and both.
  ViT-S/16:   explicit attention fp32 (baseline) vs SDPA, and SDPA + bf16 autocast.
Prints seconds per clip, the speed-up ratio (baseline time / variant time) and the largest
output deviation from the baseline (a sanity check that the variant computes the same net).

    python benchmarks/models.py            # CPU (and CUDA when present), 16x112x112, batch 1
    python benchmarks/models.py --quick    # 8x64x64, batch 1: a smoke run in seconds
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch

from vidssl.models import r2plus1d_18, vit_small


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step(model: torch.nn.Module, clip: torch.Tensor, bf16: bool) -> torch.Tensor:
    autocast = torch.autocast(clip.device.type, dtype=torch.bfloat16) if bf16 \
        else contextlib.nullcontext()
    with autocast:
        out = model(clip)
    out.float().square().mean().backward()
    return out.detach().float()


def timed_step(model, clip, bf16: bool) -> tuple[float, torch.Tensor]:
    """Seconds per clip of one forward+backward, and its output."""
    model.zero_grad(set_to_none=True)
    synchronize(clip.device)
    start = time.perf_counter()
    out = step(model, clip, bf16)
    synchronize(clip.device)
    return (time.perf_counter() - start) / clip.shape[0], out


def variants(network: str, model: torch.nn.Module) -> list[tuple[str, torch.nn.Module, bool, bool]]:
    """(label, model copy, channels_last_3d input, bf16 autocast); the first is the baseline."""
    if network == "r2plus1d_18":
        channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last_3d)
        return [("eager fp32 (baseline)", model, False, False),
                ("channels_last_3d", channels_last, True, False),
                ("bf16 autocast", model, False, True),
                ("channels_last_3d + bf16", channels_last, True, True)]
    explicit = copy.deepcopy(model)
    explicit.set_fused_attention(False)
    return [("explicit attention fp32 (baseline)", explicit, False, False),
            ("SDPA fp32", model, False, False),
            ("SDPA + bf16 autocast", model, False, True)]


def run(device: torch.device, args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    clip = torch.randn(args.batch_size, 3, args.frames, args.size, args.size, device=device)
    networks = {
        "r2plus1d_18": r2plus1d_18(num_classes=args.classes),
        "vit_small": vit_small(img_size=args.size, num_frames=args.frames, num_classes=args.classes),
    }
    print(f"\n== {device.type}: batch {args.batch_size}, clip {args.frames}x{args.size}x"
          f"{args.size}, median of {args.iters} after {args.warmup} warm-up ==")
    print(f"{'network':<12} {'variant':<36} {'s/clip':>8} {'speed-up':>9} {'max |dy|':>9}")
    channels_last_clip = clip.contiguous(memory_format=torch.channels_last_3d)
    for name, model in networks.items():
        runs = variants(name, model.to(device).train())
        times: list[list[float]] = [[] for _ in runs]
        outputs: list[torch.Tensor] = [clip] * len(runs)
        # Round-robin over the variants, so a load change on a shared machine hits all alike.
        for round_index in range(args.warmup + args.iters):
            for i, (_, variant, channels_last, bf16) in enumerate(runs):
                x = channels_last_clip if channels_last else clip
                seconds, outputs[i] = timed_step(variant, x, bf16)
                if round_index >= args.warmup:
                    times[i].append(seconds)
        baseline = statistics.median(times[0])
        for (label, *_), variant_times, out in zip(runs, times, outputs):
            seconds = statistics.median(variant_times)
            deviation = (out - outputs[0]).abs().max().item()
            print(f"{name:<12} {label:<36} {seconds:8.4f} {baseline / seconds:8.2f}x "
                  f"{deviation:9.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8x64x64 clips, batch 1, 2 iters")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    args = parser.parse_args()
    if args.quick:
        args.batch_size, args.frames, args.size, args.iters = 1, 8, 64, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if args.device == "cuda" and not devices:
        raise SystemExit("no CUDA device available")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    for device in devices:
        run(device, args)


if __name__ == "__main__":
    main()
