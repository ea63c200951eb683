"""The contrastive machinery under a real 2-process (gloo, CPU) process group: shuffle-BN,
gathered keys in the queue, NT-Xent over the global batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from vidssl.methods.contrastive import nt_xent
from vidssl.methods.video_moco import VideoMoCo

torch.set_num_threads(1)


class TinyBackbone(nn.Module):
    num_features = 6

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm3d(6)

    def forward_features(self, x):
        return {"pooled": F.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(0)  # same weights and data on every rank
    method = VideoMoCo(TinyBackbone(), VideoMoCo.Params(queue_size=8, shuffle_bn=True))
    clips = torch.randn(world * 3, 2, 3, 2, 6, 6)
    mine = clips[rank * 3:(rank + 1) * 3]

    # shuffle-BN: keys of a batch shuffled across ranks and unshuffled again equal the keys
    # computed without shuffling whenever BN does not look at the batch (eval mode)
    method.eval()
    shuffled = method._keys(mine[:, 1])
    method.params.shuffle_bn = False
    plain = method._keys(mine[:, 1])
    method.params.shuffle_bn = True
    # train mode: batch statistics come from a shuffled mix of both ranks' samples
    method.train()
    mixed = method._keys(mine[:, 1])
    method.params.shuffle_bn = False
    local = method._keys(mine[:, 1])
    method.params.shuffle_bn = True
    method.training_step({"video": mine})

    z_a, z_b = F.normalize(torch.randn(2, world * 3, 4, generator=torch.Generator()
                                       .manual_seed(1)), dim=2)
    local_loss, _, _ = nt_xent(z_a[rank * 3:(rank + 1) * 3], z_b[rank * 3:(rank + 1) * 3], 0.5)
    results[rank] = {"shuffled": shuffled, "plain": plain, "mixed": mixed, "local": local,
                     "queue": method.queue.keys.clone(), "pointer": int(method.queue.pointer),
                     "shuffles": int(method.shuffles), "nt_xent": float(local_loss)}
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes import torch: ~10 s
def test_shuffle_bn_queue_and_nt_xent_across_two_ranks():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(worker, args=(2, free_port(), results), nprocs=2, join=True)
    for rank in range(2):
        torch.testing.assert_close(results[rank]["shuffled"], results[rank]["plain"])
        assert results[rank]["shuffles"] == 3
        assert results[rank]["pointer"] == 6  # both ranks' 3 keys were enqueued
    assert not torch.allclose(results[0]["mixed"], results[0]["local"], atol=1e-4)
    torch.testing.assert_close(results[0]["queue"], results[1]["queue"])
    z_a, z_b = F.normalize(torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(1)),
                           dim=2)
    single, _, _ = nt_xent(z_a, z_b, 0.5)
    average = (results[0]["nt_xent"] + results[1]["nt_xent"]) / 2
    assert abs(average - float(single)) < 1e-5
