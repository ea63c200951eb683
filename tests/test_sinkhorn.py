"""Sinkhorn-Knopp codes: reference agreement (POT, SwAV's iterates), marginals, stability, DDP."""
import os
import socket

import numpy as np
import ot
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from vidssl.methods.sinkhorn import sinkhorn

torch.set_num_threads(1)


def cosine_scores(num_tokens: int, num_prototypes: int, dim: int = 16, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    tokens = F.normalize(torch.randn(num_tokens, dim, generator=generator), dim=1)
    prototypes = F.normalize(torch.randn(num_prototypes, dim, generator=generator), dim=1)
    return tokens @ prototypes.T


def swav_reference(scores: torch.Tensor, eps: float, iters: int) -> torch.Tensor:
    """SwAV's ``distributed_sinkhorn`` on one process, literally (exp domain, no shift)."""
    q = torch.exp(scores / eps).T
    q /= q.sum()
    num_prototypes, num_tokens = q.shape
    for _ in range(iters):
        q /= q.sum(dim=1, keepdim=True)
        q /= num_prototypes
        q /= q.sum(dim=0, keepdim=True)
        q /= num_tokens
    return (q * num_tokens).T


def test_matches_pot_entropic_transport_plan_at_convergence():
    scores = cosine_scores(200, 20).double()
    codes = sinkhorn(scores, eps=0.05, iters=500)
    plan = ot.sinkhorn(np.full(200, 1 / 200), np.full(20, 1 / 20), (-scores).numpy(), reg=0.05,
                       numItermax=10000, stopThr=1e-13)
    np.testing.assert_allclose(codes.numpy() / 200, plan, atol=1e-10)


@pytest.mark.parametrize("iters", [1, 3, 10])
def test_same_iterates_as_swav(iters):
    scores = cosine_scores(300, 40, seed=1).double()
    torch.testing.assert_close(sinkhorn(scores, 0.05, iters), swav_reference(scores, 0.05, iters),
                               rtol=1e-9, atol=1e-12)


def test_rows_are_distributions_and_prototypes_share_mass_equally():
    codes = sinkhorn(cosine_scores(600, 30, seed=2), eps=0.05, iters=10)
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(600))
    assert bool((codes >= 0).all())
    column_mass = codes.sum(dim=0)
    assert column_mass.sum().item() == pytest.approx(600.0, rel=1e-5)
    assert (column_mass / (600 / 30) - 1).abs().max().item() < 0.05


def test_stable_where_plain_exponentials_overflow():
    scores = cosine_scores(100, 10, seed=3) * 50.0  # logits up to 5e3
    assert not torch.isfinite(swav_reference(scores, 0.01, 3)).all()
    codes = sinkhorn(scores, eps=0.01, iters=3)
    assert torch.isfinite(codes).all()
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(100), rtol=0, atol=1e-4)


def test_log_domain_path_keeps_swav_iterates():
    scores = cosine_scores(200, 16, seed=6)  # eps 0.005: float32 logits span up to 400
    reference = swav_reference(scores.double(), 0.005, 10).float()
    assert not torch.isfinite(swav_reference(scores, 0.005, 10)).all()
    torch.testing.assert_close(sinkhorn(scores, eps=0.005, iters=10), reference,
                               rtol=1e-4, atol=1e-5)


def test_no_gradient_and_dtype_kept_under_autocast():
    scores = cosine_scores(64, 8, seed=4).requires_grad_(True)
    plain = sinkhorn(scores)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = sinkhorn(scores)
    assert not plain.requires_grad and mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, plain)
    half = sinkhorn(scores.detach().bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), plain, atol=2e-2, rtol=0)


@pytest.mark.parametrize("bad", [{"scores": torch.zeros(3)}, {"eps": 0.0}, {"iters": 0}])
def test_bad_arguments(bad):
    arguments = {"scores": torch.zeros(4, 3), "eps": 0.05, "iters": 3} | bad
    with pytest.raises(ValueError):
        sinkhorn(**arguments)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_codes(rank: int, world: int, port: int, scores: torch.Tensor, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        codes = sinkhorn(scores.chunk(world)[rank], eps=0.05, iters=5)
        torch.save(codes, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_equipartition_is_over_the_global_batch_under_ddp(tmp_path):
    scores = cosine_scores(120, 12, seed=5)
    scores[:60] += 0.5 * torch.eye(12)[0]  # rank 0 prefers prototype 0, rank 1 does not
    mp.start_processes(_rank_codes, args=(2, _free_port(), scores, str(tmp_path)), nprocs=2,
                       join=True, start_method="fork")
    parts = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    torch.testing.assert_close(torch.cat(parts), sinkhorn(scores, eps=0.05, iters=5))
    assert not torch.allclose(parts[0], sinkhorn(scores[:60], eps=0.05, iters=5), atol=1e-3)
