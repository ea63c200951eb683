"""SIGMA costs, each against a baseline measured in the same run (medians, interleaved rounds).

1. Sinkhorn-Knopp at the paper's problem size: ``batch x 1408`` masked tubes (16x224x224 clips,
   2x16x16 tubes, mask 0.9) x 3000 prototypes, 10 iterations, eps 0.05, float32:
     vidssl  - ``vidssl.methods.sinkhorn.sinkhorn`` (scaling vectors, two mat-vecs per iteration)
     swav    - SwAV/SIGMA's published loop: rewrite the whole N x K matrix twice per iteration
     pot     - POT's ``ot.sinkhorn`` (numpy, float32 inputs, same 10 iterations, no stop test)
   and the largest code difference to the SwAV loop (same iterates, so ~1e-6).
2. One training step (forward + backward + AdamW) of SIGMA-MLP, and of SIGMA with the frozen
   EfficientNet-Lite0 teacher, against VideoMAE on the same tiny ViT and clips (the world
   config: vit_tiny, 16 x 32 x 32, 2x8x8 tubes, mask 0.75, batch 16).

    python benchmarks/sigma.py                 # CPU: batch 2 for Sinkhorn
    python benchmarks/sigma.py --batch 16 --device cuda
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import ot
import torch
import torch.nn.functional as F

from vidssl.methods.sigma import SIGMA, SIGMAParams
from vidssl.methods.sinkhorn import sinkhorn
from vidssl.methods.videomae import VideoMAE, VideoMAEParams
from vidssl.models import build_backbone


def swav_loop(scores: torch.Tensor, eps: float, iters: int) -> torch.Tensor:
    """SwAV's ``distributed_sinkhorn`` (one process), as SIGMA's ``utils.sinkhorn`` runs it."""
    q = torch.exp(scores / eps).T
    q /= q.sum()
    num_prototypes, num_tokens = q.shape
    for _ in range(iters):
        q /= q.sum(dim=1, keepdim=True)
        q /= num_prototypes
        q /= q.sum(dim=0, keepdim=True)
        q /= num_tokens
    return (q * num_tokens).T


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def median_times(variants: dict, rounds: int, device: torch.device) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(timed(fn, device))
    return {name: float(np.median(values)) for name, values in times.items()}


def sinkhorn_benchmark(batch: int, prototypes: int, rounds: int, device: torch.device) -> None:
    tokens = batch * 1408
    generator = torch.Generator().manual_seed(0)
    features = F.normalize(torch.randn(tokens, 256, generator=generator), dim=1)
    centres = F.normalize(torch.randn(prototypes, 256, generator=generator), dim=1)
    scores = (features @ centres.T).to(device)
    cost = (-scores).cpu().numpy()
    uniform_tokens = np.full(tokens, 1 / tokens, dtype=np.float32)
    uniform_prototypes = np.full(prototypes, 1 / prototypes, dtype=np.float32)
    variants = {
        "vidssl": lambda: sinkhorn(scores, 0.05, 10),
        "swav": lambda: swav_loop(scores, 0.05, 10),
    }
    if device.type == "cpu":
        variants["pot"] = lambda: ot.sinkhorn(uniform_tokens, uniform_prototypes, cost, 0.05,
                                              numItermax=10, stopThr=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT warns that 10 iterations did not converge
        for fn in variants.values():
            fn()  # warm-up
        times = median_times(variants, rounds, device)
    difference = (sinkhorn(scores, 0.05, 10) - swav_loop(scores, 0.05, 10)).abs().max().item()
    print(f"\nSinkhorn-Knopp, {tokens} masked tubes ({batch} x 1408) x {prototypes} prototypes, "
          f"10 iterations, {device}:")
    for name, seconds in times.items():
        ratio = seconds / times["vidssl"]
        print(f"  {name:8s} {seconds * 1e3:9.1f} ms   {ratio:5.2f}x the vidssl time")
    print(f"  max |codes(vidssl) - codes(swav)| = {difference:.2e}")


def step_benchmark(rounds: int, device: torch.device) -> None:
    geometry = {"img_size": 32, "patch_size": 8, "num_frames": 16, "tubelet_size": 2,
                "use_mean_pooling": False}
    decoder = {"mask_ratio": 0.75, "decoder_dim": 96, "decoder_depth": 2, "decoder_heads": 3}
    builders = {
        "videomae": lambda b: VideoMAE(b, VideoMAEParams(**decoder)),
        "sigma_mlp": lambda b: SIGMA(b, SIGMAParams(**decoder, target_dim=64,
                                                    num_prototypes=256)),
        "sigma_effnet": lambda b: SIGMA(b, SIGMAParams(
            **decoder, num_prototypes=256, target="dino", teacher="efficientnet_lite0_s16")),
    }
    video = torch.randn(16, 3, 16, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    steps = {}
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build(build_backbone("vit_tiny", **geometry)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer):
            loss = model.training_step({"video": video})["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        step()  # warm-up (and the teacher's first move to the device)
        steps[name] = step
    times = median_times(steps, rounds, device)
    print(f"\nTraining step, vit_tiny, batch 16 x 16 x 32 x 32, mask 0.75, {device}:")
    for name, seconds in times.items():
        print(f"  {name:12s} {seconds * 1e3:8.1f} ms   {seconds / times['videomae']:5.2f}x "
              f"the VideoMAE step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2, help="clips per Sinkhorn problem")
    parser.add_argument("--prototypes", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    sinkhorn_benchmark(args.batch, args.prototypes, args.rounds, device)
    step_benchmark(args.rounds, device)


if __name__ == "__main__":
    main()
