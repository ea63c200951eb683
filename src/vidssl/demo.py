"""The main job: the generalization study end to end on the built-in synthetic world.

    world (mini) -> pretrain each method (same engine and configs as a real run), and the
                    same R(2+1)D with the UCF-like labels (the supervised ceiling)
                 -> `mini` SEVERE suite for every backbone, plus random-init "scratch" rows
                    and a hand-crafted motion-energy row (a positive control), every
                    experiment with several seeds; the ViT backbones (and scratch ViT) also
                    fine-tuned with the VideoMAE / SIGMA protocol (`mini_vit`)
                 -> report.md (incl. pretrained vs scratch and Tubelet-Contrast vs MoCo, each
                    difference set against the seed spread), results.csv, results.json, plots

Every stage is resumable: a finished pretraining or experiment is reused, an interrupted one
continues from its last checkpoint, so a second ``vidssl demo`` picks up where the first stopped.
The stages are independent jobs (a row's suites wait only for its own pretraining), run by
``workers`` processes side by side (``vidssl.demo_jobs``): on a CPU, one single-threaded
process per core uses the cores better than one process with intra-op threads on 32-px clips.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from vidssl.config import to_dict
from vidssl.engine.logging import console
from vidssl.pretrain import load_pretrain_config, run_pretrain


@dataclass(frozen=True)
class PretrainRow:
    """A report row that comes from self-supervised pretraining with a world config."""

    label: str
    config: str  # a bundled pretraining config (vidssl/configs/pretrain/)
    world_part: str = "pretrain"  # the world folder it trains on (data.root)


METHOD_ROWS = (
    PretrainRow("Tubelet-Contrast", "tubelet_contrast_world.yaml"),
    PretrainRow("Video-MoCo", "video_moco_world.yaml"),
    PretrainRow("VideoMAE", "videomae_world.yaml"),
    PretrainRow("SIGMA-MLP", "sigma_mlp_world.yaml"),
)
# The ladder's ceiling: the methods' R(2+1)D trained with the labels of the UCF-like training
# split with the world's fine-tuning recipe: the scratch row trained with labels.
SUPERVISED_ROW = PretrainRow("Supervised (UCF-like labels)", "supervised_world.yaml", "ucf_like")

# Pretraining budget per world preset: optimizer steps per method (the schedule ends there;
# None: the config's own epochs), sized so that `make demo` on the `mini` world with 3
# evaluation seeds fits in 15 minutes on 2 CPU cores, venv included: a contrastive step
# (2 x 16 clips through the R(2+1)D and its key encoder) costs ~1.2-2.2 CPU-s, a masked step
# (10% of the tokens) ~0.5. The supervised row runs its recipe's 12 epochs (180 steps on
# the 240 UCF-like training videos). At these budgets no method learns features that beat
# scratch (docs/demo.md); --pretrain-epochs N trains every method N epochs instead; --quick:
# a few steps.
PRETRAIN_STEPS = {"mini": {"tubelet_contrast": 60, "video_moco": 60, "videomae": 150,
                           "sigma": 150, "supervised": None}}
EVAL_SUITE = "mini_demo"  # `mini` without its detection parts
DETECTION_SUITE = "mini"  # with --detection: AVA-like and UCF101-24-like too (~46 CPU-s a row)
# A positive control: a hand-crafted, parameter-free motion descriptor evaluated like the
# backbones, to show what the suite reports when features do carry the classes' motion.
REFERENCE_LABEL, REFERENCE_MODEL = "Motion energy (hand-crafted)", "motion_energy"
DEFAULT_SEEDS = 3  # seeds per experiment: the spread a difference must exceed
QUICK_SEEDS = 2
QUICK_PRETRAIN_STEPS = 6
QUICK_PRESET = "tiny"
QUICK_SUITE_OVERRIDES = ("recipe.linear_epochs=5", "recipe.epochs=1")
# The ViT rows fine-tuned with the VideoMAE / SIGMA protocol (the bundled `mini_vit` suite):
# a ViT-tiny forward and backward over all tokens is the demo's most expensive step on a CPU.
VIT_SUITE, VIT_SUFFIX = "mini_vit", " (ViT fine-tuning)"
QUICK_VIT_OVERRIDES = ("recipe.epochs=1", "recipe.warmup_epochs=0")
# The world's bias profile (single-frame and shuffled-frame probes per split), the bundled
# `mini_bias` suite, read by an instrument that sees both a frame's content and the motion:
# frozen ImageNet features of 4 frames (upsampled to 64 px) plus motion energy. A random-init
# network reads neither the UCF-like context nor most motion (docs/demo.md).
BIAS_SUITE = "mini_bias"
BIAS_MODEL, BIAS_MODEL_KWARGS = "appearance_motion", {"image_size": 64}
BIAS_SEEDS = 1  # an instrument, not a comparison: 3 seeds cost ~10% of the demo's CPU time


def _pretrain_runs(row: PretrainRow, world: Path, out: Path, *, runs: int, seed: int,
                   **options) -> list[Path]:
    """``runs`` pretraining runs of one method, run ``k`` with training seed ``seed + k`` in
    ``pretrain/<method>`` (k = 0) or ``pretrain/<method>_run<k>``: the last checkpoints."""
    name = row.config.removesuffix("_world.yaml")
    return [_pretrain(row, world, out / "pretrain" / (f"{name}_run{k}" if k else name),
                      seed=seed + k, **options) for k in range(runs)]


def _pretrain(row: PretrainRow, world: Path, run_dir: Path, *, quick: bool, device: str,
              seed: int, preset: str, epochs: int | None, progress: bool = True) -> Path:
    overrides = [f"data.root={world / row.world_part}", f"train.device={device}",
                 f"train.seed={seed}"]
    cfg = load_pretrain_config(row.config, overrides)
    if epochs is not None:
        _set_epochs(cfg, epochs)
    steps = QUICK_PRETRAIN_STEPS if quick else (
        None if epochs is not None else PRETRAIN_STEPS.get(preset, {}).get(cfg.method.name))
    if steps is not None:
        cfg.train = replace(cfg.train, max_steps=steps)
    done = run_dir / "done.json"
    if done.is_file() and json.loads(done.read_text())["config"] == to_dict(cfg):
        console.print(f"[bold]{row.label}[/]: pretrained before, reused ({run_dir})")
        return run_dir / "checkpoints" / "last.pt"
    console.print(f"[bold]pretraining {row.label}[/] ({cfg.model.name}, {cfg.method.name}) -> {run_dir}")
    result = run_pretrain(cfg, run_dir, resume="auto", progress=progress)
    done.write_text(json.dumps({"config": to_dict(cfg), "steps": result.step,
                                "seconds": round(result.seconds, 1)}, indent=1))
    return result.last_checkpoint


def _set_epochs(cfg, epochs: int) -> None:
    """Train ``cfg`` for ``epochs``; multistep milestones keep their fraction of training."""
    fraction = epochs / cfg.train.epochs
    cfg.schedule = replace(cfg.schedule,
                           milestones=[m * fraction for m in cfg.schedule.milestones])
    cfg.train = replace(cfg.train, epochs=epochs)


def _scratch_backbones() -> tuple[list[tuple[str, str, dict]], dict[str, str]]:
    """One random-init row (label, model, kwargs) per distinct backbone the pretrained rows
    use, and for each pretrained row (supervised included) the label of its scratch row."""
    rows, scratch_of = {}, {}
    for row in (SUPERVISED_ROW, *METHOD_ROWS):
        cfg = load_pretrain_config(row.config)
        key = (cfg.model.name, json.dumps(cfg.model.kwargs, sort_keys=True))
        if key not in rows:
            family = "R(2+1)D" if cfg.model.name.startswith("r") else "ViT"
            rows[key] = (f"Scratch ({family})", cfg.model.name, dict(cfg.model.kwargs))
        scratch_of[row.label] = rows[key][0]
    return list(rows.values()), scratch_of


def comparisons(scratch_of: dict[str, str]) -> list:
    """What the study asks of its numbers: does each pretrained method beat the scratch row of
    its backbone in-domain and with few labels, and does Tubelet-Contrast beat video MoCo on
    domain shift and fine-grained actions (its paper's claim)? The first rows are controls:
    the hand-crafted motion descriptor against scratch, and the supervised ceiling against
    scratch in-domain. ``scratch_of``: label -> label, supervised row included."""
    from vidssl.evaluation.report import Comparison

    in_domain = ("ucf_like", "ucf_like_40", "gym_like_64")
    methods = dict(scratch_of)
    ceiling_scratch = methods.pop(SUPERVISED_ROW.label)
    rows = [Comparison("control: hand-crafted motion beats scratch", REFERENCE_LABEL, scratch,
                       in_domain) for scratch in dict.fromkeys(scratch_of.values())]
    rows.append(Comparison("supervised ceiling beats scratch", SUPERVISED_ROW.label,
                           ceiling_scratch, in_domain))
    rows += [Comparison("pretraining beats scratch", label, scratch, in_domain)
             for label, scratch in methods.items()]
    rows += [Comparison("fine-tuned pretraining beats fine-tuned scratch", label + VIT_SUFFIX,
                        scratch + VIT_SUFFIX, ("ucf_like_40_ft",))
             for label, scratch in methods.items() if scratch == "Scratch (ViT)"]
    rows.append(Comparison("Tubelet-Contrast beats MoCo", "Tubelet-Contrast", "Video-MoCo",
                           ("gym_like", "ssv2_like", "vault_like", "floor_like", "fx_s1_like",
                            "ub_s1_like")))
    return rows


def _suite(suite: str, eval_dir: Path, label: str, *, world: Path, device: str, seed: int,
           seeds: int, quick: bool, progress: bool, **backbone) -> Path:
    """One report row's suite run (a demo job); returns its folder."""
    from vidssl.evaluation import run_suite

    overrides = QUICK_VIT_OVERRIDES if suite == VIT_SUITE else QUICK_SUITE_OVERRIDES
    run_suite(suite, data_root=world, out=eval_dir, device=device, seed=seed, seeds=seeds,
              resume="auto", overrides=list(overrides) if quick else [], name=label,
              progress=progress, **backbone)
    return eval_dir


def run_demo(out: str | Path = "runs/demo", preset: str = "mini", quick: bool = False,
             device: str = "cpu", seed: int = 0, data_dir: str | Path | None = None,
             seeds: int | None = None, pretrain_epochs: int | None = None,
             p_context: float | None = None, workers: int | None = None,
             detection: bool = False, pretrain_runs: int = 1) -> dict:
    """Run the whole study; returns the paths of the report files. Every experiment runs with
    ``seeds`` seeds from ``seed`` (default 3, 2 with ``quick``); ``pretrain_epochs`` overrides
    every method's pretraining epochs; ``p_context`` the world's context prior (the motion-only
    ablation: 0); ``workers`` processes run the stages side by side (default
    ``demo_jobs.default_workers``: one per CPU core, at most 2; 1 on CUDA); ``detection``
    evaluates every row on the `mini` suite's AVA-like and UCF101-24-like parts too;
    ``pretrain_runs`` (a divisor of ``seeds``) pretrains every method that many times, seed
    ``i`` evaluating run ``i mod pretrain_runs``, so that a pretrained row's spread includes
    its pretraining's randomness as a scratch row's includes its initialization's."""
    from vidssl.data.world import generate_world
    from vidssl.data.world.presets import resolve_preset
    from vidssl.demo_jobs import Job, default_workers, run_jobs
    from vidssl.evaluation import compare_runs
    from vidssl.evaluation.bias import bias_table
    from vidssl.evaluation.vit_protocol import is_vit

    started = time.perf_counter()
    out = Path(out)
    world = Path(data_dir) if data_dir else out / "world"
    if quick:
        preset = QUICK_PRESET
    if seeds is None:
        seeds = QUICK_SEEDS if quick else DEFAULT_SEEDS
    workers = default_workers(device) if workers is None else workers
    if pretrain_runs < 1 or seeds % pretrain_runs:
        raise ValueError(f"pretrain_runs={pretrain_runs}: must be >= 1 and divide the "
                         f"{seeds} seeds (seed i evaluates run i mod pretrain_runs)")
    console.rule(f"[bold]vidssl demo[/]: preset {preset}{' (quick)' if quick else ''} -> {out} "
                 f"({workers} worker{'s' if workers > 1 else ''})")
    generate_world(world, preset=resolve_preset(preset, p_context), seed=seed)
    common = {"world": world, "device": device, "seed": seed, "seeds": seeds, "quick": quick,
              "progress": workers == 1}
    rows: list[tuple[str, str, Path]] = []  # (suite, label, folder), in report order

    def plan(folder: str, label: str, vit: bool) -> list[tuple[str, str, Path]]:
        """The suites of one report row (the ViT rows also fine-tuned), recorded in order."""
        entries = [(DETECTION_SUITE if detection else EVAL_SUITE, label, out / "evaluate" / folder)]
        if vit:
            entries.append((VIT_SUITE, label + VIT_SUFFIX,
                            out / "evaluate" / f"{folder}_vit_finetune"))
        rows.extend(entries)
        return entries

    def suites(entries: list[tuple[str, str, Path]], **backbone) -> list[Job]:
        return [Job(f"{label}: {suite}", _suite, {"suite": suite, "eval_dir": folder,
                                                  "label": label, **common, **backbone})
                for suite, label, folder in entries]

    def pretrained(row: PretrainRow) -> Job:
        entries = plan(row.config.removesuffix("_world.yaml"), row.label,
                       is_vit(load_pretrain_config(row.config).model.name))
        return Job(f"pretrain {row.label}", _pretrain_runs,
                   {"row": row, "world": world, "out": out, "runs": pretrain_runs,
                    "quick": quick, "device": device, "seed": seed, "preset": preset,
                    "epochs": pretrain_epochs, "progress": common["progress"]},
                   then=lambda checkpoints: suites(entries, checkpoint=checkpoints))

    jobs = [pretrained(row) for row in (SUPERVISED_ROW, *METHOD_ROWS)]
    scratch, scratch_of = _scratch_backbones()
    for label, model, kwargs in scratch:
        jobs += suites(plan(f"scratch_{model}", label, is_vit(model)), checkpoint=None,
                       model=model, model_kwargs=kwargs)
    jobs += suites(plan(REFERENCE_MODEL, REFERENCE_LABEL, False), checkpoint=None,
                   model=REFERENCE_MODEL)
    bias_dir = out / "evaluate" / "bias_profile"
    jobs.append(Job("bias profile", _suite, {
        "suite": BIAS_SUITE, "eval_dir": bias_dir,
        "label": "bias probe (frozen ImageNet appearance + motion energy)", **common,
        "seeds": min(seeds, BIAS_SEEDS), "checkpoint": None, "model": BIAS_MODEL,
        "model_kwargs": BIAS_MODEL_KWARGS}))
    run_jobs(jobs, workers)
    eval_dirs = [folder for _, _, folder in rows]
    files = compare_runs(eval_dirs, out, title=f"vidssl demo ({preset}{', quick' if quick else ''})",
                         comparisons=comparisons(scratch_of))
    with open(out / "report.md", "a") as report:
        report.write("\n" + bias_table(bias_dir) + "\n")
    minutes = (time.perf_counter() - started) / 60
    console.print(main_table(out / "report.md"))
    console.print(section(out / "report.md", "## Bias profile"))
    console.print(section(out / "report.md", "## Against the baselines"))
    console.rule(f"demo finished in {minutes:.1f} min")
    console.print(f"report: {out / 'report.md'} (tables per factor, plots in {out / 'plots'}); "
                  f"numbers: {out / 'results.csv'}, {out / 'results.json'}")
    return files


def section(report: Path, heading: str) -> str:
    """One ``## heading`` section of a markdown report ("" when absent)."""
    text = report.read_text()
    start = text.find(heading)
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None].strip()


def main_table(report: Path) -> str:
    """The report's SEVERE-benchmark section (the paper's main table)."""
    return section(report, "## SEVERE benchmark") or report.read_text()
