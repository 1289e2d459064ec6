"""What runs leave behind for people: the per-step metrics log, tables and curve plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


class MetricsLog:
    """One JSON object per line: ``{"step": ..., <metric>: ...}``; started afresh for each run."""

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as handle:
                handle.write(json.dumps({"step": step, **metrics}) + "\n")


def read_metrics_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def tracker_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """Hyper-parameters in the types TensorBoard's hparams accept."""
    return {key: value if isinstance(value, (int, float, str, bool)) else str(value) for key, value in values.items()}


def average_records(runs: Sequence[Sequence[dict]]) -> list[dict]:
    """Per-step mean of each metric over several runs' logs (e.g. seeds)."""
    sums: dict[tuple[int, str], list[float]] = {}
    for records in runs:
        for record in records:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    sums.setdefault((record["step"], key), []).append(value)
    merged: dict[int, dict] = {}
    for (step, key), values in sorted(sums.items()):
        merged.setdefault(step, {"step": step})[key] = sum(values) / len(values)
    return list(merged.values())


def series(records: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in records if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def plot_training_curves(
    runs: Mapping[str, Sequence[dict]], path: str | Path, metrics: Sequence[tuple[str, str]] = (
        ("loss", "training loss (each method's own objective)"),
        ("validation_loss", "validation cross-entropy"),
        ("validation_accuracy", "validation top-1"),
    )
) -> Path:
    """One panel per metric, one line per run, against optimizer step."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for axis, (key, title) in zip(axes[0], metrics):
        for name, records in runs.items():
            steps, values = series(records, key)
            axis.plot(steps, values, marker="o" if key.startswith("validation") else None, markersize=3, label=name)
        axis.set_title(title)
        axis.set_xlabel("optimizer step")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
