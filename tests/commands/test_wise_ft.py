"""``grpo-rm wise-ft`` end to end on a tiny run: alpha 1 is the run, alpha 0 the pretrained encoder, as files and as
``grpo-rm eval`` / ``grpo-rm knn`` read them; bad alphas and other architectures are refused."""

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from grpo_rm.cli import main
from grpo_rm.commands.train import run_training
from grpo_rm.commands.wise_ft import write_wise_ft
from grpo_rm.config import RunConfig


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_dinov2, imagefolder):
    """A run of a few steps at a high learning rate, so that its encoder is far from the pretrained one."""
    output_dir = tmp_path_factory.mktemp("tiny-run")
    results = run_training(RunConfig.from_dict(dict(
        model_name_or_path=tiny_dinov2, dataset_name=imagefolder, output_dir=str(output_dir), max_train_steps=3,
        per_device_train_batch_size=16, warmup_ratio=0.0, learning_rate=1e-2, hflip_prob=0.0, disable_tqdm=True,
        report_to="none")))
    return output_dir, results


def printed_json(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_alpha_one_is_the_run_and_alpha_zero_the_pretrained_encoder(tmp_path, tiny_run, tiny_dinov2, imagefolder,
                                                                    capsys):
    run_dir, run_results = tiny_run
    out = tmp_path / "wise-ft"
    assert main(["wise-ft", "--model_name_or_path", str(run_dir), "--alphas", "0", "0.5", "1",
                 "--output_dir", str(out)]) == 0
    assert printed_json(capsys) == {label: str(out / f"alpha-{label}") for label in ("0", "0.5", "1")}

    fine_tuned, pretrained = load_file(run_dir / "model.safetensors"), load_file(f"{tiny_dinov2}/model.safetensors")
    moved = [name for name in fine_tuned if not torch.equal(fine_tuned[name], pretrained[name])]
    assert len(moved) > 10  # the run trained the encoder: the two ends differ
    at = {label: load_file(out / f"alpha-{label}" / "model.safetensors") for label in ("0", "0.5", "1")}
    for name in fine_tuned:
        assert torch.equal(at["1"][name], fine_tuned[name]), name
        assert torch.equal(at["0"][name], pretrained[name]), name
        assert torch.equal(at["0.5"][name], ((fine_tuned[name].double() + pretrained[name].double()) / 2).float())
    # Every folder keeps the run's head (the pretrained encoder has none for these classes).
    for label in at:
        assert (out / f"alpha-{label}" / "head.safetensors").read_bytes() == (run_dir / "head.safetensors").read_bytes()
    assert json.loads((out / "alpha-0.5" / "wise_ft.json").read_text()) == {
        "alpha": 0.5, "pretrained_model_name_or_path": tiny_dinov2,
        "fine_tuned_model_name_or_path": str(run_dir.resolve()), "head": "fine-tuned"}

    # alpha 1 reproduces the run's evaluation; alpha 0 the pretrained encoder's frozen features.
    assert main(["eval", "--model_name_or_path", str(out / "alpha-1")]) == 0
    evaluated = printed_json(capsys)
    assert (evaluated["eval_accuracy"], evaluated["eval_loss"]) == (run_results["eval_accuracy"],
                                                                    run_results["eval_loss"])
    knn = {}
    for name, model in (("alpha-0", str(out / "alpha-0")), ("pretrained", tiny_dinov2)):
        assert main(["knn", "--model_name_or_path", model, "--dataset_name", imagefolder, "--k", "3", "5",
                     "--feature_cache_dir", str(tmp_path / f"features-{name}")]) == 0
        knn[name] = printed_json(capsys)
    assert knn["alpha-0"]["knn_accuracy"] == knn["pretrained"]["knn_accuracy"]
    features = [load_file(knn[name]["protocol"]["feature_files"]["test"])["features"] for name in knn]
    assert torch.equal(*features)  # the same features, not merely the same votes


@pytest.mark.parametrize("alphas, message", [
    (["0.5", "1.5"], r"alpha 1.5 is outside \[0, 1\]"),
    (["0.5", ".50"], r"alphas 0.5 and .50 are the same value"),
    (["0.5/x"], r"alpha '0.5/x' is not a plain decimal number"),
])
def test_bad_alphas_are_refused_before_anything_is_read_or_written(tmp_path, capsys, alphas, message):
    assert main(["wise-ft", "--model_name_or_path", str(tmp_path / "no-run"), "--output_dir", str(tmp_path / "out"),
                 "--alphas", *alphas]) == 1
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_another_architecture_is_refused_naming_both_paths(tmp_path, tiny_run, tiny_vit):
    run_dir, _ = tiny_run
    with pytest.raises(ValueError, match=f"{tiny_vit} and {run_dir} are not the same architecture"):
        write_wise_ft(run_dir, [0.5], tmp_path, pretrained_model_name_or_path=tiny_vit)


def test_existing_alpha_folders_are_kept_unless_overwriting(tmp_path, tiny_run):
    run_dir, _ = tiny_run
    (tmp_path / "alpha-1").mkdir()
    (tmp_path / "alpha-1" / "eval_results.json").write_text("{}")
    with pytest.raises(FileExistsError, match="alpha-1 already exist.*--overwrite_output_dir"):
        write_wise_ft(run_dir, [1.0], tmp_path)
    written = write_wise_ft(run_dir, [1.0], tmp_path, overwrite_output_dir=True)
    assert written == {"1": tmp_path / "alpha-1"}
    assert not (tmp_path / "alpha-1" / "eval_results.json").exists()  # replaced whole: no stale results
    assert (tmp_path / "alpha-1" / "model.safetensors").read_bytes() == (run_dir / "model.safetensors").read_bytes()
