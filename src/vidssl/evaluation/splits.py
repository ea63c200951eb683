"""Which videos of an experiment train, select and test, for one seed.

The selection split is carved from the *full* training split (seeded, class-stratified via
``vidssl.data.subsets.split_train_val``). A sample-size experiment trains on
``ceil(N / num_classes)`` videos per class: by default (``subset: official``) SEVERE's own
fixed subset of the whole training split (``balanced_subset``, seed 99999), its validation
videos then being the held-out ones outside it; with ``subset: per_seed`` a subset drawn with
the run's seed from the videos left for training. Either way validation videos are never
training videos. With ``selection: test`` the test split selects (SEVERE's original,
optimistic protocol); with ``selection: last`` nothing does.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from vidssl.evaluation.suite import NORMALIZATIONS, Experiment, Recipe
from vidssl.evaluation.tasks import Task

logger = logging.getLogger(__name__)


def subset(dataset: Dataset, indices: Sequence[int]) -> Dataset:
    """``dataset`` restricted to ``indices``, keeping its attributes (``num_classes``...)."""
    if hasattr(dataset, "subset"):
        return dataset.subset(list(indices))
    return _Subset(dataset, list(indices))


class _Subset(Dataset):
    def __init__(self, dataset: Dataset, indices: list[int]):
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]

    def __getattr__(self, name: str):
        if name in ("dataset", "indices"):
            raise AttributeError(name)
        if name == "targets":
            targets = self.dataset.targets
            return [targets[i] for i in self.indices]
        return getattr(self.dataset, name)


class ClassRange(Dataset):
    """The videos of classes ``first..last`` (inclusive), labels re-indexed from 0."""

    def __init__(self, dataset: Dataset, first: int, last: int):
        self.keep = [i for i, t in enumerate(dataset.targets) if first <= int(t) <= last]
        if not self.keep:
            raise ValueError(f"no video of classes {first}..{last} in {dataset!r}")
        self.dataset, self.first = subset(dataset, self.keep), first
        self.num_classes = last - first + 1
        names = getattr(dataset, "class_names", None)
        self.class_names = list(names[first:last + 1]) if names else None
        self.task = "classification"

    @property
    def targets(self) -> list[int]:
        return [int(t) - self.first for t in self.dataset.targets]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        sample = dict(self.dataset[i])
        sample["label"] = int(sample["label"]) - self.first
        return sample

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class ClassGroups(Dataset):
    """Coarse labels: label ``y`` becomes the index ``g`` of the range ``groups[g] = [first,
    last]`` holding it; videos whose label is in no range are dropped (one warning with the
    count). ``where`` names the experiment in the warning and errors."""

    def __init__(self, dataset: Dataset, groups: list[list[int]], where: str = "label_groups"):
        self.groups = [(int(first), int(last)) for first, last in groups]
        labels = [self.group_of(int(t)) for t in dataset.targets]
        self.keep = [i for i, g in enumerate(labels) if g is not None]
        if not self.keep:
            raise ValueError(f"{where}: no video has a label in {groups} ({dataset!r})")
        dropped = len(labels) - len(self.keep)
        if dropped:
            logger.warning("%s: dropped %d of %d videos whose label is in no group of %s",
                           where, dropped, len(labels), groups)
        self.dataset = subset(dataset, self.keep)
        self.group_targets = [labels[i] for i in self.keep]
        self.num_classes = len(self.groups)
        self.class_names = [f"{first}-{last}" for first, last in self.groups]
        self.task = "classification"

    def group_of(self, label: int) -> int | None:
        """The index of the range holding ``label``, None if none does."""
        return next((g for g, (first, last) in enumerate(self.groups) if first <= label <= last),
                    None)

    @property
    def targets(self) -> list[int]:
        return list(self.group_targets)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        sample = dict(self.dataset[i])
        sample["label"] = self.group_of(int(sample["label"]))
        return sample

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def relabelled(dataset: Dataset, experiment: Experiment) -> Dataset:
    """``dataset`` cut to the experiment's ``label_range`` (``ClassRange``) or mapped to its
    ``label_groups`` (``ClassGroups``); unchanged without either."""
    if experiment.label_range is not None:
        return ClassRange(dataset, *experiment.label_range)
    if experiment.label_groups is not None:
        return ClassGroups(dataset, experiment.label_groups, f"experiment {experiment.name}")
    return dataset


class Repeated(Dataset):
    """Each video ``times`` per epoch (SEVERE's "train clips per video"); every repeat draws
    its own random clip because the engine seeds each sample by its position in the epoch."""

    def __init__(self, dataset: Dataset, times: int):
        self.dataset, self.times = dataset, times

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, i: int):
        return self.dataset[i % len(self.dataset)]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getattr__(self, name: str):
        if name in ("dataset", "times"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


class ExperimentSplits:
    """Datasets of one experiment and seed, built with ``vidssl.data.build_dataset``.

    ``train_index`` / ``select_index`` index the full training split; ``select_role`` is
    ``"val"``, ``"test"`` or ``None``.
    """

    def __init__(self, experiment: Experiment, recipe: Recipe, task: Task, data_root: str | Path,
                 seed: int):
        from vidssl.data import build_dataset

        self.experiment, self.recipe, self.task, self.seed = experiment, recipe, task, seed
        self.builder = build_dataset
        self.root = Path(data_root) / experiment.root
        if not self.root.exists():
            raise FileNotFoundError(
                f"experiment {experiment.name}: dataset root {self.root} does not exist (set "
                f"--data-root, or override {experiment.name}.root=DIR)")
        self._built: dict[tuple, Dataset] = {}
        self.reference = self.build(experiment.train_split, "test", 1)
        self.train_index, self.select_index = self._plan(self.reference)
        self.select_role = {"val": "val", "test": "test", "last": None}[recipe.selection]

    def clip_options(self) -> dict:
        r = self.recipe
        options = {"num_frames": r.num_frames, "target_fps": r.target_fps, "size": r.size}
        if r.frame_stride is not None:
            options["frame_stride"] = r.frame_stride
        if r.sampling is not None:
            options["sampling"] = r.sampling
        return {**options, **self.experiment.dataset_options}

    def key(self, split: str, mode: str, views: int, crops: int = 1) -> tuple:
        """Identifies a built dataset (and the features extracted from it). A single-view
        task (counting, whose target belongs to the clip) always gets one clip, one crop."""
        if self.task.single_view:
            views = crops = 1
        return (self.experiment.dataset, str(self.root.resolve()), split, mode, views, crops,
                tuple(sorted((k, repr(v)) for k, v in self.clip_options().items())),
                self.recipe.frame_order)

    def transform(self, mode: str, crops: int = 1):
        """Frames -> clip tensor: the recipe's training augmentation (train mode) or the test
        view, in the backbone's input convention (ImageNet-normalized or [0, 1]; RGB or BGR),
        frames reordered by the recipe's ``frame_order`` (test-time rule outside train mode)."""
        from vidssl.data.frame_order import FrameOrder
        from vidssl.data.transforms import (
            Compose,
            FramesToClip,
            Normalize,
            RandomHorizontalFlip,
            ReverseChannels,
            ShortSideJitterCrop,
            test_transform,
            train_transform,
        )

        r = self.recipe
        statistics = NORMALIZATIONS[r.normalize]
        norm = {"normalize": False} if statistics is None else dict(
            zip(("mean", "std"), statistics))
        if mode == "train" and r.train_augmentation == "resized_crop":
            steps = train_transform(r.size, scale=tuple(r.crop_scale), **norm)
        elif mode == "train" and r.train_augmentation == "short_side_jitter":
            crop = ShortSideJitterCrop(r.size, r.jitter_scales, r.jitter_inverse_uniform)
            steps = Compose([FramesToClip(), crop, RandomHorizontalFlip()]
                            + ([Normalize(*statistics)] if statistics else []))
        elif mode == "train" and r.train_augmentation == "videomae":
            from vidssl.evaluation.vit_protocol import videomae_train_transform

            steps = videomae_train_transform(r, statistics)
        else:
            steps = test_transform(r.size, resize=r.test_short_side, num_crops=crops, **norm)
        if r.channel_order == "bgr":
            steps = Compose([steps, ReverseChannels()])
        if r.frame_order != "full":
            steps = Compose([steps, FrameOrder(r.frame_order, random=mode == "train")])
        return steps

    def build(self, split: str, mode: str, views: int, crops: int = 1, ranged: bool = True
              ) -> Dataset:
        """``views`` clips (uniformly spaced in test mode) x ``crops`` crops per video, only
        the experiment's ``label_range`` classes (or its ``label_groups``) unless
        ``ranged=False``."""
        key = self.key(split, mode, views, crops)
        views, crops = key[4], key[5]
        if key not in self._built:
            mode_options = {"transform": self.transform(mode, crops)}
            if mode != "train":
                mode_options.update(seed=self.seed, **({"num_crops": crops} if crops > 1 else {}))
            self._built[key] = self.builder(
                self.experiment.dataset, str(self.root), split, mode=mode, num_views=views,
                **mode_options, **self.clip_options())
        dataset = self._built[key]
        if ranged and self.relabels:
            if (key, "ranged") not in self._built:
                self._built[key, "ranged"] = relabelled(dataset, self.experiment)
            dataset = self._built[key, "ranged"]
        return dataset

    @property
    def relabels(self) -> bool:
        """Does the experiment cut or group its labels (``label_range``, ``label_groups``)?"""
        return self.experiment.label_range is not None or self.experiment.label_groups is not None

    def trained_classes(self) -> int | None:
        """How many classes have training videos (chance accuracy is ``100 / that``); None
        for tasks other than single-label classification."""
        if getattr(self.reference, "task", "classification") != "classification":
            return None
        if self.task.name != "classification":
            return None
        targets = self.reference.targets
        return len({int(targets[i]) for i in self.train_index})

    def _plan(self, reference: Dataset) -> tuple[list[int], list[int] | None]:
        from vidssl.data.subsets import (
            SEVERE_SUBSET_SEED,
            balanced_subset,
            random_subset,
            split_train_val,
        )

        targets = list(reference.targets)
        everything = list(range(len(targets)))
        select = None
        if self.recipe.selection == "val":
            train, select = split_train_val(targets, self.recipe.val_fraction, seed=self.seed)
            train, select = sorted(map(int, train)), sorted(map(int, select))
        else:
            train = everything
        if self.experiment.num_samples:
            n = self.experiment.num_samples
            official = self.experiment.subset == "official"
            pool = everything if official else train
            seed = SEVERE_SUBSET_SEED if official else self.seed
            if getattr(reference, "task", "classification") == "classification":
                # ceil(N / C) per class, C = classes that have training videos (all of them
                # on real data; the world's gym_like fills 16 of Gym99's 99 label ids)
                chosen = balanced_subset([targets[i] for i in pool], n, seed=seed)
            else:
                chosen = random_subset(len(pool), n, seed=seed)
            train = sorted(pool[int(i)] for i in chosen)
            if select is not None:
                kept = set(train)
                select = [i for i in select if i not in kept]
        if not train:
            raise ValueError(
                f"experiment {self.experiment.name}: no training videos in {self.root}")
        return train, select

    # ------------------------------------------------------------------ protocol views
    def finetune_sets(self) -> tuple[Dataset, Dataset | None, Dataset]:
        """(train: random augmented clips, select: ``val_clips`` uniform clips, test:
        ``test_clips`` uniform clips), wrapped by the task (arrow of time)."""
        e, r, task = self.experiment, self.recipe, self.task
        train = subset(self.build(e.train_split, "train", 1), self.train_index)
        train = task.prepare(train, train=True, seed=self.seed)
        if r.train_clips_per_video > 1:
            train = Repeated(train, r.train_clips_per_video)
        select = None
        if self.select_role == "val":
            val = subset(self.build(e.train_split, "test", r.val_clips), self.select_index)
            select = task.prepare_finetune_eval(val, seed=self.seed)
        test = task.prepare_finetune_eval(
            self.build(e.test_split, "test", r.test_clips, r.test_crops), seed=self.seed)
        if self.select_role == "test":
            select = task.prepare_finetune_eval(self.build(e.test_split, "test", r.val_clips),
                                                seed=self.seed)
        return train, select, test

    def feature_sources(self) -> dict[str, tuple[tuple, Dataset, list[int] | None,
                                                 list[int] | None]]:
        """What the linear probe and kNN extract frozen features from, per role: ``(cache key,
        dataset, keep, labels)``. Roles: the whole training split (``feature_clips`` uniform
        clips per video; ``train_index`` / ``select_index`` pick from it) and the test split
        (``test_clips``). With a ``label_range`` or ``label_groups`` the dataset is the
        unfiltered split, so every range of one dataset shares its features: keep rows
        ``keep``, whose labels become ``labels``."""
        e, r = self.experiment, self.recipe
        sources = {}
        for role, split, views, crops in (("train", e.train_split, r.feature_clips, 1),
                                          ("test", e.test_split, r.test_clips, r.test_crops)):
            base = self.build(split, "test", views, crops, ranged=False)
            dataset = self.task.prepare(base, train=False, seed=self.seed)
            wrapped = dataset is not base  # arrow of time: the reversed half depends on the seed
            key = self.key(split, "test", views, crops) + (self.task.name,
                                                           self.seed if wrapped else None)
            keep, labels = None, None
            if self.relabels:
                ranged = self.build(split, "test", views, crops)
                keep, labels = ranged.keep, ranged.targets
            sources[role] = (key, dataset, keep, labels)
        return sources
