"""Sinkhorn-Knopp equipartition of tokens over prototypes (SwAV, Caron et al. 2020; SIGMA).

Given scores ``S`` [N,K] between N tokens and K prototypes, the codes solve the entropic
transport problem

    Q* = argmax_{Q in U}  <Q, S> + eps * H(Q),   U = {Q >= 0 : Q 1_K = 1/N,  Q^T 1_N = 1/K}

whose solution is ``Q* = diag(a) exp(S/eps) diag(b)``. Sinkhorn-Knopp finds the scalings by
alternating the prototype marginal (each prototype gets mass 1/K) and the token marginal (each
token gets mass 1/N); the returned codes are ``N * Q`` so every row is a distribution over
prototypes and every prototype column carries mass N/K (exactly at convergence).

N is the *global* batch: under DDP the per-prototype sums and the token count are all-reduced,
so the equipartition holds over the masked tokens of every rank (identity in one process).
"""
from __future__ import annotations

import math

import torch

from vidssl.engine.distributed import all_reduce

# Largest logit range (max - min) / eps for which exp(logit - max) stays a normal float, so the
# scaled-kernel iteration loses no entry; wider ranges run the log-domain iteration.
_EXP_DOMAIN_SPREAD = {torch.float32: 80.0, torch.float64: 700.0}


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, eps: float = 0.05, iters: int = 10) -> torch.Tensor:
    """Soft equipartitioned codes of ``scores`` [N,K] -> [N,K] (rows sum to 1; no gradient).

    Same iterates as SwAV's ``Q = exp(S/eps)^T`` starting from uniform token weights, ``iters``
    x (prototype rows to 1/K, token columns to 1/N). Written with scaling vectors,
    ``b = 1 / (K * G^T a)`` and ``a = 1 / (N * G b)``, on ``G = exp((S - max S) / eps)``
    (the global maximum cancels; two mat-vecs per iteration instead of rewriting Q). When the
    logits span more than a float's exponent range (e.g. tiny ``eps``), the same updates run in
    log space. Computes in float32 (float64 for float64 input) even under autocast.

    Args:
        scores: similarities of N (local) tokens to K prototypes, e.g. cosines.
        eps: entropic regularisation (SIGMA: 0.05; 0.03 for SSv2 ViT-B). Smaller = harder codes.
        iters: Sinkhorn-Knopp iterations (SIGMA/SwAV: 10 or 3).
    """
    if scores.dim() != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"sinkhorn expects scores [N,K] with N, K > 0, got {tuple(scores.shape)}")
    if eps <= 0 or iters < 1:
        raise ValueError(f"sinkhorn needs eps > 0 and iters >= 1, got eps={eps}, iters={iters}")
    input_dtype = scores.dtype
    dtype = torch.float64 if input_dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=scores.device.type, enabled=False):
        scores = scores.to(dtype)
        num_tokens = all_reduce(scores.new_tensor(float(scores.shape[0])))
        low, high = torch.aminmax(scores)
        high = all_reduce(high, op="max")
        low = -all_reduce(-low, op="max")
        if (high - low).item() / eps <= _EXP_DOMAIN_SPREAD[dtype]:
            kernel = scores.mul(1.0 / eps).sub_(high / eps).exp_()
            codes = _scaled_kernel_iterations(kernel, num_tokens, iters)
        else:
            codes = _log_domain_iterations(scores / eps, num_tokens, iters)
    return codes.to(input_dtype)


def _scaled_kernel_iterations(kernel: torch.Tensor, num_tokens: torch.Tensor,
                              iters: int) -> torch.Tensor:
    """Overwrites ``kernel`` with the codes."""
    token_scale = torch.ones_like(kernel[:, 0])
    for _ in range(iters):
        prototype_scale = 1.0 / (kernel.shape[1] * all_reduce(kernel.T @ token_scale))
        token_scale = 1.0 / (num_tokens * (kernel @ prototype_scale))
    return kernel.mul_(prototype_scale).mul_((num_tokens * token_scale)[:, None])


def _global_logsumexp_over_tokens(values: torch.Tensor) -> torch.Tensor:
    """``log sum_n exp(values[n, k])`` over the tokens of every rank -> [K]."""
    peak = all_reduce(values.max(dim=0).values, op="max")
    return peak + all_reduce((values - peak).exp().sum(dim=0)).log()


def _log_domain_iterations(logits: torch.Tensor, num_tokens: torch.Tensor,
                           iters: int) -> torch.Tensor:
    log_num_prototypes, log_num_tokens = math.log(logits.shape[1]), num_tokens.log()
    log_token_scale = torch.zeros_like(logits[:, 0])
    for _ in range(iters):
        log_prototype_scale = -log_num_prototypes - _global_logsumexp_over_tokens(
            logits + log_token_scale[:, None])
        log_token_scale = -log_num_tokens - torch.logsumexp(logits + log_prototype_scale, dim=1)
    return (logits + log_prototype_scale + (log_token_scale + log_num_tokens)[:, None]).exp()
