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

    protocol: paper                    # default evaluation protocol (paper | validation)
    variants:                          # per-method recipe changes of the official configs
      scratch:
        - {experiments: [ssv2], recipe: {epochs: 25, milestones: [12, 19, 22]}}

A suite may instead ``extends: OTHER`` and keep ``only: [names]`` of OTHER's experiments
(``severe.yaml`` is ``full.yaml`` restricted to the benchmark), so recipes exist once, and
may carry ``overrides: [recipe.protocol=finetune, ...]`` (the command line's syntax, applied
before the command line's own; ``mini_finetune.yaml``).

The evaluation protocol (``EVALUATION_PROTOCOLS``) sets each recipe's ``selection``: ``paper``
trains on all of train and selects on the test split (``paper_selection``: ``test``, or
``last`` where the published code tests the last weights), ``validation`` selects on a
held-out part of train. A variant applies
when the evaluated backbone is randomly initialized (``scratch``) or loaded from a checkpoint of
that format (``tclr``, ``avid_cma``...): ``Suite.resolved(variant=...)``.

Command-line overrides are dotted keys: ``recipe.FIELD=V`` applies to every experiment,
``EXPERIMENT.FIELD=V`` to one experiment (a recipe field, or an experiment field such as
``root``), ``recipes.NAME.FIELD=V`` edits a named recipe. Precedence, lowest first: named
recipe, the experiment's ``overrides``, the backbone's variant, ``recipe.*``, ``EXPERIMENT.*``.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from vidssl.bundled import resolve_config
from vidssl.config import ConfigError, apply_overrides, from_dict, read_yaml

FACTORS = ("domain", "samples", "actions", "tasks")
PROTOCOLS = ("finetune", "linear", "knn")
SELECTIONS = ("val", "test", "last")
EVALUATION_PROTOCOLS = {
    "paper": ("SEVERE's published protocol: every experiment trains on 100% of its training "
              "split and keeps the epoch that scores best on the test split (Charades, EPIC-100, "
              "arrow of time: the last epoch, no selection). Comparable with the published "
              "numbers, but optimistic: the test split chooses the checkpoint it then scores."),
    "validation": ("held-out model selection: each experiment keeps val_fraction (10% unless "
                   "the recipe says otherwise) of its training split aside (seeded, "
                   "class-stratified), trains on the rest and keeps "
                   "the epoch that scores best there; the test split is scored once, by the "
                   "selected weights. An unbiased estimate, slightly below the paper protocol's."),
}
SCRATCH = "scratch"  # the variant of a randomly initialized backbone
VIT = "vit"  # the variant of every ViT backbone: the VideoMAE / SIGMA fine-tuning recipe
# per-channel (mean, std) of the input conventions; none: frames in [0, 1]
NORMALIZATIONS = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                  "slowfast": ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)), "none": None}


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
    # temporal probe (bias diagnostics, vidssl.data.frame_order), on train and test clips:
    # full (as sampled), single (one frame repeated: random in training, the middle one at
    # test and in frozen features) or shuffled (frames randomly permuted, seeded at test)
    frame_order: str = "full"
    # training clips: resized_crop (the crop above + flip + color jitter), short_side_jitter
    # (PySlowFast: short side drawn from jitter_scales, 1/side uniform if
    # jitter_inverse_uniform, random size crop, flip) or none (the test view: short side to
    # size / 0.875, center crop; arrow of time)
    train_augmentation: str = "resized_crop"
    jitter_scales: list[int] = field(default_factory=lambda: [256, 320])
    jitter_inverse_uniform: bool = False
    # input convention of the backbone: normalized with ImageNet's mean/std, PySlowFast's
    # (0.45 / 0.225) or not at ([0, 1]); RGB or BGR channel order
    normalize: str = "imagenet"
    channel_order: str = "rgb"
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
    freeze_bn: bool = False  # backbone BatchNorm statistics and parameters stay pretrained
    amp: str = "none"
    grad_clip: float | None = None
    num_workers: int = 4
    # fine-tuned repetition counting: SEVERE's anchor counter (Zhang et al. 2020; whole
    # segments, train_clips_per_video fixed samples per video, vidssl.evaluation.counting) or
    # the cheaper density head on one clip (tasks.Counting)
    counting_head: str = "anchor"
    # model selection: on a seeded split of train (val), on the test split as the original
    # SEVERE code did (test; optimistic), or none (last). In a suite the protocol sets it
    # (validation: val; paper: paper_selection, what the published code does) unless a
    # recipe or the command line does.
    selection: str = "val"
    paper_selection: str = "test"
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
    # ViT fine-tuning (VideoMAE / SIGMA run_class_finetuning.py; docs/vit_protocol.md).
    # train_augmentation videomae: RandAugment (rand_augment), random resized crop of
    # crop_scale, flip (hflip), normalisation, random erasing (random_erasing); lr is scaled by
    # global batch / lr_batch_ref; layer_decay as VideoMAE's get_parameter_groups; cosine to
    # min_lr_ratio x lr; drop_path / mean_pooling rebuild the ViT; mixup / cutmix / label
    # smoothing on single-label tasks; freeze_backbone trains only the head and fc_norm
    # (SIGMA's --linear_probing); test_short_side: test frames' short side (None: size/0.875)
    sampling: str | None = None  # clip (dense) or segments (TSN, SSv2); None: the dataset's
    hflip: bool = True
    rand_augment: str | None = None
    random_erasing: float = 0.0
    lr_batch_ref: int | None = None
    layer_decay: float | None = None
    min_lr_ratio: float = 0.0
    warmup_from_zero: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    drop_path: float | None = None
    mean_pooling: bool | None = None
    head_init_scale: float | None = None
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_switch_prob: float = 0.5
    freeze_backbone: bool = False
    test_short_side: int | None = None

    def __post_init__(self) -> None:
        _choice("protocol", self.protocol, PROTOCOLS)
        _choice("selection", self.selection, SELECTIONS)
        _choice("paper_selection", self.paper_selection, ("test", "last"))
        _choice("channel_order", self.channel_order, ("rgb", "bgr"))
        _choice("train_augmentation", self.train_augmentation,
                ("resized_crop", "short_side_jitter", "videomae", "none"))
        _choice("normalize", self.normalize, tuple(NORMALIZATIONS))
        _choice("frame_order", self.frame_order, ("full", "single", "shuffled"))
        if len(self.jitter_scales) != 2 or not 0 < self.jitter_scales[0] <= self.jitter_scales[1]:
            raise ConfigError(f"jitter_scales must be [low, high] short sides, got "
                              f"{self.jitter_scales}")
        _choice("optimizer", self.optimizer, ("sgd", "adam", "adamw"))
        _choice("schedule", self.schedule, ("cosine", "multistep", "constant"))
        _choice("amp", self.amp, ("none", "bf16", "fp16"))
        _choice("counting_head", self.counting_head, ("anchor", "density"))
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
        if self.rand_augment is not None:
            from vidssl.data.augment import parse_rand_augment

            try:
                parse_rand_augment(self.rand_augment)
            except ValueError as exc:
                raise ConfigError(f"rand_augment: {exc}") from None
        for name in ("random_erasing", "mixup_switch_prob", "label_smoothing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            raise ConfigError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if len(self.betas) != 2:
            raise ConfigError(f"betas must be [beta1, beta2], got {self.betas}")


@dataclass
class Experiment:
    """One column of the report: a dataset, a task and a recipe.

    ``root`` is relative to the data root; ``num_samples`` trains on a class-balanced subset,
    ``subset: official`` SEVERE's fixed one (seed 99999, drawn from the whole training split) or
    ``per_seed`` one drawn with each run's seed;
    ``label_range: [first, last]`` keeps only those classes, re-indexed from 0 (how SEVERE
    cuts its FineGym subsets, here usable on any dataset); ``label_groups: [[first, last],
    ...]`` classifies coarse labels instead: label ``y`` becomes the index ``g`` of the range
    holding it (``first_g <= y <= last_g``; ranges may not overlap), videos in no range are
    dropped (Gym99's events: vault 0-5, floor 6-40, uneven bars 74-88); ``metric`` overrides
    the task's primary metric; ``overrides`` edit the named ``recipe``. ``same_runs_as: OTHER``
    trains nothing and reports OTHER's runs under this experiment's metric (SEVERE's actions-table
    Gym99 is the domain-table Gym99 run, scored by mean per-class accuracy).
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
    subset: str = "official"
    label_range: list[int] | None = None
    label_groups: list[list[int]] | None = None
    dataset_options: dict = field(default_factory=dict)
    metric: str | None = None
    recipe: str = "finetune"
    overrides: dict = field(default_factory=dict)
    same_runs_as: str | None = None

    def __post_init__(self) -> None:
        _choice("factor", self.factor, FACTORS)
        _choice("task", self.task, ("classification", "verb_noun", "multilabel", "counting",
                                    "arrow_of_time", "detection"))
        _choice("subset", self.subset, ("official", "per_seed"))
        self.label = self.label or self.name
        bad_range = self.label_range is not None and (
            len(self.label_range) != 2 or not 0 <= self.label_range[0] <= self.label_range[1])
        if bad_range:
            raise ConfigError(f"{self.name}.label_range must be [first, last] class ids, "
                              f"got {self.label_range}")
        if self.label_groups is not None:
            _check_label_groups(self.name, self.label_groups, self.label_range)


def _check_label_groups(name: str, groups: list[list[int]], label_range) -> None:
    """``label_groups``: at least one ``[first, last]`` range, ``0 <= first <= last``, no two
    ranges sharing a label, and not combined with ``label_range``."""
    key = f"{name}.label_groups"
    if label_range is not None:
        raise ConfigError(f"{key}: give label_range or label_groups, not both")
    if not groups:
        raise ConfigError(f"{key} must list at least one [first, last] range")
    for group in groups:
        if len(group) != 2 or not 0 <= group[0] <= group[1]:
            raise ConfigError(f"{key} ranges must be [first, last] class ids, got {group}")
    ordered = sorted(groups)
    for before, after in itertools.pairwise(ordered):
        if after[0] <= before[1]:
            raise ConfigError(f"{key}: ranges {before} and {after} overlap")


@dataclass(frozen=True)
class RecipeLayers:
    """The recipe fields of one experiment before the protocol and the backbone are known:
    ``base`` (named recipe + the experiment's overrides), ``variants`` (method -> fields) and
    ``command_line`` (``recipe.*`` + ``EXPERIMENT.*``), in increasing precedence."""

    base: dict
    variants: dict[str, dict]
    command_line: dict

    def resolve(self, protocol: str, variant: str | None, where: str, name: str) -> Recipe:
        """The recipe: base < the backbone's variant < command line; ``selection`` from the
        protocol (paper: ``paper_selection``, validation: ``val``) unless a layer sets it."""
        fields = {**self.base, **self.variants.get(variant or "", {}), **self.command_line}
        if "selection" not in fields:
            fields["selection"] = (fields.get("paper_selection", "test") if protocol == "paper"
                                   else "val")
        return from_dict(Recipe, fields, where, prefix=f"{name}.")


@dataclass
class Suite:
    """Experiments with their recipes, resolved for one evaluation ``protocol`` (paper or
    validation, ``EVALUATION_PROTOCOLS``) and one backbone ``variant`` (``scratch`` or a
    checkpoint format such as ``tclr``: the per-method changes of SEVERE's configs)."""

    name: str
    description: str
    experiments: list[Experiment]
    recipes: dict[str, Recipe]
    benchmark: list[str]
    source: str = "<dict>"
    protocol: str = "validation"
    variant: str | None = None
    layers: dict[str, RecipeLayers] = field(default_factory=dict, repr=False)

    def resolved(self, protocol: str | None = None, variant: str | None = None) -> Suite:
        """This suite under another protocol and/or for another backbone variant (None
        keeps the current protocol; the variant is always replaced)."""
        protocol = protocol or self.protocol
        _choice("protocol", protocol, tuple(EVALUATION_PROTOCOLS))
        if not self.layers:
            raise ConfigError(f"{self.source}: a suite built without recipe layers cannot be "
                              "re-resolved")
        recipes = {e.name: self.layers[e.name].resolve(protocol, variant, self.source, e.name)
                   for e in self.experiments}
        return dataclasses.replace(self, protocol=protocol, variant=variant, recipes=recipes)

    def variant_experiments(self, variant: str | None) -> list[str]:
        """Experiments whose recipe the ``variant`` changes."""
        return [e.name for e in self.experiments
                if self.layers.get(e.name) and self.layers[e.name].variants.get(variant or "")]

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


SUITE_KEYS = ("name", "description", "extends", "only", "benchmark", "protocol", "recipes",
              "variants", "factors", "overrides")


def load_suite(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = (),
               protocol: str | None = None, variant: str | None = None) -> Suite:
    """Read a suite YAML and resolve every experiment's recipe (see the module docstring)
    for ``protocol`` (default: the suite's ``protocol`` key) and backbone ``variant``."""
    path = suite_path(name_or_path)
    return parse_suite(_read_suite(path), str(path), overrides, protocol, variant)


def _read_suite(path: Path, depth: int = 0) -> dict:
    """The suite's mapping with ``extends: OTHER`` resolved: OTHER's experiments (only those
    named in ``only``, if given) and recipes, under this file's name, description, benchmark
    and extra recipes. OTHER's benchmark is kept only if ``only`` keeps all of it."""
    data = read_yaml(path)
    unknown = sorted(set(data) - set(SUITE_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]} (known: {', '.join(SUITE_KEYS)})")
    _override_list(data, path)  # a malformed list is reported with the file that holds it
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
        parent = {**parent, "variants": _keep_variants(parent.get("variants") or {}, keep)}
        if not set(parent.get("benchmark") or []) <= set(keep):
            parent = {**parent, "benchmark": []}  # a partial benchmark has no SEVERE mean
    merged = {**parent, "factors": factors,
              "recipes": {**(parent.get("recipes") or {}), **(data.get("recipes") or {})},
              "variants": {**(parent.get("variants") or {}), **(data.get("variants") or {})},
              "overrides": [*(parent.get("overrides") or []), *(data.get("overrides") or [])]}
    merged.update({k: data[k] for k in ("name", "description", "benchmark", "protocol")
                   if k in data})
    merged.pop("only", None)
    merged.pop("extends", None)
    return merged


def _override_list(data: dict, where) -> list[str]:
    """A suite's ``overrides``: dotted ``KEY=VALUE`` strings, applied before the command line's."""
    written = data.get("overrides") or []
    if not isinstance(written, list) or not all(isinstance(o, str) for o in written):
        raise ConfigError(f"{where}: overrides must be a list of 'KEY=VALUE' strings")
    return written


def _keep_variants(variants: dict, keep: list[str]) -> dict:
    """``variants`` restricted to the experiments in ``keep`` (for ``only``)."""
    kept = {}
    for method, items in variants.items():
        items = [{**item, "experiments": [n for n in item.get("experiments") or [] if n in keep]}
                 for item in items or [] if isinstance(item, dict)]
        kept[method] = [item for item in items if item["experiments"]]
    return kept


def _variant_fields(data: dict, names: list[str], where: str) -> dict[str, dict[str, dict]]:
    """experiment -> method -> recipe fields, from the suite's ``variants`` section::

        variants:
          scratch:
            - {experiments: [ucf101, gym99], recipe: {epochs: 20, weight_decay: 1.0e-4}}
    """
    from vidssl.models.checkpoints.formats import FORMATS

    by_experiment: dict[str, dict[str, dict]] = {}
    for method, items in (data.get("variants") or {}).items():
        if method not in (SCRATCH, VIT) and method not in FORMATS:
            raise ConfigError(f"{where}: variants.{method}: not '{SCRATCH}', '{VIT}' or a "
                              f"checkpoint format ({', '.join(FORMATS)})")
        if not isinstance(items, list):
            raise ConfigError(f"{where}: variants.{method} must be a list of "
                              "{experiments: [...], recipe: {...}}")
        for i, item in enumerate(items):
            key = f"variants.{method}[{i}]"
            if not isinstance(item, dict) or set(item) != {"experiments", "recipe"}:
                raise ConfigError(f"{where}: {key} must be {{experiments: [...], recipe: {{...}}}}")
            unknown = sorted(set(item["recipe"] or {}) - _RECIPE_FIELDS)
            if unknown:
                raise ConfigError(f"{where}: {key}.recipe.{unknown[0]}: unknown recipe field")
            for name in item["experiments"] or []:
                if name not in names:
                    raise ConfigError(f"{where}: {key} lists {name!r}, which is no experiment")
                fields = by_experiment.setdefault(name, {}).setdefault(method, {})
                fields.update(item["recipe"] or {})
    return by_experiment


def parse_suite(data: dict, where: str = "<dict>", overrides=(), protocol: str | None = None,
                variant: str | None = None) -> Suite:
    data = dict(data)
    known = tuple(k for k in SUITE_KEYS if k not in ("extends", "only"))  # load_suite resolves them
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]} (known: {', '.join(known)}; "
                          f"'extends' needs load_suite)")
    protocol = protocol or str(data.get("protocol") or "validation")
    _choice("protocol", protocol, tuple(EVALUATION_PROTOCOLS))
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
    for i, experiment in enumerate(experiments):
        other = experiment.same_runs_as
        earlier = {e.name: e for e in experiments[:i]}
        if other is not None and (other not in earlier or earlier[other].same_runs_as):
            raise ConfigError(f"{where}: {experiment.name}.same_runs_as = {other!r} must name an "
                              "experiment of an earlier factor (or earlier in the list) that "
                              "runs itself")

    global_recipe, per_experiment, recipe_edits = _split_overrides(  # the command line's win
        [*_override_list(data, where), *overrides], names, where)
    named = apply_overrides(data.get("recipes") or {"finetune": {}}, recipe_edits)
    experiments = [_apply_experiment_overrides(e, per_experiment.get(e.name, {}), where)
                   for e in experiments]
    variants = _variant_fields(data, names, where)
    layers = {}
    for experiment in experiments:
        base = _named_recipe(named, experiment.recipe, where, f"{experiment.name}.recipe")
        layers[experiment.name] = RecipeLayers(
            base={**base, **experiment.overrides}, variants=variants.get(experiment.name, {}),
            command_line={**global_recipe,
                          **per_experiment.get(experiment.name, {}).get("recipe", {})})
    recipes = {e.name: layers[e.name].resolve(protocol, variant, where, e.name)
               for e in experiments}

    benchmark = list(data.get("benchmark") or [])
    for name in benchmark:
        if name not in names:
            raise ConfigError(f"{where}: benchmark lists {name!r}, which is no experiment")
    return Suite(name=str(data.get("name") or Path(where).stem),
                 description=str(data.get("description") or ""), experiments=experiments,
                 recipes=recipes, benchmark=benchmark, source=where, protocol=protocol,
                 variant=variant, layers=layers)


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
