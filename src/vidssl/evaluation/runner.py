"""``run_suite``: one backbone through every experiment of a suite, resumably, then the report.

Layout of ``out``::

    suite.yaml                             the resolved suite (every recipe spelled out)
    experiments/<name>/seed_<s>/result.json  written when that run finished (the done marker)
    experiments/<name>/seed_<s>/metrics.csv  fine-tuning log (engine); checkpoints while running
    results.json, results.csv, report.md, plots/

A finished (experiment, seed) is never rerun unless its configuration changed (the result
stores a fingerprint of experiment, recipe and backbone); ``resume="auto"`` also continues an
interrupted fine-tuning from its last epoch checkpoint.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections import OrderedDict
from pathlib import Path

import torch
import yaml
from torch import nn

from vidssl.config import to_dict
from vidssl.engine import distributed as D
from vidssl.engine.logging import console
from vidssl.evaluation.action_detection import run_detection
from vidssl.evaluation.finetune import finetune
from vidssl.evaluation.frozen import FeatureSplits, knn_classify, linear_probe
from vidssl.evaluation.inference import extract_features
from vidssl.evaluation.report import summarize, write_report
from vidssl.evaluation.splits import ExperimentSplits
from vidssl.evaluation.suite import (
    EVALUATION_PROTOCOLS,
    SCRATCH,
    VIT,
    Experiment,
    Recipe,
    Suite,
    load_suite,
)
from vidssl.evaluation.tasks import build_task
from vidssl.evaluation.vit_protocol import (
    is_vit,
    load_vit_state,
    vit_build_kwargs,
    vit_protocol_kind,
)


class BackboneSource:
    """Makes a fresh copy of the evaluated backbone for every experiment and seed.

    A checkpoint is read once and loaded strictly: with no ``model`` the network is rebuilt
    from the file (vidssl ``model_spec``, or inferred from the tensor shapes); with a backbone
    name it is built by name and the file mapped onto it by ``load_pretrained``. Without a
    checkpoint the named backbone is randomly initialized from each seed ("scratch"), unless it
    has nothing to learn (``motion_energy``; ``appearance_motion``, whose image encoder is
    frozen ImageNet weights): then its features are shared by all seeds. ViTs
    are rebuilt for each recipe's clip geometry (their position table is fixed sin-cos).
    An ``nn.Module`` passed as ``model`` is evaluated as it is (after loading ``checkpoint``).
    """

    def __init__(self, checkpoint: str | Path | None = None, format: str = "auto",
                 model: str | nn.Module | None = None, model_kwargs: dict | None = None):
        from vidssl.models.checkpoints import build_from_checkpoint, load_pretrained

        self.checkpoint = str(checkpoint) if checkpoint else None
        self.module: nn.Module | None = model if isinstance(model, nn.Module) else None
        self.load_report = ""
        self.format: str | None = None  # the checkpoint's format, as loaded
        if self.module is not None:
            if self.checkpoint:
                report = load_pretrained(self.module, self.checkpoint, format)
                self.load_report = str(report)
                self.format = _method_format(self.checkpoint, _format_name(report))
            self.spec = {"name": type(self.module).__name__, "kwargs": {}}
            self.state = self.module.state_dict()
            return
        if self.checkpoint and model is None:
            backbone, report = build_from_checkpoint(self.checkpoint, format)
            self.spec = dict(getattr(backbone, "model_spec", {"name": "?", "kwargs": {}}))
        elif model is not None:
            from vidssl.models import build_backbone

            backbone = build_backbone(model, **(model_kwargs or {}))
            self.spec = {"name": model, "kwargs": dict(model_kwargs or {})}
            report = load_pretrained(backbone, self.checkpoint, format) if self.checkpoint else None
        else:
            raise ValueError("give a checkpoint (--checkpoint FILE) or a backbone name "
                             "(--model NAME, random init)")
        self.spec["kwargs"] = {k: v for k, v in self.spec["kwargs"].items() if k != "num_classes"}
        self.load_report = str(report) if report is not None else ""
        self.format = (_method_format(self.checkpoint, _format_name(report))
                       if report is not None else None)
        learnable = any(p.requires_grad for p in backbone.parameters())
        self.state = backbone.state_dict() if self.checkpoint or not learnable else None

    @property
    def model_name(self) -> str:
        return self.spec["name"]

    def identity(self) -> dict:
        """What makes two sources produce the same backbones (for result fingerprints)."""
        ident: dict = {"spec": self.spec}
        if self.checkpoint:
            stat = os.stat(self.checkpoint)
            ident["checkpoint"] = [os.path.abspath(self.checkpoint), stat.st_size, stat.st_mtime_ns]
        return ident

    @property
    def initialization(self) -> str:
        """Where the weights come from: a checkpoint, a random init, the module as given,
        frozen weights the backbone builds itself (``appearance_motion``) or nowhere (a
        parameter-free backbone such as ``motion_energy``)."""
        if self.checkpoint:
            return "checkpoint"
        if self.state is None:
            return "random init"
        if self.module is not None:
            return "as given"
        return "fixed weights" if self.state else "no parameters"

    @property
    def variant(self) -> str | None:
        """Which per-method recipe changes of a suite apply (``Suite.resolved``): ``scratch``
        for a random init, else the checkpoint's format (``tclr``, ``avid_cma``...); every
        ViT gets ``vit``, the VideoMAE / SIGMA fine-tuning recipe (docs/vit_protocol.md)."""
        if is_vit(self.model_name):
            return VIT
        if self.initialization == "random init":
            return SCRATCH
        return self.format

    def default_name(self) -> str:
        """Report row name: from the checkpoint, ``scratch`` for a random init, else the
        backbone's name."""
        if self.initialization in ("checkpoint", "random init"):
            return method_name(self.checkpoint)
        return self.model_name

    def feature_key(self, seed: int) -> int | str | None:
        """What frozen features depend on besides the data: the seed for a random init, the
        checkpoint's file for loaded weights (one per seed when each seed has its own
        pretraining run), nothing for fixed weights."""
        return seed if self.state is None else self.checkpoint

    def make(self, seed: int, recipe: Recipe) -> nn.Module:
        torch.manual_seed(seed)
        if self.module is not None:  # a module given by the caller is evaluated as it is
            return copy.deepcopy(self.module)
        from vidssl.models import build_backbone

        kwargs = dict(self.spec["kwargs"])
        vit = is_vit(self.model_name)
        if vit:
            kwargs.update(vit_build_kwargs(recipe))
        model = build_backbone(self.model_name, **kwargs)
        if self.state is not None and vit:
            load_vit_state(model, self.state)
        elif self.state is not None:
            own = model.state_dict()
            heads = tuple(model.head_keys()) if hasattr(model, "head_keys") else ()
            model.load_state_dict({k: v for k, v in self.state.items()
                                   if k in own or not k.startswith(heads)})
        return model


def _format_name(report) -> str:
    """The format's name in a ``LoadReport`` (``"tclr (TCLR)"`` -> ``"tclr"``)."""
    return report.format.split(" (")[0]


def _method_format(path: str, loaded: str) -> str:
    """The checkpoint format that names the method: a published file's own, or for a file
    converted by ``vidssl weights convert`` the format of its source."""
    from vidssl.models.checkpoints import VIDSSL_FORMAT, read_checkpoint

    if loaded != VIDSSL_FORMAT:
        return loaded
    source = read_checkpoint(path).get("source") or {}
    return str(source.get("format") or loaded)


def method_name(checkpoint: str | None) -> str:
    """A readable row name: the run folder of ``.../checkpoints/last.pt``, else the file stem;
    ``scratch`` without a checkpoint."""
    if not checkpoint:
        return "scratch"
    path = Path(checkpoint)
    if path.parent.name == "checkpoints" and (path.stem == "last" or path.stem.startswith("step_")):
        return path.parent.parent.name
    return path.stem


def seed_sources(checkpoint, format: str, model, model_kwargs: dict | None,
                 seeds: list[int]) -> dict[int, BackboneSource]:
    """The backbone each seed evaluates. ``checkpoint`` may list several files, one per
    pretraining run of the same method: seed number ``i`` (0-based in ``seeds``) then reads file
    ``i mod K``, so the seeds' spread includes the pretraining's randomness; ``len(seeds)``
    must be a multiple of ``K``, and every file must give the same backbone and variant."""
    files = list(checkpoint) if isinstance(checkpoint, (list, tuple)) else [checkpoint]
    if not files:
        raise ValueError("checkpoint: an empty list (give a file, several, or None)")
    if len(seeds) % len(files):
        raise ValueError(f"{len(files)} checkpoints for {len(seeds)} seeds: the number of seeds "
                         f"must be a multiple of the number of checkpoints (seed i reads "
                         f"checkpoint i mod {len(files)})")
    sources = [BackboneSource(file, format, model, model_kwargs) for file in files]
    first = sources[0]
    for other in sources[1:]:
        if (other.spec, other.variant) != (first.spec, first.variant):
            raise ValueError(f"{other.checkpoint}: a different backbone or format "
                             f"({other.spec['name']}, {other.variant}) than {first.checkpoint} "
                             f"({first.spec['name']}, {first.variant}); the checkpoints of one "
                             f"row must be runs of one method")
    return {s: sources[i % len(sources)] for i, s in enumerate(seeds)}


def _fingerprint(experiment: Experiment, recipe: Recipe, source: BackboneSource,
                 max_steps: int | None) -> str:
    payload = json.dumps({"experiment": dataclasses.asdict(experiment),
                          "recipe": dataclasses.asdict(recipe), "backbone": source.identity(),
                          "max_steps": max_steps}, sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class FeatureCache:
    """Frozen features by (dataset, split, clip settings, task, backbone seed), so experiments
    sharing a dataset (domain, sample sizes, seeds of a pretrained backbone) extract once.
    Least recently used entries go when the tensors exceed ``max_bytes``."""

    def __init__(self, max_bytes: int = 2 * 1024**3):
        self.max_bytes, self.items = max_bytes, OrderedDict()

    @staticmethod
    def _size(value) -> int:
        return sum(v.numel() * v.element_size() for v in value if isinstance(v, torch.Tensor))

    def get(self, key, compute):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = compute()
        self.items[key] = value
        while len(self.items) > 1 and sum(map(self._size, self.items.values())) > self.max_bytes:
            self.items.popitem(last=False)
        return value


def run_experiment(experiment: Experiment, recipe: Recipe, source: BackboneSource, *,
                   data_root: str | Path, run_dir: str | Path, seed: int, device: str = "cpu",
                   max_steps: int | None = None, resume: str | None = None,
                   progress: bool = True, keep_checkpoints: bool = False,
                   cache: FeatureCache | None = None) -> dict:
    """One experiment with one seed; returns the result record (not yet written)."""
    task = build_task(experiment.task)
    metric = experiment.metric or task.primary_metric
    if metric not in task.metric_names:
        raise ValueError(f"experiment {experiment.name}: metric {metric!r} is not one of the "
                         f"{task.name} metrics {task.metric_names}")
    started = time.perf_counter()
    detection_task = task.name == "detection"  # boxes travel with the clips: its own protocol
    if detection_task and recipe.frame_order != "full":
        raise ValueError(f"experiment {experiment.name}: frame_order {recipe.frame_order!r} "
                         "is for clip datasets; detection keyframe clips keep their order")
    splits = None if detection_task else ExperimentSplits(experiment, recipe, task, data_root,
                                                          seed)
    backbone = source.make(seed, recipe)
    anchor_counter = task.name == "counting" and recipe.counting_head == "anchor"
    if detection_task:
        key = ("detection", experiment.name, _fingerprint(experiment, recipe, source, None),
               source.feature_key(seed))
        cache = cache or FeatureCache()
        outcome, sizes = run_detection(experiment, recipe, task, backbone, data_root=data_root,
                                       run_dir=run_dir, seed=seed, device=device,
                                       max_steps=max_steps, resume=resume, progress=progress,
                                       keep_checkpoints=keep_checkpoints,
                                       memo=lambda role, compute: cache.get(key + (role,),
                                                                            compute))
        selection = "last"
    elif recipe.protocol == "finetune" and anchor_counter:
        from vidssl.evaluation.counting_protocol import counting_sets, finetune_counter

        train, select, test = counting_sets(splits)
        outcome = finetune_counter(backbone, train, select, test, recipe, run_dir, seed=seed,
                                   device=device, max_steps=max_steps, resume=resume,
                                   progress=progress, keep_checkpoints=keep_checkpoints)
        selection = splits.select_role or "last"
        sizes = {"train": len(splits.train_index), "select": len(select.items) if select else 0,
                 "test": len(test)}
    elif recipe.protocol == "finetune":
        train, select, test = splits.finetune_sets()
        outcome = finetune(backbone, task, train, select, test, recipe, run_dir, metric=metric,
                           seed=seed, device=device, max_steps=max_steps, resume=resume,
                           progress=progress, keep_checkpoints=keep_checkpoints)
        selection = splits.select_role or "last"
        sizes = {"train": len(splits.train_index), "select": len(select) if select else 0,
                 "test": len(test)}
    else:
        features, bad = _frozen_features(splits, backbone, source, task, recipe, seed, device,
                                         cache or FeatureCache(), progress)
        reference = task.prepare(splits.reference, train=False, seed=seed)  # num_classes
        # every rank holds all features (gathered); the probe is fitted once, on rank 0
        if recipe.protocol == "linear":
            outcome = D.run_on_main(linear_probe, task, features, reference, recipe,
                                    metric=metric, seed=seed, device=device)
            selection = splits.select_role or "last"
        else:
            outcome = D.run_on_main(knn_classify, task, features, reference, recipe)
            selection = "none"
        outcome["bad_samples"] = bad
        sizes = {"train": len(features.train), "test": len(features.test),
                 "select": 0 if features.select is None else len(features.select)}
    return {"status": "done", "experiment": experiment.name, "seed": seed,
            "metrics": outcome["metrics"], "metric": metric, "selection": selection,
            "selected": outcome["selected"], "selection_score": outcome["selection_score"],
            "videos": sizes, "bad_samples": outcome.get("bad_samples", 0),
            "classes": splits.trained_classes() if splits else None,
            **({"detection": outcome["detection"]} if "detection" in outcome else {}),
            "seconds": round(time.perf_counter() - started, 2)}


def _frozen_features(splits: ExperimentSplits, backbone: nn.Module, source: BackboneSource, task,
                     recipe: Recipe, seed: int, device: str, cache: FeatureCache, progress: bool
                     ) -> tuple[FeatureSplits, int]:
    extracted, bad = {}, 0
    for role, (key, dataset, keep, labels) in splits.feature_sources().items():
        def compute(dataset=dataset, role=role):
            return extract_features(backbone, dataset, task, clips_per_batch=recipe.batch_size,
                                    device=device, num_workers=recipe.num_workers,
                                    label=f"{splits.experiment.name}: {role} features",
                                    progress=progress)
        feats, targets, role_bad = cache.get(key + (source.feature_key(seed),), compute)
        if keep is not None:  # a label range (or label groups) of the cached full split
            feats, targets = feats[keep], torch.as_tensor(labels, dtype=targets.dtype)
        extracted[role] = (feats, targets)
        bad += role_bad
    train_feats, train_targets = extracted["train"]
    test_feats, test_targets = extracted["test"]
    index = torch.as_tensor(splits.train_index)
    features = FeatureSplits(train=train_feats[index], train_targets=train_targets[index],
                             test=test_feats, test_targets=test_targets)
    if splits.select_role == "val":
        select = torch.as_tensor(splits.select_index)
        features.select, features.select_targets = train_feats[select], train_targets[select]
    elif splits.select_role == "test":
        features.select, features.select_targets = test_feats, test_targets
    return features, bad


def _aggregate(experiment: Experiment, recipe: Recipe, records: list[dict]) -> dict:
    task = build_task(experiment.task)
    block = {"label": experiment.label, "factor": experiment.factor, "task": experiment.task,
             "protocol": recipe.protocol, "dataset": experiment.dataset,
             "num_samples": experiment.num_samples,
             "metric": experiment.metric or task.primary_metric,
             "higher_is_better": task.higher_is_better}
    done = [r for r in records if r.get("status") == "done"]
    if len(done) < len(records):
        failed = next(r for r in records if r.get("status") != "done")
        return {**block, "status": "failed", "selection": recipe.selection,
                "error": failed.get("error", "")}
    metrics = {m: summarize([r["metrics"][m] for r in done]) for m in done[0]["metrics"]}
    return {**block, "status": "done", "selection": done[0]["selection"], "metrics": metrics,
            "seconds": round(sum(r["seconds"] for r in done), 1),
            "videos": done[0]["videos"], "classes": done[0].get("classes"),
            "selected": [r["selected"] for r in done],
            "bad_samples": sum(r.get("bad_samples", 0) for r in done)}


def run_suite(suite: str | Path | Suite,
              checkpoint: str | Path | list[str | Path] | None = None, format: str = "auto",
              model: str | nn.Module | None = None, *, data_root: str | Path = ".",
              out: str | Path = "runs/evaluate", seeds: int = 1, device: str = "cpu",
              seed: int = 0, max_steps: int | None = None, resume: str | None = None,
              overrides: list[str] | tuple[str, ...] = (), progress: bool = True,
              name: str | None = None, model_kwargs: dict | None = None,
              keep_checkpoints: bool = False, fail_fast: bool = False,
              protocol: str | None = None) -> dict:
    """Evaluate one backbone on every experiment of ``suite`` with seeds ``seed .. seed+seeds-1``
    and write the report into ``out``. Returns the method block of ``results.json``.

    ``protocol``: ``paper`` or ``validation`` (``EVALUATION_PROTOCOLS``; default: the suite's
    own). The suite's recipes are resolved for this backbone's variant (``scratch``, or the
    checkpoint's format): SEVERE's per-method recipe changes.

    ``checkpoint=None`` with a ``model`` name evaluates a randomly initialized backbone; a
    list of checkpoints (several pretraining runs of one method) gives each seed its own run
    (``seed_sources``).
    ``resume="auto"`` continues interrupted fine-tunings; finished experiments are always
    reused. A failing experiment is recorded (and reported) and the suite goes on, unless
    ``fail_fast``.

    Under torchrun every rank runs this: fine-tuning is DDP on the same global batch, feature
    extraction and test inference are sharded, probes are fitted on rank 0, and only rank 0
    writes files (the other ranks wait for it). One rank cannot tell the others that it failed,
    so there a failing experiment stops the run; rerunning with ``resume="auto"`` goes on.
    """
    device = str(D.init_distributed(device))
    main = D.is_main_process()
    say = console.print if main else _silent
    if resume not in (None, "auto"):
        raise ValueError(f"resume={resume!r}: suite evaluation resumes per experiment; use 'auto'")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    suite = suite if isinstance(suite, Suite) else load_suite(suite, overrides)
    seed_list = list(range(seed, seed + seeds))
    source_of = seed_sources(checkpoint, format, model, model_kwargs, seed_list)
    source = source_of[seed]
    checkpoints = list(dict.fromkeys(s.checkpoint for s in source_of.values()))
    if suite.layers:
        suite = suite.resolved(protocol, source.variant)
    elif protocol is not None:
        raise ValueError(f"protocol={protocol!r}: this Suite was built without recipe layers")
    name = name or source.default_name()
    out = Path(out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        _write_suite(suite, out / "suite.yaml")
    say(f"[bold]{name}[/]: suite {suite.name}, {len(suite.experiments)} experiments x "
        f"{seeds} seed(s) -> {out}"
        + (f", {len(checkpoints)} pretraining runs" if len(checkpoints) > 1 else "")
        + (f", {D.get_world_size()} processes" if D.get_world_size() > 1 else ""))
    if source.load_report:
        say(source.load_report)

    cache, experiments, runs, started = FeatureCache(), {}, {}, time.perf_counter()
    total = sum(not e.same_runs_as for e in suite.experiments) * seeds
    position = 0
    for experiment in suite.experiments:
        recipe = suite.recipe_for(experiment)
        if experiment.same_runs_as:  # another metric of an earlier experiment's runs
            experiments[experiment.name] = _aggregate(experiment, recipe,
                                                      runs[experiment.same_runs_as])
            continue
        records = []
        for s in seed_list:
            fingerprint = _fingerprint(experiment, recipe, source_of[s], max_steps)
            position += 1
            run_dir = out / "experiments" / experiment.name / f"seed_{s}"
            tag = f"[{position}/{total}] {experiment.name} ({recipe.protocol}, seed {s})"
            record = D.run_on_main(_prepare_run_dir, run_dir, fingerprint, resume)
            if record is not None:
                say(f"{tag}: done before, reused")
                records.append(record)
                continue
            say(f"{tag} ...")
            try:
                record = run_experiment(experiment, recipe, source_of[s], data_root=data_root,
                                        run_dir=run_dir, seed=s, device=device,
                                        max_steps=max_steps, resume=resume, progress=progress,
                                        keep_checkpoints=keep_checkpoints, cache=cache)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # recorded, reported, and the suite goes on
                if fail_fast or D.get_world_size() > 1:
                    raise
                record = {"status": "failed", "experiment": experiment.name, "seed": s,
                          "error": f"{type(error).__name__}: {error}"}
                _write_json(run_dir / "error.json", record)
                console.print(f"[red]{tag} failed: {record['error']}[/]")
                records.append(record)
                continue
            record["fingerprint"] = fingerprint
            if main:
                _write_json(run_dir / "result.json", record)
            records.append(record)
            shown = ", ".join(f"{k} {v:.3f}" if k == "mae" else f"{k} {v:.1f}"
                              for k, v in record["metrics"].items())
            say(f"{tag}: {shown} ({record['seconds']:.1f} s)")
        runs[experiment.name] = records
        experiments[experiment.name] = _aggregate(experiment, recipe, records)

    block = {"name": name, "suite": {"name": suite.name, "description": suite.description,
                                     "source": suite.source},
             "protocol": {"name": suite.protocol,
                          "description": EVALUATION_PROTOCOLS[suite.protocol]},
             "variant": {"name": source.variant,
                         "experiments": suite.variant_experiments(source.variant)},
             "vit_protocol": {e.name: vit_protocol_kind(suite.recipe_for(e))
                              for e in suite.experiments
                              if vit_protocol_kind(suite.recipe_for(e))},
             "benchmark": suite.benchmark,
             "checkpoint": checkpoints[0] if len(checkpoints) == 1 else checkpoints,
             "initialization": source.initialization,
             "model": source.model_name, "model_kwargs": source.spec["kwargs"],
             "load_report": source.load_report, "seeds": seed_list, "device": device,
             "processes": D.get_world_size(), "max_steps": max_steps, "experiments": experiments}
    if not main:  # rank 0 writes the report; the others wait for it and return its block
        return D.broadcast_object(None)
    files = write_report([block], out, title=f"SEVERE evaluation of {name}: suite {suite.name}")
    failed = [n for n, e in experiments.items() if e["status"] != "done"]
    console.print(f"suite {suite.name} finished in {time.perf_counter() - started:.0f} s: "
                  f"{len(experiments) - len(failed)} experiments done"
                  + (f", [red]{len(failed)} failed: {', '.join(failed)}[/]" if failed else "")
                  + f"; report {files['markdown']}")
    return D.broadcast_object(block)


def _silent(*args, **kwargs) -> None:
    """``console.print`` of the ranks other than 0."""


def _prepare_run_dir(run_dir: Path, fingerprint: str, resume: str | None) -> dict | None:
    """The finished record of ``run_dir`` if it is still valid; else make the folder ready for
    a (resumed or fresh) run and return ``None``. Rank 0 only."""
    record = _finished(run_dir, fingerprint)
    if record is not None:
        return record
    if run_dir.exists() and (resume is None or _stale(run_dir, fingerprint)):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "fingerprint").write_text(fingerprint)
    return None


def _finished(run_dir: Path, fingerprint: str) -> dict | None:
    path = run_dir / "result.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if record.get("fingerprint") != fingerprint:
        console.print(f"{run_dir}: configuration changed since this result; rerunning")
        return None
    return record


def _stale(run_dir: Path, fingerprint: str) -> bool:
    marker = run_dir / "fingerprint"
    return not marker.is_file() or marker.read_text().strip() != fingerprint


def _write_suite(suite: Suite, path: Path) -> None:
    data = {"name": suite.name, "description": suite.description, "benchmark": suite.benchmark,
            "protocol": suite.protocol, "variant": suite.variant,
            "experiments": [{**to_dict(e), "recipe_resolved": to_dict(suite.recipe_for(e))}
                            for e in suite.experiments]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
