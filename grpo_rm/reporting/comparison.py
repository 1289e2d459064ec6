"""A comparison as data, then as tables: per-row summaries over seeds, each row at its best grid point (chosen on
validation), convergence, and the markdown / HTML report. Pure functions of run results and metric logs."""

from __future__ import annotations

import base64
import html
import json
import statistics
from pathlib import Path
from typing import Mapping, Sequence

from ..files import METRICS_LOG_NAME
from .log import read_metrics_log
from .plots import markdown_table


def grid_panels(summary: dict, rows: Mapping[str, tuple[str, Mapping[str, str]]]) -> list[tuple[str, dict]]:
    """For a one-axis numeric grid: per dataset and metric, {family: [(grid value, mean, std)]}, to plot how each
    method's results (own head, retention) move along the grid, and where one collapses. ``rows`` maps each row to
    its family and grid point; rows it leaves out (WiSE-FT rows, whose points add an alpha) are not drawn."""
    panels = []
    for dataset, metrics in summary.items():
        for metric, by_row in metrics.items():
            if "runtime" in metric:
                continue
            lines: dict[str, list[tuple[float, float, float]]] = {}
            for row, stats in by_row.items():
                if row not in rows:
                    continue
                family, grid_point = rows[row]
                (value,) = grid_point.values()
                lines.setdefault(family, []).append((float(value), stats["mean"], stats["std"] or 0.0))
            panels.append((f"{Path(dataset).name}: {metric}", lines))
    return panels


def best_grid_points(runs: list[dict], family_of: dict[str, str], selection_key: str) -> dict[str, str]:
    """family -> its row with the highest mean of ``selection_key`` (a validation result) over seeds."""
    means: dict[str, list[float]] = {}
    for run in runs:
        means.setdefault(run["variant"], []).append(run["results"][selection_key])
    best: dict[str, str] = {}
    for row, values in means.items():
        family = family_of[row]
        if family not in best or statistics.fmean(values) > statistics.fmean(means[best[family]]):
            best[family] = row
    return best


def validation_curves(runs: list[dict], key: str) -> dict[str, list[list[tuple[int, float]]]]:
    """row -> one [(step, value) per evaluation] list per seed, from the runs' metrics logs."""
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    for run in runs:
        records = read_metrics_log(Path(run["run_dir"]) / METRICS_LOG_NAME)
        curves.setdefault(run["variant"], []).append([(r["step"], r[key]) for r in records if key in r])
    return curves


# "Within one point": of a metric reported in [0, 1].
CONVERGENCE_TOLERANCE = 0.01


def convergence_summary(curves: dict[str, list[list[tuple[int, float]]]], reference: str | None) -> dict:
    """Per row: the validation metric after each epoch (mean over seeds) and, when a reference row is given, the
    optimizer steps each seed took to come within one point of the reference's final value (None: never)."""
    target = None
    if reference is not None:
        target = statistics.fmean(seed[-1][1] for seed in curves[reference] if seed) - CONVERGENCE_TOLERANCE
    summary = {}
    for row, seeds in curves.items():
        epochs = min(len(seed) for seed in seeds)
        entry = {"per_epoch": [statistics.fmean(seed[i][1] for seed in seeds) for i in range(epochs)],
                 "steps_per_epoch": [seeds[0][i][0] for i in range(epochs)]}
        if target is not None:
            entry["target"] = target
            entry["steps_to_target"] = [next((step for step, value in seed if value >= target), None) for seed in seeds]
        summary[row] = entry
    return summary


def convergence_table(convergence: dict, rows: Sequence[str], metric_label: str, reference: str) -> str:
    shown = [row for row in rows if row in convergence]
    if not shown:
        return ""
    epochs = max(len(convergence[row]["per_epoch"]) for row in shown)
    headers = ["row", *(f"epoch {i + 1}" for i in range(epochs))]
    target = convergence[shown[0]].get("target")
    if target is not None:
        headers.append(f"steps to {target:.4f} (1 point under {reference}'s final)")
    table_rows = []
    for row in shown:
        entry = convergence[row]
        cells = [row, *(f"{value:.4f}" for value in entry["per_epoch"])]
        cells += ["–"] * (len(headers) - len(cells) - (target is not None))
        if target is not None:
            reached = [step for step in entry["steps_to_target"] if step is not None]
            total = len(entry["steps_to_target"])
            cells.append("never" if not reached else f"{statistics.fmean(reached):.0f}"
                         + ("" if len(reached) == total else f" ({len(reached)}/{total} seeds)"))
        table_rows.append(cells)
    return (f"## Convergence\n\nValidation {metric_label} after each epoch, mean over seeds; steps are optimizer "
            "steps at the end of the first epoch that reaches the target (validation runs once per epoch).\n\n"
            + markdown_table(headers, table_rows) + "\n")


def run_metrics(results: dict, own_dataset: str,
                own_metrics: Sequence[tuple[str, str]]) -> dict[str, dict[str, float]]:
    """dataset -> metric name -> value, for one run; ``own_metrics`` = (results key, table name) of its own head's
    metrics on the test split, the primary one first."""
    metrics: dict[str, dict[str, float]] = {own_dataset: {label: results[key] for key, label in own_metrics}}
    for dataset, rep in results.get("representation", {}).items():
        row = metrics.setdefault(dataset, {})
        for k, value in sorted(rep["knn_accuracy"].items(), key=lambda item: int(item[0])):
            row[f"kNN top-1 (k={k})"] = value
        row["softmax regression top-1"] = rep["linear_probe_accuracy"]
    metrics[own_dataset]["train runtime (s)"] = results["train_runtime"]
    return metrics


def summarise(runs: list[dict], own_dataset: str, datasets: Sequence[str],
              own_metrics: Sequence[tuple[str, str]]) -> dict:
    """dataset -> metric -> variant -> {mean, std, n, values}."""
    collected: dict = {}
    for run in runs:
        for dataset, metrics in run_metrics(run["results"], own_dataset, own_metrics).items():
            for metric, value in metrics.items():
                collected.setdefault(dataset, {}).setdefault(metric, {}).setdefault(run["variant"], []).append(value)
    summary: dict = {}
    for dataset in datasets:
        for metric, by_variant in collected.get(dataset, {}).items():
            summary.setdefault(dataset, {})[metric] = {
                variant: {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
                          "n": len(values), "values": values}
                for variant, values in by_variant.items()
            }
    return summary


def winner(stats: dict[str, dict], higher_is_better: bool = True) -> str | None:
    """The best variant, or None when its lead over the runner-up is within the seed spread."""
    ranked = sorted(stats, key=lambda v: stats[v]["mean"], reverse=higher_is_better)
    if len(ranked) < 2:
        return None
    best, second = stats[ranked[0]], stats[ranked[1]]
    lead = abs(best["mean"] - second["mean"])
    if lead == 0:
        return None
    if best["n"] > 1 and second["n"] > 1 and lead <= max(best["std"], second["std"]):
        return None
    return ranked[0]


def format_stat(stat: dict, decimals: int = 4) -> str:
    if stat["std"] is None:
        return f"{stat['mean']:.{decimals}f}"
    return f"{stat['mean']:.{decimals}f} ± {stat['std']:.{decimals}f}"


def comparison_tables(summary: dict, variants: Sequence[str], num_seeds: int,
                      shared_rows: dict[str, str] | None = None) -> str:
    """``shared_rows`` maps a row to the row whose runs it reports (identical settings, trained once)."""
    lines = []
    if num_seeds > 1:
        lines.append(f"Mean ± sample std over n={num_seeds} seeds. Bold: best, only where its lead over the "
                     "runner-up exceeds the larger of their stds.\n")
    else:
        lines.append("One seed: values without spread. Bold marks the highest value; with one seed that is not "
                     "evidence of a real difference.\n")
    shared_rows = shared_rows or {}
    if shared_rows:
        pairs = "; ".join(f"{row} = {same_as}" for row, same_as in shared_rows.items())
        lines.append(f"Rows with identical settings report the same runs, trained once: {pairs}.\n")
    for dataset, metrics in summary.items():
        names = list(metrics)
        rows = []
        for variant in variants:
            row = [variant]
            for metric in names:
                stats = metrics[metric]
                if variant not in stats:
                    row.append("–")
                    continue
                decimals = 1 if "runtime" in metric else 4
                cell = format_stat(stats[variant], decimals)
                # A row sharing another's runs is no contender: it would tie with it and hide a real lead.
                contenders = {name: stat for name, stat in stats.items() if name not in shared_rows}
                best = winner(contenders, higher_is_better="runtime" not in metric)
                is_best = best is not None and best == shared_rows.get(variant, variant)
                row.append(f"**{cell}**" if is_best and "runtime" not in metric else cell)
            rows.append(row)
        lines.append(f"### {dataset}\n")
        lines.append(markdown_table(["method", *names], rows))
    return "\n".join(lines)


def html_report(tables_markdown: str, figures: Sequence[Path], comparison: dict) -> str:
    """One self-contained page: the tables, the figures (embedded), and the configuration."""
    body = []
    for block in tables_markdown.split("\n\n"):
        block = block.strip()
        if block.startswith("### "):
            body.append(f"<h2>{html.escape(block[4:])}</h2>")
        elif block.startswith("|"):
            body.append(_markdown_table_to_html(block))
        elif block:
            body.append(f"<p>{html.escape(block)}</p>")
    images = "".join(f"<img alt='{html.escape(Path(f).stem)}' src='data:image/png;base64,"
                     f"{base64.b64encode(Path(f).read_bytes()).decode()}'>" for f in figures)
    config = html.escape(json.dumps(comparison["config"], indent=2))
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,"
             "th:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>grpo-rm comparison</title><style>{style}</style>"
            f"</head><body><h1>grpo-rm comparison</h1>{''.join(body)}<h2>Figures</h2>{images}"
            f"<h2>Configuration</h2><pre>{config}</pre></body></html>\n")


def _markdown_table_to_html(block: str) -> str:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in block.splitlines()]
    header, body = rows[0], rows[2:]

    def cell(text: str, tag: str) -> str:
        text = html.escape(text)
        if text.startswith("**") and text.endswith("**"):
            text = f"<strong>{text[2:-2]}</strong>"
        return f"<{tag}>{text}</{tag}>"

    head = "".join(cell(h, "th") for h in header)
    rows_html = "".join("<tr>" + "".join(cell(c, "td") for c in row) + "</tr>" for row in body)
    return f"<table><tr>{head}</tr>{rows_html}</table>"


def _retention_metrics(results: dict, training_dataset: str, split: str = "validation") -> dict[str, float]:
    """panel name ("<dataset>: <metric>") -> value: the run's frozen-feature results on the datasets other than the
    one it trained on, on their ``validation`` split (what fronts and their verdicts use) or ``test`` split."""
    suffix = "_validation" if split == "validation" else ""
    metrics = {}
    for dataset, representation in results.get("representation", {}).items():
        if dataset == training_dataset:
            continue
        name = Path(dataset).name
        knn = representation.get(f"knn{suffix}_accuracy")
        if knn is None:  # a run from before validation retention was recorded
            continue
        for k, value in sorted(knn.items(), key=lambda item: int(item[0])):
            metrics[f"{name}: kNN top-1 (k={k})"] = value
        metrics[f"{name}: softmax regression top-1"] = representation[f"linear_probe{suffix}_accuracy"]
    return metrics


def frontier_records(runs: Sequence[dict], training_dataset: str, x_key: str) -> dict[str, list[dict]]:
    """panel -> the records ``reporting.frontier`` takes: one per run, x = its validation score (``x_key``, of the
    checkpoint it reports), y = its retention on that panel, on the retention dataset's validation split: fronts and
    verdicts read no test number. The frozen row is left out (it is the reference point)."""
    panels: dict[str, list[dict]] = {}
    for run in runs:
        if run["family"] == "frozen" or run["same_as"]:
            continue
        label = ",".join(f"{key}={value}" for key, value in run["grid_point"].items()) or "default"
        for panel, value in _retention_metrics(run["results"], training_dataset).items():
            panels.setdefault(panel, []).append({"family": run["family"], "grid_point": label, "seed": run["seed"],
                                                 "x": run["results"][x_key], "y": value})
    return panels


def frozen_points(runs: Sequence[dict], training_dataset: str, x_key: str) -> dict[str, tuple[float, float]]:
    """panel -> the frozen row's (x, y) on validation, mean over seeds: the pretrained encoder with a linear head."""
    collected: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        if run["family"] != "frozen":
            continue
        for panel, value in _retention_metrics(run["results"], training_dataset).items():
            collected.setdefault(panel, []).append((run["results"][x_key], value))
    return {panel: (statistics.fmean(x for x, _ in points), statistics.fmean(y for _, y in points))
            for panel, points in collected.items()}


def _delta_cell(entry: dict) -> str:
    if entry["delta"] is None:
        return "–"
    interval = "" if entry["ci95"] is None else f" [{entry['ci95'][0]:+.4f}, {entry['ci95'][1]:+.4f}]"
    return f"{entry['delta']:+.4f}{interval}"


def frontier_table(frontier: dict, metric_label: str) -> str:
    """The matched comparisons of ``reporting.frontier.frontier_summary`` as markdown, one table per panel."""
    reference = frontier["reference"]
    lines = [f"## Fronts: each family against {reference} at matched performance\n",
             f"Each family's Pareto front of (validation {metric_label}, retention on the other dataset's validation "
             f"split) over its grid points, means over seeds: no test number is read. Deltas are family minus "
             f"{reference}, interpolated along the fronts at {reference}'s best "
             f"validation {metric_label} (its anchor) and at the anchor's retention; [95 % paired bootstrap interval "
             f"over seeds]. best top-1: the fronts' highest validation {metric_label}. A verdict rests on intervals "
             "that exclude 0 (frontier.png draws the fronts).\n"]
    for panel, content in frontier["panels"].items():
        rows = []
        for family, comparison in content["comparisons"].items():
            rows.append([family, _delta_cell(comparison["retention_at_matched_top1"]),
                         _delta_cell(comparison["top1_at_matched_retention"]), _delta_cell(comparison["best_top1"]),
                         comparison["n_seeds"], f"**{comparison['verdict']}**"])
        lines.append(f"### {panel}\n")
        lines.append(markdown_table(["family", f"Δ retention at {reference}'s {metric_label}",
                                     f"Δ {metric_label} at {reference}'s retention", f"Δ best {metric_label}",
                                     "seeds", "verdict"], rows))
    return "\n".join(lines)
