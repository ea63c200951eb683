"""Bias profile of a suite run: how much of each split's label one frame gives away.

The experiments of a bias suite (``mini_bias.yaml``) train the same split with the recipe's
``frame_order`` = ``full``, ``single`` (one frame repeated) and ``shuffled`` (frames in a
random order). Experiments are the same *split* when they read the same labels of the same
data (dataset, root, splits, task, ``num_samples``, ``label_range``, ``label_groups``). Per
split, with accuracies ``a`` (top-1 %, mean over seeds) and ``C`` the classes with training
videos::

    chance = 100 / C
    static ratio   = a_single / a_full     (1: one frame is enough; 0: it tells nothing)
    above chance   = a_single / chance     (about 1: one frame is a guess)

    from vidssl.evaluation.bias import bias_table
    print(bias_table("runs/bias"))
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

FRAME_ORDERS = ("full", "single", "shuffled")
SPLIT_FIELDS = ("dataset", "root", "train_split", "test_split", "task", "num_samples",
                "label_range", "label_groups")
NEAR_CHANCE = 1.5  # single-frame accuracy within this factor of chance reads as a guess
STATIC, MIXED = 0.8, 0.4  # static ratio bands: static >= 0.8 > mixed >= 0.4 > temporal
ORDER_MATTERS = 0.9  # shuffled / full below this: the frame order carries label information


def split_key(experiment: dict) -> str:
    """Identifies the labelled data an experiment trains and tests on (``SPLIT_FIELDS``)."""
    return json.dumps([experiment.get(name) for name in SPLIT_FIELDS])


def bias_rows(experiments: list[dict], results: dict) -> list[dict]:
    """One row per split that has a ``full`` experiment, in suite order: ``label``,
    ``classes``, ``chance``, ``full`` / ``single`` / ``shuffled`` (accuracy or None),
    ``single_over_full``, ``single_over_chance`` and ``reading``.

    ``experiments``: the run's ``suite.yaml`` experiments (fields + ``recipe_resolved``);
    ``results``: its method block's ``experiments`` (``results.json``)."""
    splits: dict[str, dict] = {}
    for experiment in experiments:
        order = (experiment.get("recipe_resolved") or {}).get("frame_order", "full")
        row = splits.setdefault(split_key(experiment), {"label": None, "classes": None})
        result = results.get(experiment["name"]) or {}
        if order == "full":
            row["label"] = experiment.get("label") or experiment["name"]
        if result.get("status") == "done":
            row[order] = result["metrics"][result["metric"]]["mean"]
            row["classes"] = row["classes"] or result.get("classes")
    return [_with_ratios(row) for row in splits.values() if row["label"] is not None]


def _with_ratios(row: dict) -> dict:
    """The row with chance, the two ratios and its reading added."""
    full, single = row.get("full"), row.get("single")
    chance = 100.0 / row["classes"] if row.get("classes") else None
    return {**{order: row.get(order) for order in FRAME_ORDERS}, **row, "chance": chance,
            "single_over_full": _ratio(single, full),
            "single_over_chance": _ratio(single, chance),
            "reading": reading(full, single, row.get("shuffled"), chance)}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def reading(full: float | None, single: float | None, shuffled: float | None,
            chance: float | None) -> str:
    """One line on a split: untrained (full within ``NEAR_CHANCE`` x chance), temporal
    (single within it), else static / mixed / mostly temporal by ``single / full``
    (``STATIC``, ``MIXED``); plus whether shuffling the frames costs accuracy
    (``shuffled / full < ORDER_MATTERS``)."""
    if full is None or single is None:
        return "incomplete: the full-clip or single-frame run is missing"
    if chance is not None and full <= NEAR_CHANCE * chance:
        return "not learned: the full clip is near chance, so the ratios say nothing"
    ratio = single / full if full else 0.0
    if chance is not None and single <= NEAR_CHANCE * chance:
        text = "temporal: one frame is near chance, the label needs motion"
    elif ratio >= STATIC:
        text = "static: one frame gives most of the label"
    elif ratio >= MIXED:
        text = "mixed: one frame gives part of the label, motion the rest"
    else:
        text = "mostly temporal: one frame gives little of the label"
    if shuffled is not None:
        order = shuffled / full if full else 0.0
        text += ("; frame order matters (shuffled loses accuracy)" if order < ORDER_MATTERS
                 else "; frame order barely matters (shuffled ~ full)")
    return text


def render_bias_table(rows: list[dict], instrument: str = "") -> str:
    """The "Bias profile" markdown section of ``bias_rows``; ``instrument`` says which model
    and protocol read the splits."""
    legend = ("Top-1 (%) with the full clip, one frame repeated (single) and the frames "
              "shuffled; chance = 100 / classes. single/full near 1: static bias (one frame "
              "gives the label); single/chance near 1: the label needs motion."
              + (f" Read by: {instrument}." if instrument else ""))
    header = ["split", "chance", "full", "single", "shuffled", "single/full", "single/chance",
              "reading"]
    lines = ["## Bias profile", "", legend, "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["label"], _num(row["chance"]), _num(row["full"]), _num(row["single"]),
                 _num(row["shuffled"]), _num(row["single_over_full"], 2),
                 _num(row["single_over_chance"], 2), row["reading"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def load_bias_rows(run_dir: str | Path, method: int = 0) -> list[dict]:
    """``bias_rows`` of a finished suite run folder (its ``suite.yaml`` and
    ``results.json``), for its ``method``-th method block."""
    run_dir = Path(run_dir)
    suite_file, results_file = run_dir / "suite.yaml", run_dir / "results.json"
    for path in (suite_file, results_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (is {run_dir} a finished `vidssl "
                                    "evaluate` run?)")
    experiments = (yaml.safe_load(suite_file.read_text()) or {}).get("experiments") or []
    block = json.loads(results_file.read_text())["methods"][method]
    return bias_rows(experiments, block["experiments"])


def bias_table(run_dir: str | Path, method: int = 0) -> str:
    """The report's "Bias profile" markdown table of a finished suite run folder."""
    block = json.loads((Path(run_dir) / "results.json").read_text())["methods"][method]
    protocols = sorted({e.get("protocol") for e in block["experiments"].values()} - {None})
    instrument = f"{block['name']}, {', '.join(protocols)} protocol, {len(block['seeds'])} seed(s)"
    return render_bias_table(load_bias_rows(run_dir, method), instrument)
