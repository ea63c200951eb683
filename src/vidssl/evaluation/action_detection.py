"""Action detection as a harness experiment (AVA v2.2, UCF101-24 and their world versions).

Boxes travel with the clips (``vidssl.data.datasets.keyframes``), so detection has its own
protocol next to ``finetune``/``linear``, on the same backbones, engine and recipes:

1. ``recipe.protocol: finetune``: train backbone + ``RoIActionHead`` (last feature map,
   temporal mean, aligned RoIAlign 7x7, spatial max, dropout, linear) through the engine
   with BCE on every training box's multi-hot actions (the recipe's optimizer, schedule,
   epochs; training view with short-side jitter, crop, flip). ``linear`` / ``knn``: the
   frozen-feature analogue of a linear probe: the frozen backbone's feature maps of the
   training keyframes (test view) are computed once and the head alone is trained on them
   (AdamW ``linear_lr``, ``linear_epochs``, ``linear_batch_size``; not resumable, cheap);
2. score every test box (the dataset's test boxes: AVA's detected persons at score >= 0.9,
   UCF101-24's ground-truth boxes) with ``sigmoid(logits)``;
3. write the detections in the official format into the run folder and score them with
   the official evaluators: ``ava_frame_map`` (frame mAP@0.5 over the label map's
   classes, excluded keyframes removed) or ``frame_map`` (UCF101-24 frame mAP@0.5 over
   the sampled annotated frames). The metric is ``map``, in percent.

The weights scored are the last epoch's (no model selection). Fine-tuning is resumable
(engine checkpoints per epoch) and seeded like ``finetune``; under torchrun its training is
DDP and the test keyframes are sharded (the frozen protocol runs on rank 0).
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import itertools
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidssl.engine import distributed as D
from vidssl.engine import fit
from vidssl.evaluation import detection
from vidssl.evaluation.finetune import train_settings
from vidssl.evaluation.suite import NORMALIZATIONS, Experiment, Recipe
from vidssl.evaluation.tasks import Task

DETECTIONS_FILE = "detections.csv"


class DetectionModel(nn.Module):
    """Backbone + RoI head; ``training_step`` is what ``engine.fit`` trains."""

    def __init__(self, backbone: nn.Module, head: nn.Module, task: Task):
        super().__init__()
        self.backbone, self.head, self.task = backbone, head, task
        self.grid = getattr(backbone, "grid_size", None)

    def forward(self, video: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """Logits ``[sum K_i, num_classes]`` of the boxes of every clip (normalized xyxy)."""
        features = self.task.features(self.backbone.forward_features(video), self.grid)
        return self.head(features, boxes, tuple(video.shape[-2:]))

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """BCE averaged over the boxes of the *global* batch: each rank returns
        ``sum_rank BCE * world_size / N_global``, which DDP's gradient average turns into the
        one-process mean, however unevenly the boxes fall on the ranks."""
        mask = batch["box_mask"]
        boxes = [b[m] for b, m in zip(batch["boxes"], mask)]
        logits = self(batch["video"], boxes)
        total = self.task.loss(logits, batch["box_labels"][mask], reduction="sum")
        count = D.all_reduce(torch.tensor(float(logits.numel()), device=logits.device))
        return {"loss": total * D.get_world_size() / count.clamp(min=1.0)}


def build_sets(experiment: Experiment, recipe: Recipe, root: str | Path, seed: int,
               fixed_grid: bool, train_mode: str = "train") -> tuple[Dataset, Dataset]:
    """(train, test) keyframe datasets of an experiment: the recipe's clip (``num_frames`` at
    ``frame_stride``), training view (short side from ``jitter_scales``, ``size`` crop,
    flip; ``train_mode="test"``: the test view), test view (short side ``size``, whole
    frame; the centre square for backbones with a fixed input grid) and input convention."""
    from vidssl.data import build_dataset

    statistics = NORMALIZATIONS[recipe.normalize]
    mean, std = statistics if statistics is not None else (None, None)
    common = {"num_frames": recipe.num_frames, "frame_stride": recipe.frame_stride or 1,
              "size": recipe.size, "mean": mean, "std": std, "seed": seed,
              "bgr": recipe.channel_order == "bgr", **experiment.dataset_options}
    view = "center" if fixed_grid else "full"
    train = build_dataset(experiment.dataset, str(root), experiment.train_split, mode=train_mode,
                          num_samples=experiment.num_samples, subset_seed=seed,
                          jitter_scales=tuple(recipe.jitter_scales), test_view=view, **common)
    test = build_dataset(experiment.dataset, str(root), experiment.test_split, mode="test",
                         test_view=view, **common)
    return train, test


def _collate(samples: list[dict]) -> list[dict]:
    return samples


@torch.no_grad()
def predict(model: DetectionModel, dataset: Dataset, *, batch_size: int, device,
            num_workers: int = 0) -> torch.Tensor:
    """``sigmoid`` scores ``[N, max_boxes, C]`` of every test keyframe's boxes (padding rows
    are 0), in dataset order; keyframes are sharded over ranks and gathered back. Clips of
    different frame shapes (full-frame test views) go through the network in separate
    batches."""
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=D.shard(len(dataset)),
                        num_workers=num_workers, collate_fn=_collate)
    rows = []
    try:
        for samples in loader:
            for _, group in itertools.groupby(samples, key=lambda s: tuple(s["video"].shape)):
                group = list(group)
                video = torch.stack([s["video"] for s in group]).to(device)
                boxes = [s["boxes"][s["box_mask"]].to(device) for s in group]
                scores = model(video, boxes).float().sigmoid().cpu()
                for sample, part in zip(group, scores.split([len(b) for b in boxes])):
                    padded = torch.zeros(len(sample["box_mask"]), scores.shape[1])
                    padded[: len(part)] = part
                    rows.append(padded)
    finally:
        model.train(was_training)
    local = torch.stack(rows) if rows else None
    return D.gather_shards(local, len(dataset))


@torch.no_grad()
def frozen_maps(backbone: nn.Module, task: Task, dataset: Dataset, *, batch_size: int,
                device) -> list[tuple]:
    """``(feature map [D,T',H',W'], boxes [K,4], box labels [K,C], input size)`` of every
    keyframe, from the frozen backbone in eval mode (CPU tensors, dataset order)."""
    grid = getattr(backbone, "grid_size", None)
    backbone.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=_collate)
    items = []
    for samples in loader:
        for _, group in itertools.groupby(samples, key=lambda s: tuple(s["video"].shape)):
            group = list(group)
            video = torch.stack([s["video"] for s in group]).to(device)
            maps = task.features(backbone.forward_features(video), grid).float().cpu()
            items += [(fmap, s["boxes"][s["box_mask"]], s["box_labels"][s["box_mask"]],
                       tuple(video.shape[-2:])) for fmap, s in zip(maps, group)]
    return items


def _head_logits(head: nn.Module, items: list[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of the boxes of ``items``, clips of one shape batched together."""
    logits, labels = [], []
    for _, group in itertools.groupby(items, key=lambda it: (tuple(it[0].shape), it[3])):
        group = list(group)
        logits.append(head(torch.stack([g[0] for g in group]), [g[1] for g in group],
                           group[0][3]))
        labels += [g[2] for g in group]
    return torch.cat(logits), torch.cat(labels)


def train_frozen_head(head: nn.Module, task: Task, items: list[tuple], recipe: Recipe,
                      seed: int) -> nn.Module:
    """The linear-probe recipe on cached feature maps: AdamW (``linear_lr``, the first of
    ``linear_weight_decays``), cosine decay over ``linear_epochs`` of shuffled batches of
    ``linear_batch_size`` keyframes, BCE on every box."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=recipe.linear_lr,
                                  weight_decay=recipe.linear_weight_decays[0])
    steps_per_epoch = -(-len(items) // recipe.linear_batch_size)
    total = recipe.linear_epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(recipe.linear_epochs):
        order = torch.randperm(len(items), generator=generator).tolist()
        for start in range(0, len(items), recipe.linear_batch_size):
            logits, labels = _head_logits(
                head, [items[i] for i in order[start:start + recipe.linear_batch_size]])
            loss = task.loss(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return head.eval()


def frozen_detection(backbone: nn.Module, task: Task, train: Dataset, test: Dataset,
                     recipe: Recipe, seed: int, device, memo: Callable | None = None
                     ) -> torch.Tensor:
    """Frozen backbone: feature maps once, the head trained on them, test scores
    ``[N, max_boxes, C]`` (``predict``'s layout). ``memo(role, compute)`` may return the
    maps of a split computed before (the seeds of a pretrained backbone share them)."""
    memo = memo or (lambda role, compute: compute())
    options = {"batch_size": recipe.batch_size, "device": device}
    train_maps = memo("train", lambda: frozen_maps(backbone, task, train, **options))
    test_maps = memo("test", lambda: frozen_maps(backbone, task, test, **options))
    torch.manual_seed(seed)
    head = task.build_head(backbone.num_features, train, recipe.dropout)
    head = train_frozen_head(head, task, train_maps, recipe, seed)
    scores = torch.zeros(len(test), test.max_boxes, test.num_classes)
    with torch.no_grad():
        for index, item in enumerate(test_maps):
            scores[index, : len(item[1])] = _head_logits(head, [item])[0].sigmoid()
    return scores


def write_ava_detections(dataset: Dataset, scores: torch.Tensor, path: Path,
                         action_ids: list[int]) -> int:
    """The official AVA detections CSV: ``video,timestamp,x1,y1,x2,y2,action,score`` for
    every test box and every evaluated action id; returns the number of rows."""
    rows = 0
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        for index, record in enumerate(dataset.records):
            meta = record.meta
            for box, box_scores in zip(meta["boxes"], scores[index]):
                for action in action_ids:
                    writer.writerow([meta["video"], meta["timestamp"],
                                     *(f"{v:.3f}" for v in box), action,
                                     f"{float(box_scores[action - 1]):.6f}"])
                    rows += 1
    return rows


def ucf24_detections(dataset: Dataset, scores: torch.Tensor) -> list[tuple]:
    """``(video, frame, label, score, x1, y1, x2, y2)`` rows in pixels, every box x class."""
    rows = []
    for index, record in enumerate(dataset.records):
        meta = record.meta
        height, width = meta["resolution"]
        for box, box_scores in zip(meta["boxes"], scores[index]):
            pixels = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
            rows += [(meta["video"], meta["timestamp"], label, float(score), *pixels)
                     for label, score in enumerate(box_scores.tolist())]
    return rows


def score_detections(dataset: Dataset, scores: torch.Tensor, out_dir: Path) -> dict:
    """Write the detections into ``out_dir`` and score them with the official evaluator of
    the dataset's format: ``{"map": percent, "details": {...}}``."""
    evaluation = dataset.evaluation
    out_dir.mkdir(parents=True, exist_ok=True)
    if evaluation["format"] == "ava":
        labelmap = detection.read_ava_labelmap(evaluation["labelmap"])
        path = out_dir / DETECTIONS_FILE
        write_ava_detections(dataset, scores, path, sorted(labelmap))
        result = detection.ava_frame_map(evaluation["groundtruth"], path, evaluation["labelmap"],
                                         evaluation["excluded"])
    elif evaluation["format"] == "ucf24":
        rows = ucf24_detections(dataset, scores)
        with open(out_dir / DETECTIONS_FILE, "w", newline="") as handle:
            csv.writer(handle).writerows(
                [r[:3] + tuple(f"{v:.4f}" for v in r[3:]) for r in rows])
        result = detection.frame_map(evaluation["gt_tubes"], rows, iou=0.5,
                                     videos=evaluation["videos"])
    else:
        raise ValueError(f"unknown detection evaluation format {evaluation['format']!r}")
    details = {k: v for k, v in result.items() if k not in ("mAP", "per_class")}
    return {"map": 100 * result["mAP"], "details": details}


def chance_levels(dataset: Dataset, out_dir: Path, seed: int = 0) -> dict[str, float]:
    """The mAP (percent) of two baselines a detector must beat on ``dataset``'s test boxes:
    ``random_scores`` (the dataset's boxes, uniform random scores) and ``random_boxes``
    (as many boxes per keyframe, placed and sized at random, random scores)."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(len(dataset), dataset.max_boxes, dataset.num_classes,
                        generator=generator)
    records = []
    for record in dataset.records:
        corner = torch.rand(len(record.meta["boxes"]), 2, generator=generator) * 0.7
        side = 0.1 + 0.3 * torch.rand(len(record.meta["boxes"]), 2, generator=generator)
        boxes = tuple(map(tuple, torch.cat([corner, corner + side], 1).clamp(max=1).tolist()))
        records.append(dataclasses.replace(record, meta={**record.meta, "boxes": boxes}))
    shuffled = copy.copy(dataset)
    shuffled.records = records
    return {"random_scores": score_detections(dataset, scores, out_dir / "random_scores")["map"],
            "random_boxes": score_detections(shuffled, scores, out_dir / "random_boxes")["map"]}


def run_detection(experiment: Experiment, recipe: Recipe, task: Task, backbone: nn.Module, *,
                  data_root: str | Path, run_dir: str | Path, seed: int, device: str = "cpu",
                  max_steps: int | None = None, resume: str | None = None,
                  progress: bool = True, keep_checkpoints: bool = False,
                  memo: Callable | None = None) -> tuple[dict, dict]:
    """Train and test one detection experiment; returns ``(outcome, sizes)`` for the runner.
    ``memo``: see ``frozen_detection``."""
    root = Path(data_root) / experiment.root
    if not root.exists():
        raise FileNotFoundError(f"experiment {experiment.name}: dataset root {root} does not "
                                f"exist (set --data-root, or override {experiment.name}.root=DIR)")
    out_dir, device = Path(run_dir), str(D.init_distributed(device))
    fixed_grid = getattr(backbone, "grid_size", None) is not None
    if recipe.protocol != "finetune":  # frozen backbone: the linear-probe analogue
        train, test = build_sets(experiment, recipe, root, seed, fixed_grid, train_mode="test")
        scores = D.run_on_main(frozen_detection, backbone, task, train, test, recipe, seed,
                               device, memo)
        scored = D.run_on_main(score_detections, test, scores, out_dir)
        return _outcome(scored, train, test, steps=None, bad=0)
    train, test = build_sets(experiment, recipe, root, seed, fixed_grid)
    torch.manual_seed(seed)
    head = task.build_head(backbone.num_features, train, recipe.dropout)
    model = DetectionModel(backbone, head, task)
    settings = train_settings(recipe, train_size=len(train), seed=seed, device=device,
                              max_steps=max_steps, resume=resume, progress=progress)
    # the RoI head reads the token map, not the pooled output (a ViT's fc_norm gets no
    # gradient): DDP must not wait for those parameters
    settings.train = dataclasses.replace(settings.train, find_unused_parameters=True)
    spec = getattr(backbone, "model_spec", None)
    extra = {"backbone_prefix": "backbone.", "model_spec": spec} if spec else None
    result = fit(model, train, settings, out_dir, config=recipe, checkpoint_extra=extra)
    scores = predict(model, test, batch_size=recipe.batch_size, device=device,
                     num_workers=recipe.num_workers)
    scored = D.run_on_main(score_detections, test, scores, out_dir)
    if not keep_checkpoints and D.is_main_process():
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    return _outcome(scored, train, test, steps=result.step, bad=result.bad_samples)


def _outcome(scored: dict, train: Dataset, test: Dataset, steps: int | None, bad: int
             ) -> tuple[dict, dict]:
    outcome = {"metrics": {"map": scored["map"]},
               "selected": {"epoch": None, "score": None, "steps": steps},
               "selection_score": None, "bad_samples": bad,
               "detection": {**scored["details"], "skipped_train": train.skipped,
                             "skipped_test": test.skipped}}
    return outcome, {"train": len(train), "select": 0, "test": len(test)}
