import torch
from torch import nn

from grpo_rm.config import ObjectiveArguments
from grpo_rm.methods import CrossEntropyMethod, FrozenPolicy, GrpoRmMethod, build_method
from grpo_rm.objective import grpo_rm_loss


def test_build_method_passes_settings():
    method = build_method(ObjectiveArguments(method="grpo-rm", epsilon=0.1, beta=0.05, reward="probability-gap"))
    assert isinstance(method, GrpoRmMethod) and method.needs_old_policy and method.needs_reference_policy
    logits, old, ref = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, 0])
    expected, _ = grpo_rm_loss(logits, old, targets, epsilon=0.1, beta=0.05, reward="probability-gap", ref_logits=ref)
    assert method(logits, targets, old, ref).loss.item() == expected.item()
    ce = build_method(ObjectiveArguments(method="ce"))
    assert isinstance(ce, CrossEntropyMethod) and not ce.needs_old_policy


def test_build_method_passes_the_objective_variants():
    settings = dict(epsilon_high=0.28, scale_rewards="batch", group_weighting="old_policy", reward="margin",
                    uniformity_weight=0.5)
    method = build_method(ObjectiveArguments(method="grpo-rm", **settings), ignore_index=255)
    assert (method.epsilon_high, method.scale_rewards, method.group_weighting, method.reward) == (
        0.28, "batch", "old_policy", "margin")
    torch.manual_seed(0)
    logits, old = torch.randn(6, 4), torch.randn(6, 4)
    targets = torch.tensor([0, 1, 255, 3, 2, 0])
    expected, _ = grpo_rm_loss(logits, old, targets, ignore_index=255, **settings)
    assert method(logits, targets, old).loss.item() == expected.item()
    default, _ = grpo_rm_loss(logits, old, targets, ignore_index=255)
    assert expected.item() != default.item()


def test_frozen_policy_has_no_gradient_runs_in_eval_and_refreshes():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    policy = FrozenPolicy(model)
    assert not policy.model.training
    assert not any(p.requires_grad for p in policy.model.parameters())
    x = torch.randn(8, 3)
    first = policy(x)
    torch.testing.assert_close(first, policy(x))  # eval mode: dropout off
    assert not first.requires_grad and not first.is_inference()

    with torch.no_grad():
        model[0].weight.add_(1.0)
    torch.testing.assert_close(policy(x), first)  # not refreshed yet
    policy.refresh(model)
    torch.testing.assert_close(policy(x), model.eval()(x))


def test_frozen_policy_batchnorm_uses_batch_statistics_without_updating():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).train()
    model[1].running_mean.fill_(5.0)  # far from the batch statistics
    policy = FrozenPolicy(model)
    x = torch.randn(16, 3)
    torch.testing.assert_close(policy(x), model(x))  # the ratio is 1 right after a refresh
    assert torch.all(policy.model[1].running_mean == 5.0)
    assert not policy.model[0].training  # everything else stays in eval mode
