"""The demo's stages as jobs run side by side in worker processes.

A job is a picklable call (a module-level function and its keyword arguments); its ``then``
(called in this process with the job's result) returns the jobs that were waiting for it, e.g.
a backbone's evaluation suites after its pretraining. With one worker every job runs in this
process, depth first in the order given: the plain loop. With W workers, W single-purpose
processes (spawned, each with ``cpu_count / W`` torch threads) take the jobs as they become
ready; a failing job stops the run (jobs not yet started are cancelled) and its error is raised.
Each finished job is reported with its wall time and the CPU time of its process.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

MAX_WORKERS = 2


@dataclass
class Job:
    """``fn(**kwargs)`` in a worker; ``then(result)`` -> the jobs that needed it."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict
    then: Callable[[Any], list[Job]] | None = None

    def followers(self, result: Any) -> list[Job]:
        return self.then(result) if self.then is not None else []


def default_workers(device: str) -> int:
    """One worker per CPU core, at most ``MAX_WORKERS``; one on CUDA (the jobs share one GPU)."""
    if device.startswith("cuda"):
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _timed(fn: Callable[..., Any], kwargs: dict) -> tuple[Any, float, float]:
    """``fn(**kwargs)``, its wall time and the CPU time this process spent on it."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(**kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _finished(job: Job, timed: tuple[Any, float, float]) -> list[Job]:
    from vidssl.engine.logging import console

    result, wall, cpu = timed
    console.print(f"[green]done[/]: {job.name} ({wall:.0f} s, {cpu:.0f} CPU-s)")
    return job.followers(result)


def run_jobs(jobs: list[Job], workers: int = 1) -> None:
    """Run ``jobs`` and everything their ``then`` adds; returns when all are done."""
    if workers <= 1:
        queue = list(jobs)
        while queue:
            job = queue.pop(0)
            queue[:0] = _finished(job, _timed(job.fn, job.kwargs))
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_set_threads,
                             initargs=(threads,)) as pool:
        pending: dict[Future, Job] = {pool.submit(_timed, job.fn, job.kwargs): job for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    for follower in _finished(job, future.result()):
                        pending[pool.submit(_timed, follower.fn, follower.kwargs)] = follower
        except BaseException:
            for future in pending:
                future.cancel()
            raise
