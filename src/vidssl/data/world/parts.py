"""The parts of the world: which videos each contains, where they go, and their annotations.

A :class:`Part` turns a preset into a list of :class:`Job` (one per video, with its split,
class and file name), has a scene function (:mod:`.scenes`) that renders one job, and an
``annotate`` function that writes the official annotation files once all videos exist and
returns the part's manifest entry.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidssl.data.world import encode, layouts, scenes
from vidssl.data.world.motions import (
    AOT_CLASSES,
    COARSE_CLASSES,
    FINE_CLASSES,
    GYM_LABELS,
    GYM_SUBSETS,
)
from vidssl.data.world.presets import WorldPreset
from vidssl.data.world.repetition import REP_CLASSES


@dataclass(frozen=True)
class Job:
    """One video to render. ``index`` (within the part) seeds it; ``name`` is relative to the part."""

    part: str
    index: int
    split: str
    label: int
    name: str
    count: int = 0  # rep_like: number of repetitions


@dataclass(frozen=True)
class Part:
    name: str
    dataset: str  # the build_dataset adapter that reads it
    scene: Callable
    jobs: Callable[[WorldPreset], list[Job]]
    annotate: Callable[[Path, WorldPreset, list[Job], list[dict]], dict]
    options: dict = field(default_factory=dict)  # extra build_dataset options it needs
    frames_on_disk: bool = False  # DAVIS-style image folders instead of mp4
    writer: Callable | None = None  # writer(part_root, job, frames, preset) instead of mp4
    frames_field: str = "num_frames"  # the preset fields giving its clip length and frame size
    size_field: str = "size"


def _split_summary(jobs: list[Job], class_names) -> dict:
    summary = {}
    for job in jobs:
        entry = summary.setdefault(job.split, {"videos": 0, "per_class": Counter()})
        entry["videos"] += 1
        entry["per_class"][class_names[job.label]] += 1
    return {s: {"videos": e["videos"], "per_class": dict(e["per_class"])} for s, e in summary.items()}


def _balanced(part: str, splits: list[tuple[str, int]], num_classes: int, name) -> list[Job]:
    """``per_class`` videos of every class in every split; ``name(split, label, i, index)``."""
    jobs = []
    for split, per_class in splits:
        for label in range(num_classes):
            for i in range(per_class):
                index = len(jobs)
                jobs.append(Job(part, index, split, label, name(split, label, i, index)))
    return jobs


def _spread(part: str, splits: list[tuple[str, int]], num_classes: int, name) -> list[Job]:
    """``videos`` per split with labels cycling through the classes."""
    jobs = []
    for split, videos in splits:
        for i in range(videos):
            index = len(jobs)
            jobs.append(Job(part, index, split, i % num_classes, name(split, i % num_classes, index)))
    return jobs


# ---- pretrain: video_list --------------------------------------------------------------


def _pretrain_jobs(p: WorldPreset) -> list[Job]:
    return _spread("pretrain", [("train", p.pretrain_videos)], len(scenes.PRETRAIN_ACTIVITIES),
                   lambda split, label, index: f"videos/pt_{index:06d}.mp4")


def _pretrain_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    layouts.write_video_list(root / "train.txt", [job.name for job in jobs])
    names = [a.name for a in scenes.PRETRAIN_ACTIVITIES]
    return {"splits": _split_summary(jobs, names),
            "domains": dict(Counter(m["domain"] for m in metas)), **_context_summary(metas),
            "note": "unlabeled for training; per_class counts the hidden activities"}


def _context_summary(metas: list[dict]) -> dict:
    """How many videos show their class's typical prop and scene (the context prior)."""
    cued = [m["context"]["typical"] for m in metas if "context" in m]
    return {"context": {"videos": len(cued), "typical_prop": sum(p for p, _ in cued),
                        "typical_scene": sum(s for _, s in cued)}}


# ---- ucf_like: ucf101 ---------------------------------------------------------------------

UCF_CLASSES = [a.motion.name for a in scenes.UCF_ACTIVITIES]
_UCF_GROUPS = {"train": (8, 18), "test": (1, 7)}  # UCF101 split 1: groups 8-25 train, 1-7 test


def _ucf_video_name(cls: str, split: str, i: int) -> str:
    """UCF101's ``v_<Class>_gGG_cCC``: the i-th video of a class in the split's groups."""
    first, groups = _UCF_GROUPS[split]
    return f"v_{cls}_g{first + i % groups:02d}_c{i // groups + 1:02d}"


def _ucf_name(split: str, label: int, i: int, index: int) -> str:
    cls = UCF_CLASSES[label]
    return f"UCF-101/{cls}/{_ucf_video_name(cls, split, i)}.mp4"


def _ucf_jobs(p: WorldPreset) -> list[Job]:
    return _balanced("ucf_like", [("train", p.ucf_train), ("test", p.ucf_test)],
                     len(UCF_CLASSES), _ucf_name)


def _ucf_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    rel = {job.index: job.name.removeprefix("UCF-101/") for job in jobs}
    layouts.write_ucf101(root, UCF_CLASSES,
                         [(rel[j.index], j.label) for j in jobs if j.split == "train"],
                         [rel[j.index] for j in jobs if j.split == "test"])
    return {"classes": UCF_CLASSES, "splits": _split_summary(jobs, UCF_CLASSES), "fold": 1,
            "activities": {a.motion.name: {"limb": a.limb, "typical_prop": a.context.prop_shape}
                           for a in scenes.UCF_ACTIVITIES}, **_context_summary(metas)}


# ---- gym_like: gym99 ----------------------------------------------------------------------

GYM_CLASSES = [m.name for m in FINE_CLASSES]


def _gym_jobs(p: WorldPreset) -> list[Job]:
    seconds = math.ceil(p.num_frames / p.fps)
    return _balanced("gym_like", [("train", p.gym_train), ("val", p.gym_test)], len(GYM_CLASSES),
                     lambda split, label, i, index:
                     f"videos/gw{index:09d}_E_000000_{seconds:06d}_A_0000_{seconds:04d}.mp4")


def _gym_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    rows = {split: [(j.name.removeprefix("videos/"), GYM_LABELS[j.label])
                    for j in jobs if j.split == split] for split in ("train", "val")}
    # FineGym's "set" column: one per motion family (four variants each).
    layouts.write_gym99(root, rows, [(label, 1 + i // 4, m.description)
                                     for i, (label, m) in enumerate(zip(GYM_LABELS, FINE_CLASSES))])
    return {"classes": GYM_CLASSES, "splits": _split_summary(jobs, GYM_CLASSES),
            "label_ids": dict(zip(GYM_CLASSES, GYM_LABELS)),
            "subsets": {name: [lo, hi] for name, (lo, hi) in GYM_SUBSETS.items()},
            "events": {"vault": [0, 5], "floor": [6, 40], "uneven_bars": [74, 88]},
            "note": "gym99 label ids are sparse: the families sit inside FineGym's real "
                    "label ranges, so the gym_vault/gym_floor/gym_fx_s1/gym_ub_s1 adapters "
                    "cut them; unused ids have no videos"}


# ---- ssv2_like: ssv2 ----------------------------------------------------------------------

SSV2_TEMPLATES = [t for t, _ in scenes.SSV2_TEMPLATES]


def _ssv2_jobs(p: WorldPreset) -> list[Job]:
    return _balanced("ssv2_like", [("train", p.ssv2_train), ("validation", p.ssv2_test)],
                     len(SSV2_TEMPLATES),
                     lambda split, label, i, index: f"20bn-something-something-v2/{index + 1}.mp4")


def _ssv2_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    rows = {split: [(str(j.index + 1), j.label, m["placeholders"])
                    for j, m in zip(jobs, metas) if j.split == split]
            for split in ("train", "validation")}
    layouts.write_ssv2(root, SSV2_TEMPLATES, rows)
    classes = [layouts.ssv2_class_name(t) for t in SSV2_TEMPLATES]
    return {"classes": classes, "splits": _split_summary(jobs, classes)}


# ---- rep_like: ucfrep ---------------------------------------------------------------------


def _rep_jobs(p: WorldPreset) -> list[Job]:
    jobs, per_class = [], Counter()
    for split, videos in (("train", p.rep_train_videos), ("val", p.rep_val_videos)):
        for i in range(videos):
            label = i % len(REP_CLASSES)
            count = 1 + (i // len(REP_CLASSES)) % p.rep_max_count
            m, cls = per_class[label], REP_CLASSES[label]
            per_class[label] += 1
            name = f"v_{cls}_g{m % 25 + 1:02d}_c{m // 25 + 1:02d}"
            jobs.append(Job("rep_like", len(jobs), split, label, f"videos/{cls}/{name}.mp4", count))
    return jobs


def _rep_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    counts = {}
    for job, meta in zip(jobs, metas):
        video = Path(job.name).stem
        layouts.write_ucfrep_mat(root / "annotations" / job.split / f"{video}.mat",
                                 p.rep_frames, meta["bounds"])
        histogram = counts.setdefault(job.split, Counter())
        histogram[str(len(meta["bounds"]) - 1)] += 1
    return {"classes": list(REP_CLASSES), "splits": _split_summary(jobs, REP_CLASSES),
            "count_histogram": {s: dict(sorted(c.items())) for s, c in counts.items()},
            "frame_numbers": "1-based (MATLAB), as image_%05d.jpg frame folders"}


# ---- charades_like: charades --------------------------------------------------------------

CHARADES_CLASSES = [m.description.capitalize() for m in COARSE_CLASSES]


def _charades_id(index: int) -> str:
    return f"W{index:04X}"


def _charades_jobs(p: WorldPreset) -> list[Job]:
    return _spread("charades_like", [("train", p.charades_train_videos),
                                     ("test", p.charades_test_videos)], 1,
                   lambda split, label, index: f"Charades_v1_480/{_charades_id(index)}.mp4")


def _charades_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    splits, per_class = {}, {}
    length = p.num_frames / p.fps
    for job, meta in zip(jobs, metas):
        actions = ";".join(f"c{label:03d} {start / p.fps:.2f} {end / p.fps:.2f}"
                           for label, start, end in meta["actions"])
        script = " ".join(f"A {shape} is {COARSE_CLASSES[label].description}."
                          for (label, _, _), shape in zip(meta["actions"], meta["shapes"]))
        splits.setdefault(job.split, []).append({
            "id": _charades_id(job.index), "subject": "WORLD", "scene": "Synthetic room",
            "quality": 7, "relevance": 7, "verified": "Yes", "script": script,
            "objects": ";".join(meta["shapes"]), "descriptions": script, "actions": actions,
            "length": f"{length:.2f}"})
        tally = per_class.setdefault(job.split, {"videos": 0, "per_class": Counter()})
        tally["videos"] += 1
        tally["per_class"].update(CHARADES_CLASSES[a[0]] for a in meta["actions"])
    layouts.write_charades(root, CHARADES_CLASSES, splits)
    return {"classes": CHARADES_CLASSES,
            "splits": {s: {"videos": t["videos"], "per_class": dict(t["per_class"])}
                       for s, t in per_class.items()},
            "note": "per_class counts action instances (multi-label)"}


# ---- aot_like: video_list -------------------------------------------------------------------

AOT_NAMES = [m.name for m in AOT_CLASSES]


def _aot_jobs(p: WorldPreset) -> list[Job]:
    return _spread("aot_like", [("train", p.aot_train_videos), ("test", p.aot_test_videos)],
                   len(AOT_NAMES), lambda split, label, index: f"videos/aot_{index:06d}.mp4")


def _aot_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    for split in ("train", "test"):
        layouts.write_video_list(root / f"{split}.txt", [j.name for j in jobs if j.split == split])
    return {"splits": _split_summary(jobs, AOT_NAMES),
            "note": "all videos play forward; the arrow-of-time task reverses half of them"}


# ---- masks: DAVIS -------------------------------------------------------------------------


def _mask_jobs(p: WorldPreset) -> list[Job]:
    return _spread("masks", [("val", p.mask_videos)], len(COARSE_CLASSES),
                   lambda split, label, index: f"{COARSE_CLASSES[label].name.lower()}-{index:02d}")


def _mask_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    return {"videos": [j.name for j in jobs], "frames": p.num_frames, "size": p.mask_size,
            "objects_per_video": {j.name: len(m["motions"]) for j, m in zip(jobs, metas)}}


# ---- ava_like: ava --------------------------------------------------------------------------

AVA_ACTION_NAMES = [m.description for m in scenes.AVA_ACTIONS]
AVA_START_SECOND = 900  # AVA's clips are seconds 900-1800 of each movie


def _ava_video(index: int) -> str:
    return f"world{index:06d}"  # 11 characters, like a YouTube id


def _ava_jobs(p: WorldPreset) -> list[Job]:
    return _spread("ava_like", [("train", p.ava_train_videos), ("val", p.ava_test_videos)], 1,
                   lambda split, label, index: f"frames/{_ava_video(index)}")


def _ava_write(root: Path, job: Job, frames, preset: WorldPreset) -> None:
    video = _ava_video(job.index)
    encode.write_frames(root / "frames" / video, frames, f"{video}_%06d.jpg")


def _ava_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    splits: dict = {}
    boxes = {split: Counter() for split in ("train", "val")}
    for job, meta in zip(jobs, metas):
        video, data = _ava_video(job.index), splits.setdefault(
            job.split, {"videos": {}, "gt": [], "detections": []})
        data["videos"][video] = p.ava_frames
        for person, actor in enumerate(meta["people"]):
            for second, box in zip(meta["seconds"], actor["boxes"]):
                data["gt"] += [(video, AVA_START_SECOND + second, box, a + 1, person)
                               for a in actor["actions"]]
            boxes[job.split].update(AVA_ACTION_NAMES[a] for a in actor["actions"])
        data["detections"] += [(video, AVA_START_SECOND + second, box, score)
                               for second, box, score in meta["detections"]]
    first_val = next(j for j in jobs if j.split == "val")
    excluded = [(_ava_video(first_val.index), AVA_START_SECOND + p.ava_seconds - 1)]
    layouts.write_ava(root, AVA_ACTION_NAMES, splits, excluded)
    return {"options": {"fps": p.ava_fps, "num_classes": len(AVA_ACTION_NAMES)},
            "classes": AVA_ACTION_NAMES,
            "splits": {s: {"videos": len(d["videos"]), "per_class": dict(boxes[s])}
                       for s, d in splits.items()},
            "keyframes_per_video": p.ava_seconds - 1, "excluded": [list(e) for e in excluded],
            "note": "per_class counts actors (whole videos) per action; keyframes at 1 Hz"}


# ---- ucf24_like: ucf24 ----------------------------------------------------------------------

UCF24_CLASSES = [m.name for m in scenes.UCF24_ACTIONS]


def _ucf24_name(split: str, label: int, i: int, index: int) -> str:
    cls = UCF24_CLASSES[label]
    return f"{cls}/{_ucf_video_name(cls, split, i)}"


def _ucf24_jobs(p: WorldPreset) -> list[Job]:
    return _balanced("ucf24_like", [("train", p.ucf24_train), ("test", p.ucf24_test)],
                     len(UCF24_CLASSES), _ucf24_name)


def _ucf24_write(root: Path, job: Job, frames, preset: WorldPreset) -> None:
    encode.write_mp4(root / "videos" / f"{job.name}.mp4", frames, preset.fps, preset.qscale)


def _ucf24_annotate(root: Path, p: WorldPreset, jobs: list[Job], metas: list[dict]) -> dict:
    layouts.write_ucf24(
        root / "UCF101v2-GT.pkl", UCF24_CLASSES,
        {j.name: {j.label: m["tubes"]} for j, m in zip(jobs, metas)},
        {j.name: p.ucf24_frames for j in jobs}, {j.name: (p.det_size, p.det_size) for j in jobs},
        [j.name for j in jobs if j.split == "train"], [j.name for j in jobs if j.split == "test"])
    return {"classes": UCF24_CLASSES, "splits": _split_summary(jobs, UCF24_CLASSES),
            "tubes": sum(len(m["tubes"]) for m in metas)}


PARTS: dict[str, Part] = {p.name: p for p in (
    Part("pretrain", "video_list", scenes.pretrain_scene, _pretrain_jobs, _pretrain_annotate,
         frames_field="pretrain_frames"),
    Part("ucf_like", "ucf101", scenes.ucf_scene, _ucf_jobs, _ucf_annotate),
    Part("gym_like", "gym99", scenes.gym_scene, _gym_jobs, _gym_annotate),
    Part("ssv2_like", "ssv2", scenes.ssv2_scene, _ssv2_jobs, _ssv2_annotate, {"video_ext": "mp4"}),
    Part("rep_like", "ucfrep", scenes.rep_scene, _rep_jobs, _rep_annotate, {"video_ext": "mp4"},
         frames_field="rep_frames"),
    Part("charades_like", "charades", scenes.charades_scene, _charades_jobs, _charades_annotate),
    Part("aot_like", "video_list", scenes.aot_scene, _aot_jobs, _aot_annotate),
    Part("masks", "davis", scenes.mask_scene, _mask_jobs, _mask_annotate, frames_on_disk=True,
         size_field="mask_size"),
    Part("ava_like", "ava", scenes.ava_scene, _ava_jobs, _ava_annotate, writer=_ava_write,
         frames_field="ava_frames", size_field="det_size"),
    Part("ucf24_like", "ucf24", scenes.ucf24_scene, _ucf24_jobs, _ucf24_annotate,
         {"video_ext": "mp4"}, writer=_ucf24_write, frames_field="ucf24_frames",
         size_field="det_size"),
)}
