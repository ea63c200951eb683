"""Full fine-tuning through the engine, with model selection on a held-out split.

After every ``eval_every`` epochs the model is scored on the selection split (a validation
split carved from train, or the test split in SEVERE's original protocol); the best weights
are kept in ``best.pt`` (with the score history, so an interrupted run resumes exactly), and
the test split is scored once, with the selected weights and all test clips.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from vidssl.config import OptimConfig, ScheduleConfig, TrainConfig, TrainSettings
from vidssl.engine import distributed as D
from vidssl.engine import fit
from vidssl.engine.checkpoint import atomic_save, load_checkpoint
from vidssl.evaluation.inference import run_over_views
from vidssl.evaluation.suite import Recipe
from vidssl.evaluation.tasks import Task
from vidssl.evaluation.vit_protocol import prepare_vit_protocol


class FinetuneModel(nn.Module):
    """Backbone + task head; ``training_step`` is what ``engine.fit`` trains.

    ``freeze_bn`` (PySlowFast's ``BN.FREEZE``): the backbone's BatchNorm layers keep their
    pretrained statistics (always in eval mode) and affine parameters (no gradient)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, task: Task, freeze_bn: bool = False):
        super().__init__()
        self.backbone, self.head, self.task = backbone, head, task
        self.grid = getattr(backbone, "grid_size", None)
        self.freeze_bn = freeze_bn
        self.criterion = None  # (model, clips, targets) -> loss, replacing task.loss
        for norm in self._backbone_norms():
            norm.requires_grad_(False)

    def _backbone_norms(self) -> list[nn.Module]:
        """The frozen BatchNorm layers (found anew: SyncBatchNorm conversion replaces them)."""
        if not self.freeze_bn:
            return []
        return [m for m in self.backbone.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> FinetuneModel:
        super().train(mode)
        for norm in self._backbone_norms():
            norm.eval()
        return self

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.task.features(self.backbone.forward_features(video), self.grid))

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        video, target = self.task.training_inputs(batch)
        if self.criterion is not None:  # mixup / cutmix / label smoothing (ViT protocol)
            return {"loss": self.criterion(self, video, target)}
        return {"loss": self.task.loss(self(video), target)}


def train_settings(recipe: Recipe, *, train_size: int, seed: int, device: str,
                   max_steps: int | None, resume: str | None, progress: bool) -> TrainSettings:
    """Engine settings of a recipe; one checkpoint per epoch so a run resumes at epoch ends.

    ``recipe.batch_size`` is the global batch: under torchrun each of the W ranks takes
    ``batch_size / W`` samples per step, with BatchNorm over the global batch (``sync_bn``), so
    the run follows the single-process trajectory."""
    batch_size = min(recipe.batch_size, train_size)
    world = D.get_world_size()
    if batch_size % world:
        raise ValueError(f"fine-tuning batch {batch_size} (recipe.batch_size, or the training set "
                         f"size if smaller) does not split over {world} processes; use a "
                         f"multiple of {world}")
    steps_per_epoch = max(1, train_size // batch_size)
    return TrainSettings(
        optim=OptimConfig(name=recipe.optimizer, lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay, betas=tuple(recipe.betas),
                          lr_batch_ref=recipe.lr_batch_ref, layer_decay=recipe.layer_decay),
        schedule=ScheduleConfig(name=recipe.schedule, warmup_epochs=recipe.warmup_epochs,
                                milestones=list(recipe.milestones), gamma=recipe.gamma,
                                min_lr_ratio=recipe.min_lr_ratio,
                                warmup_from_zero=recipe.warmup_from_zero),
        train=TrainConfig(epochs=recipe.epochs, max_steps=max_steps, amp=recipe.amp,
                          grad_clip=recipe.grad_clip, checkpoint_every=steps_per_epoch,
                          keep_last=1, log_every=max(1, min(10, steps_per_epoch)), seed=seed,
                          device=device, sync_bn=True),
        batch_size=batch_size // world, num_workers=recipe.num_workers, drop_last=True,
        resume=resume, progress=progress)


def _score(model: FinetuneModel, task: Task, dataset: Dataset, recipe: Recipe, device,
           label: str, progress: bool) -> tuple[dict[str, float], int]:
    was_training = model.training
    model.eval()
    try:
        outputs, targets, bad = run_over_views(
            model, dataset, task, clips_per_batch=recipe.batch_size, device=device,
            num_workers=recipe.num_workers, label=label, progress=progress)
    finally:
        model.train(was_training)
    # every rank scored the same gathered outputs; rank 0's numbers make the decisions
    return D.broadcast_object(task.score(task.merge_views(outputs), targets)), bad


class _Selector:
    """Keeps the best weights by the selection metric, persisted in ``best.pt`` (written by
    rank 0; every rank holds the same state in memory)."""

    def __init__(self, path: Path, task: Task, fresh: bool):
        self.path, self.task = path, task
        self.state = {"history": [], "best_score": None, "best_epoch": None, "model": None}
        if not fresh and path.is_file():
            self.state = load_checkpoint(path)

    @property
    def last_epoch(self) -> int:
        return max((h[0] for h in self.state["history"]), default=-1)

    def update(self, model: nn.Module, epoch: int, score: float) -> None:
        self.state["history"].append([epoch, score])
        if self.task.is_better(score, self.state["best_score"]):
            weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            self.state.update(best_score=score, best_epoch=epoch, model=weights)
        if D.is_main_process():
            atomic_save(self.state, self.path)


def finetune(backbone: nn.Module, task: Task, train: Dataset, select: Dataset | None,
             test: Dataset, recipe: Recipe, out_dir: str | Path, *, metric: str, seed: int,
             device: str = "cpu", max_steps: int | None = None, resume: str | None = None,
             progress: bool = True, keep_checkpoints: bool = False) -> dict:
    """Fine-tune ``backbone`` + a fresh ``task`` head on ``train``; select on ``select`` (or take
    the last weights when it is ``None``); score ``test``. Returns metrics and the selection.
    Under torchrun every rank calls it: training is DDP, selection and test inference sharded."""
    out_dir, device = Path(out_dir), str(D.init_distributed(device))
    torch.manual_seed(seed)
    head = task.build_head(backbone.num_features, train, recipe.dropout)
    model = FinetuneModel(backbone, head, task, freeze_bn=recipe.freeze_bn)
    prepare_vit_protocol(model, recipe, num_classes=getattr(train, "num_classes", None))
    settings = train_settings(recipe, train_size=len(train), seed=seed, device=device,
                              max_steps=max_steps, resume=resume, progress=progress)
    resumed = resume is not None and (out_dir / "checkpoints" / "last.pt").is_file()
    selector = None
    if select is not None:
        selector = _Selector(out_dir / "best.pt", task, fresh=not resumed)

    def evaluate(_module: nn.Module, epoch: int) -> dict:
        last = epoch + 1 == recipe.epochs
        if selector is None or ((epoch + 1) % recipe.eval_every and not last):
            return {}
        scores, _ = _score(model, task, select, recipe, device, f"select (epoch {epoch + 1})",
                           progress)
        selector.update(model, epoch, scores[metric])
        return {f"select_{k}": v for k, v in scores.items()}

    if selector is not None and resumed:
        _evaluate_resumed_epoch(model, out_dir, settings, len(train), selector, evaluate)
    spec = getattr(backbone, "model_spec", None)  # kept checkpoints rebuild like pretrained ones
    extra = {"backbone_prefix": "backbone.", "model_spec": spec} if spec else None
    result = fit(model, train, settings, out_dir, eval_fn=evaluate, config=recipe,
                 checkpoint_extra=extra)

    selected = {"epoch": None, "score": None, "steps": result.step}
    if selector is not None and selector.state["model"] is not None:
        model.load_state_dict(selector.state["model"])
        selected.update(epoch=selector.state["best_epoch"] + 1, score=selector.state["best_score"])
    test_metrics, bad = _score(model.to(device), task, test, recipe, device, "test", progress)
    if not keep_checkpoints and D.is_main_process():
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
        (out_dir / "best.pt").unlink(missing_ok=True)
    return {"metrics": test_metrics, "selected": selected,
            "selection_score": selected["score"], "bad_samples": result.bad_samples + bad}


def _evaluate_resumed_epoch(model: FinetuneModel, out_dir: Path, settings: TrainSettings,
                            train_size: int, selector: _Selector, evaluate) -> None:
    """The engine checkpoints at the end of an epoch before the epoch's evaluation runs; if a
    run died in between, score the checkpointed weights (exactly that epoch's) now."""
    state = load_checkpoint(out_dir / "checkpoints" / "last.pt")
    steps_per_epoch = max(1, train_size // (settings.batch_size * D.get_world_size()))
    step = int(state["step"])
    finished_epoch = step // steps_per_epoch - 1
    if step % steps_per_epoch or finished_epoch <= selector.last_epoch or finished_epoch < 0:
        return
    model.load_state_dict(state["model"])
    model.to(settings.train.device)
    evaluate(model, finished_epoch)
