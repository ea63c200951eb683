"""SEVERE evaluation: protocols (fine-tuning, linear probe, kNN), tasks and metrics, suites
(factor -> experiments), the resumable suite runner, and the report.

    from vidssl.evaluation import run_suite, compare_runs
    run_suite("mini", checkpoint="runs/tc/checkpoints/last.pt", data_root="world",
              out="runs/eval_tc")
    compare_runs(["runs/eval_tc", "runs/eval_scratch"], out="runs/compare")

Unsupervised video object segmentation lives in ``vidssl.evaluation.segmentation``.
"""
from vidssl.evaluation.instruments import appearance_motion
from vidssl.evaluation.report import compare_runs, load_results, write_report
from vidssl.evaluation.runner import BackboneSource, run_experiment, run_suite
from vidssl.evaluation.suite import Experiment, Recipe, Suite, load_suite
from vidssl.evaluation.tasks import TASKS, ArrowOfTimeDataset, Task, build_task

__all__ = [
    "TASKS",
    "ArrowOfTimeDataset",
    "BackboneSource",
    "Experiment",
    "Recipe",
    "Suite",
    "Task",
    "appearance_motion",
    "build_task",
    "compare_runs",
    "load_results",
    "load_suite",
    "run_experiment",
    "run_suite",
    "write_report",
]
