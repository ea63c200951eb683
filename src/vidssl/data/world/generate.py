"""``generate_world``: render every part of the synthetic world in parallel and write the manifest.

Each video is rendered from its own RNG ``default_rng([seed, part_number, index])``, so the
bytes of a video do not depend on the number of workers or the order in which they finish.
``manifest.json`` is written last (atomically): its presence means the world is complete, and
a later call with the same preset, seed and generator version returns it without work.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidssl.data.world.encode import write_davis, write_mp4
from vidssl.data.world.parts import PARTS, Job
from vidssl.data.world.presets import WorldPreset, resolve_preset

GENERATOR = "vidssl.data.world"
GENERATOR_VERSION = "4"  # bump whenever the bytes of a world change
MANIFEST_NAME = "manifest.json"
INCOMPLETE_MARKER = ".world-incomplete"
_PART_NUMBERS = {name: i for i, name in enumerate(PARTS)}


@dataclass
class Manifest:
    """The world's ``manifest.json`` plus where it lives.

    ``data["parts"][name]`` holds, per part: the adapter name (``dataset``) and the extra
    ``build_dataset`` options it needs (``options``, e.g. ``video_ext``), ``num_frames``,
    ``size``, ``fps``, ``splits`` (videos and per-class counts per split) and part-specific
    entries (``classes``, gym ``subsets``, repetition ``count_histogram``...).
    ``elapsed_s`` is the generation time of this call (``None`` when an existing world was reused).
    """

    root: Path
    data: dict
    elapsed_s: float | None = None

    @classmethod
    def load(cls, root: str | os.PathLike) -> Manifest:
        root = Path(root)
        path = root / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable world manifest ({exc})") from None
        if data.get("generator") != GENERATOR:
            raise ValueError(f"{path}: not written by {GENERATOR}")
        return cls(root, data)

    @property
    def preset(self) -> str:
        return self.data["preset"]

    @property
    def seed(self) -> int:
        return self.data["seed"]

    @property
    def parts(self) -> dict:
        return self.data["parts"]

    def part_root(self, name: str) -> Path:
        """Dataset root of one part, to pass to ``build_dataset(dataset, root, ...)``."""
        if name not in self.parts:
            raise KeyError(f"world has no part {name!r}; parts: {sorted(self.parts)}")
        return self.root / name

    def matches(self, preset: WorldPreset, seed: int) -> bool:
        return (self.data.get("version") == GENERATOR_VERSION and self.data.get("seed") == seed
                and self.data.get("params") == json.loads(json.dumps(preset.to_dict())))


def video_rng(seed: int, job: Job) -> np.random.Generator:
    """The RNG that draws everything about one video: ``default_rng([seed, part, index])``."""
    return np.random.default_rng([seed, _PART_NUMBERS[job.part], job.index])


def render_job(job: Job, preset: WorldPreset, seed: int, out: Path) -> dict:
    """Render one video of the world to disk and return what its scene drew."""
    part = PARTS[job.part]
    frames, ids, meta = part.scene(job, preset, video_rng(seed, job))
    if part.writer is not None:
        part.writer(out / job.part, job, frames, preset)
    elif part.frames_on_disk:
        write_davis(out / job.part, job.name, frames, ids)
    else:
        write_mp4(out / job.part / job.name, frames, preset.fps, preset.qscale)
    return meta


def _render_task(task) -> tuple[str, int, dict]:
    job, preset, seed, out = task
    try:
        return job.part, job.index, render_job(job, preset, seed, out)
    except Exception as exc:
        raise RuntimeError(f"world: rendering {out / job.part / job.name} failed: {exc!r}") from exc


def _existing(out: Path) -> Manifest | None:
    try:
        return Manifest.load(out)
    except ValueError:
        return None


def _clear_previous(out: Path) -> None:
    """Remove the part folders of an earlier (complete or interrupted) world in ``out``."""
    manifest = out / MANIFEST_NAME
    if manifest.exists() and _existing(out) is None and not (out / INCOMPLETE_MARKER).exists():
        raise FileExistsError(f"{manifest} exists and was not written by {GENERATOR}; "
                              "choose another output folder")
    if manifest.exists() or (out / INCOMPLETE_MARKER).exists():
        manifest.unlink(missing_ok=True)
        for name in PARTS:
            shutil.rmtree(out / name, ignore_errors=True)


def _pool_context():
    """``fork`` on Linux (no re-import of ``__main__``, so scripts need no main guard; workers
    only use numpy and PyAV), ``spawn`` elsewhere (fork is unsafe on macOS)."""
    methods = multiprocessing.get_all_start_methods()
    use_fork = sys.platform.startswith("linux") and "fork" in methods
    return multiprocessing.get_context("fork" if use_fork else "spawn")


def _progress_bar(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled)


def generate_world(out: str | os.PathLike, preset: str | WorldPreset = "mini", seed: int = 0,
                   workers: int = 2, progress: bool = True) -> Manifest:
    """Generate the synthetic world into ``out`` (or reuse an identical one there).

    ``preset`` is a name from ``PRESETS`` or a :class:`WorldPreset`; ``workers`` processes
    render videos in parallel (1 = in this process). Returns the :class:`Manifest`.
    """
    preset = resolve_preset(preset)
    out = Path(out)
    found = _existing(out)
    if found is not None and found.matches(preset, seed):
        return found
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    _clear_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / INCOMPLETE_MARKER).touch()

    jobs = {name: part.jobs(preset) for name, part in PARTS.items()}
    metas = {name: [None] * len(part_jobs) for name, part_jobs in jobs.items()}
    tasks = [(job, preset, seed, out) for part_jobs in jobs.values() for job in part_jobs]
    # Fork the workers before the progress bar starts its refresh thread.
    pool = _pool_context().Pool(workers) if workers > 1 else None
    try:
        results = (pool.imap_unordered(_render_task, tasks, chunksize=8) if pool
                   else map(_render_task, tasks))
        with _progress_bar(progress) as bar:
            task_id = bar.add_task(f"world '{preset.name}' (seed {seed})", total=len(tasks))
            for part, index, meta in results:
                metas[part][index] = meta
                bar.advance(task_id)
    finally:
        if pool is not None:
            pool.terminate()

    parts = {}
    for name, part in PARTS.items():
        parts[name] = {"dataset": part.dataset, "options": part.options,
                       "num_frames": getattr(preset, part.frames_field),
                       "size": getattr(preset, part.size_field), "fps": preset.fps,
                       **part.annotate(out / name, preset, jobs[name], metas[name])}
    data = {"generator": GENERATOR, "version": GENERATOR_VERSION, "preset": preset.name,
            "seed": seed, "params": preset.to_dict(), "parts": parts}
    tmp = out / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST_NAME)
    (out / INCOMPLETE_MARKER).unlink()
    return Manifest(out, data, time.perf_counter() - start)
