"""Process-group helpers. Under ``torchrun`` (env:// rendezvous) they talk to the other ranks;
in a plain single process they are identities, so calling code never branches on DDP."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_distributed(device: str) -> torch.device:
    """Join the process group that ``torchrun`` describes (gloo on CPU, nccl on CUDA) and
    return this rank's device. Without torchrun, return ``device`` unchanged."""
    if not launched_by_torchrun():
        return torch.device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        backend, dev = "nccl", torch.device("cuda", local_rank)
    else:
        backend, dev = "gloo", torch.device("cpu")
    if not is_distributed():
        dist.init_process_group(backend=backend, init_method="env://")
    return dev


def shutdown(wait: bool = True) -> None:
    """Leave the process group (end of a torchrun command). After a command that succeeded,
    a barrier first: a rank that tore its connections down while another still received its
    last message (gloo sends return early) made that rank abort at exit. After an error no
    barrier (the other ranks may be stuck in another collective)."""
    if is_distributed():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce (``sum``, ``mean`` or ``max``); returns the tensor."""
    if not is_distributed():
        return tensor
    reduce_op = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op]
    dist.all_reduce(tensor, op=reduce_op)
    if op == "mean":
        tensor /= get_world_size()
    return tensor


@torch.no_grad()
def all_gather_nograd(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0 (no gradient flows back)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor):
        parts = [torch.empty_like(tensor) for _ in range(get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads):
        grad = torch.stack(grads)
        dist.all_reduce(grad)
        return grad[get_rank()]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0; gradients reach each rank's part."""
    if not is_distributed():
        return tensor
    return torch.cat(_GatherWithGrad.apply(tensor))


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` (any picklable value) on every rank; identity in one process.
    Used where all ranks must take the same decision (model selection, a probe's result)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def run_on_main(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` computed once, on rank 0, and its (picklable) result returned on
    every rank (which also makes the other ranks wait for it)."""
    return broadcast_object(fn(*args, **kwargs) if is_main_process() else None)


def shard(size: int) -> range:
    """This rank's items of a ``size``-item dataset: ``rank, rank + W, rank + 2W, ...``; the
    shards of all ranks partition ``range(size)`` (no padding, no duplicates)."""
    return range(get_rank(), size, get_world_size())


def _comm_device() -> torch.device:
    """Where tensors must live for a collective: the rank's GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@torch.no_grad()
def gather_shards(local: torch.Tensor | None, size: int) -> torch.Tensor:
    """Inverse of :func:`shard`: rows of every rank's shard (``None`` for an empty one),
    put back in dataset order, ``[size, ...]`` on the CPU, identical on every rank.

    Item ``i`` is row ``i // W`` of rank ``i % W``; shards are padded to ``ceil(size / W)`` rows
    for ``all_gather`` and the padding (which lands at positions ``>= size``) is cut off, so
    every item appears exactly once."""
    if not is_distributed():
        return local
    world = get_world_size()
    shapes: list = [None] * world
    dist.all_gather_object(shapes, None if local is None else (tuple(local.shape), local.dtype))
    shape, dtype = next(s for s in shapes if s is not None)
    rows = -(-size // world)
    padded = torch.zeros((rows, *shape[1:]), dtype=dtype, device=_comm_device())
    if local is not None:
        padded[:len(local)] = local.to(padded.device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.stack(parts, dim=1).flatten(0, 1)[:size].cpu()


class _SumOverRanks(torch.autograd.Function):
    """``y = sum_r x_r`` on every rank. The objective is the sum of the ranks' losses, so
    ``dJ/dx_r = sum_r' dL_r'/dy``: the backward all-reduces the incoming gradients too."""

    @staticmethod
    def forward(ctx, tensor):
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable all-reduce sum (identity in one process)."""
    return _SumOverRanks.apply(tensor) if is_distributed() else tensor


def sum_scalar(value: float) -> float:
    """``value`` summed over the ranks (e.g. per-shard counts)."""
    if not is_distributed():
        return value
    total = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device())
    return all_reduce(total).item()
