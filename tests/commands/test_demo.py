"""`grpo-rm demo`: a small compare with its report, offline, for images (the stand-in) and for text."""

import json

from grpo_rm.cli import main


def test_demo_writes_table_and_curves(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output_dir", str(out), "--num_train_epochs", "1", "--pretrain_epochs", "1",
                 "--max_train_samples", "64", "--max_eval_samples", "48"]) == 0
    printed = capsys.readouterr().out
    assert "STAND-IN" in printed and "facebook/dinov2-small" in printed
    comparison = json.loads((out / "comparison.json").read_text())
    table = (out / "comparison.md").read_text()
    assert [run["variant"] for run in comparison["runs"]] == ["ce", "grpo-rm"]
    for run in comparison["runs"]:
        assert run["results"]["train_samples"] == 64
        assert f"| {run['variant']} | {run['results']['eval_accuracy']:.4f} |" in table
    assert json.loads((out / "pretrain" / "all_results.json").read_text())["total_steps"] == 1
    assert (out / "curves.png").stat().st_size > 10_000


def test_text_demo_writes_table_and_curves(tmp_path, tiny_bert, text_parquet, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--task", "text-classification", "--model_name_or_path", tiny_bert, "--dataset_name",
                 text_parquet, "--output_dir", str(out), "--num_train_epochs", "1"]) == 0
    assert "GRPO-RM" in capsys.readouterr().out
    comparison = json.loads((out / "comparison.json").read_text())
    table = (out / "comparison.md").read_text()
    assert "macro-F1 (own head)" in table
    assert [run["variant"] for run in comparison["runs"]] == ["frozen", "ce", "grpo-rm"]
    frozen = next(run for run in comparison["runs"] if run["variant"] == "frozen")
    assert frozen["overrides"]["head_learning_rate"] == 1e-2  # a linear probe's head rate
    for run in comparison["runs"]:
        results = run["results"]
        assert f"| {run['variant']} | {results['eval_accuracy']:.4f} | {results['eval_macro_f1']:.4f} |" in table
    assert (out / "curves.png").stat().st_size > 10_000
