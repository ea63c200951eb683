"""Self-supervised pretraining: config -> backbone + method + dataset -> ``engine.fit``."""
from __future__ import annotations

from pathlib import Path

from vidssl.config import PretrainConfig, save_config, to_dict
from vidssl.engine import FitResult, fit, seed_everything


def build_method(cfg: PretrainConfig):
    """The configured method wrapped around a freshly built backbone."""
    from vidssl.methods import METHODS
    from vidssl.models import build_backbone

    backbone = build_backbone(cfg.model.name, **cfg.model.kwargs)
    return METHODS[cfg.method.name](backbone, cfg.method.params)


def build_pretrain_dataset(cfg: PretrainConfig):
    from vidssl.data import build_dataset
    from vidssl.methods import METHODS

    data = cfg.data
    if not data.root:
        raise ValueError("data.root is not set: pass data.root=DIR (e.g. a world's pretrain/ folder)")
    options = {
        "num_frames": data.num_frames, "frame_stride": data.frame_stride,
        "target_fps": data.target_fps, "size": data.size, "backend": data.backend,
        "mode": "train", "seed": cfg.train.seed,
        **METHODS[cfg.method.name].dataset_options(cfg.method.params), **data.options,
    }
    return build_dataset(data.dataset, data.root, data.split, num_samples=data.num_samples, **options)


def build_monitor(cfg: PretrainConfig):
    """``eval_fn`` for the engine: kNN accuracy on ``cfg.monitor``'s dataset, or ``None``."""
    from vidssl.data import build_dataset
    from vidssl.methods.contrastive import knn_monitor

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
