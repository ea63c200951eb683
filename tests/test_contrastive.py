"""MoCo / SimCLR machinery, the tubelet_contrast and video_moco methods."""
import math

import pytest
import torch
import torch.nn.functional as F

from vidssl.bundled import bundled_dir
from vidssl.config import ConfigError
from vidssl.methods import METHODS
from vidssl.methods.contrastive import (
    ContrastiveParams,
    NegativeQueue,
    info_nce,
    momentum_at,
    momentum_update,
    nt_xent,
)
from vidssl.methods.tubelet_contrast import TubeletContrastParams
from vidssl.methods.tubelets import TubeletConfig
from vidssl.models import build_backbone
from vidssl.pretrain import load_pretrain_config

torch.set_num_threads(1)
CONFIGS = bundled_dir("pretrain")


def structured_clips(count: int, frames: int = 8, size: int = 24, seed: int = 0) -> torch.Tensor:
    """Smooth random clips: instance discrimination is learnable from them (unlike noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(count, 3, 2, 4, 4, generator=g)
    smooth = F.interpolate(coarse, size=(frames, size, size), mode="trilinear")
    return smooth + 0.1 * torch.randn(count, 3, frames, size, size, generator=g)


def pairs_of(clips: torch.Tensor) -> torch.Tensor:
    """``[B,2,C,T,H,W]``: each clip with the next one (two videos per sample)."""
    return torch.stack([clips, clips.roll(-1, dims=0)], dim=1)


def make(name: str, **params):
    method = METHODS[name]
    torch.manual_seed(0)
    return method(build_backbone("r2plus1d_18", width=0.25), method.Params(**params))


def test_info_nce_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    q, k = F.normalize(torch.randn(4, 8, generator=g), dim=1).unbind(0)[:2]
    q, k = q[None].repeat(3, 1), k[None].repeat(3, 1)
    negatives = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    loss, logits, labels = info_nce(q, k, negatives, 0.2)
    positive = math.exp(float(q[0] @ k[0]) / 0.2)
    total = positive + sum(math.exp(float(q[0] @ n) / 0.2) for n in negatives)
    assert loss.item() == pytest.approx(-math.log(positive / total), rel=1e-5)
    assert logits.shape == (3, 6) and (labels == 0).all()


def test_nt_xent_matches_its_definition():
    g = torch.Generator().manual_seed(1)
    z_a, z_b = F.normalize(torch.randn(2, 3, 8, generator=g), dim=2)
    loss, _, labels = nt_xent(z_a, z_b, 0.5)
    z = torch.cat([z_a, z_b])
    expected = 0.0
    for i in range(6):
        j = (i + 3) % 6
        denominator = sum(math.exp(float(z[i] @ z[m]) / 0.5) for m in range(6) if m != i)
        expected -= math.log(math.exp(float(z[i] @ z[j]) / 0.5) / denominator)
    assert loss.item() == pytest.approx(expected / 6, rel=1e-5)
    assert labels.tolist() == [3, 4, 5, 0, 1, 2]


def test_queue_is_a_fifo_that_wraps():
    queue = NegativeQueue(5, 2)
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(5))
    keys = torch.arange(16, dtype=torch.float32).view(8, 2)
    queue.enqueue(keys[:3])
    queue.enqueue(keys[3:6])
    assert int(queue.pointer) == 1
    assert torch.equal(queue.keys, torch.cat([keys[5:6], keys[1:5]]))
    queue.enqueue(keys)  # more than fits: the newest 5 survive
    assert torch.equal(queue.keys[torch.arange(1, 6) % 5], keys[3:])


def test_momentum_encoder_is_an_ema_of_the_query_encoder():
    method = make("video_moco", queue_size=32, momentum=0.9)
    key_before = [p.clone() for p in method.key_backbone.parameters()]
    query_before = list(method.backbone.parameters())
    assert all(torch.equal(k, q) for k, q in zip(key_before, query_before, strict=True))
    assert not any(p.requires_grad for p in method.key_backbone.parameters())
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    method.after_optimizer_step(0.5)
    for key, before, query in zip(method.key_backbone.parameters(), key_before,
                                  method.backbone.parameters(), strict=True):
        torch.testing.assert_close(key, 0.9 * before + 0.1 * query)
    head = [p.clone() for p in method.key_projector.parameters()]
    momentum_update(method.key_projector, method.projector, 1.0)
    after = method.key_projector.parameters()
    assert all(torch.equal(a, b) for a, b in zip(head, after, strict=True))


def test_momentum_schedules():
    assert momentum_at(0.99, 0.3) == 0.99
    assert momentum_at(0.99, 0.0, "cosine") == pytest.approx(0.99)
    assert momentum_at(0.99, 0.5, "cosine") == pytest.approx(0.995)
    assert momentum_at(0.99, 1.0, "cosine") == pytest.approx(1.0)


def test_training_step_enqueues_the_keys():
    method = make("tubelet_contrast", queue_size=10)
    out = method.training_step({"video": pairs_of(structured_clips(4))})
    assert out["loss"].requires_grad and 0.0 <= out["acc"].item() <= 1.0
    assert int(method.queue.pointer) == 4
    with torch.no_grad():
        # the enqueued keys are unit vectors from the key encoder, not the random init
        assert torch.allclose(method.queue.keys[:4].norm(dim=1), torch.ones(4))
        cosine = method.queue.keys[:4] @ method.queue.keys[:4].T
        assert cosine.min() > 0.5  # untrained keys are close to each other; random ones not


@pytest.mark.parametrize("name,negatives", [("tubelet_contrast", "batch"),
                                            ("video_moco", "queue")])
def test_a_few_training_steps_lower_the_loss(name, negatives):
    method = make(name, negatives=negatives, queue_size=16, momentum=0.9)
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.02,
                                momentum=0.9)
    pool = structured_clips(32, size=16).view(4, 8, 3, 8, 16, 16)
    losses = []
    for step in range(20):
        torch.manual_seed(step % 4)
        clips = pool[step % 4]
        if name == "video_moco":
            clips = torch.stack([clips, clips + 0.3 * torch.randn_like(clips)], dim=1)
        else:
            clips = pairs_of(clips)
        loss = method.training_step({"video": clips})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.after_optimizer_step(step / 20)
        losses.append(loss.item())
    # the queue is full after two steps; from then on the loss must come down
    assert sum(losses[-4:]) / 4 < sum(losses[2:6]) / 4 - 0.3, losses


def test_methods_check_their_batches():
    tubelet = make("tubelet_contrast", negatives="batch")
    with pytest.raises(ValueError, match=r"\[B,2,C,T,H,W\]"):
        tubelet.training_step({"video": structured_clips(4)})
    other = make("tubelet_contrast", negatives="batch", tubelets={"patch_source": "other"})
    with pytest.raises(ValueError, match="at least 2 pairs"):
        other.training_step({"video": pairs_of(structured_clips(1))})
    moco = make("video_moco", negatives="batch")
    assert moco.recipe.dataset_options(16)["num_views"] == 2
    with pytest.raises(ValueError, match="two clips"):
        moco.training_step({"video": structured_clips(4)})
    with pytest.raises(ValueError, match="negatives"):
        ContrastiveParams(negatives="memory_bank")


def test_batch_variant_has_no_momentum_encoder():
    method = make("tubelet_contrast", negatives="batch")
    assert not hasattr(method, "key_backbone") and not hasattr(method, "queue")
    method.after_optimizer_step(0.5)  # nothing to update
    assert method.projector.layers[0].in_features == method.backbone.num_features == 128


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*contrast*.yaml")) +
                         sorted(CONFIGS.glob("video_moco*.yaml")), ids=lambda p: p.name)
def test_configs_load(path):
    config = load_pretrain_config(path)
    assert config.method.name in ("tubelet_contrast", "video_moco")
    if config.method.name == "tubelet_contrast":
        assert isinstance(config.method.params, TubeletContrastParams)
        assert isinstance(config.method.params.tubelets, TubeletConfig)
    METHODS[config.method.name](build_backbone(config.model.name, **config.model.kwargs),
                                config.method.params)


def test_config_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("method:\n  name: tubelet_contrast\n  tubelets:\n    motion: zigzag\n")
    with pytest.raises(ConfigError, match="bad.yaml.*motion"):
        load_pretrain_config(path)
    path.write_text("method:\n  name: tubelet_contrast\n  tubelets:\n    rotations: true\n")
    with pytest.raises(ConfigError, match="bad.yaml.*rotations"):
        load_pretrain_config(path)


class ClipPairs(torch.utils.data.Dataset):
    """Sample ``i``: clip ``i`` and its mirror image, ``[2,C,T,H,W]``."""

    def __init__(self, clips: torch.Tensor):
        self.clips = clips

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        clip = self.clips[index]
        return {"video": torch.stack([clip, clip.flip(-1)]), "label": 0, "index": index}


@pytest.mark.parametrize("name,negatives", [("tubelet_contrast", "queue"),
                                            ("video_moco", "queue")])
def test_engine_trains_and_resumes_exactly(tmp_path, name, negatives):
    """Through ``vidssl.engine.fit``: 2 steps + resume to 4 == 4 straight steps (tubelets,
    queue, momentum encoder and its shuffle counter all live in the checkpoint / RNG state)."""
    from vidssl.config import OptimConfig, ScheduleConfig, TrainConfig, TrainSettings
    from vidssl.engine import fit

    dataset = ClipPairs(structured_clips(16, frames=4, size=16))

    def run(out, max_steps, resume=None):
        settings = TrainSettings(
            optim=OptimConfig(lr=0.05), schedule=ScheduleConfig(name="constant"),
            train=TrainConfig(epochs=2, max_steps=max_steps, log_every=1, seed=3),
            batch_size=4, num_workers=0, resume=resume, progress=False)
        method = make(name, negatives=negatives, queue_size=8, momentum=0.9)
        fit(method, dataset, settings, out)
        return method.state_dict()

    straight = run(tmp_path / "straight", 4)
    run(tmp_path / "resumed", 2)
    resumed = run(tmp_path / "resumed", 4, resume="auto")
    assert set(straight) == set(resumed) and "queue.keys" in straight
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)
    assert int(straight["queue.pointer"]) == 16 % 8
    rows = (tmp_path / "straight" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step") and "acc" in rows[0] and len(rows) == 5
