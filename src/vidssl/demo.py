"""The main job: the generalization study end to end on the built-in synthetic world.

    world (mini) -> pretrain each method (same engine and configs as a real run)
                 -> `mini` SEVERE suite for every backbone, plus random-init "scratch" rows
                 -> report.md, results.csv, results.json, plots

Every stage is resumable: a finished pretraining or experiment is reused, an interrupted one
continues from its last checkpoint, so a second ``vidssl demo`` picks up where the first stopped.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from vidssl.config import load_config, to_dict
from vidssl.engine.logging import console

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class PretrainRow:
    """A report row that comes from self-supervised pretraining with a world config."""

    label: str
    config: str  # file under configs/pretrain/


METHOD_ROWS = (
    PretrainRow("Tubelet-Contrast", "tubelet_contrast_world.yaml"),
    PretrainRow("Video-MoCo", "video_moco_world.yaml"),
    PretrainRow("VideoMAE", "videomae_world.yaml"),
    PretrainRow("SIGMA-MLP", "sigma_mlp_world.yaml"),
)

# Pretraining epochs per world preset (None: the config's own), sized so that the default
# `mini` demo fits in 10 minutes on 2 CPU cores; --quick is a smoke run of a few steps.
PRETRAIN_EPOCHS = {"mini": {"tubelet_contrast": 5, "video_moco": 5, "videomae": 6, "sigma": 6}}
QUICK_PRETRAIN_STEPS = 6
QUICK_PRESET = "tiny"
QUICK_SUITE_OVERRIDES = ("recipes.linear.linear_epochs=5", "recipes.finetune.epochs=1")


def config_path(name: str) -> Path:
    """A file of the repository's ``configs/`` folder (or a path as given)."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / name
    if not candidate.is_file():
        raise FileNotFoundError(f"config {name} not found (looked in {CONFIG_DIR})")
    return candidate


def _pretrain(row: PretrainRow, world: Path, out: Path, *, quick: bool, device: str,
              seed: int, preset: str) -> Path:
    from vidssl.pretrain import run_pretrain

    run_dir = out / "pretrain" / row.config.removesuffix("_world.yaml")
    overrides = [f"data.root={world / 'pretrain'}", f"train.device={device}", f"train.seed={seed}"]
    if quick:
        overrides.append(f"train.max_steps={QUICK_PRETRAIN_STEPS}")
    cfg = load_config(config_path(f"pretrain/{row.config}"), overrides)
    epochs = PRETRAIN_EPOCHS.get(preset, {}).get(cfg.method.name)
    if epochs is not None:
        cfg = load_config(config_path(f"pretrain/{row.config}"), [*overrides, f"train.epochs={epochs}"])
    done = run_dir / "done.json"
    if done.is_file() and json.loads(done.read_text())["config"] == to_dict(cfg):
        console.print(f"[bold]{row.label}[/]: pretrained before, reused ({run_dir})")
        return run_dir / "checkpoints" / "last.pt"
    console.print(f"[bold]pretraining {row.label}[/] ({cfg.model.name}, {cfg.method.name}) -> {run_dir}")
    result = run_pretrain(cfg, run_dir, resume="auto")
    done.write_text(json.dumps({"config": to_dict(cfg), "steps": result.step,
                                "seconds": round(result.seconds, 1)}, indent=1))
    return result.last_checkpoint


def _scratch_backbones() -> list[tuple[str, str, dict]]:
    """One random-init row per distinct backbone the methods use."""
    rows, seen = [], set()
    for row in METHOD_ROWS:
        cfg = load_config(config_path(f"pretrain/{row.config}"))
        key = (cfg.model.name, json.dumps(cfg.model.kwargs, sort_keys=True))
        if key not in seen:
            seen.add(key)
            family = "R(2+1)D" if cfg.model.name.startswith("r") else "ViT"
            rows.append((f"Scratch ({family})", cfg.model.name, dict(cfg.model.kwargs)))
    return rows


def run_demo(out: str | Path = "runs/demo", preset: str = "mini", quick: bool = False,
             device: str = "cpu", seed: int = 0, data_dir: str | Path | None = None) -> dict:
    """Run the whole study; returns the paths of the report files."""
    from vidssl.data.world import generate_world
    from vidssl.evaluation import compare_runs, run_suite

    started = time.perf_counter()
    out = Path(out)
    world = Path(data_dir) if data_dir else out / "world"
    if quick:
        preset = QUICK_PRESET
    console.rule(f"[bold]vidssl demo[/]: preset {preset}{' (quick)' if quick else ''} -> {out}")
    generate_world(world, preset=preset, seed=seed)
    suite_overrides = list(QUICK_SUITE_OVERRIDES) if quick else []
    eval_dirs = []
    for row in METHOD_ROWS:
        checkpoint = _pretrain(row, world, out, quick=quick, device=device, seed=seed,
                               preset=preset)
        eval_dir = out / "evaluate" / row.config.removesuffix("_world.yaml")
        run_suite("mini", checkpoint=checkpoint, data_root=world, out=eval_dir, device=device,
                  seed=seed, resume="auto", overrides=suite_overrides, name=row.label)
        eval_dirs.append(eval_dir)
    for label, model, kwargs in _scratch_backbones():
        eval_dir = out / "evaluate" / f"scratch_{model}"
        run_suite("mini", checkpoint=None, model=model, model_kwargs=kwargs, data_root=world,
                  out=eval_dir, device=device, seed=seed, resume="auto",
                  overrides=suite_overrides, name=label)
        eval_dirs.append(eval_dir)
    files = compare_runs(eval_dirs, out, title=f"vidssl demo ({preset}{', quick' if quick else ''})")
    minutes = (time.perf_counter() - started) / 60
    console.print(main_table(out / "report.md"))
    console.rule(f"demo finished in {minutes:.1f} min")
    console.print(f"report: {out / 'report.md'} (tables per factor, plots in {out / 'plots'}); "
                  f"numbers: {out / 'results.csv'}, {out / 'results.json'}")
    return files


def main_table(report: Path) -> str:
    """The report's SEVERE-benchmark section (the paper's main table)."""
    text = report.read_text()
    start = text.find("## SEVERE benchmark")
    if start < 0:
        return text
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None].strip()
