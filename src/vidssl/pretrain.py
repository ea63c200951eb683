"""Self-supervised pretraining: config -> backbone + method + dataset -> ``engine.fit``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vidssl.bundled import resolve_config
from vidssl.config import (
    DataConfig,
    MethodConfig,
    ModelConfig,
    MonitorConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    TrainSettings,
    load_config,
    save_config,
    to_dict,
)
from vidssl.engine import FitResult, fit, seed_everything
from vidssl.methods import METHODS, parse_method_section


@dataclass
class PretrainConfig:
    """A pretraining run: ``vidssl pretrain --config FILE`` (sections mirror the YAML)."""

    method: MethodConfig = field(default_factory=MethodConfig,
                                 metadata={"parse": parse_method_section})
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def settings(self, resume: str | None = None, progress: bool = True) -> TrainSettings:
        return TrainSettings(
            optim=self.optim, schedule=self.schedule, train=self.train,
            batch_size=self.data.batch_size, num_workers=self.data.num_workers,
            resume=resume, progress=progress,
        )


def load_pretrain_config(name_or_path: str | Path, overrides: list[str] = ()) -> PretrainConfig:
    """A bundled pretraining config (``vidssl configs list``) or a YAML path, plus dotted
    overrides, validated (errors name the file, or "command line")."""
    return load_config(resolve_config(name_or_path, "pretrain"), overrides, cls=PretrainConfig)


def build_method(cfg: PretrainConfig):
    """The configured method wrapped around a freshly built backbone."""
    from vidssl.models import build_backbone

    backbone = build_backbone(cfg.model.name, **cfg.model.kwargs)
    return METHODS[cfg.method.name](backbone, cfg.method.params)


def build_pretrain_dataset(cfg: PretrainConfig):
    """The pretraining dataset as the method's recipe makes it (``SSLMethod.recipe``: clip
    sampling, pairing, per-clip augmentation at ``data.size``); ``data.options`` come last."""
    from vidssl.data import build_dataset

    data, method = cfg.data, METHODS[cfg.method.name]
    if not data.root:
        raise ValueError("data.root is not set: pass data.root=DIR (e.g. a world's pretrain/ folder)")
    recipe = method.recipe.dataset_options(data.size) if method.recipe else {}
    options = {
        "num_frames": data.num_frames, "frame_stride": data.frame_stride,
        "target_fps": data.target_fps, "size": data.size, "backend": data.backend,
        "mode": "train", "seed": cfg.train.seed,
        **recipe, **method.dataset_options(cfg.method.params), **data.options,
    }
    dataset = build_dataset(data.dataset, data.root, data.split, num_samples=data.num_samples,
                            **options)
    return method.recipe.pair(dataset, cfg.train.seed) if method.recipe else dataset


def build_monitor(cfg: PretrainConfig):
    """``eval_fn`` for the engine: kNN accuracy on ``cfg.monitor``'s dataset, or ``None``."""
    from vidssl.data import build_dataset
    from vidssl.evaluation.monitor import knn_monitor

    monitor, data = cfg.monitor, cfg.data
    if not monitor.dataset:
        return None
    options = {"num_frames": data.num_frames, "frame_stride": data.frame_stride,
               "target_fps": data.target_fps, "size": data.size, "backend": data.backend,
               "mode": "test", **monitor.options}
    train = build_dataset(monitor.dataset, monitor.root, monitor.train_split, **options)
    test = build_dataset(monitor.dataset, monitor.root, monitor.test_split, **options)
    return knn_monitor(train, test, k=monitor.k)


def run_pretrain(cfg: PretrainConfig, out: str | Path, resume: str | None = None,
                 progress: bool = True) -> FitResult:
    """Pretrain and write ``out/config.yaml``, ``out/metrics.csv`` and ``out/checkpoints/``.

    Checkpoints carry ``model_spec`` and ``backbone_prefix`` so that evaluation rebuilds the
    exact backbone from the file alone. With ``monitor.dataset`` set, kNN accuracy on it is
    logged after every epoch (``knn_acc`` in metrics.csv)."""
    out = Path(out)
    seed_everything(cfg.train.seed)  # initial weights (and prototypes) follow the seed
    method = build_method(cfg)
    dataset = build_pretrain_dataset(cfg)
    save_config(cfg, out / "config.yaml")
    extra = {"backbone_prefix": "backbone.",
             "model_spec": {"name": cfg.model.name, "kwargs": to_dict(cfg.model.kwargs)},
             "method": cfg.method.name}
    return fit(method, dataset, cfg.settings(resume=resume, progress=progress), out,
               eval_fn=build_monitor(cfg), config=cfg, checkpoint_extra=extra)
