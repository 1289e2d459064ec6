"""The per-step metrics log of a run (``metrics.jsonl``), and reading it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..files import write_text_atomic


class MetricsLog:
    """One JSON object per line: ``{"step": ..., <metric>: ...}``.

    A new run starts the file afresh; a resumed run keeps its first ``keep_lines`` lines (what
    was logged up to the checkpoint) and appends, so no step is lost or logged twice.
    """

    def __init__(self, path: str | Path, enabled: bool = True, keep_lines: int = 0):
        self.path = Path(path)
        self.enabled = enabled
        self.lines = keep_lines
        if enabled:
            kept = self.path.read_text().splitlines(keepends=True)[:keep_lines] if keep_lines else []
            write_text_atomic(self.path, "".join(kept))

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.lines += 1
        if self.enabled:
            with self.path.open("a") as handle:
                handle.write(json.dumps({"step": step, **metrics}) + "\n")


def read_metrics_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


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
