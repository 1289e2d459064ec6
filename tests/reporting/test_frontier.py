"""Fronts of (top-1, retention) and their paired seed bootstrap, on hand-made numbers."""

import json

import numpy as np
import pytest

from grpo_rm.reporting.frontier import (
    family_points,
    front_value_at,
    front_x_at,
    frontier_summary,
    grid_point_means,
    matched_comparison,
    pareto_front,
    plot_frontier,
)

# The reference's grid points: (top-1, retention), retention falling by 0.1 per 0.1 of top-1.
CE_CURVE = {"lr=1e-5": (0.60, 0.90), "lr=3e-5": (0.70, 0.80), "lr=1e-4": (0.80, 0.70)}
# Per-seed retention noise (seeds 0-3), mean 0 for both, so the means over all seeds are the curves' values.
CE_NOISE = (0.0, 0.005, -0.005, 0.0)
FAMILY_NOISE = (0.01, -0.01, 0.02, -0.02)
# Family minus reference per seed: (0.01, -0.015, 0.025, -0.02). A resampled mean of these lies in
# [-0.02, 0.025], so a front shifted by s has every bootstrap delta in [s - 0.02, s + 0.025].


def records(family, curve, noise, seeds=None):
    """One record per grid point and seed: x exactly as in ``curve`` (so paired fronts share their x), y plus the
    seed's noise."""
    seeds = range(len(noise)) if seeds is None else seeds
    return [{"family": family, "grid_point": label, "seed": seed, "x": x, "y": y + noise[index]}
            for index, seed in enumerate(seeds) for label, (x, y) in curve.items()]


def shifted(curve, dy):
    return {label: (x, y + dy) for label, (x, y) in curve.items()}


def test_pareto_front_drops_dominated_points_and_duplicates():
    points = [(0.6, 0.9), (0.7, 0.8), (0.65, 0.75),  # (0.65, 0.75) is below and left of (0.7, 0.8)
              (0.8, 0.7), (0.8, 0.7),  # a duplicate collapses
              (0.8, 0.6),  # same x, lower y
              (0.5, 0.9)]  # same y, lower x
    assert pareto_front(points) == [(0.6, 0.9), (0.7, 0.8), (0.8, 0.7)]
    assert pareto_front([]) == []


def test_front_interpolates_and_never_extrapolates():
    front = [(0.6, 0.9), (0.8, 0.5)]
    assert front_value_at(front, 0.6) == 0.9  # a front point: its own y
    assert front_value_at(front, 0.65) == pytest.approx(0.8)  # 0.9 - 0.4 * (0.05 / 0.2)
    assert front_value_at(front, 0.7) == pytest.approx(0.7)
    assert front_value_at(front, 0.59) is None and front_value_at(front, 0.81) is None
    assert front_x_at(front, 0.8) == pytest.approx(0.65)  # the inverse
    assert front_x_at(front, 0.5) == 0.8
    assert front_x_at(front, 0.95) is None and front_x_at(front, 0.45) is None
    assert front_value_at([], 0.7) is None
    assert front_value_at([(0.7, 0.4)], 0.7) == 0.4 and front_value_at([(0.7, 0.4)], 0.71) is None


def test_family_points_and_means():
    runs = family_points(records("ce", {"a": (0.7, 0.5)}, (0.0, 0.02, 0.01))
                         + records("grpo-rm", {"a": (0.1, 0.1)}, (0.0,)), "ce")
    assert runs == {"a": [(0, 0.7, 0.5), (1, 0.7, 0.52), (2, 0.7, 0.51)]}
    # y: mean 0.51, Bessel std sqrt((0.01^2 + 0.01^2 + 0) / 2) = 0.01; x constant: std 0.
    (point,) = grid_point_means(runs)
    assert point["n_seeds"] == 3 and point["x_std"] == pytest.approx(0.0, abs=1e-12)
    assert point["y_mean"] == pytest.approx(0.51) and point["y_std"] == pytest.approx(0.01)
    assert grid_point_means({"a": [(0, 0.7, 0.5)]})[0]["y_std"] == 0.0  # one seed: no spread
    with pytest.raises(ValueError, match="two records"):
        family_points(records("ce", {"a": (0.7, 0.5)}, (0.0, 0.0), seeds=(1, 1)), "ce")
    with pytest.raises(ValueError, match="finite"):
        family_points(records("ce", {"a": (0.7, float("nan"))}, (0.0,)), "ce")


def test_uniformly_better_retention_dominates():
    data = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", shifted(CE_CURVE, 0.05), FAMILY_NOISE)
    result = matched_comparison(data, "grpo-rm", n_boot=500)
    assert result["anchor"] == {"grid_point": "lr=1e-4", "x": pytest.approx(0.8), "y": pytest.approx(0.7),
                                "chosen": "best reference top-1"}
    retention = result["retention_at_matched_top1"]
    assert retention["delta"] == pytest.approx(0.05)  # 0.75 - 0.70 at top-1 0.8
    lo, hi = retention["ci95"]
    assert 0.05 - 0.02 - 1e-9 <= lo < 0.05 < hi <= 0.05 + 0.025 + 1e-9  # within [0.03, 0.075]: excludes 0
    assert retention["n_boot_used"] == 500  # both fronts end at the anchor's x in every replicate
    # The family's retention never falls to the anchor's 0.70 (its lowest is 0.75): no top-1 delta.
    assert result["top1_at_matched_retention"]["delta"] is None
    assert "top-1 at matched retention" in result["note"]
    # Gaps at x = 0.6, 0.7, 0.8 (shared by both fronts, one site each), all +0.05.
    assert [gap["x"] for gap in result["gaps"]] == pytest.approx([0.6, 0.7, 0.8])
    assert all(gap["ci95"][0] > 0 for gap in result["gaps"])
    assert result["verdict"] == "dominates"
    assert np.array(result["family_front"]) == pytest.approx(np.array([[0.6, 0.95], [0.7, 0.85], [0.8, 0.75]]))


def test_anchor_given_by_label():
    data = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", shifted(CE_CURVE, 0.05), FAMILY_NOISE)
    result = matched_comparison(data, "grpo-rm", anchor="lr=3e-5", n_boot=200)
    assert result["anchor"]["chosen"] == "given" and result["anchor"]["x"] == pytest.approx(0.7)
    # At top-1 0.7: 0.85 - 0.80. At retention 0.80 the family's front is halfway from (0.7, 0.85) to (0.8, 0.75).
    assert result["retention_at_matched_top1"]["delta"] == pytest.approx(0.05)
    assert result["top1_at_matched_retention"]["family_value"] == pytest.approx(0.75)
    assert result["top1_at_matched_retention"]["delta"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="anchor 'lr=1'"):
        matched_comparison(data, "grpo-rm", anchor="lr=1")


def test_uniformly_worse_retention_is_dominated():
    data = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", shifted(CE_CURVE, -0.05), FAMILY_NOISE)
    result = matched_comparison(data, "grpo-rm", n_boot=500)
    retention, top1 = result["retention_at_matched_top1"], result["top1_at_matched_retention"]
    assert retention["delta"] == pytest.approx(-0.05)
    # The family's front reaches retention 0.70 halfway from (0.7, 0.75) to (0.8, 0.65): top-1 0.75 vs 0.80.
    # With slope -1 a vertical shift s is a horizontal shift s, so both deltas share the bound [-0.07, -0.025].
    assert top1["family_value"] == pytest.approx(0.75) and top1["delta"] == pytest.approx(-0.05)
    for entry in (retention, top1):
        assert -0.07 - 1e-9 <= entry["ci95"][0] < entry["ci95"][1] <= -0.025 + 1e-9
    assert result["verdict"] == "dominated" and result["note"] is None


def test_crossing_fronts():
    # Reference retention (0.90, 0.80, 0.70) against the family's (0.95, 0.80, 0.65): gaps +0.05, 0, -0.05.
    family_curve = {"lr=1e-5": (0.60, 0.95), "lr=3e-5": (0.70, 0.80), "lr=1e-4": (0.80, 0.65)}
    data = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", family_curve, FAMILY_NOISE)
    result = matched_comparison(data, "grpo-rm", n_boot=500)
    gaps = {round(gap["x"], 6): gap for gap in result["gaps"]}
    assert gaps[0.6]["delta"] == pytest.approx(0.05) and gaps[0.6]["ci95"][0] > 0
    assert gaps[0.8]["delta"] == pytest.approx(-0.05) and gaps[0.8]["ci95"][1] < 0
    assert result["verdict"] == "crosses"


def test_identical_noisy_families_are_inconclusive():
    # Same curve, the reference's noise in reverse seed order: equal means, paired differences (0, -0.01, 0.01, 0).
    data = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", CE_CURVE, CE_NOISE[::-1])
    result = matched_comparison(data, "grpo-rm", n_boot=500)
    retention = result["retention_at_matched_top1"]
    assert retention["delta"] == pytest.approx(0.0, abs=1e-12)
    assert retention["ci95"][0] < 0 < retention["ci95"][1]
    assert result["verdict"] == "inconclusive"


def test_unshared_seeds_are_left_out_and_reported():
    paired = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", shifted(CE_CURVE, 0.05), FAMILY_NOISE)
    extra = records("ce", CE_CURVE, (0.3,), seeds=(4,)) + records("grpo-rm", CE_CURVE, (-0.3,), seeds=(9,))
    result = matched_comparison(paired + extra, "grpo-rm", n_boot=300)
    assert result["n_seeds"] == 4 and result["seeds"] == [0, 1, 2, 3] and result["unpaired_seeds"] == [4, 9]
    assert "[4, 9]" in result["note"]
    # The unpaired runs change nothing: the same numbers as without them.
    alone = matched_comparison(paired, "grpo-rm", n_boot=300)
    for key in ("retention_at_matched_top1", "top1_at_matched_retention", "gaps", "verdict", "family_front"):
        assert result[key] == alone[key]
    with pytest.raises(ValueError, match="share no seed"):
        matched_comparison(records("ce", CE_CURVE, (0.0,), seeds=(1,)) + extra[3:], "grpo-rm")


def test_one_seed_gives_no_interval():
    data = records("ce", CE_CURVE, CE_NOISE[:1]) + records("grpo-rm", shifted(CE_CURVE, 0.05), FAMILY_NOISE[:1])
    result = matched_comparison(data, "grpo-rm")
    retention = result["retention_at_matched_top1"]
    assert retention["delta"] == pytest.approx(0.06)  # seed 0: 0.75 + 0.01 - 0.70
    assert retention["ci95"] is None and retention["n_boot_used"] == 0
    assert all(gap["ci95"] is None for gap in result["gaps"])
    assert result["verdict"] == "inconclusive" and "one seed: no interval" in result["note"]


def test_same_seed_same_interval():
    data = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", CE_CURVE, FAMILY_NOISE)
    assert matched_comparison(data, "grpo-rm", n_boot=300, seed=3) == matched_comparison(data, "grpo-rm", n_boot=300,
                                                                                       seed=3)


def test_interval_matches_a_direct_paired_bootstrap():
    # One grid point per family, same x per seed: the retention delta is the mean of the paired differences
    # y_family - y_ce = (0.06, 0.03, 0.02) over the drawn seeds, mean 0.11 / 3.
    xs, ce_y, family_y = (0.70, 0.72, 0.71), (0.50, 0.52, 0.47), (0.56, 0.55, 0.49)
    data = [{"family": family, "grid_point": "only", "seed": seed, "x": xs[seed], "y": ys[seed]}
            for family, ys in (("ce", ce_y), ("grpo-rm", family_y)) for seed in range(3)]
    result = matched_comparison(data, "grpo-rm", n_boot=500, seed=7)["retention_at_matched_top1"]
    differences = np.array(family_y) - np.array(ce_y)
    draws = np.random.default_rng(7).integers(0, 3, size=(500, 3))  # the documented draw order
    expected = np.percentile(differences[draws].mean(axis=1), [2.5, 97.5])
    assert result["delta"] == pytest.approx(0.11 / 3)
    assert result["n_boot_used"] == 500
    assert result["ci95"] == pytest.approx(list(expected), abs=1e-12)
    # A resampled mean of (0.06, 0.03, 0.02) lies between 0.02 and 0.06.
    assert 0.02 - 1e-12 <= result["ci95"][0] <= result["ci95"][1] <= 0.06 + 1e-12


def summary_records(dy):
    return records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", shifted(CE_CURVE, dy), FAMILY_NOISE) + records(
        "ce + wise-ft", shifted(CE_CURVE, dy / 2), CE_NOISE[::-1])


def test_summary_is_plain_json_and_plots(tmp_path):
    panels = {"mnist: kNN top-1 (k=20)": summary_records(0.05), "cifar10: kNN top-1 (k=20)": summary_records(-0.05)}
    summary = frontier_summary(panels, ["grpo-rm", "ce + wise-ft"], anchors={"mnist: kNN top-1 (k=20)": "lr=3e-5"},
                               n_boot=200)
    json.dumps(summary, allow_nan=False)
    assert summary["families"] == ["ce", "grpo-rm", "ce + wise-ft"]
    mnist = summary["panels"]["mnist: kNN top-1 (k=20)"]
    assert np.array(mnist["families"]["ce"]["front"]) == pytest.approx(np.array([[0.6, 0.9], [0.7, 0.8], [0.8, 0.7]]))
    assert mnist["comparisons"]["grpo-rm"]["anchor"]["grid_point"] == "lr=3e-5"
    assert mnist["comparisons"]["grpo-rm"]["verdict"] == "dominates"
    assert summary["panels"]["cifar10: kNN top-1 (k=20)"]["comparisons"]["grpo-rm"]["verdict"] == "dominated"
    with pytest.raises(ValueError, match="no records of family 'lp-ft'"):
        frontier_summary(panels, ["lp-ft"])

    path = plot_frontier(summary, tmp_path / "frontier.png",
                         reference_points={"mnist: kNN top-1 (k=20)": (0.55, 0.97)})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_family_that_keeps_more_but_cannot_reach_the_top1_crosses():
    # The family's front is the reference's first two points raised by 0.05: above it where both reach, but its best
    # top-1 is 0.70 against the reference's 0.80, so the fronts cross (the reference alone reaches high top-1).
    family_curve = {label: point for label, point in shifted(CE_CURVE, 0.05).items() if label != "lr=1e-4"}
    data = records("ce", CE_CURVE, CE_NOISE) + records("grpo-rm", family_curve, FAMILY_NOISE)
    result = matched_comparison(data, "grpo-rm", n_boot=500)
    assert result["retention_at_matched_top1"]["delta"] is None  # no family point reaches top-1 0.80
    assert result["best_top1"]["delta"] == pytest.approx(-0.10) and result["best_top1"]["ci95"][1] < 0
    assert all(gap["ci95"][0] > 0 for gap in result["gaps"])  # above wherever both fronts are
    assert result["verdict"] == "crosses"
