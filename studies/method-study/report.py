"""docs/method-study.md's tables, made from the comparisons under studies/method-study/results/:

    python studies/method-study/report.py           # rewrites the generated blocks of docs/method-study.md
    python studies/method-study/report.py --check   # exits 1 when the doc is not what the files give

A generated block sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``; the rest of the doc is
written by hand and quotes only numbers that the generated blocks hold (tests/test_method_study.py checks both).

Per comparison: each family at its point chosen on validation (the test numbers of that point), and each family's
front against cross-entropy's at matched validation top-1 (retention on the other datasets' validation splits,
paired bootstrap over seeds, grpo_rm/reporting/frontier.py). The rule for ``recommended`` is applied last.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from grpo_rm.reporting.comparison import frontier_records
from grpo_rm.reporting.frontier import frontier_summary

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "studies" / "method-study" / "results"
DOC = ROOT / "docs" / "method-study.md"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
# The GRPO-RM families "recommended" may name (the others are cross-entropy and its baselines).
REFERENCE_WISE_FT = "ce + wise-ft"
GRPO_RM_FAMILIES = ("grpo-rm", "grpo-rm[objective_preset=step-refresh]", "grpo-rm+lp-ft", "anchored",
                    "grpo-rm + wise-ft", "grpo-rm[objective_preset=step-refresh] + wise-ft")


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def primary_metric(comparison: dict) -> str:
    """The task's metric, as its results name it after ``eval_``: accuracy for classification, mean_iou for
    segmentation."""
    return next(key for key in ("accuracy", "mean_iou") if f"eval_{key}" in comparison["runs"][0]["results"])


def selected_points(comparison: dict) -> str:
    """Each family at its grid point chosen on validation: that point's test numbers, mean ± std over seeds."""
    best = comparison["best_grid_points"] or {run["family"]: run["variant"] for run in comparison["runs"]}
    own = Path(comparison["config"]["dataset_name"]).name
    others = [d for d in comparison["eval_datasets"] if d != comparison["config"]["dataset_name"]]
    metric = f"eval_{primary_metric(comparison)}"
    label = {"eval_accuracy": "top-1", "eval_mean_iou": "mIoU"}[metric]
    header = ["family", "chosen point", "seeds", f"test {label} ({own})"]
    header += [f"{Path(d).name} kNN test (k=20)" for d in others] + [f"{Path(d).name} probe test" for d in others]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for family, row in best.items():
        runs = [run for run in comparison["runs"] if run["variant"] == row]
        cells = [family, row.partition(" @ ")[2] or "–", str(len(runs)),
                 mean_std([run["results"][metric] for run in runs])]
        for key in ("knn_accuracy", "linear_probe_accuracy"):
            for dataset in others:
                values = [run["results"]["representation"][dataset][key] for run in runs]
                cells.append(mean_std([v["20"] if isinstance(v, dict) else v for v in values]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def delta(entry: dict) -> str:
    if entry["delta"] is None:
        return "–"
    interval = "" if entry["ci95"] is None else f" [{entry['ci95'][0]:+.3f}, {entry['ci95'][1]:+.3f}]"
    return f"{entry['delta']:+.3f}{interval}"


def matched_table(comparisons: dict, whose: str) -> list[str]:
    """The lines of a table of matched comparisons (``reporting.frontier.matched_comparison``), one row a family."""
    lines = [f"| family | Δ retention at {whose} top-1 | Δ top-1 at {whose} retention | Δ best top-1 | seeds | verdict |",
             "|---|---|---|---|---|---|"]
    for family, matched in comparisons.items():
        lines.append(f"| {family} | {delta(matched['retention_at_matched_top1'])} | "
                     f"{delta(matched['top1_at_matched_retention'])} | {delta(matched['best_top1'])} | "
                     f"{matched['n_seeds']} | {matched['verdict']} |")
    return lines + [""]


def frontier_tables(frontier: dict) -> str:
    """Per retention panel of a ``frontier_summary``: its families against its reference, matched deltas and
    verdicts (validation)."""
    lines = []
    for panel, content in frontier["panels"].items():
        anchor = next(iter(content["comparisons"].values()))["anchor"]["grid_point"]
        lines.append(f"**{panel}** (validation), against `{frontier['reference']}`, anchored at {anchor}\n")
        lines += matched_table(content["comparisons"], f"{frontier['reference']}'s")
    return "\n".join(lines)


def fronts(comparison: dict) -> str:
    """Each family against cross-entropy: the comparison's own ``frontier`` block."""
    frontier = comparison.get("frontier")
    return frontier_tables(frontier) if frontier else "(no fronts: one point per family)\n"


def against_wise_ft(comparison: dict) -> str:
    """The GRPO-RM families against the strongest cross-entropy baseline of the step, ``ce + wise-ft`` (its front
    holds cross-entropy's own points, alpha 1, and the interpolated ones): the fronts ``compare`` reports, with
    that reference instead of ``ce`` (validation)."""
    panels = frontier_records(comparison["runs"], comparison["config"]["dataset_name"],
                              f"validation_{primary_metric(comparison)}")
    families = [family for family in dict.fromkeys(run["family"] for run in comparison["runs"])
                if family in GRPO_RM_FAMILIES]
    return frontier_tables(frontier_summary(panels, [REFERENCE_WISE_FT, *families], reference=REFERENCE_WISE_FT))


def rule_winner(comparisons: dict) -> str:
    """Among the GRPO-RM families of one panel's matched comparisons: the highest front at cross-entropy's best
    validation top-1; when no front reaches that top-1, the highest best top-1."""
    candidates = {family: matched for family, matched in comparisons.items() if family in GRPO_RM_FAMILIES}
    if not candidates:
        raise SystemExit(f"no GRPO-RM family among {list(comparisons)}")
    reaching = {family: matched["retention_at_matched_top1"]["family_value"] for family, matched in candidates.items()
                if matched["retention_at_matched_top1"]["family_value"] is not None}
    if reaching:
        return max(reaching, key=reaching.get)
    return max(candidates, key=lambda family: candidates[family]["best_top1"]["family_value"])


def recommended(names: list[str]) -> str:
    """The rule fixed before the study: per setting, on its first retention panel (kNN on the first retention
    dataset, validation), the GRPO-RM family whose front has the highest retention at cross-entropy's best
    validation top-1 (a family that does not reach that top-1 counts below every family that does); the family
    that wins most settings (ties: the first setting's)."""
    winners = []
    lines = ["| setting | panel | GRPO-RM family with the highest retention at ce's best validation top-1 |",
             "|---|---|---|"]
    for name in names:
        frontier = load(name).get("frontier")
        if not frontier:
            continue
        panel, content = next(iter(frontier["panels"].items()))
        winner = rule_winner(content["comparisons"])
        winners.append(winner)
        lines.append(f"| {name} | {panel} | {winner} |")
    choice = max(dict.fromkeys(winners), key=winners.count) if winners else "(none)"
    lines.append("")
    lines.append(f"Chosen by the rule: **{choice}**.")
    return "\n".join(lines) + "\n"


def blocks() -> dict[str, str]:
    names = sorted(path.stem for path in RESULTS.glob("*.json"))
    generated = {}
    for name in names:
        comparison = load(name)
        generated[f"{name}-selected"] = selected_points(comparison)
        generated[f"{name}-fronts"] = fronts(comparison)
        if any(run["family"] == REFERENCE_WISE_FT for run in comparison["runs"]):
            generated[f"{name}-against-wise-ft"] = against_wise_ft(comparison)
    deciding = [name for name in names if name.endswith("-A")]
    if deciding:
        generated["recommended"] = recommended(deciding)
    return generated


def render(text: str, generated: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in generated:
            raise SystemExit(f"docs/method-study.md has a block {name!r} that no result file gives")
        return match.group(1) + generated[name] + match.group(4)

    return BLOCK.sub(replace, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = DOC.read_text()
    rendered = render(text, blocks())
    if args.check:
        sys.exit(0 if rendered == text else 1)
    DOC.write_text(rendered)


if __name__ == "__main__":
    main()
