import json
import re
from pathlib import Path

import pytest

from grpo_rm.cli import main
from grpo_rm.commands.compare import parse_sweeps, plan_variants
from grpo_rm.reporting.comparison import winner


def test_plan_variants_and_sweeps():
    variants = plan_variants(["frozen", "grpo-rm"], parse_sweeps(["reward=accuracy,probability-gap", "epsilon=0.1"]))
    assert [v.name for v in variants] == ["frozen", "grpo-rm", "grpo-rm[reward=accuracy,epsilon=0.1]",
                                          "grpo-rm[reward=probability-gap,epsilon=0.1]"]
    assert variants[0].overrides["freeze_backbone"] is True
    with pytest.raises(ValueError, match="--sweep key 'epsilom'"):
        parse_sweeps(["epsilom=0.1"])
    with pytest.raises(ValueError, match="unknown method"):
        plan_variants(["dpo"], {})


def test_winner_respects_seed_spread():
    close = {"a": {"mean": 0.80, "std": 0.05, "n": 3}, "b": {"mean": 0.78, "std": 0.01, "n": 3}}
    clear = {"a": {"mean": 0.80, "std": 0.01, "n": 3}, "b": {"mean": 0.70, "std": 0.02, "n": 3}}
    assert winner(close) is None
    assert winner(clear) == "a"
    assert winner({"a": {"mean": 0.5, "std": None, "n": 1}, "b": {"mean": 0.6, "std": None, "n": 1}}) == "b"


def table_cells(markdown: str, dataset: str) -> dict[str, list[str]]:
    section = re.split(r"\n#{2,3} ", markdown.split(f"### {dataset}\n")[1])[0]  # up to the next heading
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return rows


def test_compare_end_to_end_and_resume(tmp_path, tiny_dinov2, imagefolder, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--model_name_or_path", tiny_dinov2, "--dataset_name", "digits", "--output_dir", str(out),
            "--methods", "frozen", "ce", "grpo-rm", "--seeds", "0", "1", "--sweep", "reward=probability-gap",
            "--eval_datasets", imagefolder, "--max_train_samples", "64", "--max_eval_samples", "30",
            "--max_train_steps", "2", "--per_device_train_batch_size", "16", "--learning_rate", "1e-3",
            "--knn_k", "3", "10", "--probe_epochs", "2", "--disable_tqdm", "--report_to", "none",
            "--feature_cache_dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "8 of 8 runs to train" in printed
    for name in ("comparison.json", "comparison.md", "curves.png", "report.html"):
        assert (out / name).is_file(), name
    comparison = json.loads((out / "comparison.json").read_text())
    markdown = (out / "comparison.md").read_text()
    assert "n=2 seeds" in markdown
    own = table_cells(markdown, "digits")
    ood = table_cells(markdown, imagefolder)
    for variant in ("frozen", "ce", "grpo-rm", "grpo-rm[reward=probability-gap]"):
        runs = [r for r in comparison["runs"] if r["variant"] == variant]
        assert len(runs) == 2
        own_values = [json.loads((tmp_path / r["run_dir"] / "all_results.json").read_text())["eval_accuracy"]
                      for r in runs]
        stats = comparison["summary"]["digits"]["top-1 (own head)"][variant]
        assert stats["values"] == own_values
        mean = sum(own_values) / 2
        std = abs(own_values[0] - own_values[1]) / 2 ** 0.5
        assert own[variant]["top-1 (own head)"] == f"{mean:.4f} ± {std:.4f}"
        knn = [r["results"]["representation"][imagefolder]["knn_accuracy"]["3"] for r in runs]
        assert ood[variant]["kNN top-1 (k=3)"].startswith(f"{sum(knn) / 2:.4f} ± ")
    frozen_runs = [r for r in comparison["runs"] if r["variant"] == "frozen"]
    assert all(r["results"]["representation"] for r in frozen_runs)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html and "softmax regression top-1" in html

    # A second invocation reuses every finished run.
    (out / "comparison.md").unlink()
    assert main(argv) == 0
    assert "0 of 8 runs to train; the others finished earlier" in capsys.readouterr().out
    assert (out / "comparison.md").read_text() == markdown


def test_compare_starts_from_an_encoder_post_trained_on_another_dataset(tmp_path, tiny_dinov2, imagefolder):
    from grpo_rm.commands.compare import run_comparison
    from grpo_rm.commands.train import run_training
    from tests.training.test_loop import tiny_config

    source = tmp_path / "source"
    run_training(tiny_config(tiny_dinov2, source, dataset_name=imagefolder, max_train_steps=2))  # 3 colour classes
    base = tiny_config(str(source), tmp_path / "cmp", max_train_steps=2, knn_k=[3], probe_epochs=2,
                       feature_cache_dir=str(tmp_path / "cache"), eval_datasets=[imagefolder])  # 10 digits
    comparison = run_comparison(base, methods=["frozen", "grpo-rm"], seeds=[0])
    assert set(comparison["summary"]) == {"digits", imagefolder}
    assert len(comparison["runs"]) == 2
    assert "±" not in (tmp_path / "cmp" / "comparison.md").read_text().split("###")[1]


def test_compare_segmentation_writes_miou_and_prediction_panel(tmp_path, tiny_dinov2):
    from grpo_rm.commands.compare import run_comparison
    from tests.seg_fixtures import write_voc
    from tests.training.test_loop import tiny_config

    voc = write_voc(tmp_path / "voc", train=4, val=2)
    base = tiny_config(tiny_dinov2, tmp_path / "cmp", dataset_name=str(voc), task="segmentation", max_train_steps=1,
                       per_device_train_batch_size=2)
    comparison = run_comparison(base, methods=["ce", "grpo-rm"], seeds=[0])
    assert set(comparison["summary"][str(voc)]) == {"mIoU (own head)", "train runtime (s)"}
    assert (tmp_path / "cmp" / "predictions.png").is_file()
    assert (tmp_path / "cmp" / "report.html").read_text().count("data:image/png;base64,") == 2


def test_sweep_refuses_keys_compare_sets_itself():
    for key in ("seed", "method", "output_dir"):
        with pytest.raises(ValueError, match=f"--sweep '{key}': compare sets"):
            parse_sweeps([f"{key}=1,2"])


def test_rerun_with_other_settings_is_refused_not_mixed(tmp_path, tiny_dinov2):
    from grpo_rm.commands.compare import run_comparison
    from tests.training.test_loop import tiny_config

    base = tiny_config(tiny_dinov2, tmp_path / "cmp", max_train_steps=1, knn_k=[3], probe_epochs=1,
                       feature_cache_dir=str(tmp_path / "cache"))
    run_comparison(base, methods=["ce"], seeds=[0])
    with pytest.raises(ValueError, match=r"trained with other settings \(learning_rate: 0.001 then, 0.01 now\)"):
        run_comparison(base.with_overrides(learning_rate=0.01), methods=["ce"], seeds=[0])
    run_comparison(base.with_overrides(disable_tqdm=False), methods=["ce"], seeds=[0])  # bookkeeping only: reused


def test_a_half_finished_run_continues_from_its_checkpoint(tmp_path, tiny_dinov2, monkeypatch):
    from grpo_rm.training import steps

    def argv(out):
        return ["compare", "--model_name_or_path", tiny_dinov2, "--dataset_name", "digits", "--output_dir", str(out),
                "--methods", "grpo-rm", "--max_train_samples", "64", "--max_eval_samples", "20",
                "--max_train_steps", "6", "--per_device_train_batch_size", "16", "--checkpointing_steps", "2",
                "--disable_tqdm", "--report_to", "none", "--hflip_prob", "0.5"]

    assert main(argv(tmp_path / "reference")) == 0
    original, calls = steps.training_step, []

    def killed_at_fifth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("simulated kill")
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "training_step", killed_at_fifth)
    with pytest.raises(KeyboardInterrupt):
        main(argv(tmp_path / "cmp"))
    monkeypatch.undo()
    assert main(argv(tmp_path / "cmp")) == 0
    run, reference = tmp_path / "cmp" / "runs" / "grpo-rm-seed0", tmp_path / "reference" / "runs" / "grpo-rm-seed0"
    assert json.loads((run / "all_results.json").read_text())["resumed_from_checkpoint"].endswith("checkpoint-4")
    assert (run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()


GRID = ["reward=accuracy,probability-gap", "scale_rewards=group,none"]
GRID_ROWS = {f"grpo-rm[reward={reward},scale_rewards={scale}]"
             for reward in ("accuracy", "probability-gap") for scale in ("group", "none")}


def planned_rows(printed: str) -> list[str]:
    return [line.split("|")[1].strip() for line in printed.splitlines() if line.startswith("| grpo-rm[")]


def test_repeated_sweep_flags_combine_into_one_grid(tmp_path, capsys):
    out = tmp_path / "cmp"
    common = ["compare", "--output_dir", str(out), "--methods", "ce", "--seeds", "0", "--dry_run"]
    assert main([*common, "--sweep", GRID[0], "--sweep", GRID[1]]) == 0
    repeated = capsys.readouterr().out
    assert set(planned_rows(repeated)) == GRID_ROWS and len(planned_rows(repeated)) == 4
    assert main([*common, "--sweep", *GRID]) == 0
    assert capsys.readouterr().out == repeated
    assert "Dry run" in repeated and not out.exists()
    assert parse_sweeps(["reward=accuracy", "reward=probability-gap,accuracy"]) == {
        "reward": ["accuracy", "probability-gap"]}


def fake_train(calls):
    """Stands in for training: records the config and writes what compare reads from a finished run."""

    def train(config):
        calls.append(config)
        run_dir = Path(config.training.output_dir)
        run_dir.mkdir(parents=True)
        config.save(run_dir)
        (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
        accuracy = 1.0 - 0.1 * len(calls)
        (run_dir / "all_results.json").write_text(json.dumps({"eval_accuracy": accuracy, "eval_macro_f1": accuracy, "train_runtime": 1.0}))
        return {}

    return train


def test_rows_with_identical_settings_are_trained_once(tmp_path, monkeypatch, capsys):
    from grpo_rm.commands import compare
    from grpo_rm.config import RunConfig

    calls = []
    monkeypatch.setattr(compare, "run_training", fake_train(calls))
    base = RunConfig.from_dict({"output_dir": str(tmp_path / "cmp")})
    sweeps = parse_sweeps(["scale_rewards=group,none"])  # group is the default: the same settings as grpo-rm
    comparison = compare.run_comparison(base, methods=["grpo-rm"], seeds=[0, 1], sweeps=sweeps)
    assert len(calls) == 4  # grpo-rm and scale_rewards=none, two seeds each
    printed = capsys.readouterr().out
    assert "Plan: 3 rows x 2 seeds, 4 runs (2 row-seed pairs share the run of an earlier row" in printed
    assert "4 of 4 runs to train" in printed
    by_row = {(r["variant"], r["seed"]): r for r in comparison["runs"]}
    for seed in (0, 1):
        shared, original = by_row[("grpo-rm[scale_rewards=group]", seed)], by_row[("grpo-rm", seed)]
        assert shared["same_as"] == "grpo-rm" and original["same_as"] is None
        assert shared["run_dir"] == original["run_dir"] and shared["results"] == original["results"]
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["runs"] == comparison["runs"]
    top1 = comparison["summary"]["digits"]["top-1 (own head)"]
    assert top1["grpo-rm[scale_rewards=group]"] == top1["grpo-rm"] != top1["grpo-rm[scale_rewards=none]"]
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "grpo-rm[scale_rewards=group] = grpo-rm" in markdown
    assert markdown.count("| **0.8500 ± 0.0707** |") == 2  # grpo-rm leads; its twin row neither hides nor steals it

    half_finished = tmp_path / "cmp" / "runs" / "grpo-rm_scale_rewards=none-seed1"
    (half_finished / "all_results.json").unlink()
    (half_finished / "checkpoint-2").mkdir()
    (half_finished / "checkpoint-2" / "trainer_state.json").write_text("{}")
    plan = compare.run_comparison(base, methods=["grpo-rm"], seeds=[0, 1], sweeps=sweeps, dry_run=True)["plan"]
    assert [p["status"] for p in plan] == ["finished, reused"] * 2 + \
        ["same settings as grpo-rm: shares its run"] * 2 + ["finished, reused", "continues from checkpoint-2"]
    capsys.readouterr()
    changed = base.with_overrides(learning_rate=0.01)
    plan = compare.run_comparison(changed, methods=["grpo-rm"], seeds=[0], sweeps=sweeps, dry_run=True)["plan"]
    assert plan[0]["status"] == "finished with other settings: refused"
    assert "Refused: " in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"\(learning_rate: 5e-05 then, 0.01 now\)"):
        compare.run_comparison(changed, methods=["grpo-rm"], seeds=[0], sweeps=sweeps)
    assert len(calls) == 4


def test_grid_multiplies_every_row_and_keeps_families():
    variants = plan_variants(["ce", "grpo-rm"], parse_sweeps(["objective_preset=recommended"]),
                             parse_sweeps(["learning_rate=1e-4,1e-3", "head_warmup_epochs=0,1"], "--grid"))
    assert len(variants) == 3 * 4
    assert variants[0].name == "ce @ learning_rate=1e-4,head_warmup_epochs=0"
    assert variants[0].overrides == {"method": "ce", "learning_rate": "1e-4", "head_warmup_epochs": "0"}
    last = variants[-1]
    assert (last.family, last.grid_point) == ("grpo-rm[objective_preset=recommended]",
                                              {"learning_rate": "1e-3", "head_warmup_epochs": "1"})
    assert last.overrides["objective_preset"] == "recommended" and last.overrides["method"] == "grpo-rm"
    with pytest.raises(ValueError, match=r"\['learning_rate'\] given to both --sweep and --grid"):
        plan_variants(["ce"], {"learning_rate": ["1"]}, {"learning_rate": ["2"]})
    with pytest.raises(ValueError, match="--grid 'seed'"):
        parse_sweeps(["seed=1,2"], "--grid")


def test_the_paper_preset_row_shares_the_grpo_rm_run(tmp_path):
    from grpo_rm.commands.compare import plan_comparison
    from grpo_rm.config import RunConfig

    base = RunConfig.from_dict({"output_dir": str(tmp_path)})
    plan = plan_comparison(base, ["grpo-rm"], [0], parse_sweeps(["objective_preset=paper,clip-higher"]))
    assert [(p.variant.name, p.same_as) for p in plan] == [
        ("grpo-rm", None), ("grpo-rm[objective_preset=paper]", "grpo-rm"), ("grpo-rm[objective_preset=clip-higher]", None)]
    assert plan[2].config.objective.epsilon_high == 0.28 and plan[2].config.objective.objective_preset == "clip-higher"


def curve_train(calls, curves):
    """Fake training whose validation curve is ``curves[(method, learning_rate)]`` (one value per epoch, 10 steps
    an epoch), shifted by 0.01 per seed."""

    def train(config):
        calls.append(config)
        run_dir = Path(config.training.output_dir)
        run_dir.mkdir(parents=True)
        config.save(run_dir)
        values = [v + 0.01 * config.training.seed for v in
                  curves[(config.objective.method, config.training.learning_rate)]]
        lines = [json.dumps({"step": 10 * (i + 1), "validation_accuracy": v, "epoch": i + 1})
                 for i, v in enumerate(values)]
        (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        (run_dir / "all_results.json").write_text(json.dumps(
            {"eval_accuracy": values[-1] - 0.05, "eval_macro_f1": 0.5, "best_validation_accuracy": max(values), "train_runtime": 1.0}))
        return {}

    return train


def test_grid_report_picks_each_rows_best_point_on_validation_and_measures_convergence(tmp_path, monkeypatch):
    from grpo_rm.commands import compare
    from grpo_rm.config import RunConfig

    curves = {("ce", 1e-4): [0.50, 0.60, 0.70], ("ce", 1e-3): [0.60, 0.75, 0.80],
              ("grpo-rm", 1e-4): [0.70, 0.79, 0.82], ("grpo-rm", 1e-3): [0.30, 0.20, 0.10]}
    calls = []
    monkeypatch.setattr(compare, "run_training", curve_train(calls, curves))
    base = RunConfig.from_dict({"output_dir": str(tmp_path / "cmp")})
    comparison = compare.run_comparison(base, ["ce", "grpo-rm"], [0, 1],
                                        grid=parse_sweeps(["learning_rate=1e-4,1e-3"], "--grid"))
    assert len(calls) == 8
    best = comparison["best_grid_points"]
    assert best == {"ce": "ce @ learning_rate=1e-3", "grpo-rm": "grpo-rm @ learning_rate=1e-4"}
    convergence = comparison["convergence"]
    # ce's best final validation: (0.80 + 0.81) / 2; the target is one point under it.
    target = 0.805 - 0.01
    assert convergence["grpo-rm @ learning_rate=1e-4"]["target"] == pytest.approx(target)
    assert convergence["grpo-rm @ learning_rate=1e-4"]["steps_to_target"] == [30, 20]  # 0.82; 0.80 with seed 1
    assert convergence["ce @ learning_rate=1e-3"]["steps_to_target"] == [30, 30]
    assert convergence["grpo-rm @ learning_rate=1e-3"]["steps_to_target"] == [None, None]
    assert convergence["ce @ learning_rate=1e-4"]["per_epoch"] == pytest.approx([0.505, 0.605, 0.705])
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    best_section = markdown.split("## Each row at its best grid point")[1].split("## Convergence")[0]
    assert "| ce | learning_rate=1e-3 |" in best_section and "| grpo-rm | learning_rate=1e-4 |" in best_section
    rows = table_cells(best_section, "digits")
    assert set(rows) == {"ce @ learning_rate=1e-3", "grpo-rm @ learning_rate=1e-4"}
    assert rows["grpo-rm @ learning_rate=1e-4"]["top-1 (own head)"].startswith(f"{(0.77 + 0.78) / 2:.4f} ± ")
    assert (tmp_path / "cmp" / "grid.png").is_file()
    from grpo_rm.commands.compare import plan_comparison
    from grpo_rm.reporting.comparison import grid_panels

    plan = plan_comparison(base, ["ce", "grpo-rm"], [0, 1], grid=parse_sweeps(["learning_rate=1e-4,1e-3"], "--grid"))
    panels = dict(grid_panels(comparison["summary"], {p.variant.name: (p.variant.family, p.variant.grid_point)
                                                      for p in plan}))
    own = panels["digits: top-1 (own head)"]
    assert sorted(own) == ["ce", "grpo-rm"]
    assert [point[:2] for point in sorted(own["grpo-rm"])] == [(1e-4, pytest.approx(0.775)),
                                                             (1e-3, pytest.approx(0.05 + 0.005))]
    convergence_rows = markdown.split("## Convergence")[1]
    assert "| grpo-rm @ learning_rate=1e-4 | 0.7050 | 0.7950 | 0.8250 | 25 |" in convergence_rows
    assert "| ce @ learning_rate=1e-3 | 0.6050 | 0.7550 | 0.8050 | 30 |" in convergence_rows


def test_the_grid_figure_leaves_out_wise_ft_rows_whose_points_add_an_alpha():
    """A learning-rate grid with --wise_ft_alphas: the grid figure draws the trained rows along the learning rate;
    the WiSE-FT rows (learning_rate and alpha) have no single grid value and stay out of it."""
    from grpo_rm.reporting.comparison import grid_panels

    stats = {"mean": 0.5, "std": 0.1}
    summary = {"digits": {"top-1 (own head)": {"ce @ learning_rate=1e-4": stats, "ce @ learning_rate=1e-3": stats,
                                               "ce + wise-ft @ learning_rate=1e-4,alpha=0.5": stats}}}
    rows = {"ce @ learning_rate=1e-4": ("ce", {"learning_rate": "1e-4"}),
            "ce @ learning_rate=1e-3": ("ce", {"learning_rate": "1e-3"})}
    assert grid_panels(summary, rows) == [("digits: top-1 (own head)", {"ce": [(1e-4, 0.5, 0.1), (1e-3, 0.5, 0.1)]})]


def test_a_grid_gives_fronts_matched_deltas_with_intervals_and_a_verdict(tmp_path, monkeypatch):
    """Hand-made runs: at each learning rate GRPO-RM reaches cross-entropy's validation top-1 and keeps 0.05 more kNN
    top-1 on another dataset, seed by seed up to noise of +-0.01: it dominates, by 0.05 at matched top-1."""
    from grpo_rm.commands import compare
    from grpo_rm.config import RunConfig

    points = {("ce", 1e-4): (0.70, 0.60), ("ce", 1e-3): (0.80, 0.50),
              ("grpo-rm", 1e-4): (0.70, 0.65), ("grpo-rm", 1e-3): (0.80, 0.55)}
    noise = {0: 0.01, 1: -0.01, 2: 0.0}

    def train(config):
        run_dir = Path(config.training.output_dir)
        run_dir.mkdir(parents=True)
        config.save(run_dir)
        x, y = points[(config.objective.method, config.training.learning_rate)]
        y += noise[config.training.seed] * (1 if config.objective.method == "ce" else -1)
        (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 10, "validation_accuracy": x, "epoch": 1}) + "\n")
        (run_dir / "all_results.json").write_text(json.dumps(
            {"eval_accuracy": x - 0.02, "eval_macro_f1": 0.5, "validation_accuracy": x, "best_validation_accuracy": x,
             "train_runtime": 1.0, "representation": {"ood": {
                 "knn_accuracy": {"3": y - 0.1}, "linear_probe_accuracy": y - 0.1,  # test: never read by fronts
                 "knn_validation_accuracy": {"3": y}, "linear_probe_validation_accuracy": y}}}))
        return {}

    monkeypatch.setattr(compare, "run_training", train)
    base = RunConfig.from_dict({"output_dir": str(tmp_path / "cmp"), "eval_datasets": ["ood"]})
    comparison = compare.run_comparison(base, ["ce", "grpo-rm"], [0, 1, 2],
                                        grid=parse_sweeps(["learning_rate=1e-4,1e-3"], "--grid"))
    panel = comparison["frontier"]["panels"]["ood: kNN top-1 (k=3)"]
    assert panel["families"]["ce"]["front"] == [[pytest.approx(0.70), pytest.approx(0.60)], [pytest.approx(0.80), pytest.approx(0.50)]]
    matched = panel["comparisons"]["grpo-rm"]
    # At ce's best validation top-1 (0.80): 0.55 - 0.50; the per-seed differences are 0.05 - 2 * noise, so every
    # bootstrap mean lies in [0.03, 0.07].
    retention = matched["retention_at_matched_top1"]
    assert matched["anchor"]["grid_point"] == "learning_rate=1e-3" and retention["delta"] == pytest.approx(0.05)
    assert 0.03 - 1e-9 <= retention["ci95"][0] < retention["ci95"][1] <= 0.07 + 1e-9
    assert matched["top1_at_matched_retention"]["delta"] is None  # ce's 0.50 is below every GRPO-RM point
    assert matched["verdict"] == "dominates" and matched["n_seeds"] == 3
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "## Fronts: each family against ce at matched performance" in markdown
    assert "| grpo-rm | +0.0500 [" in markdown and "| **dominates** |" in markdown
    assert (tmp_path / "cmp" / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "cmp" / "comparison.json").read_text())["frontier"]["reference"] == "ce"


def test_wise_ft_rows_interpolate_each_run_and_join_the_fronts(tmp_path, tiny_dinov2, imagefolder):
    out = tmp_path / "cmp"
    assert main(["compare", "--model_name_or_path", tiny_dinov2, "--dataset_name", "digits", "--output_dir", str(out),
                 "--methods", "ce", "grpo-rm", "--wise_ft_alphas", "0", "1", "--eval_datasets", imagefolder,
                 "--max_train_samples", "32", "--max_eval_samples", "16", "--max_train_steps", "2",
                 "--per_device_train_batch_size", "16", "--knn_k", "3", "--probe_epochs", "2", "--disable_tqdm",
                 "--report_to", "none", "--feature_cache_dir", str(tmp_path / "cache")]) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    runs = {run["variant"]: run for run in comparison["runs"]}
    for family in ("ce", "grpo-rm"):
        trained, one = runs[family], runs[f"{family} + wise-ft @ alpha=1"]
        assert one["run_dir"] == str(Path(trained["run_dir"]) / "wise-ft" / "alpha-1")
        # alpha 1 is the run itself: the same test score and the same retention (the run reports its best epoch).
        assert one["results"]["eval_accuracy"] == trained["results"]["eval_accuracy"]
        assert one["results"]["representation"] == trained["results"]["representation"]
    # alpha 0 is the starting encoder in both families: the same frozen features, whatever head each run trained.
    zero = [runs[f"{family} + wise-ft @ alpha=0"]["results"]["representation"][imagefolder]
            for family in ("ce", "grpo-rm")]
    assert zero[0] == zero[1]
    frontier = comparison["frontier"]
    assert frontier["families"] == ["ce", "grpo-rm", "ce + wise-ft", "grpo-rm + wise-ft"]
    matched = frontier["panels"][f"{Path(imagefolder).name}: kNN top-1 (k=3)"]["comparisons"]["ce + wise-ft"]
    assert matched["verdict"] == "inconclusive" and matched["note"].startswith("one seed: no interval")
    assert (out / "frontier.png").is_file()
