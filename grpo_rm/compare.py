"""``grpo-rm compare``: every method on the same data, model, schedule and seeds; only the objective differs.

Rows are ``frozen`` (the encoder as given, only a linear head trained: the paper's
"DINOv2" row), ``ce``, ``grpo-rm`` and GRPO-RM variants from ``--sweep``. Each run is
an ordinary ``train`` run in ``<output_dir>/runs/<row>-seed<N>``; a finished run
(``all_results.json`` present) is reused and a half-finished one continues from its newest
checkpoint (with ``--checkpointing_steps``), so an interrupted comparison resumes.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .config import RunConfig
from .data import same_dataset
from .files import ALL_RESULTS_NAME, METRICS_LOG_NAME, write_json_atomic, write_text_atomic
from .reporting import average_records, markdown_table, plot_training_curves, read_metrics_log
from .tasks import task_class
from .training import train

METHOD_OVERRIDES = {
    "frozen": {"method": "ce", "freeze_backbone": True, "train_last_n_blocks": None},
    "ce": {"method": "ce"},
    "grpo-rm": {"method": "grpo-rm"},
}


@dataclass
class Variant:
    name: str
    overrides: dict = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.name).strip("_")


# compare sets these itself for every row.
NOT_SWEEPABLE = ("seed", "method", "output_dir", "overwrite_output_dir", "eval_datasets", "ignore_mismatched_sizes",
                 "resume_from_checkpoint")
# Keys that may differ between a finished run and a re-run of the same comparison: none changes results.
BOOKKEEPING_KEYS = ("output_dir", "overwrite_output_dir", "disable_tqdm", "report_to", "logging_steps",
                    "per_device_eval_batch_size", "dataloader_num_workers", "feature_cache_dir",
                    "checkpointing_steps", "save_total_limit", "resume_from_checkpoint")


def parse_sweeps(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["reward=a,b", "epsilon=0.1,0.2"]`` -> ``{"reward": ["a", "b"], "epsilon": ["0.1", "0.2"]}``."""
    sweeps = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not values:
            raise ValueError(f"--sweep {spec!r} must look like key=value1,value2")
        if key in NOT_SWEEPABLE:
            raise ValueError(f"--sweep {key!r}: compare sets {', '.join(NOT_SWEEPABLE)} itself "
                             "(use --seeds and --methods for seeds and methods)")
        if key not in RunConfig.valid_keys():
            raise ValueError(f"--sweep key {key!r} is not a config key; valid keys are: {', '.join(RunConfig.valid_keys())}")
        sweeps[key] = values.split(",")
    return sweeps


def plan_variants(methods: Sequence[str], sweeps: dict[str, list[str]]) -> list[Variant]:
    unknown = [m for m in methods if m not in METHOD_OVERRIDES]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHOD_OVERRIDES)}")
    variants = [Variant(m, dict(METHOD_OVERRIDES[m])) for m in methods]
    if sweeps:
        keys = list(sweeps)
        for values in itertools.product(*(sweeps[k] for k in keys)):
            label = ",".join(f"{k}={v}" for k, v in zip(keys, values))
            variants.append(Variant(f"grpo-rm[{label}]", {"method": "grpo-rm", **dict(zip(keys, values))}))
    return variants


def run_comparison(base: RunConfig, methods: Sequence[str] = ("frozen", "ce", "grpo-rm"),
                   seeds: Sequence[int] = (0,), sweeps: dict[str, list[str]] | None = None) -> dict:
    if not base.training.output_dir:
        raise ValueError("output_dir is required")
    output_dir = Path(base.training.output_dir)
    variants = plan_variants(methods, sweeps or {})
    task = task_class(base.model.task)
    # Frozen-feature kNN / softmax regression need one label per example: the training dataset
    # joins them where the task has such labels (classification).
    extra = [d for d in base.evaluation.eval_datasets or [] if not same_dataset(d, base.data.dataset_name)]
    eval_datasets = [base.data.dataset_name] + extra if task.frozen_features else extra
    jobs = [(variant, seed) for variant in variants for seed in seeds]
    runs = []
    for index, (variant, seed) in enumerate(jobs, start=1):
        run_dir = output_dir / "runs" / f"{variant.slug}-seed{seed}"
        results_file = run_dir / ALL_RESULTS_NAME
        # A post-trained run may be the starting encoder: its head's classes need not match.
        # An unfinished run continues from its newest checkpoint, if it wrote one.
        config = base.with_overrides(**variant.overrides, seed=seed, output_dir=str(run_dir),
                                     overwrite_output_dir=True, eval_datasets=eval_datasets or None,
                                     ignore_mismatched_sizes=True, resume_from_checkpoint="latest")
        if results_file.is_file():
            _check_same_settings(run_dir, config)
            print(f"[run {index}/{len(jobs)}] {variant.name} seed {seed}: finished earlier, reusing {run_dir}")
        else:
            print(f"[run {index}/{len(jobs)}] {variant.name} seed {seed} -> {run_dir}")
            train(config)
        runs.append({"variant": variant.name, "seed": seed, "run_dir": str(run_dir),
                     "overrides": variant.overrides, "results": json.loads(results_file.read_text())})

    own_metric = (f"eval_{task.primary_metric}", f"{task.metric_label} (own head)")
    summary = summarise(runs, base.data.dataset_name, [base.data.dataset_name] + extra, own_metric)
    variant_names = [v.name for v in variants]
    comparison = {"config": base.to_dict(), "methods": list(methods), "seeds": list(seeds), "sweeps": sweeps or {},
                  "eval_datasets": eval_datasets, "runs": runs, "summary": summary}
    write_json_atomic(output_dir / "comparison.json", comparison)
    tables = comparison_tables(summary, variant_names, len(seeds))
    write_text_atomic(output_dir / "comparison.md", tables)
    validation_metric = (f"validation_{task.primary_metric}", f"validation {task.metric_label}")
    curves = plot_training_curves(
        {name: average_records([read_metrics_log(Path(r["run_dir"]) / METRICS_LOG_NAME)
                                for r in runs if r["variant"] == name]) for name in variant_names},
        output_dir / "curves.png",
        metrics=(("loss", "training loss (each method's own objective)"), validation_metric),
    )
    first_runs = {r["variant"]: r["run_dir"] for r in reversed(runs)}  # each row's first seed
    images = [curves, *task.figures([first_runs[name] for name in variant_names], output_dir, variant_names)]
    write_text_atomic(output_dir / "report.html", html_report(tables, images, comparison))
    print("\n" + tables)
    written = ", ".join(["comparison.json", *(Path(image).name for image in images), "report.html"])
    print(f"Wrote {output_dir / 'comparison.md'}, {written}")
    return comparison


def _check_same_settings(run_dir: Path, planned: RunConfig) -> None:
    """A finished run is reused only if it was trained with the settings planned now."""
    saved = RunConfig.from_run_dir(run_dir).to_dict()
    wanted = planned.to_dict()
    differing = sorted(k for k in wanted if k not in BOOKKEEPING_KEYS and saved.get(k) != wanted[k])
    if differing:
        details = ", ".join(f"{k}: {saved.get(k)!r} then, {wanted[k]!r} now" for k in differing)
        raise ValueError(f"{run_dir} was trained with other settings ({details}); use another --output_dir, "
                         "or remove that run to train it again")


def run_metrics(results: dict, own_dataset: str, own_metric: tuple[str, str]) -> dict[str, dict[str, float]]:
    """dataset -> metric name -> value, for one run; ``own_metric`` = (results key, table name) of its own head."""
    key, label = own_metric
    metrics: dict[str, dict[str, float]] = {own_dataset: {label: results[key]}}
    for dataset, rep in results.get("representation", {}).items():
        row = metrics.setdefault(dataset, {})
        for k, value in sorted(rep["knn_accuracy"].items(), key=lambda item: int(item[0])):
            row[f"kNN top-1 (k={k})"] = value
        row["softmax regression top-1"] = rep["linear_probe_accuracy"]
    metrics[own_dataset]["train runtime (s)"] = results["train_runtime"]
    return metrics


def summarise(runs: list[dict], own_dataset: str, datasets: Sequence[str], own_metric: tuple[str, str]) -> dict:
    """dataset -> metric -> variant -> {mean, std, n, values}."""
    collected: dict = {}
    for run in runs:
        for dataset, metrics in run_metrics(run["results"], own_dataset, own_metric).items():
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


def comparison_tables(summary: dict, variants: Sequence[str], num_seeds: int) -> str:
    lines = []
    if num_seeds > 1:
        lines.append(f"Mean ± sample std over n={num_seeds} seeds. Bold: best, only where its lead over the "
                     "runner-up exceeds the larger of their stds.\n")
    else:
        lines.append("One seed: values without spread. Bold marks the highest value; with one seed that is not "
                     "evidence of a real difference.\n")
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
                best = winner(stats, higher_is_better="runtime" not in metric)
                row.append(f"**{cell}**" if best == variant and "runtime" not in metric else cell)
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
