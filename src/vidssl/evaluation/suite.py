"""Suites: sensitivity factor -> experiments, each with a recipe (protocol + hyperparameters).

A suite YAML (bundled: ``vidssl/configs/evaluate/{severe,full,mini}.yaml``)::

    name: severe
    description: ...
    benchmark: [ssv2, gym99, ...]      # experiments averaged into the SEVERE mean
    recipes:                           # named bases; fields of ``Recipe``
      finetune: {}
      finetune_gym_subset: {base: finetune, epochs: 18, milestones: [7, 12, 16]}
    factors:
      domain:
        - {name: ssv2, label: SS-v2, dataset: ssv2, root: ssv2, recipe: finetune,
           overrides: {epochs: 22}}

A suite may instead ``extends: OTHER`` and keep ``only: [names]`` of OTHER's experiments
(``severe.yaml`` is ``full.yaml`` restricted to the benchmark), so recipes exist once.

Command-line overrides are dotted keys: ``recipe.FIELD=V`` applies to every experiment,
``EXPERIMENT.FIELD=V`` to one experiment (a recipe field, or an experiment field such as
``root``), ``recipes.NAME.FIELD=V`` edits a named recipe. Precedence, lowest first: named
recipe, the experiment's ``overrides``, ``recipe.*``, ``EXPERIMENT.*``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from vidssl.bundled import resolve_config
from vidssl.config import ConfigError, apply_overrides, from_dict, read_yaml

FACTORS = ("domain", "samples", "actions", "tasks")
PROTOCOLS = ("finetune", "linear", "knn")
SELECTIONS = ("val", "test", "last")


@dataclass
class Recipe:
    """How one experiment trains and tests. Defaults: SEVERE's UCF101 fine-tuning recipe
    (32 frames at 16 fps, 112x112, Adam 1e-4, multistep x0.3 at epochs 6/10/14, 16 epochs,
    10 test clips), with model selection on a validation split carved from train."""

    protocol: str = "finetune"
    # clips (train: random clip, random resized crop of crop_scale x the area + flip + color
    # jitter; test: uniform clips x test_crops crops (center, or left/center/right), scores
    # merged over all views)
    num_frames: int = 32
    target_fps: float | None = 16.0
    frame_stride: int | None = None
    size: int = 112
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    train_clips_per_video: int = 1
    val_clips: int = 3
    test_clips: int = 10
    test_crops: int = 1
    # fine-tuning (engine settings)
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "multistep"
    milestones: list[float] = field(default_factory=lambda: [6.0, 10.0, 14.0])
    gamma: float = 0.3
    warmup_epochs: float = 0.0
    epochs: int = 16
    batch_size: int = 32
    dropout: float = 0.0
    amp: str = "none"
    grad_clip: float | None = None
    num_workers: int = 4
    # model selection: on a seeded split of train (val), on the test split as the original
    # SEVERE code did (test; optimistic), or none (last)
    selection: str = "val"
    val_fraction: float = 0.1
    eval_every: int = 1
    # frozen-feature protocols: features of feature_clips uniform clips per training video
    feature_clips: int = 10
    linear_epochs: int = 100
    linear_lr: float = 1e-3
    linear_batch_size: int = 256
    linear_weight_decays: list[float] = field(default_factory=lambda: [0.0, 1e-4, 1e-3, 1e-2])
    knn_k: int = 20
    knn_temperature: float = 0.07

    def __post_init__(self) -> None:
        _choice("protocol", self.protocol, PROTOCOLS)
        _choice("selection", self.selection, SELECTIONS)
        _choice("optimizer", self.optimizer, ("sgd", "adam", "adamw"))
        _choice("schedule", self.schedule, ("cosine", "multistep", "constant"))
        _choice("amp", self.amp, ("none", "bf16", "fp16"))
        if len(self.crop_scale) != 2 or not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise ConfigError(f"crop_scale must be [low, high] with 0 < low <= high <= 1, got "
                              f"{self.crop_scale}")
        if self.test_crops not in (1, 3):
            raise ConfigError(f"test_crops must be 1 or 3, got {self.test_crops}")
        for name in ("num_frames", "size", "train_clips_per_video", "val_clips", "test_clips",
                     "epochs", "batch_size", "eval_every", "feature_clips", "linear_epochs",
                     "linear_batch_size", "knn_k"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not self.linear_weight_decays:
            raise ConfigError("linear_weight_decays must hold at least one value")
        if (self.selection == "last" and self.protocol == "linear"
                and len(self.linear_weight_decays) > 1):
            raise ConfigError("selection 'last' cannot choose among several linear_weight_decays; "
                              "give one value")


@dataclass
class Experiment:
    """One column of the report: a dataset, a task and a recipe.

    ``root`` is relative to the data root; ``num_samples`` trains on a class-balanced subset;
    ``label_range: [first, last]`` keeps only those classes, re-indexed from 0 (how SEVERE
    cuts its FineGym subsets, here usable on any dataset); ``metric`` overrides the task's
    primary metric; ``overrides`` edit the named ``recipe``.
    """

    name: str
    factor: str
    dataset: str
    root: str
    label: str = ""
    task: str = "classification"
    train_split: str = "train"
    test_split: str = "test"
    num_samples: int | None = None
    label_range: list[int] | None = None
    dataset_options: dict = field(default_factory=dict)
    metric: str | None = None
    recipe: str = "finetune"
    overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _choice("factor", self.factor, FACTORS)
        _choice("task", self.task, ("classification", "multilabel", "counting", "arrow_of_time"))
        self.label = self.label or self.name
        bad_range = self.label_range is not None and (
            len(self.label_range) != 2 or not 0 <= self.label_range[0] <= self.label_range[1])
        if bad_range:
            raise ConfigError(f"{self.name}.label_range must be [first, last] class ids, "
                              f"got {self.label_range}")


@dataclass
class Suite:
    name: str
    description: str
    experiments: list[Experiment]
    recipes: dict[str, Recipe]
    benchmark: list[str]
    source: str = "<dict>"

    def experiment(self, name: str) -> Experiment:
        for experiment in self.experiments:
            if experiment.name == name:
                return experiment
        raise KeyError(f"{self.source}: no experiment {name!r} (have: "
                       f"{', '.join(e.name for e in self.experiments)})")

    def recipe_for(self, experiment: Experiment) -> Recipe:
        return self.recipes[experiment.name]

    def by_factor(self) -> dict[str, list[Experiment]]:
        groups: dict[str, list[Experiment]] = {}
        for experiment in self.experiments:
            groups.setdefault(experiment.factor, []).append(experiment)
        return {f: groups[f] for f in FACTORS if f in groups}


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")


def suite_path(name_or_path: str | Path) -> Path:
    """A suite YAML path as given, or a suite bundled with vidssl (``vidssl configs list``)."""
    return resolve_config(name_or_path, "evaluate")


SUITE_KEYS = ("name", "description", "extends", "only", "benchmark", "recipes", "factors")


def load_suite(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Suite:
    """Read a suite YAML and resolve every experiment's recipe (see the module docstring)."""
    path = suite_path(name_or_path)
    return parse_suite(_read_suite(path), str(path), overrides)


def _read_suite(path: Path, depth: int = 0) -> dict:
    """The suite's mapping with ``extends: OTHER`` resolved: OTHER's experiments (only those
    named in ``only``, if given) and recipes, under this file's name, description, benchmark
    and extra recipes. OTHER's benchmark is kept only if ``only`` keeps all of it."""
    data = read_yaml(path)
    unknown = sorted(set(data) - set(SUITE_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]} (known: {', '.join(SUITE_KEYS)})")
    if "extends" not in data:
        if "only" in data:
            raise ConfigError(f"{path}: 'only' needs 'extends: SUITE'")
        return data
    if depth > 5:
        raise ConfigError(f"{path}: 'extends' links form a cycle")
    parent = _read_suite(suite_path(data["extends"]), depth + 1)
    factors = parent.get("factors") or {}
    if "only" in data:
        keep = list(data["only"] or [])
        known = {e.get("name") for items in factors.values() for e in items or []}
        missing = [n for n in keep if n not in known]
        if missing:
            raise ConfigError(f"{path}: only lists {missing[0]!r}, which suite "
                              f"{data['extends']!r} does not have")
        factors = {f: [e for e in items if e.get("name") in keep] for f, items in factors.items()}
        factors = {f: items for f, items in factors.items() if items}
        if not set(parent.get("benchmark") or []) <= set(keep):
            parent = {**parent, "benchmark": []}  # a partial benchmark has no SEVERE mean
    merged = {**parent, "factors": factors,
              "recipes": {**(parent.get("recipes") or {}), **(data.get("recipes") or {})}}
    merged.update({k: data[k] for k in ("name", "description", "benchmark") if k in data})
    merged.pop("only", None)
    merged.pop("extends", None)
    return merged


def parse_suite(data: dict, where: str = "<dict>", overrides=()) -> Suite:
    data = dict(data)
    unknown = sorted(set(data) - {"name", "description", "benchmark", "recipes", "factors"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]} (known: name, description, "
                          f"benchmark, recipes, factors; 'extends' needs load_suite)")
    experiments = []
    for factor, items in (data.get("factors") or {}).items():
        if factor not in FACTORS:
            raise ConfigError(f"{where}: factors.{factor}: not one of {', '.join(FACTORS)}")
        if not isinstance(items, list):
            raise ConfigError(f"{where}: factors.{factor} must be a list of experiments")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ConfigError(f"{where}: factors.{factor}[{i}] must be a mapping")
            experiments.append(from_dict(Experiment, {**item, "factor": factor}, where,
                                         prefix=f"factors.{factor}[{i}]."))
    if not experiments:
        raise ConfigError(f"{where}: the suite has no experiments under 'factors'")
    experiments.sort(key=lambda e: FACTORS.index(e.factor))  # paper order, stable within a factor
    names = [e.name for e in experiments]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: experiment name {duplicates[0]!r} is used twice")

    global_recipe, per_experiment, recipe_edits = _split_overrides(list(overrides), names, where)
    named = apply_overrides(data.get("recipes") or {"finetune": {}}, recipe_edits)
    experiments = [_apply_experiment_overrides(e, per_experiment.get(e.name, {}), where)
                   for e in experiments]
    recipes = {}
    for experiment in experiments:
        base = _named_recipe(named, experiment.recipe, where, f"{experiment.name}.recipe")
        fields = {**base, **experiment.overrides, **global_recipe,
                  **per_experiment.get(experiment.name, {}).get("recipe", {})}
        recipes[experiment.name] = from_dict(Recipe, fields, where, prefix=f"{experiment.name}.")

    benchmark = list(data.get("benchmark") or [])
    for name in benchmark:
        if name not in names:
            raise ConfigError(f"{where}: benchmark lists {name!r}, which is no experiment")
    return Suite(name=str(data.get("name") or Path(where).stem),
                 description=str(data.get("description") or ""), experiments=experiments,
                 recipes=recipes, benchmark=benchmark, source=where)


def _named_recipe(named: dict, name: str, where: str, key: str, depth: int = 0) -> dict:
    """A named recipe's fields, following ``base:`` links."""
    if name not in named:
        raise ConfigError(f"{where}: {key} = {name!r} is not a recipe (have: {', '.join(named)})")
    if depth > 10:
        raise ConfigError(f"{where}: recipes.{name}: 'base' links form a cycle")
    fields = dict(named[name] or {})
    base = fields.pop("base", None)
    if base is None:
        return fields
    return {**_named_recipe(named, base, where, f"recipes.{name}.base", depth + 1), **fields}


_RECIPE_FIELDS = {f.name for f in dataclasses.fields(Recipe)}
_EXPERIMENT_FIELDS = {f.name for f in dataclasses.fields(Experiment)} - {"name", "factor"}


def _split_overrides(overrides: list[str], names: list[str], where: str):
    """Sort ``key=value`` strings into recipe-wide, per-experiment and named-recipe edits."""
    global_recipe: dict = {}
    per_experiment: dict[str, dict] = {}
    recipe_edits: list[str] = []
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        head, _, rest = key.partition(".")
        if head == "recipes":
            recipe_edits.append(item.split(".", 1)[1])
            continue
        parsed = apply_overrides({}, [item])
        if head == "recipe":
            global_recipe.update(parsed["recipe"])
        elif head in names and rest:
            edits = per_experiment.setdefault(head, {})
            for field_name, value in parsed[head].items():
                if field_name in _EXPERIMENT_FIELDS:
                    edits.setdefault("experiment", {})[field_name] = value
                else:
                    edits.setdefault("recipe", {})[field_name] = value
        else:
            raise ConfigError(
                f"command line: override {item!r}: the key must start with 'recipe.', "
                f"'recipes.NAME.' or an experiment name ({', '.join(names)})")
    for key in global_recipe:
        if key not in _RECIPE_FIELDS:
            raise ConfigError(f"command line: recipe.{key}: unknown recipe field")
    return global_recipe, per_experiment, recipe_edits


def _apply_experiment_overrides(experiment: Experiment, edits: dict, where: str) -> Experiment:
    if not edits.get("experiment"):
        return experiment
    fields = {**dataclasses.asdict(experiment), **edits["experiment"]}
    return from_dict(Experiment, fields, f"{where} + command line", prefix=f"{experiment.name}.")
