"""L2-SP: the penalty's gradient, its pull towards the pretrained encoder in a run of either method, nothing built
when it is off, and the same anchor after a resume."""

import pytest
import torch
from torch import nn

from grpo_rm.config import RunConfig
from grpo_rm.methods import L2SPRegularizer
from grpo_rm.models import load_encoder
from grpo_rm.reporting import read_metrics_log
from grpo_rm.runtime import finish_trackers
from grpo_rm.training import loop, train

# The imagefolder fixture's 48 training images, batch 12: 4 optimizer steps in one epoch; no tracker, so a run
# costs little more than its steps and one validation. No warm-up: every step moves the weights.
RUN = dict(max_eval_samples=8, per_device_train_batch_size=12, max_train_steps=4, warmup_ratio=0.0, logging_steps=1,
           learning_rate=1e-3, disable_tqdm=True, hflip_prob=0.0, report_to="none")
# Far above the methods' gradients (Adam then steps against the displacement), so the pull shows within 4 steps.
STRONG = 1e4


def trained_encoder_weights(model_name_or_path, dataset_name, output_dir, **overrides) -> tuple[dict, list[dict]]:
    """The trained encoder parameters of a short run, by name, and its metrics log."""
    config = RunConfig.from_dict({**RUN, "model_name_or_path": model_name_or_path, "dataset_name": dataset_name,
                                  "output_dir": str(output_dir), **overrides})
    trained = train(config)
    finish_trackers(trained.accelerator)
    weights = {name: param.detach().clone() for name, param in trained.model.encoder.named_parameters()
               if param.requires_grad}
    return weights, read_metrics_log(output_dir / "metrics.jsonl")


def distance_to(pretrained_name_or_path, weights: dict) -> float:
    """||theta - theta_0|| with theta_0 loaded afresh from the pretrained checkpoint."""
    pretrained = dict(load_encoder(pretrained_name_or_path).named_parameters())
    return torch.cat([(weights[name] - pretrained[name].detach()).flatten() for name in weights]).norm().item()


def test_penalty_and_its_gradient_against_a_direct_computation():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)).double()
    module[1].bias.requires_grad_(False)  # frozen at the anchor: left out
    regularizer = L2SPRegularizer(module, weight=0.3)
    anchor = {name: param.detach().clone() for name, param in module.named_parameters()}
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn_like(param))

    regularizer.penalty(module).backward()

    trained = [name for name, param in module.named_parameters() if param.requires_grad]
    assert sorted(regularizer.anchor) == sorted(trained)
    displacement = {name: param.detach() - anchor[name] for name, param in module.named_parameters()}
    for name, param in module.named_parameters():
        if name in trained:
            torch.testing.assert_close(param.grad, 0.3 * displacement[name], rtol=1e-12, atol=0)
        else:
            assert param.grad is None
    squared = sum(float((displacement[name] ** 2).sum()) for name in trained)
    assert regularizer.penalty(module).item() == pytest.approx(0.15 * squared, rel=1e-12)
    assert regularizer.distance(module).item() == pytest.approx(squared ** 0.5, rel=1e-12)
    assert not regularizer.distance(module).requires_grad


def test_l2sp_refuses_an_encoder_with_nothing_to_anchor():
    with pytest.raises(ValueError, match="l2sp_weight=0.5: the encoder has no trainable weights"):
        L2SPRegularizer(nn.Linear(2, 2).requires_grad_(False), 0.5)


@pytest.fixture(scope="module")
def strong_run(tmp_path_factory, tiny_dinov2, imagefolder):
    """method -> (output_dir, trained encoder weights, metrics log) of a run with a strong L2-SP, each trained once.
    It checkpoints at step 2, which changes nothing it computes, for the resume test to start from."""
    runs = {}

    def run(method):
        if method not in runs:
            output_dir = tmp_path_factory.mktemp(f"strong-l2sp-{method}")
            runs[method] = (output_dir, *trained_encoder_weights(tiny_dinov2, imagefolder, output_dir, method=method,
                                                                 l2sp_weight=STRONG, checkpointing_steps=2))
        return runs[method]

    return run


@pytest.mark.parametrize("method", ["ce", "grpo-rm"])
def test_a_strong_l2sp_ends_closer_to_the_pretrained_encoder(tmp_path, tiny_dinov2, imagefolder, monkeypatch,
                                                             strong_run, method):
    def refuse(*args, **kwargs):
        raise AssertionError("an L2-SP regularizer was built for l2sp_weight 0")

    with monkeypatch.context() as patched:  # off: no anchor copy, so the step is exactly the one without L2-SP
        patched.setattr(loop, "L2SPRegularizer", refuse)
        free, free_log = trained_encoder_weights(tiny_dinov2, imagefolder, tmp_path, method=method)
    _, anchored, anchored_log = strong_run(method)

    free_distance, anchored_distance = distance_to(tiny_dinov2, free), distance_to(tiny_dinov2, anchored)
    assert anchored_distance < 0.5 * free_distance, (anchored_distance, free_distance)
    assert all("l2sp_distance" not in record for record in free_log)
    logged = [record["l2sp_distance"] for record in anchored_log if "loss" in record]
    assert len(logged) == 4 and logged[0] == 0.0 and logged[1] > 0  # measured before each step: 0 at the anchor


def test_a_resumed_run_keeps_the_pretrained_anchor(tiny_dinov2, imagefolder, strong_run):
    """Resuming from step 2 ends bitwise where the uninterrupted run did: the anchor is the encoder as loaded,
    not the checkpoint's weights (which would pull towards step 2's weights and end elsewhere)."""
    run_dir, uninterrupted, _ = strong_run("grpo-rm")
    resumed, _ = trained_encoder_weights(tiny_dinov2, imagefolder, run_dir, method="grpo-rm", l2sp_weight=STRONG,
                                         checkpointing_steps=2, resume_from_checkpoint=str(run_dir / "checkpoint-2"))
    assert uninterrupted.keys() == resumed.keys()
    assert all(torch.equal(uninterrupted[name], resumed[name]) for name in uninterrupted)
