"""``grpo-rm compare``: every method on the same data, model, schedule and seeds; only the objective differs.

Rows are ``frozen`` (the encoder as given, only a linear head trained: the paper's
"DINOv2" row), ``ce``, ``grpo-rm`` and GRPO-RM variants from ``--sweep``; ``--grid`` (e.g. a
learning-rate grid, or ``head_warmup_epochs=0,1``) multiplies every row, and the report then
also shows each row at its best grid point, chosen on validation. Each run is
an ordinary ``train`` run in ``<output_dir>/runs/<row>-seed<N>``; rows whose resolved settings are
identical (``grpo-rm`` and ``grpo-rm[scale_rewards=group]``) share the first one's run. A finished run
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
from .reporting import average_records, markdown_table, plot_grid_metrics, plot_training_curves, read_metrics_log
from .tasks import task_class
from .training import train
from .training.checkpoints import list_checkpoints

METHOD_OVERRIDES = {
    "frozen": {"method": "ce", "freeze_backbone": True, "train_last_n_blocks": None},
    "ce": {"method": "ce"},
    "grpo-rm": {"method": "grpo-rm"},
}


@dataclass
class Variant:
    """A row: ``family`` is the method or GRPO-RM variant, ``grid_point`` its values of the ``--grid`` axes."""

    name: str
    overrides: dict = field(default_factory=dict)
    family: str = ""
    grid_point: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.family = self.family or self.name

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.name).strip("_")


# compare sets these itself for every row.
NOT_SWEEPABLE = ("seed", "method", "output_dir", "overwrite_output_dir", "eval_datasets", "ignore_mismatched_sizes",
                 "resume_from_checkpoint")
# Keys that may differ between a finished run and a re-run of the same comparison: none changes results.
# objective_preset only names the objective's values, which are compared themselves; cache_frozen_features changes
# only the rounding (the frozen row of an earlier comparison, trained without it, is reused).
BOOKKEEPING_KEYS = ("objective_preset", "output_dir", "overwrite_output_dir", "disable_tqdm", "report_to", "logging_steps",
                    "per_device_eval_batch_size", "dataloader_num_workers", "feature_cache_dir",
                    "cache_frozen_features", "checkpointing_steps", "save_total_limit", "resume_from_checkpoint",
                    "run_name", "tracker_project_name", "push_to_hub", "hub_model_id", "hub_private_repo", "hub_token")


def parse_sweeps(specs: Sequence[str], flag: str = "--sweep") -> dict[str, list[str]]:
    """``["reward=a,b", "epsilon=0.1,0.2"]`` -> ``{"reward": ["a", "b"], "epsilon": ["0.1", "0.2"]}``; a key given
    twice gets the values of both. Also parses ``--grid`` (``flag`` names it in errors)."""
    sweeps: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not values:
            raise ValueError(f"{flag} {spec!r} must look like key=value1,value2")
        if key in NOT_SWEEPABLE:
            raise ValueError(f"{flag} {key!r}: compare sets {', '.join(NOT_SWEEPABLE)} itself "
                             "(use --seeds and --methods for seeds and methods)")
        if key not in RunConfig.valid_keys():
            raise ValueError(f"{flag} key {key!r} is not a config key; valid keys are: "
                             f"{', '.join(RunConfig.valid_keys())}")
        axis = sweeps.setdefault(key, [])
        axis.extend(value for value in values.split(",") if value not in axis)
    return sweeps


def plan_variants(methods: Sequence[str], sweeps: dict[str, list[str]],
                  grid: dict[str, list[str]] | None = None) -> list[Variant]:
    """The methods, then one GRPO-RM row per point of the ``sweeps`` grid; each of those rows once per point
    of ``grid`` (``ce @ learning_rate=1e-4``)."""
    unknown = [m for m in methods if m not in METHOD_OVERRIDES]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHOD_OVERRIDES)}")
    families = [Variant(m, dict(METHOD_OVERRIDES[m])) for m in methods]
    for point in _grid_points(sweeps):
        label = ",".join(f"{k}={v}" for k, v in point.items())
        families.append(Variant(f"grpo-rm[{label}]", {"method": "grpo-rm", **point}))
    if not grid:
        return families
    overlap = sorted(set(grid) & set(sweeps))
    if overlap:
        raise ValueError(f"{overlap} given to both --sweep and --grid; give each key to one of them")
    variants = []
    for family in families:
        for point in _grid_points(grid):
            label = ",".join(f"{k}={v}" for k, v in point.items())
            variants.append(Variant(f"{family.name} @ {label}", {**family.overrides, **point}, family.name, point))
    return variants


def _grid_points(axes: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the axes' values, in order; none for no axes."""
    if not axes:
        return []
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


@dataclass
class PlannedRun:
    """One row's run for one seed. ``same_as`` names an earlier row with identical settings, whose run this
    row shares; ``refusal`` says why a finished run cannot be reused."""

    variant: Variant
    seed: int
    config: RunConfig
    run_dir: Path
    status: str
    same_as: str | None = None
    refusal: str | None = None

    @property
    def has_own_run(self) -> bool:
        return self.same_as is None

    def record(self) -> dict:
        return {"variant": self.variant.name, "seed": self.seed, "run_dir": str(self.run_dir),
                "overrides": self.variant.overrides, "same_as": self.same_as}


def plan_comparison(base: RunConfig, methods: Sequence[str] = ("frozen", "ce", "grpo-rm"), seeds: Sequence[int] = (0,),
                    sweeps: dict[str, list[str]] | None = None,
                    grid: dict[str, list[str]] | None = None) -> list[PlannedRun]:
    """Every (row, seed) with its resolved settings, its run directory and what running it would do."""
    if not base.training.output_dir:
        raise ValueError("output_dir is required")
    runs_dir = Path(base.training.output_dir) / "runs"
    eval_datasets = _frozen_feature_datasets(base)
    plan: list[PlannedRun] = []
    by_settings: dict[str, PlannedRun] = {}
    for variant in plan_variants(methods, sweeps or {}, grid):
        for seed in seeds:
            run_dir = runs_dir / f"{variant.slug}-seed{seed}"
            # A post-trained run may be the starting encoder: its head's classes need not match.
            # An unfinished run continues from its newest checkpoint, if it wrote one.
            config = base.with_overrides(**variant.overrides, seed=seed, output_dir=str(run_dir),
                                         overwrite_output_dir=True, eval_datasets=eval_datasets or None,
                                         ignore_mismatched_sizes=True, resume_from_checkpoint="latest")
            if variant.family == "frozen" and task_class(config.model.task).random_augmentation(config) is None:
                # A linear probe's speed: the encoder reads the training set once, the head trains on its features.
                config = config.with_overrides(cache_frozen_features=True)
            settings = json.dumps(_result_settings(config), sort_keys=True, default=str)
            earlier = by_settings.get(settings)
            if earlier is None:
                status, refusal = _run_status(run_dir, config)
                planned = by_settings[settings] = PlannedRun(variant, seed, config, run_dir, status, refusal=refusal)
            else:
                planned = PlannedRun(variant, seed, earlier.config, earlier.run_dir,
                                     f"same settings as {earlier.variant.name}: shares its run",
                                     same_as=earlier.variant.name)
            plan.append(planned)
    return plan


def _other_datasets(base: RunConfig) -> list[str]:
    return [d for d in base.evaluation.eval_datasets or [] if not same_dataset(d, base.data.dataset_name)]


def _frozen_feature_datasets(base: RunConfig) -> list[str]:
    # Frozen-feature kNN / softmax regression need one label per example: the training dataset
    # joins them where the task has such labels (classification).
    if task_class(base.model.task).frozen_features:
        return [base.data.dataset_name, *_other_datasets(base)]
    return _other_datasets(base)


def _result_settings(config: RunConfig) -> dict:
    """The settings that decide a run's results."""
    return {key: value for key, value in config.to_dict().items() if key not in BOOKKEEPING_KEYS}


def _run_status(run_dir: Path, planned: RunConfig) -> tuple[str, str | None]:
    """What running the planned config in ``run_dir`` would do, and why it must not, if so."""
    if (run_dir / ALL_RESULTS_NAME).is_file():
        # A finished run is reused only if it was trained with the settings planned now.
        saved, wanted = _result_settings(RunConfig.from_run_dir(run_dir)), _result_settings(planned)
        differing = sorted(k for k in wanted if saved.get(k) != wanted[k])
        if not differing:
            return "finished, reused", None
        details = ", ".join(f"{k}: {saved.get(k)!r} then, {wanted[k]!r} now" for k in differing)
        return "finished with other settings: refused", (
            f"{run_dir} was trained with other settings ({details}); use another --output_dir, "
            "or remove that run to train it again")
    checkpoints = list_checkpoints(run_dir)
    return (f"continues from {checkpoints[-1].name}" if checkpoints else "to train"), None


def format_plan(plan: Sequence[PlannedRun]) -> str:
    rows = [[p.variant.name, p.seed, ", ".join(f"{k}={v}" for k, v in p.variant.overrides.items()), p.run_dir,
             p.status] for p in plan]
    rows_and_seeds = f"{len({p.variant.name for p in plan})} rows x {len({p.seed for p in plan})} seeds"
    shared = sum(not p.has_own_run for p in plan)
    sharing = f" ({shared} row-seed pairs share the run of an earlier row with identical settings)" if shared else ""
    return (f"Plan: {rows_and_seeds}, {len(plan) - shared} runs{sharing}\n\n"
            + markdown_table(["row", "seed", "overrides", "run directory", "status"], rows))


def run_comparison(base: RunConfig, methods: Sequence[str] = ("frozen", "ce", "grpo-rm"),
                   seeds: Sequence[int] = (0,), sweeps: dict[str, list[str]] | None = None,
                   dry_run: bool = False, grid: dict[str, list[str]] | None = None) -> dict:
    """Train (or reuse) every planned run and write the comparison; with ``dry_run``, only print the plan.

    Returns what ``comparison.json`` holds, or with ``dry_run`` ``{"plan": [...]}``.
    """
    plan = plan_comparison(base, methods, seeds, sweeps, grid)
    print(format_plan(plan))
    refused = [p.refusal for p in plan if p.refusal]
    if dry_run:
        print("\n".join(["Dry run: nothing trained or written.", *(f"Refused: {reason}" for reason in refused)]))
        return {"plan": [{**p.record(), "status": p.status} for p in plan]}
    if refused:
        raise ValueError(refused[0])
    output_dir = Path(base.training.output_dir)
    task = task_class(base.model.task)
    to_run = [p for p in plan if p.has_own_run]
    for index, planned in enumerate(to_run, start=1):
        where = f"[run {index}/{len(to_run)}] {planned.variant.name} seed {planned.seed}"
        if (planned.run_dir / ALL_RESULTS_NAME).is_file():
            print(f"{where}: finished earlier, reusing {planned.run_dir}")
        else:
            print(f"{where} -> {planned.run_dir}")
            train(planned.config)
    runs = [{**p.record(), "results": json.loads((p.run_dir / ALL_RESULTS_NAME).read_text())} for p in plan]

    own_metric = (f"eval_{task.primary_metric}", f"{task.metric_label} (own head)")
    summary = summarise(runs, base.data.dataset_name, [base.data.dataset_name, *_other_datasets(base)], own_metric)
    variant_names = list(dict.fromkeys(p.variant.name for p in plan))
    shared_rows = {p.variant.name: p.same_as for p in plan if p.same_as}
    validation_key = f"validation_{task.primary_metric}"
    best = best_grid_points(runs, {p.variant.name: p.variant.family for p in plan}, f"best_{validation_key}") if grid else {}
    curves_by_row = validation_curves(runs, validation_key)
    reference = best.get("ce", "ce")
    convergence = convergence_summary(curves_by_row, reference if reference in curves_by_row else None)
    comparison = {"config": base.to_dict(secrets=False), "methods": list(methods), "seeds": list(seeds), "sweeps": sweeps or {},
                  "grid": grid or {}, "eval_datasets": _frozen_feature_datasets(base), "runs": runs, "summary": summary,
                  "best_grid_points": best, "convergence": convergence}
    write_json_atomic(output_dir / "comparison.json", comparison)
    tables = comparison_tables(summary, variant_names, len(seeds), shared_rows)
    if best:
        tables += ("\n## Each row at its best grid point\n\nChosen by the mean over seeds of the best validation "
                   f"{task.metric_label}; the values below are the test split's.\n\n"
                   + markdown_table(["row", "best grid point"], [[family, row.split(" @ ", 1)[1]]
                                                                  for family, row in best.items()])
                   + "\n\n" + comparison_tables(summary, list(best.values()), len(seeds), shared_rows))
    tables += "\n" + convergence_table(convergence, list(best.values()) or variant_names, task.metric_label, reference)
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
    if grid and len(grid) == 1 and all(re.fullmatch(r"[-+0-9.eE]+", v) for v in next(iter(grid.values()))):
        images.append(plot_grid_metrics(grid_panels(summary, plan), next(iter(grid)), output_dir / "grid.png"))
    write_text_atomic(output_dir / "report.html", html_report(tables, images, comparison))
    print("\n" + tables)
    written = ", ".join(["comparison.json", *(Path(image).name for image in images), "report.html"])
    print(f"Wrote {output_dir / 'comparison.md'}, {written}")
    return comparison


def grid_panels(summary: dict, plan: Sequence[PlannedRun]) -> list[tuple[str, dict]]:
    """For a one-axis numeric grid: per dataset and metric, {family: [(grid value, mean, std)]}, to plot how each
    method's results (own head, retention) move along the grid, and where one collapses."""
    rows = {p.variant.name: p.variant for p in plan}
    panels = []
    for dataset, metrics in summary.items():
        for metric, by_row in metrics.items():
            if "runtime" in metric:
                continue
            lines: dict[str, list[tuple[float, float, float]]] = {}
            for row, stats in by_row.items():
                variant = rows[row]
                (value,) = variant.grid_point.values()
                lines.setdefault(variant.family, []).append((float(value), stats["mean"], stats["std"] or 0.0))
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
