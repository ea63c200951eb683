"""Report of one or several evaluated backbones: results.json, results.csv, report.md, plots.

A *method block* is one backbone's results on a suite (what ``run_suite`` produces)::

    {"name", "suite", "checkpoint", "model", "seeds": [...], "benchmark": [...],
     "experiments": {name: {"label", "factor", "task", "protocol", "selection", "metric",
                            "higher_is_better", "status", "metrics": {metric: {"mean", "std",
                            "values"}}, ...}}}

``write_report(blocks, out)`` lays them out as the paper does: one methods x experiments table
per factor, the SEVERE benchmark table with its mean, the rank of every method per experiment,
and the published numbers as a reference table.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from vidssl.evaluation.published import PUBLISHED, SOURCE
from vidssl.evaluation.suite import FACTORS

RESULTS_FORMAT = "vidssl-severe-results"
METRIC_LABELS = {"top1": "top-1 (%)", "mean_class": "mean-class accuracy (%)", "map": "mAP (%)",
                 "mae": "normalized count error", "obo": "off-by-one accuracy (%)"}
FACTOR_TITLES = {"domain": "Domain shift", "samples": "Sample sizes",
                 "actions": "Action granularity", "tasks": "Tasks"}
SEVERE_MEAN_RULE = ("SEVERE mean: average of the benchmark experiments' primary metrics, with the "
                    "counting error e converted to 100 x (1 - e) so that higher is better, as in "
                    "the published SEVERE tables (e.g. VideoMAE: UCF-RC 0.172 enters as 82.8).")


# ----------------------------------------------------------------------------- numbers
def summarize(values: list[float]) -> dict:
    """``{"mean", "std", "values"}``; std is the sample std (ddof 1), 0 for a single seed."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "values": list(values)}


def as_higher_is_better(metric: str, value: float) -> float:
    """Counting error ``e`` -> ``100 (1 - e)``; every other metric unchanged."""
    return 100.0 * (1.0 - value) if metric == "mae" else value


def severe_mean(block: dict) -> dict | None:
    """Per seed, the mean of the benchmark experiments' converted primary metrics; then
    mean and std over seeds. None unless every benchmark experiment finished every seed."""
    names = block.get("benchmark") or []
    if not names:
        return None
    per_experiment = []
    for name in names:
        experiment = block["experiments"].get(name)
        if not experiment or experiment.get("status") != "done":
            return None
        metric = experiment["metric"]
        per_experiment.append([as_higher_is_better(metric, v)
                               for v in experiment["metrics"][metric]["values"]])
    seeds = min(len(v) for v in per_experiment)
    return summarize([sum(v[s] for v in per_experiment) / len(per_experiment)
                      for s in range(seeds)])


def primary(block: dict, name: str) -> dict | None:
    experiment = block["experiments"].get(name)
    if not experiment or experiment.get("status") != "done":
        return None
    return experiment["metrics"][experiment["metric"]]


def ranks(blocks: list[dict], name: str) -> list[int | None]:
    """Rank of each method on one experiment (1 = best; equal means share the better rank)."""
    values = []
    for block in blocks:
        summary = primary(block, name)
        values.append(None if summary is None else summary["mean"])
    higher = _experiment_meta(blocks, name)["higher_is_better"]
    present = [v for v in values if v is not None]
    return [None if v is None else 1 + sum((o > v) if higher else (o < v) for o in present)
            for v in values]


@dataclass(frozen=True)
class Comparison:
    """Is ``method`` better than ``baseline`` on ``experiments``? ``question`` heads the rows."""

    question: str
    method: str
    baseline: str
    experiments: tuple[str, ...]


def margin(method: dict, baseline: dict, name: str) -> dict | None:
    """``delta`` = mean(method) - mean(baseline), signed so that > 0 means better;
    ``spread`` = std(method) + std(baseline) over seeds. The verdict is "better" when
    ``delta > spread``, "worse" when ``delta < -spread``, else "within the seed spread";
    with one seed there is no spread, so no verdict."""
    a, b = primary(method, name), primary(baseline, name)
    if a is None or b is None:
        return None
    sign = 1.0 if method["experiments"][name]["higher_is_better"] else -1.0
    delta, spread = sign * (a["mean"] - b["mean"]), a["std"] + b["std"]
    seeds = min(len(a["values"]), len(b["values"]))
    if seeds < 2:
        verdict = "no verdict (1 seed)"
    elif delta > spread:
        verdict = "better"
    elif delta < -spread:
        verdict = "worse"
    else:
        verdict = "within the seed spread"
    return {"delta": delta, "spread": spread, "seeds": seeds, "verdict": verdict}


def render_comparisons(blocks: list[dict], comparisons: list[Comparison]) -> str:
    """Markdown table of ``margin`` for every (comparison, experiment) both sides finished."""
    by_name = {b["name"]: b for b in blocks}
    rows = []
    for c in comparisons:
        if c.method not in by_name or c.baseline not in by_name:
            continue
        for name in c.experiments:
            m = margin(by_name[c.method], by_name[c.baseline], name)
            if m is None:
                continue
            meta = _experiment_meta(blocks, name)
            digits = _digits(meta["metric"])
            rows.append([c.question, f"{c.method} vs {c.baseline}",
                         meta["label"], f"{m['delta']:+.{digits}f}",
                         f"{m['spread']:.{digits}f}", m["verdict"]])
    if not rows:
        return ""
    lines = ["## Against the baselines", "",
             ("Δ: difference of the means over seeds, signed so that > 0 means better; spread: "
              "sum of the two seed standard deviations. \"better\" needs Δ > spread."), ""]
    lines += _table(["Question", "Comparison", "Experiment", "Δ", "Spread", "Verdict"], rows)
    return "\n".join(lines) + "\n"


def _experiment_meta(blocks: list[dict], name: str) -> dict:
    for block in blocks:
        if name in block["experiments"]:
            return block["experiments"][name]
    raise KeyError(name)


def experiment_order(blocks: list[dict]) -> list[str]:
    """Experiment names grouped by factor (paper order), first-seen order within a factor."""
    seen: dict[str, str] = {}
    for block in blocks:
        for name, experiment in block["experiments"].items():
            seen.setdefault(name, experiment["factor"])
    return [n for f in FACTORS for n in seen if seen[n] == f]


# ----------------------------------------------------------------------------- formatting
def _digits(metric: str) -> int:
    """Decimals shown: counting errors are fractions, every other metric a percentage."""
    return 3 if metric == "mae" else 1


def _fmt(metric: str, summary: dict | None, seeds_shown: bool = True) -> str:
    if summary is None:
        return "–"
    digits = _digits(metric)
    text = f"{summary['mean']:.{digits}f}"
    if seeds_shown and len(summary.get("values", [])) > 1:
        text += f" ± {summary['std']:.{digits}f}"
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _column(meta: dict) -> str:
    return f"{meta['label']}{'' if meta['higher_is_better'] else '↓'}"


def _cell(block: dict, name: str) -> str:
    """Primary metric of one method on one experiment; † if selected on the test split."""
    experiment = block["experiments"].get(name)
    if experiment is None:
        return "–"
    mark = "†" if experiment.get("selection") == "test" else ""
    return _fmt(experiment["metric"], primary(block, name)) + mark


def _metric_line(blocks: list[dict], names: list[str]) -> str:
    parts = []
    for name in names:
        meta = _experiment_meta(blocks, name)
        metric = METRIC_LABELS.get(meta["metric"], meta["metric"])
        part = f"{meta['label']}: {metric}, {meta['protocol']}"
        sizes = next((b["experiments"][name].get("videos") for b in blocks
                      if b["experiments"].get(name, {}).get("videos")), None)
        if sizes:
            part += f", {sizes['train']} train / {sizes['test']} test videos"
        parts.append(part)
    return "Per column (metric, protocol, data) — " + "; ".join(parts) + "."


def render_markdown(blocks: list[dict], plots: dict[str, str], title: str) -> str:
    names = experiment_order(blocks)
    methods = [b["name"] for b in blocks]
    lines = [f"# {title}", ""]
    suites = sorted({b["suite"]["name"] for b in blocks})
    description = blocks[0]["suite"].get("description", "")
    lines += [f"Suite: `{', '.join(suites)}`. {description}".rstrip(), ""]
    lines += _evaluation_protocol(blocks)
    lines += _protocol_notes(blocks) + [""]
    lines += ["| Method | Backbone | Checkpoint | Seeds |", "|---|---|---|---|"]
    for block in blocks:
        weights = block.get("checkpoint") or f"none ({block.get('initialization', 'random init')})"
        if isinstance(weights, list):  # one pretraining run per seed
            weights = f"{len(weights)} runs: " + ", ".join(weights)
        lines.append(f"| {block['name']} | {block.get('model') or '–'} | {weights} | "
                     f"{', '.join(map(str, block.get('seeds', [])))} |")
    lines.append("")

    for factor in FACTORS:
        columns = [n for n in names if _experiment_meta(blocks, n)["factor"] == factor]
        if not columns:
            continue
        lines += [f"## {FACTOR_TITLES[factor]}", ""]
        rows = []
        for block in blocks:
            rows.append([block["name"]] + [_cell(block, n) for n in columns])
        lines += _table(["Method"] + [_column(_experiment_meta(blocks, n)) for n in columns], rows)
        lines += ["", _metric_line(blocks, columns), ""]
        if factor in plots:
            lines += [f"![{FACTOR_TITLES[factor]}]({plots[factor]})", ""]

    benchmark = blocks[0].get("benchmark") or []
    if benchmark and all(n in names for n in benchmark):
        lines += ["## SEVERE benchmark", ""]
        rows = []
        for block in blocks:
            mean = severe_mean(block)
            rank_list = [ranks(blocks, n)[methods.index(block["name"])] for n in benchmark]
            mean_rank = (sum(rank_list) / len(rank_list)) if None not in rank_list else None
            rows.append([block["name"]]
                        + [_cell(block, n) for n in benchmark]
                        + [_fmt("mean", mean), "–" if mean_rank is None else f"{mean_rank:.2f}"])
        header = (["Method"] + [_column(_experiment_meta(blocks, n)) for n in benchmark]
                  + ["Mean", "Mean rank"])
        lines += _table(header, rows) + ["", SEVERE_MEAN_RULE, ""]

    lines += ["## Rank per experiment", "",
              ("1 = best among the methods in this report (by the mean over seeds); equal means "
               "share the better rank."), ""]
    all_ranks = {n: ranks(blocks, n) for n in names}
    rows = []
    for i, block in enumerate(blocks):
        row = [all_ranks[n][i] for n in names]
        known = [r for r in row if r is not None]
        rows.append([block["name"]] + ["–" if r is None else str(r) for r in row]
                    + [f"{sum(known) / len(known):.2f}" if known else "–"])
    header = ["Method"] + [_column(_experiment_meta(blocks, n)) for n in names] + ["Mean rank"]
    lines += _table(header, rows)
    lines.append("")
    if "ranks" in plots:
        lines += [f"![rank changes]({plots['ranks']})", ""]

    reference = [n for n in names if any(n in row for row in PUBLISHED.values())]
    if reference:
        lines += ["## Published reference", "", f"Source: {SOURCE}.", ""]
        with_mean = bool(benchmark) and all(n in reference for n in benchmark)
        rows = []
        for method, values in PUBLISHED.items():
            row = [method] + [_fmt(_experiment_meta(blocks, n)["metric"],
                                   None if values.get(n) is None else {"mean": values[n]})
                              for n in reference]
            if with_mean:
                converted = [as_higher_is_better(_experiment_meta(blocks, n)["metric"], values[n])
                             for n in benchmark]
                row.append(f"{sum(converted) / len(converted):.1f}")
            rows.append(row)
        header = ["Method"] + [_column(_experiment_meta(blocks, n)) for n in reference]
        lines += _table(header + (["Mean (computed here)"] if with_mean else []), rows) + [""]

    bad = [(b["name"], e["label"], e["bad_samples"]) for b in blocks
           for e in b["experiments"].values() if e.get("bad_samples")]
    if bad:
        lines += ["## Bad videos", "", ("Unreadable or too short videos were replaced by other "
                                        "videos of the same split (per experiment, all seeds):"),
                  ""]
        lines += [f"- {m} / {label}: {count}" for m, label, count in bad] + [""]
    failed = [(b["name"], n, e.get("error", "")) for b in blocks
              for n, e in b["experiments"].items() if e.get("status") == "failed"]
    if failed:
        lines += ["## Failed experiments", ""]
        lines += [f"- {m} / {n}: {error}" for m, n, error in failed] + [""]
    return "\n".join(lines)


def _evaluation_protocol(blocks: list[dict]) -> list[str]:
    """The header lines naming the evaluation protocol (paper or validation) of each run and
    the per-method recipe variants applied."""
    lines = []
    protocols = {b["protocol"]["name"]: b["protocol"]["description"] for b in blocks
                 if b.get("protocol")}
    for name, description in protocols.items():
        users = [b["name"] for b in blocks if (b.get("protocol") or {}).get("name") == name]
        who = "" if len(protocols) == 1 else f" ({', '.join(users)})"
        lines += [f"**Protocol: {name}**{who}: {description}", ""]
    variants = [(b["name"], b["variant"]) for b in blocks
                if (b.get("variant") or {}).get("experiments")
                and b["variant"]["name"] != "vit"]  # the ViT protocol is named below
    for method, variant in variants:
        lines.append(f"- {method}: SEVERE's `{variant['name']}` recipe variant on "
                     f"{', '.join(variant['experiments'])}.")
    vit_rows = [(b["name"], b["vit_protocol"]) for b in blocks if b.get("vit_protocol")]
    for method, kinds in vit_rows:
        runs = ", ".join(f"{name} ({kind})" for name, kind in kinds.items())
        lines.append(f"- {method}: the ViT protocol (VideoMAE / SIGMA recipe, "
                     f"docs/vit_protocol.md) on {runs}.")
    return lines + ([""] if variants or vit_rows else [])


def _protocol_notes(blocks: list[dict]) -> list[str]:
    selections = {e.get("selection") for b in blocks for e in b["experiments"].values()}
    notes = []
    if "val" in selections:
        notes.append("- Model selection on a validation split carved from the training set "
                     "(seeded, class-stratified), never on the test split.")
    if "test" in selections:
        notes.append("- **† Model selected on the test split**, as SEVERE's original code does: "
                     "these numbers are optimistic and not comparable to validation-selected ones.")
    if "last" in selections:
        notes.append("- Some experiments use the last weights without any model selection.")
    if "none" in selections:
        notes.append("- kNN experiments have no training and hence no model selection.")
    seeds = {len(b.get("seeds", [])) for b in blocks}
    if max(seeds, default=1) > 1:
        notes.append("- Cells: mean ± sample standard deviation over seeds (a seed changes the "
                     "head initialization, the validation split, sample-size subsets and the "
                     "training order).")
    notes.append("- ↓ marks a lower-is-better metric (repetition counting error).")
    return notes


# ----------------------------------------------------------------------------- files
def write_csv(blocks: list[dict], path: Path) -> None:
    """Long format: one row per (method, experiment, metric)."""
    fields = ["method", "suite", "factor", "experiment", "label", "task", "protocol", "selection",
              "metric", "primary", "mean", "std", "n_seeds", "values", "status"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for block in blocks:
            for name in experiment_order([block]):
                e = block["experiments"][name]
                base = {"method": block["name"], "suite": block["suite"]["name"],
                        "factor": e["factor"], "experiment": name, "label": e["label"],
                        "task": e["task"], "protocol": e["protocol"],
                        "selection": e.get("selection"),
                        "status": e.get("status")}
                if e.get("status") != "done":
                    writer.writerow({**base, "metric": e["metric"], "primary": True})
                    continue
                for metric, s in e["metrics"].items():
                    writer.writerow({**base, "metric": metric, "primary": metric == e["metric"],
                                     "mean": f"{s['mean']:.6g}", "std": f"{s['std']:.6g}",
                                     "n_seeds": len(s["values"]),
                                     "values": " ".join(f"{v:.6g}" for v in s["values"])})
            mean = severe_mean(block)
            if mean is not None:
                writer.writerow({"method": block["name"], "suite": block["suite"]["name"],
                                 "experiment": "severe_mean", "label": "SEVERE mean",
                                 "metric": "severe_mean", "primary": True,
                                 "mean": f"{mean['mean']:.6g}", "std": f"{mean['std']:.6g}",
                                 "n_seeds": len(mean["values"]),
                                 "values": " ".join(f"{v:.6g}" for v in mean["values"]),
                                 "status": "done"})


def write_report(blocks: list[dict], out: str | Path, title: str | None = None,
                 plots: bool = True, comparisons: list[Comparison] = ()) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv``, ``report.md`` and ``plots/*.png`` into ``out``;
    ``comparisons`` add an "Against the baselines" section (see ``margin``)."""
    if not blocks:
        raise ValueError("write_report: no results to report")
    names = [b["name"] for b in blocks]
    if len(set(names)) != len(names):
        raise ValueError(f"write_report: method names must be unique, got {names}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _write_plots(blocks, out) if plots else {}
    for block in blocks:
        block["severe_mean"] = severe_mean(block)
    files = {"json": out / "results.json", "csv": out / "results.csv",
             "markdown": out / "report.md"}
    document = {"format": RESULTS_FORMAT, "version": 1, "methods": blocks,
                "ranks": {n: dict(zip(names, ranks(blocks, n))) for n in experiment_order(blocks)}}
    _atomic_text(files["json"], json.dumps(document, indent=1))
    write_csv(blocks, files["csv"])
    suite_name = blocks[0]["suite"]["name"]
    markdown = render_markdown(blocks, {k: str(v.relative_to(out)) for k, v in figures.items()},
                               title or f"SEVERE evaluation: suite {suite_name}")
    extra = render_comparisons(blocks, list(comparisons))
    _atomic_text(files["markdown"], markdown + ("\n" + extra if extra else ""))
    return {**files, **{f"plot_{k}": v for k, v in figures.items()}}


def _write_plots(blocks: list[dict], out: Path) -> dict[str, Path]:
    from vidssl.viz.plots import plot_factor_bars, plot_rank_changes

    names = experiment_order(blocks)
    methods = [b["name"] for b in blocks]
    figures = {}
    for factor in FACTORS:
        columns = [n for n in names if _experiment_meta(blocks, n)["factor"] == factor]
        if not columns:
            continue
        panels = []
        for n in columns:
            meta = _experiment_meta(blocks, n)
            summaries = [primary(b, n) for b in blocks]
            panels.append({"label": meta["label"],
                           "ylabel": METRIC_LABELS.get(meta["metric"], meta["metric"]),
                           "means": [s and s["mean"] for s in summaries],
                           "stds": [s and s["std"] for s in summaries],
                           "lower_is_better": not meta["higher_is_better"]})
        figures[factor] = plot_factor_bars(panels, methods, out / "plots" / f"factor_{factor}.png",
                                           FACTOR_TITLES[factor])
    if len(blocks) > 1:
        figures["ranks"] = plot_rank_changes(
            [_experiment_meta(blocks, n)["label"] for n in names], methods,
            [[ranks(blocks, n)[i] for n in names] for i in range(len(blocks))],
            out / "plots" / "rank_changes.png", "Rank of each method per experiment")
    return figures


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_results(run_dir: str | Path) -> list[dict]:
    """Method blocks of a finished run directory (its ``results.json``)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no results.json (is {run_dir} a finished `vidssl evaluate` run?)")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: line {error.lineno}: invalid JSON ({error.msg})") from None
    if document.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path}: not a vidssl results file (format {document.get('format')!r})")
    return document["methods"]


def compare_runs(run_dirs: list[str | Path], out: str | Path, title: str | None = None,
                 comparisons: list[Comparison] = ()) -> dict[str, Path]:
    """Merge the results of several runs (one backbone each) into one report in ``out``.
    Two runs with the same method name are told apart by their folder names."""
    blocks = []
    for run_dir in run_dirs:
        for block in load_results(run_dir):
            blocks.append({**block, "run_dir": str(run_dir)})
    names = [b["name"] for b in blocks]
    for block in blocks:
        if names.count(block["name"]) > 1:
            block["name"] = f"{block['name']} ({Path(block['run_dir']).name})"
    return write_report(blocks, out, title=title or "SEVERE evaluation: comparison",
                        comparisons=comparisons)
