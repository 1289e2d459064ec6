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

import argparse
import dataclasses
import itertools
import typing
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from ..config import RunConfig, result_keys, run_config_from_args, run_config_parser
from ..config.arguments import add_field_option
from ..data import same_dataset
from ..files import (
    ALL_RESULTS_NAME,
    COMPARISON_LAUNCH_DIR,
    COMPARISON_JSON_NAME,
    COMPARISON_MARKDOWN_NAME,
    COMPARISON_RUNS_DIR,
    CURVES_FIGURE_NAME,
    FRONTIER_FIGURE_NAME,
    GRID_FIGURE_NAME,
    METRICS_LOG_NAME,
    REPORT_HTML_NAME,
    WISE_FT_ALPHA_PREFIX,
    WISE_FT_RUNS_DIR,
    write_json_atomic,
    write_text_atomic,
)
from ..reporting import average_records, markdown_table, plot_grid_metrics, plot_training_curves, read_metrics_log
from ..reporting.comparison import (
    best_grid_points,
    comparison_tables,
    convergence_summary,
    convergence_table,
    frontier_records,
    frontier_table,
    frozen_points,
    grid_panels,
    html_report,
    summarise,
    validation_curves,
)
from ..tasks import task_class
from ..training.checkpoints import list_checkpoints
from ..launchers import InProcessLauncher, LocalLauncher, Row, SlurmArguments, SubmititLauncher
from ..reporting.frontier import frontier_summary, plot_frontier
from .train import run_training
from .wise_ft import evaluate_wise_ft, parse_alphas, write_wise_ft
from . import COMMANDS

HELP = COMMANDS["compare"].help

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
                 "resume_from_checkpoint", "load_best_model_at_end")
# WiSE-FT rows: each trained row's runs interpolated back towards the starting encoder (grpo-rm wise-ft), one row
# per alpha, in the family "<row's family> + wise-ft"; their folders live in each run's directory.
WISE_FT_FAMILY_SUFFIX = " + wise-ft"


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


def parse_rows(specs: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["ce+lp-ft:method=ce,head_warmup_epochs=1"]`` -> ``{"ce+lp-ft": {"method": "ce", "head_warmup_epochs": "1"}}``:
    rows of any method, named, with the settings that make them (``--rows``)."""
    rows: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, sep, settings = spec.partition(":")
        pairs = [item.partition("=") for item in settings.split(",")] if settings else []
        if not sep or not name or not pairs or any(not key or not equals or not value for key, equals, value in pairs):
            raise ValueError(f"--rows {spec!r} must look like name:key=value,key=value "
                             "(e.g. ce+lp-ft:method=ce,head_warmup_epochs=1)")
        if name in rows or name in METHOD_OVERRIDES:
            raise ValueError(f"--rows {spec!r}: the row name {name!r} is taken; name each row once")
        for key, _, _ in pairs:
            if key != "method" and (key in NOT_SWEEPABLE or key not in RunConfig.valid_keys()):
                raise ValueError(f"--rows {spec!r}: {key!r} is not a key a row may set (compare sets "
                                 f"{', '.join(NOT_SWEEPABLE)} itself; other keys must be config keys)")
        rows[name] = {key: value for key, _, value in pairs}
    return rows


def plan_variants(methods: Sequence[str], sweeps: dict[str, list[str]],
                  grid: dict[str, list[str]] | None = None,
                  method_overrides: Optional[Mapping[str, Mapping[str, object]]] = None,
                  rows: Optional[Mapping[str, Mapping[str, str]]] = None) -> list[Variant]:
    """The methods, then the named ``rows`` (any method, with their settings), then one GRPO-RM row per point of the
    ``sweeps`` grid; each of those rows once per point of ``grid`` (``ce @ learning_rate=1e-4``).
    ``method_overrides`` adds settings to a method's row (the demo's linear probe takes a larger head learning
    rate)."""
    unknown = [m for m in methods if m not in METHOD_OVERRIDES]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHOD_OVERRIDES)}")
    method_overrides = method_overrides or {}
    families = [Variant(m, {**METHOD_OVERRIDES[m], **method_overrides.get(m, {})}) for m in methods]
    families += [Variant(name, {"method": "grpo-rm", **settings}) for name, settings in (rows or {}).items()]
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
        return {"variant": self.variant.name, "family": self.variant.family, "grid_point": self.variant.grid_point,
                "seed": self.seed, "run_dir": str(self.run_dir), "overrides": self.variant.overrides,
                "same_as": self.same_as}


def plan_comparison(base: RunConfig, methods: Sequence[str] = ("frozen", "ce", "grpo-rm"), seeds: Sequence[int] = (0,),
                    sweeps: dict[str, list[str]] | None = None, grid: dict[str, list[str]] | None = None,
                    method_overrides: Optional[Mapping[str, Mapping[str, object]]] = None,
                    rows: Optional[Mapping[str, Mapping[str, str]]] = None) -> list[PlannedRun]:
    """Every (row, seed) with its resolved settings, its run directory and what running it would do."""
    if not base.training.output_dir:
        raise ValueError("output_dir is required")
    runs_dir = Path(base.training.output_dir) / COMPARISON_RUNS_DIR
    eval_datasets = _frozen_feature_datasets(base)
    plan: list[PlannedRun] = []
    by_settings: dict[str, PlannedRun] = {}
    for variant in plan_variants(methods, sweeps or {}, grid, method_overrides, rows):
        for seed in seeds:
            run_dir = runs_dir / f"{variant.slug}-seed{seed}"
            # A post-trained run may be the starting encoder: its head's classes need not match.
            # An unfinished run continues from its newest checkpoint, if it wrote one. Every number a run reports
            # comes from the epoch its validation score chose (load_best_model_at_end).
            config = base.with_overrides(**variant.overrides, seed=seed, output_dir=str(run_dir),
                                         overwrite_output_dir=True, eval_datasets=eval_datasets or None,
                                         ignore_mismatched_sizes=True, resume_from_checkpoint="latest",
                                         load_best_model_at_end=True)
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
    """The settings that decide a run's results: the keys whose role is ``result`` (bookkeeping and runtime keys
    may differ between a finished run and a re-run of the same comparison)."""
    keys = set(result_keys())
    return {key: value for key, value in config.to_dict().items() if key in keys}


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
                   dry_run: bool = False, grid: dict[str, list[str]] | None = None,
                   method_overrides: Optional[Mapping[str, Mapping[str, object]]] = None,
                   wise_ft_alphas: Sequence[str] = (), launcher: Optional[object] = None,
                   rows: Optional[Mapping[str, Mapping[str, str]]] = None) -> dict:
    """Train (or reuse) every planned run and write the comparison; with ``dry_run``, only print the plan.

    ``launcher`` runs the rows still to train (``grpo_rm.launchers``; default: one after the other in this
    process). A row that fails is reported with its log and marked missing in the report; the others go on.
    ``wise_ft_alphas`` adds, for every trained row but ``frozen``, WiSE-FT rows: each run interpolated back towards
    the encoder it started from at each alpha (``grpo-rm wise-ft``), evaluated as a run is.
    Returns what ``comparison.json`` holds; with ``dry_run`` ``{"plan": [...]}``; with rows submitted and not waited
    for, ``{"plan": [...], "submitted": [...]}``.
    """
    if wise_ft_alphas:
        parse_alphas(wise_ft_alphas)  # a bad alpha stops the command before anything is trained
    plan = plan_comparison(base, methods, seeds, sweeps, grid, method_overrides, rows)
    print(format_plan(plan))
    refused = [p.refusal for p in plan if p.refusal]
    if dry_run:
        print("\n".join(["Dry run: nothing trained or written.", *(f"Refused: {reason}" for reason in refused)]))
        return {"plan": [{**p.record(), "status": p.status} for p in plan]}
    if refused:
        raise ValueError(refused[0])
    launch_dir = Path(base.training.output_dir) / COMPARISON_LAUNCH_DIR
    to_launch = [Row(p.variant.name, p.seed, p.config, launch_dir / f"{p.variant.slug}-seed{p.seed}")
                 for p in plan if p.has_own_run and not (p.run_dir / ALL_RESULTS_NAME).is_file()]
    print(f"{len(to_launch)} of {sum(p.has_own_run for p in plan)} runs to train; the others finished earlier")
    launcher = launcher or InProcessLauncher(run_training, show_progress=not base.training.disable_tqdm)
    outcomes = launcher.run(to_launch)
    for outcome in outcomes:
        if outcome.status != "finished":
            print(f"{outcome.row.label}: {outcome.status}: {outcome.detail}")
    submitted = [outcome for outcome in outcomes if outcome.status == "submitted"]
    if submitted:
        print(f"{len(submitted)} row(s) submitted and not finished: run the same command again to collect them")
        return {"plan": [p.record() for p in plan],
                "submitted": [{"row": o.row.label, "detail": o.detail} for o in submitted]}
    failed = {str(outcome.row.run_dir): outcome.detail for outcome in outcomes if outcome.status == "failed"}
    finished = [p for p in plan if (p.run_dir / ALL_RESULTS_NAME).is_file()]
    runs = [{**p.record(), "results": json.loads((p.run_dir / ALL_RESULTS_NAME).read_text())} for p in finished]
    runs += wise_ft_runs(finished, wise_ft_alphas)
    missing = [{**p.record(), "reason": failed.get(str(p.run_dir), "no results")} for p in plan if p not in finished]
    comparison = {"config": base.to_dict(secrets=False), "methods": list(methods), "seeds": list(seeds),
                  "rows": dict(rows or {}), "sweeps": sweeps or {}, "grid": grid or {},
                  "wise_ft_alphas": list(wise_ft_alphas),
                  "eval_datasets": _frozen_feature_datasets(base), "runs": runs, "missing_runs": missing}
    return write_report(base, comparison)


def wise_ft_runs(plan: Sequence[PlannedRun], alphas: Sequence[str]) -> list[dict]:
    """The WiSE-FT rows' runs: for each trained run but ``frozen``'s, its alphas written and evaluated under
    ``<run>/wise-ft/alpha-<alpha>/`` (reused when done), as records like the trained runs'."""
    records = []
    for planned in plan:
        if not alphas or planned.variant.family == "frozen":
            continue
        folder = planned.run_dir / WISE_FT_RUNS_DIR
        labels = parse_alphas(alphas)
        done = all((folder / f"{WISE_FT_ALPHA_PREFIX}{label}" / ALL_RESULTS_NAME).is_file() for label in labels)
        if planned.has_own_run and not done:
            print(f"WiSE-FT of {planned.variant.name} seed {planned.seed}: alphas {', '.join(labels)}")
            evaluate_wise_ft(write_wise_ft(planned.run_dir, list(labels), folder, overwrite_output_dir=True),
                             planned.run_dir)
        family = planned.variant.family + WISE_FT_FAMILY_SUFFIX
        for label in labels:
            alpha_dir = folder / f"{WISE_FT_ALPHA_PREFIX}{label}"
            grid_point = {**planned.variant.grid_point, "alpha": label}
            point = ",".join(f"{k}={v}" for k, v in grid_point.items())
            records.append({"variant": f"{family} @ {point}", "family": family, "grid_point": grid_point,
                            "seed": planned.seed, "run_dir": str(alpha_dir), "overrides": planned.variant.overrides,
                            "same_as": None, "results": json.loads((alpha_dir / ALL_RESULTS_NAME).read_text())})
    return records


def write_report(base: RunConfig, comparison: dict) -> dict:
    """Summaries, tables and figures of the comparison's runs: comparison.json / .md, curves.png, the task's
    figures, grid.png for a one-axis numeric grid, frontier.png and the matched comparisons when a family has
    several grid points (a grid, or WiSE-FT alphas), and report.html; returns what comparison.json holds."""
    output_dir = Path(base.training.output_dir)
    task = task_class(base.model.task)
    runs, grid = comparison["runs"], comparison["grid"]
    num_seeds = len(comparison["seeds"])
    own_metrics = [(f"eval_{key}", f"{label} (own head)")
                   for key, label in ((task.primary_metric, task.metric_label), *task.secondary_metrics)]
    summary = summarise(runs, base.data.dataset_name, [base.data.dataset_name, *_other_datasets(base)], own_metrics)
    variant_names = list(dict.fromkeys(run["variant"] for run in runs))
    shared_rows = {run["variant"]: run["same_as"] for run in runs if run["same_as"]}
    validation_key = f"validation_{task.primary_metric}"
    families = {run["variant"]: run["family"] for run in runs}
    several_points = len(set(families.values())) < len(families)
    best = best_grid_points(runs, families, f"best_{validation_key}") if several_points else {}
    curves_by_row = validation_curves([run for run in runs if (Path(run["run_dir"]) / METRICS_LOG_NAME).is_file()],
                                      validation_key)
    reference = best.get("ce", "ce")
    convergence = convergence_summary(curves_by_row, reference if reference in curves_by_row else None)
    frontier = (frontier_summary(frontier_records(runs, base.data.dataset_name, validation_key),
                                 [family for family in dict.fromkeys(families.values()) if family != "frozen"])
                if several_points and "ce" in families.values() and _other_datasets(base) else None)
    comparison = {**comparison, "summary": summary, "best_grid_points": best, "convergence": convergence,
                  "frontier": frontier}
    write_json_atomic(output_dir / COMPARISON_JSON_NAME, comparison)
    tables = comparison_tables(summary, variant_names, num_seeds, shared_rows)
    if comparison.get("missing_runs"):
        tables = ("**Missing runs** (left out of every table below): " + "; ".join(
            f"{run['variant']} seed {run['seed']} ({run['reason']})" for run in comparison["missing_runs"])
            + ".\n\n" + tables)
    if best:
        tables += ("\n## Each row at its best grid point\n\nChosen by the mean over seeds of the validation "
                   f"{task.metric_label} of the checkpoint each run reports (the epoch its validation chose); the "
                   "values below are the test split's, of that same checkpoint.\n\n"
                   + markdown_table(["row", "best grid point"], [[family, row.partition(" @ ")[2] or "(its only one)"]
                                                                  for family, row in best.items()])
                   + "\n\n" + comparison_tables(summary, list(best.values()), num_seeds, shared_rows))
    tables += "\n" + convergence_table(convergence, list(best.values()) or variant_names, task.metric_label, reference)
    if frontier is not None:
        tables += "\n" + frontier_table(frontier, task.metric_label)
    write_text_atomic(output_dir / COMPARISON_MARKDOWN_NAME, tables)
    validation_metric = (f"validation_{task.primary_metric}", f"validation {task.metric_label}")
    curves = plot_training_curves(
        {name: average_records([read_metrics_log(Path(r["run_dir"]) / METRICS_LOG_NAME)
                                for r in runs if r["variant"] == name]) for name in variant_names
         if WISE_FT_FAMILY_SUFFIX not in families[name]},
        output_dir / CURVES_FIGURE_NAME,
        metrics=(("loss", "training loss (each method's own objective)"), validation_metric),
    )
    first_runs = {r["variant"]: r["run_dir"] for r in reversed(runs)}  # each row's first seed
    variant_names_trained = [name for name in variant_names if WISE_FT_FAMILY_SUFFIX not in families[name]]
    images = [curves, *task.figures([first_runs[name] for name in variant_names_trained], output_dir,
                                    variant_names_trained)]
    if grid and len(grid) == 1 and all(re.fullmatch(r"[-+0-9.eE]+", v) for v in next(iter(grid.values()))):
        rows = {run["variant"]: (run["family"], run["grid_point"]) for run in runs
                if set(run["grid_point"]) == set(grid)}
        images.append(plot_grid_metrics(grid_panels(summary, rows), next(iter(grid)), output_dir / GRID_FIGURE_NAME))
    if frontier is not None:
        images.append(plot_frontier(frontier, output_dir / FRONTIER_FIGURE_NAME,
                                    frozen_points(runs, base.data.dataset_name, validation_key), task.metric_label))
    write_text_atomic(output_dir / REPORT_HTML_NAME, html_report(tables, images, comparison))
    print("\n" + tables)
    written = ", ".join([COMPARISON_JSON_NAME, *(Path(image).name for image in images), REPORT_HTML_NAME])
    print(f"Wrote {output_dir / COMPARISON_MARKDOWN_NAME}, {written}")
    return comparison


def build_parser() -> argparse.ArgumentParser:
    parser = run_config_parser(
        "grpo-rm compare", f"{HELP}. Takes every `grpo-rm train` option as the base of every row.")
    group = parser.add_argument_group("compare options")
    group.add_argument("--methods", nargs="+", default=["frozen", "ce", "grpo-rm"], choices=list(METHOD_OVERRIDES),
                       help="Rows: the encoder with a trained linear head (frozen), cross-entropy, GRPO-RM.")
    group.add_argument("--seeds", type=int, nargs="+", default=[0], help="Every row runs once per seed.")
    group.add_argument("--rows", nargs="+", action="extend", default=[], metavar="NAME:KEY=V,KEY=V",
                       help="Named rows of any method with the settings that make them, e.g. "
                            "ce+lp-ft:method=ce,head_warmup_epochs=1 ce+l2sp:method=ce,l2sp_weight=0.1 "
                            "(method defaults to grpo-rm).")
    group.add_argument("--sweep", nargs="+", action="extend", default=[], metavar="KEY=V1,V2",
                       help="GRPO-RM variants; axes given in one --sweep or in several combine into one grid.")
    group.add_argument("--grid", nargs="+", action="extend", default=[], metavar="KEY=V1,V2",
                       help="Applied to every row (methods and variants), e.g. learning_rate=1e-5,3e-5,1e-4 or "
                            "head_warmup_epochs=0,1; the report adds each row at its best grid point, chosen on "
                            "validation.")
    group.add_argument("--wise_ft_alphas", nargs="+", default=[], metavar="ALPHA",
                       help="Add WiSE-FT rows: every trained row's runs interpolated back towards the starting "
                            "encoder at these alphas in [0, 1] (grpo-rm wise-ft), one row per alpha, evaluated as "
                            "runs are; the fronts then compare e.g. 'ce + wise-ft' with 'grpo-rm'.")
    launch = parser.add_argument_group("where rows run")
    launch.add_argument("--launcher", choices=("local", "submitit"), default="local",
                        help="local: on this machine (one row at a time in this process, or --max_parallel rows at "
                             "once, each its own process); submitit: each row a SLURM job (or a local one with "
                             "--submitit_cluster local).")
    launch.add_argument("--max_parallel", type=int, default=1,
                        help="local: rows at once; on CPU each gets its share of the cores (num_threads), on GPUs "
                             "its --gpus_per_row devices.")
    launch.add_argument("--gpus_per_row", type=int, default=1,
                        help="local, on GPUs: devices per row (several: the row trains under torchrun, DDP).")
    launch.add_argument("--no_wait", action="store_true",
                        help="submitit: submit the rows and return; run the command again to collect them.")
    hints = typing.get_type_hints(SlurmArguments)
    for slurm_field in dataclasses.fields(SlurmArguments):  # submitit's job parameters, typed and checked as keys are
        add_field_option(launch, slurm_field, hints[slurm_field.name], default=slurm_field.default)
    group.add_argument("--dry_run", action="store_true",
                       help="Print the planned rows, their run directories and what is shared, reused or to train; "
                            "train nothing.")
    return parser


def main(args: argparse.Namespace) -> None:
    values = vars(args)
    options = {key: values.pop(key) for key in ("methods", "seeds", "rows", "sweep", "grid", "dry_run",
                                                "wise_ft_alphas", "launcher", "max_parallel", "gpus_per_row",
                                                "no_wait")}
    slurm = SlurmArguments(**{f.name: values.pop(f.name) for f in dataclasses.fields(SlurmArguments)})
    base = run_config_from_args(values)
    run_comparison(base, options["methods"], options["seeds"], parse_sweeps(options["sweep"]),
                   dry_run=options["dry_run"], grid=parse_sweeps(options["grid"], "--grid"),
                   wise_ft_alphas=options["wise_ft_alphas"], rows=parse_rows(options["rows"]),
                   launcher=make_launcher(base, options["launcher"], options["max_parallel"], options["gpus_per_row"],
                                          slurm, wait=not options["no_wait"]))


def make_launcher(base: RunConfig, kind: str = "local", max_parallel: int = 1, gpus_per_row: int = 1,
                  slurm: Optional[SlurmArguments] = None, wait: bool = True):
    """The launcher of compare's options: in this process (local, one at a time), a local pool, or submitit."""
    show = not base.training.disable_tqdm
    if kind == "submitit":
        return SubmititLauncher(run_training, Path(base.training.output_dir) / COMPARISON_LAUNCH_DIR,
                                slurm or SlurmArguments(), wait, show)
    if kind != "local":
        raise ValueError(f"launcher={kind!r} is not one of ['local', 'submitit']")
    if not wait:
        raise ValueError("--no_wait needs --launcher submitit: local rows are processes of this command")
    if max_parallel == 1 and gpus_per_row == 1:
        return InProcessLauncher(run_training, show)
    return LocalLauncher(max_parallel, gpus_per_row, show_progress=show)
