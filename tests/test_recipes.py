"""Every file in recipes/ parses as a run configuration and states its command, hardware, time and memory; one of
each kind runs its first step with a tiny local model and tiny local data in place of the real ones."""

import json
import re
from pathlib import Path

import pytest

from grpo_rm.commands.compare import run_comparison
from grpo_rm.config import RunConfig
from grpo_rm.commands.train import run_training

from .conftest import TINY, save_tiny

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


def header_fields(path: Path) -> dict[str, str]:
    """The recipe's opening comment lines of the form ``# Field (qualifier): text``, by field."""
    fields = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"# ([A-Z][A-Za-z' ]+?)(?: \(([^)]*)\))?:\s+(\S.*)", line)
        if match:
            fields[match.group(1)] = (match.group(2) or "", match.group(3))
    return fields


@pytest.fixture(scope="session")
def tiny_dinov2_4_layers(tmp_path_factory):
    """Four layers, so the 4-layer segmentation head is exercised as written."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(**{**TINY, "num_hidden_layers": 4})
    return save_tiny(Dinov2Model(config), tmp_path_factory.mktemp("tiny-dinov2-4"))


def test_recipes_exist():
    names = {path.name for path in RECIPES}
    for size in ("small", "base", "large"):
        assert {f"imagenet-dinov2-{size}-grpo-rm.yaml", f"imagenet-dinov2-{size}-ce.yaml"} <= names
    assert {"voc-seg-dinov2-small-linear.yaml", "voc-seg-dinov2-small-multilayer.yaml",
            "compare-imagenet-dinov2-small.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses_and_states_its_cost(path):
    config = RunConfig.from_yaml(path)  # an unknown key or a bad value raises here
    fields = header_fields(path)
    for field in ("Hardware", "Time", "Memory"):  # the cost, each marked as an estimate
        qualifier, text = fields[field]
        assert qualifier.startswith("estimate") and text, (path.name, field)
    run = fields["Run"][1]
    assert run.startswith("grpo-rm ") and f"--config recipes/{path.name}" in run
    assert config.training.output_dir, f"{path.name} has no output_dir"
    assert config.model.model_name_or_path.startswith("facebook/dinov2-")
    if config.model.task == "image-segmentation":
        assert config.model.image_size == 518 and config.model.image_size % 14 == 0
        assert config.model.seg_num_layers in (1, 4)
    else:
        assert config.data.dataset_name == "ILSVRC/imagenet-1k"
        assert "zh-plus/tiny-imagenet" in config.evaluation.eval_datasets
        assert len(config.evaluation.eval_datasets) >= 2


def tiny(config: RunConfig, model: str, data: str, out: Path, **extra) -> RunConfig:
    return config.with_overrides(
        model_name_or_path=model, dataset_name=data, output_dir=str(out), max_train_steps=1, max_train_samples=12,
        max_eval_samples=6, image_size=16, mixed_precision="no", dataloader_num_workers=0, train_val_split=0.25,
        per_device_train_batch_size=4, per_device_eval_batch_size=8, report_to="none", disable_tqdm=True,
        knn_k=[3], probe_epochs=2, probe_learning_rates=[0.01], probe_weight_decays=[0.0],
        feature_cache_dir=str(out.parent / "cache"), checkpointing_steps=None, resume_from_checkpoint=None, **extra)


# One recipe of each kind runs its first step; the others differ from these in model size and batch settings only,
# which the parse test above checks.
FIRST_STEPS = [p for p in RECIPES if p.stem in ("imagenet-dinov2-small-grpo-rm", "imagenet-dinov2-small-ce",
                                                "voc-seg-dinov2-small-linear", "voc-seg-dinov2-small-multilayer")]


@pytest.mark.parametrize("path", FIRST_STEPS, ids=lambda p: p.stem)
def test_recipe_first_steps(path, tmp_path, tiny_dinov2, tiny_dinov2_4_layers, imagefolder):
    config = RunConfig.from_yaml(path)
    out = tmp_path / "run"
    if config.model.task == "image-segmentation":
        model = tiny_dinov2_4_layers if config.model.seg_num_layers > 2 else tiny_dinov2
        config = tiny(config, model, "digits-seg", out)
    else:
        # one recipe also runs its OOD evaluation path, on a tiny folder; the rest skip it for speed
        ood = [imagefolder] if path.name == "imagenet-dinov2-small-grpo-rm.yaml" else None
        config = tiny(config, tiny_dinov2, imagefolder, out, eval_datasets=ood)
    run_training(config)
    assert json.loads((out / "train_results.json").read_text())["total_steps"] == 1
    saved = RunConfig.from_yaml(out / "run_config.yaml")
    assert saved.objective.method == config.objective.method
    assert saved.model.seg_num_layers == config.model.seg_num_layers
    if config.evaluation.eval_datasets:
        assert (out / "representation_results.json").is_file()


def test_compare_recipe_first_steps(tmp_path, tiny_dinov2, imagefolder):
    config = RunConfig.from_yaml(next(p for p in RECIPES if p.name.startswith("compare")))
    out = tmp_path / "cmp"
    config = tiny(config, tiny_dinov2, imagefolder, out, eval_datasets=[imagefolder])
    run_comparison(config, ["frozen", "ce", "grpo-rm"], [0])
    comparison = json.loads((out / "comparison.json").read_text())
    assert {run["variant"] for run in comparison["runs"]} == {"frozen", "ce", "grpo-rm"}
    assert (out / "comparison.md").is_file()
