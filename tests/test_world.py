"""Synthetic motion world: layouts read by the real adapters, manifest, determinism, motion."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from vidssl.data import build_dataset
from vidssl.data.datasets import finegym
from vidssl.data.world import GYM_SUBSETS, PRESETS, Manifest, appearance, generate_world, scenes
from vidssl.data.world.generate import video_rng
from vidssl.data.world.motions import AOT_CLASSES, FINE_CLASSES, GYM_LABELS, Track
from vidssl.data.world.parts import PARTS, Job
from vidssl.io import read_clip

torch.set_num_threads(1)

TINY = replace(
    PRESETS["mini"], name="tiny", num_frames=8, pretrain_videos=6, ucf_train=2, ucf_test=1,
    gym_train=1, gym_test=1, ssv2_train=1, ssv2_test=1, rep_train_videos=8, rep_val_videos=4,
    charades_train_videos=4, charades_test_videos=2, aot_train_videos=3, aot_test_videos=3,
    mask_videos=2, mask_size=32, ava_train_videos=2, ava_test_videos=1, ucf24_train=1,
    ucf24_test=1,
)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Manifest:
    return generate_world(tmp_path_factory.mktemp("world"), TINY, seed=3, workers=1,
                          progress=False)


def _build(world: Manifest, part: str, name: str, split: str, **opts):
    opts = {"num_frames": 8, "size": 32, "mode": "test", **world.parts[part]["options"], **opts}
    return build_dataset(name, world.part_root(part), split, index_workers=1,
                         cache_dir=str(world.root.parent / "index"), **opts)


CLASSIFICATION = [("ucf_like", "ucf101", "train", "train"), ("ucf_like", "ucf101", "test", "test"),
                  ("gym_like", "gym99", "train", "train"), ("gym_like", "gym99", "test", "val"),
                  ("ssv2_like", "ssv2", "train", "train"),
                  ("ssv2_like", "ssv2", "test", "validation")]


@pytest.mark.parametrize("part,name,split,official", CLASSIFICATION)
def test_classification_parts_parse_and_match_manifest(world, part, name, split, official):
    ds = _build(world, part, name, split)
    entry = world.parts[part]["splits"][official]
    assert len(ds) == entry["videos"]
    names = world.parts[part]["classes"]
    ids = world.parts[part].get("label_ids", {c: i for i, c in enumerate(names)})
    counted = {c: sum(t == ids[c] for t in ds.targets) for c in names}
    assert counted == entry["per_class"]
    sample = ds[len(ds) - 1]
    assert sample["video"].shape == (3, 8, 32, 32) and sample["bad"] == 0


def test_gym_subsets_are_the_real_finegym_ranges(world):
    for subset, (low, high) in GYM_SUBSETS.items():
        assert finegym.VARIANTS[subset][1:] == (low, high)
        ds = _build(world, "gym_like", subset, "train")
        inside = [i for i, label in enumerate(GYM_LABELS) if low <= label <= high]
        assert ds.num_classes == high - low + 1
        assert sorted(set(ds.targets)) == [GYM_LABELS[i] - low for i in inside]
        assert len(ds) == len(inside) * TINY.gym_train


def test_unlabelled_lists_parse(world):
    pretrain = _build(world, "pretrain", "video_list", "train")
    assert len(pretrain) == TINY.pretrain_videos and pretrain[0]["label"] == -1
    for split, videos in (("train", TINY.aot_train_videos), ("test", TINY.aot_test_videos)):
        aot = _build(world, "aot_like", "video_list", split)
        assert len(aot) == videos == world.parts["aot_like"]["splits"][split]["videos"]


def test_charades_multilabel_matches_csv(world):
    ds = _build(world, "charades_like", "charades", "train")
    assert ds.task == "multilabel" and ds.num_classes == len(world.parts["charades_like"]["classes"])
    targets = ds.targets
    per_class = dict(zip(world.parts["charades_like"]["classes"], targets.sum(0).int().tolist()))
    expected = world.parts["charades_like"]["splits"]["train"]["per_class"]
    assert {k: v for k, v in per_class.items() if v} == expected
    assert ((targets.sum(1) >= 2) & (targets.sum(1) <= 3)).all()  # 2-3 acting actors per video
    assert torch.equal(ds[0]["label"], targets[0])


def test_repetition_annotations_parse_and_count(world):
    ds = _build(world, "rep_like", "ucfrep", "test", num_frames=16)
    histogram = world.parts["rep_like"]["count_histogram"]["val"]
    counts = [int(record.label) for record in ds.records]
    assert {str(k): counts.count(k) for k in set(counts)} == histogram
    # the test window is the annotated segment, so the clip holds every cycle
    assert [ds[i]["count"] for i in range(len(ds))] == [float(c) for c in counts]


def test_masks_are_davis_layout(world):
    root = world.part_root("masks")
    for video in world.parts["masks"]["videos"]:
        images = sorted((root / "JPEGImages" / video).glob("*.jpg"))
        masks = sorted((root / "Annotations" / video).glob("*.png"))
        assert [p.stem for p in images] == [f"{i:05d}" for i in range(TINY.num_frames)]
        assert [p.stem for p in masks] == [p.stem for p in images]
        mask = Image.open(masks[0])
        assert mask.mode == "P" and mask.size == (TINY.mask_size, TINY.mask_size)
        objects = world.parts["masks"]["objects_per_video"][video]
        labels = set(np.unique(np.stack([np.array(Image.open(m)) for m in masks])).tolist())
        assert labels == set(range(objects + 1))


def test_manifest_totals_and_decoded_frames_match_render(world):
    data = json.loads((world.root / "manifest.json").read_text())
    assert data["params"] == TINY.to_dict() and data["seed"] == 3
    for name, part in PARTS.items():
        entry = data["parts"][name]
        listed = entry["videos"] if name == "masks" else entry["splits"]
        videos = len(listed) if name == "masks" else sum(s["videos"] for s in listed.values())
        assert videos == len(part.jobs(TINY)) > 0
    job = PARTS["ucf_like"].jobs(TINY)[0]
    frames, _, _ = PARTS["ucf_like"].scene(job, TINY, video_rng(3, job))
    decoded = read_clip(world.part_root("ucf_like") / job.name, range(TINY.num_frames)).numpy()
    mse = np.mean((decoded.astype(float) - frames.astype(float)) ** 2)
    # PSNR: the file holds the rendered clip (the codec drops part of the fresh sensor noise)
    assert 10 * np.log10(255**2 / mse) > 27


def test_same_seed_same_bytes_and_reuse(tmp_path, world):
    again = generate_world(tmp_path / "a", TINY, seed=3, workers=2, progress=False)
    assert again.elapsed_s is not None
    assert _digests(tmp_path / "a") == {k: v for k, v in _digests(world.root).items()
                                        if not k.endswith(".vidssl_index.json")}
    reused = generate_world(tmp_path / "a", TINY, seed=3, progress=False)
    assert reused.elapsed_s is None and reused.data == again.data
    other = generate_world(tmp_path / "a", replace(TINY, ucf_train=1), seed=4, workers=1,
                           progress=False)
    assert other.elapsed_s is not None
    files = _digests(tmp_path / "a")
    assert len(files) < len(_digests(world.root))  # stale videos of the old world removed
    assert files["ucf_like/ucfTrainTestlist/classInd.txt"]
    same_name = "pretrain/videos/pt_000000.mp4"
    assert files[same_name] != _digests(world.root)[same_name]  # another seed, other video


def test_bad_inputs_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown world preset"):
        generate_world(tmp_path, "huge")
    with pytest.raises(ValueError, match="size must be even"):
        replace(TINY, size=33)
    with pytest.raises(ValueError, match="rep_max_count"):
        replace(TINY, rep_frames=16)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(FileExistsError, match="not written by"):
        generate_world(tmp_path, TINY, progress=False)


def _mask_signal(ids: np.ndarray) -> np.ndarray:
    """Per frame: distance of the actor's centroid from its rest position (in actor radii)
    plus its relative change of area; one bump per repetition of any rep_like motion."""
    mask = (ids == 1).astype(float)
    area = mask.sum((1, 2))
    ys, xs = np.mgrid[0:ids.shape[1], 0:ids.shape[2]]
    centre = np.stack([(mask * xs).sum((1, 2)), (mask * ys).sum((1, 2))], 1) / area[:, None]
    radius = np.sqrt(area[0] / np.pi)
    return np.linalg.norm(centre - centre[0], axis=1) / radius + np.abs(area / area[0] - 1)


def _count_bumps(signal: np.ndarray) -> int:
    """Separate excursions above half the maximum (each cycle returns to the rest pose), with
    hysteresis: a bump ends only below a quarter of the maximum (camera shake jitters ~1 px)."""
    count, inside = 0, False
    for value in signal / signal.max():
        if not inside and value > 0.5:
            count, inside = count + 1, True
        elif inside and value < 0.25:
            inside = False
    return count


def test_repetition_counts_match_rendered_motion(world, monkeypatch):
    monkeypatch.setattr(appearance, "SHAKE_PX", 0.0)  # count the motion, not the camera's
    root = world.part_root("rep_like")
    preset = replace(TINY, rep_train_videos=24, rep_val_videos=0)
    jobs = PARTS["rep_like"].jobs(preset)
    counted, annotated = [], []
    for job in jobs:
        _, ids, meta = scenes.rep_scene(job, preset, video_rng(0, job))
        counted.append(_count_bumps(_mask_signal(ids)))
        annotated.append(len(meta["bounds"]) - 1)
    assert counted == annotated == [job.count for job in jobs]
    # and the .mat files hold the same boundaries the renderer used (1-based)
    for job in PARTS["rep_like"].jobs(TINY):
        mat = scipy.io.loadmat(root / "annotations" / job.split / f"{Path(job.name).stem}.mat")
        label = mat["label"][0, 0]
        _, ids, meta = scenes.rep_scene(job, TINY, video_rng(3, job))
        assert label["temporal_bound"][:, 0].tolist() == [b + 1 for b in meta["bounds"]]
        assert _count_bumps(_mask_signal(ids)) == job.count
        assert label["offset_next_estimate"].shape == (1, meta["bounds"][-1] - meta["bounds"][0] + 1)


@pytest.mark.parametrize("p_context", [0.0, 1.0])
def test_context_prior_ties_prop_and_set_to_the_class(p_context):
    """ucf_like at p_context 1: every video holds its class's typical prop in its typical set;
    at 0 both cues are random (typical by chance: 1/6 each)."""
    preset = replace(TINY, p_context=p_context)
    typical, props = [], set()
    for job in PARTS["ucf_like"].jobs(replace(preset, ucf_train=3, ucf_test=0)):
        _, _, meta = scenes.ucf_scene(job, preset, video_rng(0, job))
        expected = scenes.typical_context(job.label)
        typical.append(meta["context"]["typical"])
        props.add((job.label, meta["context"]["prop"], meta["context"]["layout"]))
        assert meta["context"]["typical"] == [meta["context"]["prop"] == expected.prop_shape,
                                              meta["context"]["layout"] == expected.scene_layout]
    if p_context:
        assert np.all(typical) and len(props) == 10
    else:
        assert np.mean(typical) < 0.4 and len(props) > 20


def test_typical_contexts_are_distinct():
    contexts = [scenes.typical_context(label) for label in range(36)]
    assert len(set(contexts)) == 36


def test_pretrain_videos_are_several_takes_of_one_activity(world):
    """A pretraining video is ``pretrain_takes`` clips long and its activities (incl. the
    context priors) are the ucf_like ones plus the gym_like elements."""
    entry = world.parts["pretrain"]
    assert entry["num_frames"] == TINY.num_frames * TINY.pretrain_takes
    job = PARTS["pretrain"].jobs(TINY)[0]
    clip = read_clip(world.part_root("pretrain") / job.name, range(entry["num_frames"]))
    assert clip.shape[0] == TINY.num_frames * TINY.pretrain_takes
    names = [a.name for a in scenes.PRETRAIN_ACTIVITIES]
    assert names == [a.name for a in scenes.UCF_ACTIVITIES + scenes.GYM_ACTIVITIES]
    assert scenes.PRETRAIN_ACTIVITIES[:10] == scenes.UCF_ACTIVITIES


def test_ssv2_templates_come_in_time_reversed_pairs():
    """Templates 2k and 2k+1 render the same drawn motion played forwards and backwards."""
    t = np.linspace(0.0, 1.0, 8)
    templates = [template for _, template in scenes.SSV2_TEMPLATES]
    for forward, backward in zip(templates[0::2], templates[1::2]):
        if forward.pair is scenes.closer:  # closer/apart draw their own reversal
            continue
        a = forward.tracks(np.random.default_rng(5), t, 0.1, 0.1)
        b = backward.tracks(np.random.default_rng(5), t, 0.1, 0.1)
        for fa, fb in zip(a, b):
            np.testing.assert_allclose(fa.pos, fb.pos[::-1])
            np.testing.assert_allclose(fa.scale, fb.scale[::-1])
        assert backward.reverse != forward.reverse


@pytest.mark.parametrize("motion", AOT_CLASSES, ids=lambda m: m.name)
def test_arrow_of_time_motions_lose_energy(motion):
    """Forward clips slow down (speed in the second half < first half); reversed ones speed up."""
    for seed in range(20):
        track = motion.sample(np.random.default_rng(seed), 32)
        speed = np.linalg.norm(np.diff(track.pos, axis=0), axis=1)
        assert speed[16:].mean() < 0.7 * speed[:15].mean()


def _descriptors(ids: np.ndarray) -> np.ndarray:
    """``[N,T,6]`` from the actor masks: area, centroid, second moments (shape orientation)."""
    _, _, height, width = ids.shape
    ys, xs = (np.mgrid[0:height, 0:width] / width).astype(np.float32)
    m = (ids == 1).astype(np.float32)
    a = m.sum((2, 3)) + 1e-6
    cx, cy = (m * xs).sum((2, 3)) / a, (m * ys).sum((2, 3)) / a
    dx, dy = xs - cx[..., None, None], ys - cy[..., None, None]
    sxx, syy = (m * dx * dx).sum((2, 3)) / a, (m * dy * dy).sum((2, 3)) / a
    sxy = (m * dx * dy).sum((2, 3)) / a
    return np.stack([a / (height * width), cx, cy, sxx - syy, 2 * sxy, sxx + syy], -1)


def _clip_features(ids: np.ndarray) -> np.ndarray:
    """Motion features of a clip, blind to where the actor is: speeds, turning, distance from
    the start, rotation of the shape axis, area change, extent of the path, speed spectrum."""
    d = _descriptors(ids)
    pos = d[..., 1:3]
    step = np.diff(pos, axis=1)
    speed = np.linalg.norm(step, axis=-1)
    heading = np.arctan2(step[..., 1], step[..., 0])
    turn = np.abs(np.angle(np.exp(1j * np.diff(heading, axis=1))))
    axis = np.arctan2(d[..., 4], d[..., 3])
    spin = np.abs(np.angle(np.exp(1j * np.diff(axis, axis=1))))
    return np.concatenate([speed, turn, np.linalg.norm(pos - pos[:, :1], axis=-1), spin,
                           d[..., 0] / d[:, :1, 0], np.sort(np.ptp(pos, axis=1), 1),
                           np.abs(np.fft.rfft(speed, axis=1))], 1)


def _frame_features(frames: np.ndarray, ids: np.ndarray, rng) -> np.ndarray:
    """One random frame per clip: its pixels and the same mask descriptors, at that frame."""
    t = rng.integers(0, frames.shape[1], len(frames))
    rows = np.arange(len(frames))
    pixels = frames[rows, t].reshape(len(frames), -1) / 255.0
    return np.concatenate([pixels, _descriptors(ids)[rows, t]], 1)


def _linear_probe(train_x, train_y, test_x, test_y) -> float:
    """Multinomial logistic regression (standardized features, Adam, weight decay)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    a = torch.tensor((train_x - mean) / std, dtype=torch.float32)
    b = torch.tensor((test_x - mean) / std, dtype=torch.float32)
    torch.manual_seed(0)
    model = torch.nn.Linear(a.shape[1], int(train_y.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2, weight_decay=1e-3)
    target = torch.tensor(train_y)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(a), target).backward()
        optimizer.step()
    with torch.no_grad():
        return (model(b).argmax(1).numpy() == test_y).mean()


@pytest.mark.slow
def test_fine_grained_classes_need_motion_not_a_frame():
    """gym_like: a linear model on motion features of the clip learns the 16 variants; the same
    model on one frame (pixels + actor mask descriptors) reads the event from the apparatus
    (vault, floor, bars) but not the element within it: at most the event-level ceiling
    (4/16 x 1/4 + 8/16 x 1/8 + 4/16 x 1/4 = 3/16), far below the clip's accuracy."""
    preset = PRESETS["mini"]

    def render(split, per_class, offset):
        frames, ids, labels = [], [], []
        for label in range(len(FINE_CLASSES)):
            for i in range(per_class):
                index = offset + label * per_class + i
                job = Job("gym_like", index, split, label, "")
                clip, mask, _ = scenes.gym_scene(job, preset, np.random.default_rng([11, index]))
                frames.append(clip), ids.append(mask), labels.append(label)
        return np.stack(frames), np.stack(ids), np.array(labels)

    train_frames, train_ids, train_y = render("train", 30, 0)
    test_frames, test_ids, test_y = render("val", 15, 10_000)
    clip_acc = _linear_probe(_clip_features(train_ids), train_y, _clip_features(test_ids), test_y)
    rng = np.random.default_rng(0)
    frame_acc = _linear_probe(_frame_features(train_frames, train_ids, rng), train_y,
                              _frame_features(test_frames, test_ids, rng), test_y)
    chance = 1 / len(FINE_CLASSES)
    assert clip_acc > 6 * chance, clip_acc
    assert frame_acc < 3 / 16 + 0.06, frame_acc
    events = np.searchsorted([4, 12], train_y, side="right"), np.searchsorted([4, 12], test_y, side="right")
    event_acc = _linear_probe(_frame_features(train_frames, train_ids, rng), events[0],
                              _frame_features(test_frames, test_ids, rng), events[1])
    assert event_acc > 0.8, event_acc


def test_limb_is_hinged_on_the_body_and_follows_its_program():
    """A rigid (hold) limb keeps its distance to the body's centre and turns with the body; a
    rotate limb turns on its own; the prop sits at the limb's tip."""
    from vidssl.data.world.appearance import sample_appearance
    from vidssl.data.world.figures import JOINT, LIMB_LENGTH, articulate, prop_appearance

    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 16)
    body = sample_appearance(rng, ("ellipse",), 0.5, (0.2, 0.2))
    spin = Track(np.full((16, 2), 0.5), np.pi * t, np.ones(16))
    prop = prop_appearance(rng, "star", 0.3)
    limb, _, held = articulate(rng, body, spin, "hold", t, prop).shapes
    reach = np.linalg.norm(limb[1].pos - spin.pos, axis=1)
    np.testing.assert_allclose(reach, reach[0], atol=1e-9)  # rigid
    np.testing.assert_allclose(np.diff(limb[1].angle), np.diff(spin.angle))  # turns with the body
    tip = np.linalg.norm(held[1].pos - limb[1].pos, axis=1)
    np.testing.assert_allclose(tip, LIMB_LENGTH * body.radius + prop.radius, atol=1e-9)
    assert JOINT * body.radius < reach[0] < (JOINT + LIMB_LENGTH) * body.radius + 1e-9
    still = Track.still(16).shifted([0.5, 0.5])
    limb, _ = articulate(rng, body, still, "rotate", t).shapes
    assert abs(limb[1].angle[-1] - limb[1].angle[0]) > 2 * np.pi * 0.99  # >= one full turn


def test_sensor_noise_is_fresh_in_every_frame(monkeypatch):
    """The same scene rendered with and without sensor noise differs by N(0, sigma^2),
    sigma in 0.006-0.012, drawn anew in every frame (uncorrelated from frame to frame)."""
    from vidssl.data.world import render as render_module
    from vidssl.data.world.appearance import make_backdrop

    def draw(noise):
        monkeypatch.setattr(render_module, "NOISE", noise)
        rng = np.random.default_rng(1)
        backdrop = make_backdrop("studio", rng, 32, 8)
        return render_module.render(backdrop, [], 32, rng)[0].astype(float) / 255.0

    noise = draw((0.006, 0.012)) - draw((0.0, 0.0))
    sigma = noise.std(axis=(1, 2, 3))
    assert np.all((sigma > 0.005) & (sigma < 0.014)), sigma
    correlation = np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1]
    assert abs(correlation) < 0.1  # fresh per frame, not frozen grain


def test_p_context_reaches_the_preset_from_the_command_line():
    from vidssl.cli import build_parser
    from vidssl.data.world.presets import resolve_preset

    assert resolve_preset("mini").p_context == 0.5
    assert resolve_preset("mini", 0.0) == replace(PRESETS["mini"], p_context=0.0)
    for command in (["world", "--out", "w", "--p-context", "0"], ["demo", "--p-context", "0"]):
        assert build_parser().parse_args(command).p_context == 0.0
    with pytest.raises(ValueError, match="p_context"):
        resolve_preset("tiny", 1.5)
