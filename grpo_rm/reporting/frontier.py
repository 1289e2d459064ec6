"""Methods compared at matched performance: Pareto fronts of (top-1, retention) and a paired bootstrap over seeds.

A *record* is one run: ``{"family": "grpo-rm", "grid_point": "learning_rate=1e-4", "seed": 0, "x": ..., "y": ...}``
with ``x`` the post-training top-1 on the task and ``y`` a retention metric (e.g. kNN top-1 of the encoder's
frozen features on another dataset), both better higher. A family's *front* is the Pareto front of its grid
points' means over seeds. Runs of two families with the same seed share data order and initialisation, so the
intervals resample seeds, both families' runs of a seed together. Everything returned is plain Python (floats,
lists, dicts, None), ready for ``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence, TypedDict

import numpy as np

Point = tuple[float, float]
Runs = dict[str, list[tuple[int, float, float]]]  # grid point -> [(seed, x, y)], seeds ascending
Means = dict[str, dict[str, Point]]  # "family" / "reference" -> grid point -> mean (x, y)
Site = tuple[str, str]  # ("family" or "reference", grid point): where a gap is taken


class FrontierRecord(TypedDict):
    """One run: its family (method), grid point label, seed, top-1 ``x`` and retention ``y``."""

    family: str
    grid_point: str
    seed: int
    x: float
    y: float


def pareto_front(points: Iterable[Sequence[float]]) -> list[Point]:
    """The non-dominated (x, y) points, sorted by x ascending (so y strictly descending). A point is dominated
    when another has x >= and y >= with at least one strictly greater; duplicates collapse to one point."""
    front: list[Point] = []
    best_y = -math.inf
    # From the right (x descending, ties by y descending): a point survives iff it beats every y seen so far.
    for x, y in sorted(((float(x), float(y)) for x, y in points), reverse=True):
        if y > best_y:
            front.append((x, y))
            best_y = y
    return front[::-1]


def _interpolate(knots: Sequence[float], values: Sequence[float], at: float) -> float | None:
    """Straight segments through (knots[i], values[i]), knots ascending; None outside [knots[0], knots[-1]]."""
    if not knots or not knots[0] <= at <= knots[-1]:
        return None
    index = bisect.bisect_left(knots, at)
    if knots[index] == at:
        return values[index]
    left, right = index - 1, index
    return values[left] + (values[right] - values[left]) * (at - knots[left]) / (knots[right] - knots[left])


def front_value_at(front: Sequence[Point], x: float) -> float | None:
    """The front's y at top-1 ``x``: a front point's own y at its x, linear between consecutive front points,
    None outside [min x, max x] of the front (never extrapolated). ``front`` as ``pareto_front`` returns it."""
    return _interpolate([p[0] for p in front], [p[1] for p in front], x)


def front_x_at(front: Sequence[Point], y: float) -> float | None:
    """The inverse of ``front_value_at``: the front's x at retention ``y``, same rules (None outside the front's
    y range)."""
    # y descends along the front: walk it backwards so the knots ascend.
    return _interpolate([p[1] for p in reversed(front)], [p[0] for p in reversed(front)], y)


def family_points(records: Iterable[FrontierRecord], family: str) -> Runs:
    """``{grid_point: [(seed, x, y), ...]}`` of ``family``'s records, grid points in order of first appearance,
    seeds ascending. Two records of one (grid point, seed), or a non-finite x or y, are a ValueError."""
    runs: Runs = {}
    for record in records:
        if record["family"] != family:
            continue
        grid_point, seed, x, y = str(record["grid_point"]), int(record["seed"]), float(record["x"]), float(record["y"])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"{family} {grid_point!r} seed {seed}: x={x}, y={y} must be finite")
        if any(seen == seed for seen, _, _ in runs.get(grid_point, ())):
            raise ValueError(f"{family} {grid_point!r} seed {seed}: two records")
        runs.setdefault(grid_point, []).append((seed, x, y))
    return {grid_point: sorted(seed_runs) for grid_point, seed_runs in runs.items()}


def grid_point_means(runs: Runs) -> list[dict]:
    """Per grid point: ``grid_point``, ``n_seeds``, ``x_mean``, ``x_std``, ``y_mean``, ``y_std``; the stds are over
    seeds with Bessel's correction (0.0 for a single seed)."""
    summary = []
    for grid_point, seed_runs in runs.items():
        xs, ys = np.array([run[1] for run in seed_runs]), np.array([run[2] for run in seed_runs])
        ddof = 1 if len(seed_runs) > 1 else 0
        summary.append({"grid_point": grid_point, "n_seeds": len(seed_runs),
                        "x_mean": float(xs.mean()), "x_std": float(xs.std(ddof=ddof)),
                        "y_mean": float(ys.mean()), "y_std": float(ys.std(ddof=ddof))})
    return summary


def _resampled_means(runs: Runs, seeds: Sequence[int], counts: np.ndarray) -> list[dict[str, Point]]:
    """For each row of ``counts`` (how often each of ``seeds`` is drawn), every grid point's mean (x, y) over the
    drawn seeds it has, a seed drawn twice counting twice; a grid point with none of them drawn is left out."""
    labels = list(runs)
    column = {seed: index for index, seed in enumerate(seeds)}
    xs, ys, has = (np.zeros((len(labels), len(seeds))) for _ in range(3))
    for row, label in enumerate(labels):
        for seed, x, y in runs[label]:
            if seed in column:
                xs[row, column[seed]], ys[row, column[seed]], has[row, column[seed]] = x, y, 1.0
    weights = counts[:, None, :] * has[None]  # (replicate, grid point, seed)
    drawn = weights.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x, mean_y = (weights * xs).sum(-1) / drawn, (weights * ys).sum(-1) / drawn
    return [{label: (float(mean_x[b, g]), float(mean_y[b, g])) for g, label in enumerate(labels) if drawn[b, g] > 0}
            for b in range(len(counts))]


def _difference(value: float | None, reference_value: float | None) -> float | None:
    return None if value is None or reference_value is None else value - reference_value


def _deltas(means: Means, anchor: str, gap_sites: Sequence[Site]) -> list[float | None]:
    """[retention at the anchor's top-1, top-1 at the anchor's retention, best top-1 of the family's front minus
    the reference's, the gap at each site] for one set of means; a gap is taken at its grid point's mean x, so it
    moves with that point in a bootstrap replicate."""
    fronts = {side: pareto_front(side_means.values()) for side, side_means in means.items()}
    if anchor not in means["reference"]:
        return [None] * (3 + len(gap_sites))
    anchor_x, anchor_y = means["reference"][anchor]
    deltas = [_difference(front_value_at(fronts["family"], anchor_x), front_value_at(fronts["reference"], anchor_x)),
              _difference(front_x_at(fronts["family"], anchor_y), front_x_at(fronts["reference"], anchor_y)),
              fronts["family"][-1][0] - fronts["reference"][-1][0]]
    for side, grid_point in gap_sites:
        point = means[side].get(grid_point)
        deltas.append(None if point is None else
                      _difference(front_value_at(fronts["family"], point[0]),
                                  front_value_at(fronts["reference"], point[0])))
    return deltas


def _gap_sites(means: Means, anchor: str) -> list[Site]:
    """The anchor and every point of either front whose x lies in the overlap of the fronts' x ranges, one site
    per distinct x (the reference's grid point first), sorted by x."""
    fronts = {side: pareto_front(side_means.values()) for side, side_means in means.items()}
    low, high = max(front[0][0] for front in fronts.values()), min(front[-1][0] for front in fronts.values())
    candidates = [("reference", anchor)] + [(side, grid_point) for side in ("reference", "family")
                                            for grid_point, point in means[side].items() if point in fronts[side]]
    sites: dict[float, Site] = {}
    for side, grid_point in candidates:
        x = means[side][grid_point][0]
        if low <= x <= high:
            sites.setdefault(x, (side, grid_point))
    return [sites[x] for x in sorted(sites)]


def _interval(estimate: float | None, replicates: Sequence[float | None]) -> dict:
    """The estimate, the 2.5/97.5 percentiles of the replicates that are not None, and how many those were; no
    interval (and 0 used) for a None estimate or no replicate."""
    used = np.array([value for value in replicates if value is not None])
    if estimate is None or not used.size:
        return {"delta": estimate, "ci95": None, "n_boot_used": 0}
    return {"delta": estimate, "ci95": [float(bound) for bound in np.percentile(used, [2.5, 97.5])],
            "n_boot_used": int(used.size)}


def _verdict(evidence: Sequence[dict]) -> str:
    """See ``matched_comparison``."""
    def above(entry: dict) -> bool:
        return entry["ci95"] is not None and entry["ci95"][0] > 0

    def below(entry: dict) -> bool:
        return entry["ci95"] is not None and entry["ci95"][1] < 0

    if any(map(above, evidence)) and any(map(below, evidence)):
        return "crosses"
    if any(map(above, evidence)):
        return "dominates"
    if any(map(below, evidence)):
        return "dominated"
    return "inconclusive"


def matched_comparison(records: Iterable[FrontierRecord], family: str, reference: str = "ce", anchor: str | None = None,
                       n_boot: int = 2000, seed: int = 0) -> dict:
    """``family``'s front against ``reference``'s, at the reference's ``anchor`` grid point.

    Only the seeds both families ran are used (``n_seeds``, ``seeds``); the others are listed in
    ``unpaired_seeds``. Grid points are averaged over those seeds and the fronts (``family_front``,
    ``reference_front``, lists of [x, y]) built from the means. The anchor (default: the reference's grid point
    with the highest mean x, ties to the higher mean y; or the label given, e.g. chosen on validation) is at
    (x0, y0), its mean top-1 and retention.

    - ``retention_at_matched_top1``: family front's y at x0 minus the reference front's y at x0.
    - ``top1_at_matched_retention``: family front's x at y0 minus the reference front's x at y0 (which is x0
      when the anchor is on the reference front).
    - ``gaps``: family front's y minus the reference front's y at the anchor's x and at each front point's x that
      lies in the overlap of the two fronts' x ranges (one per distinct x); each is tied to its grid point, so a
      bootstrap replicate takes it at that grid point's resampled mean x.

    A value outside a front's range is None (never extrapolated), and so is its delta, with ci95 None.

    Intervals: a paired bootstrap over the common seeds, sorted ascending: with
    ``numpy.random.default_rng(seed)``, one call ``integers(0, n_seeds, size=(n_boot, n_seeds))`` draws each
    replicate's seed indices; every grid point's means are recomputed from the drawn seeds (a seed drawn twice
    counts twice), both fronts rebuilt, the anchor's (x0, y0) recomputed, and every delta recomputed. ``ci95`` is
    the 2.5/97.5 percentiles of the replicates' deltas, skipping replicates where it is None; ``n_boot_used``
    counts those kept. With one common seed there are no intervals.

    - ``best_top1``: the family front's highest x minus the reference front's: how much top-1 each can reach at
      all. Where the family never reaches the anchor's top-1, the retention delta is None and this says by how much
      it falls short.

    Verdict: an interval is *above* when its lower end is > 0 and *below* when its upper end is < 0; the
    evidence is the intervals of the two matched deltas, of ``best_top1`` and of the gaps.
    ``crosses``: some evidence above and some below (e.g. a family that keeps more where both fronts reach, but
    cannot reach the reference's best top-1). ``dominates``: some evidence above and none below. ``dominated``:
    some evidence below and none above. ``inconclusive``: no interval excludes 0, which includes one common seed
    (no intervals).
    ``note`` says why a delta or interval is missing and which seeds were left out, or is None.
    """
    records = list(records)  # read twice below
    runs = {"family": family_points(records, family), "reference": family_points(records, reference)}
    for name, side_runs in zip((family, reference), runs.values()):
        if not side_runs:
            raise ValueError(f"no records of family {name!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    seeds_of = {side: {run_seed for seed_runs in side_runs.values() for run_seed, _, _ in seed_runs}
                for side, side_runs in runs.items()}
    seeds = sorted(seeds_of["family"] & seeds_of["reference"])
    if not seeds:
        raise ValueError(f"{family!r} and {reference!r} share no seed: a paired comparison needs common seeds")
    means = {side: _resampled_means(side_runs, seeds, np.ones((1, len(seeds))))[0] for side, side_runs in runs.items()}
    reference_means = means["reference"]
    chosen = "given"
    if anchor is None:
        anchor, chosen = max(reference_means, key=reference_means.__getitem__), "best reference top-1"
    elif anchor not in reference_means:
        raise ValueError(f"anchor {anchor!r} is not a grid point of {reference!r} with a seed common to both "
                         f"families; choose from {list(reference_means)}")

    gap_sites = _gap_sites(means, anchor)
    estimates = _deltas(means, anchor, gap_sites)
    with_interval = len(seeds) > 1
    replicates: list[list[float | None]] = []
    if with_interval:
        draws = np.random.default_rng(seed).integers(0, len(seeds), size=(n_boot, len(seeds)))
        counts = (draws[:, :, None] == np.arange(len(seeds))).sum(axis=1)  # (replicate, seed): times drawn
        resampled = {side: _resampled_means(side_runs, seeds, counts) for side, side_runs in runs.items()}
        replicates = [_deltas({"family": family_replicate, "reference": reference_replicate}, anchor, gap_sites)
                      for family_replicate, reference_replicate in zip(resampled["family"], resampled["reference"])]
    intervals = [_interval(estimate, [replicate[i] for replicate in replicates])
                 for i, estimate in enumerate(estimates)]

    family_front, reference_front = pareto_front(means["family"].values()), pareto_front(reference_means.values())
    anchor_x, anchor_y = reference_means[anchor]
    retention = {"at_top1": anchor_x, "family_value": front_value_at(family_front, anchor_x),
                 "reference_value": front_value_at(reference_front, anchor_x), **intervals[0]}
    top1 = {"at_retention": anchor_y, "family_value": front_x_at(family_front, anchor_y),
            "reference_value": front_x_at(reference_front, anchor_y), **intervals[1]}
    best_top1 = {"family_value": family_front[-1][0], "reference_value": reference_front[-1][0], **intervals[2]}
    gaps = [{"x": means[side][grid_point][0], "grid_point": grid_point,
             "of": family if side == "family" else reference, **interval}
            for (side, grid_point), interval in zip(gap_sites, intervals[3:])]

    notes = []
    if not with_interval:
        notes.append("one seed: no interval")
    for name, entry, at in (("retention at matched top-1", retention, f"top-1 {anchor_x:.4f}"),
                            ("top-1 at matched retention", top1, f"retention {anchor_y:.4f}")):
        if entry["delta"] is None:
            notes.append(f"{name}: the fronts do not both reach the anchor's {at}, so no delta")
    unpaired = sorted((seeds_of["family"] | seeds_of["reference"]) - set(seeds))
    if unpaired:
        notes.append(f"seeds {unpaired} are not shared by both families and are left out")
    return {
        "family": family, "reference": reference, "n_seeds": len(seeds), "seeds": seeds, "unpaired_seeds": unpaired,
        "n_boot": n_boot, "seed": seed,
        "anchor": {"grid_point": anchor, "x": anchor_x, "y": anchor_y, "chosen": chosen},
        "family_front": [list(point) for point in family_front],
        "reference_front": [list(point) for point in reference_front],
        "retention_at_matched_top1": retention, "top1_at_matched_retention": top1, "best_top1": best_top1,
        "gaps": gaps, "verdict": _verdict([retention, top1, best_top1, *gaps]), "note": "; ".join(notes) or None,
    }


def frontier_summary(records_by_panel: Mapping[str, Iterable[FrontierRecord]], families: Sequence[str],
                     reference: str = "ce", anchors: str | Mapping[str, str] | None = None,
                     n_boot: int = 2000, seed: int = 0) -> dict:
    """``{"reference", "families", "n_boot", "seed", "panels": {panel: {"families": {family: {"points", "front"}},
    "comparisons": {family: matched_comparison(...)}}}}``.

    A panel is one retention measurement (e.g. "mnist: kNN top-1 (k=20)") and its records. ``families`` are
    shown in that order, the reference first (added when missing). A family's ``points`` are
    ``grid_point_means`` over all its seeds and its ``front`` (lists of [x, y]) is built from them; a comparison's
    own fronts use the seeds shared with the reference. ``anchors``: one grid-point label for every panel, or a
    label per panel (panels not named get the default anchor). A family without records in a panel is an error.
    """
    ordered = [reference, *(family for family in families if family != reference)]
    panels = {}
    for panel, panel_records in records_by_panel.items():
        panel_records = list(panel_records)
        anchor = anchors.get(panel) if isinstance(anchors, Mapping) else anchors
        shown = {}
        for family in ordered:
            runs = family_points(panel_records, family)
            if not runs:
                raise ValueError(f"panel {panel!r}: no records of family {family!r}")
            points = grid_point_means(runs)
            front = pareto_front((point["x_mean"], point["y_mean"]) for point in points)
            shown[family] = {"points": points, "front": [list(point) for point in front]}
        comparisons = {family: matched_comparison(panel_records, family, reference, anchor, n_boot, seed)
                       for family in ordered[1:]}
        panels[panel] = {"families": shown, "comparisons": comparisons}
    return {"reference": reference, "families": ordered, "n_boot": n_boot, "seed": seed, "panels": panels}


def plot_frontier(summary: Mapping, path: str | Path, reference_points: Mapping[str, Point] | None = None,
                  metric_label: str = "top-1") -> Path:
    """A PNG with one subplot per panel of ``summary`` (``frontier_summary``'s): each family's grid-point means
    with std-over-seeds error bars in x and y, its front as straight segments in the same colour, and, where
    ``reference_points`` gives a panel's (x, y) of the frozen encoder, a black star labelled "frozen encoder";
    ``metric_label`` names the x axis, the task's metric. Each family's legend entry gives its verdict."""
    # Imported here so the numeric functions above do not pay for matplotlib.
    from .plots import panel_grid, save_panels

    panels = summary["panels"]
    if not panels:
        raise ValueError("the summary has no panel to plot")
    figure, axes = panel_grid(len(panels), 4.2)
    for axis, (panel, content) in zip(axes, panels.items()):
        comparisons = content["comparisons"]
        for index, (family, shown) in enumerate(content["families"].items()):
            points, color = shown["points"], f"C{index}"
            # Each family's verdict against the reference in its legend entry: a title of all of them overflows.
            label = f"{family}: {comparisons[family]['verdict']}" if family in comparisons else family
            axis.errorbar([p["x_mean"] for p in points], [p["y_mean"] for p in points],
                          xerr=[p["x_std"] for p in points], yerr=[p["y_std"] for p in points],
                          fmt="o", markersize=4, capsize=2, color=color, label=label)
            axis.plot([p[0] for p in shown["front"]], [p[1] for p in shown["front"]], color=color, linewidth=1.2)
        if reference_points and panel in reference_points:
            x, y = reference_points[panel]
            axis.plot([x], [y], marker="*", markersize=13, color="black", linestyle="none", label="frozen encoder")
        axis.set_title(f"{panel}\n(legend: verdict against {summary['reference']})" if comparisons else panel,
                       fontsize=8)
        axis.set_xlabel(f"{metric_label} (validation)")
        axis.set_ylabel(panel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return save_panels(figure, axes, len(panels), path)
