"""Run logging: ``metrics.csv`` (always), TensorBoard (when installed), a rich progress bar."""
from __future__ import annotations

import csv
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

console = Console(stderr=True)


class MetricsLog:
    """Appends rows to ``out_dir/metrics.csv``. Columns grow as new keys appear (the file is
    rewritten with the wider header). On resume, rows after ``resume_step`` (written after the
    checkpoint the run resumes from) are dropped, so the file reads as one uninterrupted run."""

    def __init__(self, out_dir: Path, enabled: bool = True, resume_step: int = 0):
        self.path = Path(out_dir) / "metrics.csv"
        self.enabled = enabled
        self.rows: list[dict] = []
        self.columns: list[str] = []
        self.tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step and self.path.exists():
            with open(self.path, newline="") as handle:
                self.rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
            for row in self.rows:
                self._add_columns(row)
        self._rewrite()
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.tb = None

    def _add_columns(self, row: dict) -> bool:
        new = [k for k in row if k not in self.columns]
        self.columns.extend(new)
        return bool(new)

    def _rewrite(self) -> None:
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns or ["step"])
            writer.writeheader()
            writer.writerows(self.rows)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        row = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
        self.rows.append(row)
        if self._add_columns(row):
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self.columns).writerow(row)
        if self.tb is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self.tb.add_scalar(key, float(value), int(row["step"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class _StepsPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.2f} it/s" if task.speed else "- it/s")


class Progress:
    """Progress bar over optimizer steps with loss, throughput and ETA (rank 0 only)."""

    def __init__(self, total: int, enabled: bool = True, start: int = 0, label: str = "train"):
        self.enabled = enabled
        self.bar = RichProgress(
            TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), _StepsPerSecond(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
            disable=not enabled)
        self.task = self.bar.add_task(label, total=total, completed=start, loss=float("nan"))

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def advance(self, loss: float) -> None:
        self.bar.update(self.task, advance=1, loss=loss)
