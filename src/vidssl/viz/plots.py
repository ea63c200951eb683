"""Report figures (matplotlib, Agg backend, PNG): per-factor bars and rank changes."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def plot_factor_bars(panels: list[dict], methods: list[str], path: str | Path, title: str) -> Path:
    """One panel per experiment, one bar per method with its seed std as error bar.

    ``panels``: ``{"label", "ylabel", "means": [per method, None if missing],
    "stds": [...], "lower_is_better": bool}``. Separate y axes because experiments of a
    factor may use different metrics (accuracy, mAP, counting error).
    """
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.9 * rows + 0.6),
                             squeeze=False)
    colors = _colors(len(methods))
    for ax, panel in zip(axes.flat, panels):
        xs = [i for i, m in enumerate(panel["means"]) if m is not None]
        means = [panel["means"][i] for i in xs]
        stds = [panel["stds"][i] or 0.0 for i in xs]
        ax.bar(xs, means, yerr=stds, capsize=3, color=[colors[i] for i in xs], edgecolor="black",
               linewidth=0.5)
        ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right", fontsize=7)
        arrow = " (lower is better)" if panel.get("lower_is_better") else ""
        ax.set_title(panel["label"], fontsize=9)
        ax.set_ylabel(panel["ylabel"] + arrow, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        if means:
            low = min(m - s for m, s in zip(means, stds))
            high = max(m + s for m, s in zip(means, stds))
            pad = 0.15 * (high - low or abs(high) or 1.0)
            ax.set_ylim(max(0.0, low - pad) if low >= 0 else low - pad, high + pad)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_rank_changes(experiment_labels: list[str], methods: list[str],
                      ranks: list[list[float | None]], path: str | Path, title: str) -> Path:
    """Rank of each method (1 = best) across experiments, one line per method: lines that
    cross are the benchmark sensitivity SEVERE is about. ``ranks[m][e]`` (None = missing)."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(experiment_labels) + 2.5), 3.8))
    for method, row, color in zip(methods, ranks, _colors(len(methods))):
        xs = [i for i, r in enumerate(row) if r is not None]
        ax.plot(xs, [row[i] for i in xs], marker="o", color=color, label=method, linewidth=1.5)
    ax.set_xticks(range(len(experiment_labels)), experiment_labels, rotation=35, ha="right",
                  fontsize=8)
    ax.set_yticks(range(1, len(methods) + 1))
    ax.set_ylim(len(methods) + 0.5, 0.5)
    ax.set_ylabel("rank (1 = best)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
