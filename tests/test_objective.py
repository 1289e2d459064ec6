"""grpo_rm_loss against hand-computed values and an independent float64 implementation of METHOD.md."""

import math

import pytest
import torch

from grpo_rm.objective import cross_entropy_loss, group_advantages, grpo_rm_loss

PRESETS = ["accuracy", "accuracy+uniformity", "probability-gap"]


def reference_loss(logits, old_logits, targets, epsilon=0.2, reward="accuracy+uniformity", w=1.0,
                   scale_rewards="group", ignore_index=-100, beta=0.0, ref_logits=None):
    """METHOD.md written out query by query, class by class, in float64 Python arithmetic on torch scalars."""
    num_classes = logits.shape[1]
    if logits.dim() == 4:
        logits = logits.permute(0, 2, 3, 1).reshape(-1, num_classes)
        old_logits = old_logits.permute(0, 2, 3, 1).reshape(-1, num_classes)
        ref_logits = None if ref_logits is None else ref_logits.permute(0, 2, 3, 1).reshape(-1, num_classes)
        targets = targets.reshape(-1)
    per_query = []
    for q in range(logits.shape[0]):
        y = int(targets[q])
        if y == ignore_index:
            continue
        z = logits[q].double()
        pi = torch.exp(z) / torch.exp(z).sum()
        old = torch.exp(old_logits[q].double()) / torch.exp(old_logits[q].double()).sum()
        old = old.detach()
        rewards = []
        for i in range(num_classes):
            acc = 1.0 if i == y else 0.0
            if reward == "accuracy":
                rewards.append(acc)
            elif reward == "accuracy+uniformity":
                rewards.append(acc + w * (0.0 if i == y else -float(old[i])))
            else:
                rewards.append(acc - float(old[i]))
        mean = sum(rewards) / num_classes
        std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (num_classes - 1))
        advantages = [(r - mean) / (std + 1e-4) if scale_rewards == "group" else r - mean for r in rewards]
        terms = []
        for i in range(num_classes):
            rho = pi[i] / old[i]
            clipped = torch.clamp(rho, 1 - epsilon, 1 + epsilon)
            terms.append(torch.minimum(rho * advantages[i], clipped * advantages[i]))
        objective = sum(terms) / num_classes
        if beta > 0:
            ref = torch.softmax(ref_logits[q].double(), dim=0)
            objective = objective - beta * (pi * (torch.log(pi) - torch.log(ref))).sum()
        per_query.append(objective)
    return -sum(per_query) / len(per_query)


def test_hand_computed_three_classes():
    old_probs = torch.tensor([[0.5, 0.3, 0.2]])
    new_probs = torch.tensor([[0.6, 0.25, 0.15]])
    loss, metrics = grpo_rm_loss(new_probs.log(), old_probs.log(), torch.tensor([0]))
    # rewards [1, -0.3, -0.2]; mean 0.5/3; sample std sqrt(((5/6)^2 + (7/15)^2 + (11/30)^2) / 2)
    centred = [5 / 6, -7 / 15, -11 / 30]
    std = math.sqrt(sum(c * c for c in centred) / 2)
    adv = [c / (std + 1e-4) for c in centred]
    # ratios 1.2, 0.8333, 0.75; the third (A < 0, ratio < 0.8) is clipped to 0.8
    expected = -(1.2 * adv[0] + (0.25 / 0.3) * adv[1] + 0.8 * adv[2]) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert metrics["clip_ratio/low_mean"].item() == pytest.approx(1 / 3)
    assert metrics["clip_ratio/high_mean"].item() == 0.0
    assert metrics["reward_std"].item() == pytest.approx(std, abs=1e-6)
    assert metrics["reward"].item() == pytest.approx(0.5 * 1 - 0.3 * 0.3 - 0.2 * 0.2, abs=1e-6)


def test_gradient_at_ratio_one_is_minus_advantage_over_c():
    old = torch.tensor([[0.5, 0.3, 0.2]]).log()
    logits = old.clone().requires_grad_(True)
    loss, _ = grpo_rm_loss(logits, old, torch.tensor([0]), reward="accuracy", scale_rewards="none")
    loss.backward()
    advantages = torch.tensor([1.0, 0.0, 0.0]) - 1 / 3
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    torch.testing.assert_close(logits.grad[0], -advantages / 3)


@pytest.mark.parametrize("reward", PRESETS)
@pytest.mark.parametrize("scale_rewards", ["group", "none"])
@pytest.mark.parametrize("spatial", [False, True])
def test_matches_float64_reference_values_and_gradients(reward, scale_rewards, spatial):
    torch.manual_seed(0)
    shape = (3, 5, 2, 3) if spatial else (6, 5)
    logits = torch.randn(shape, dtype=torch.float64) * 1.5
    old_logits = logits.detach() + 0.4 * torch.randn(shape, dtype=torch.float64)
    target_shape = (shape[0],) + shape[2:]
    targets = torch.randint(0, 5, target_shape)
    targets.view(-1)[1] = -100
    kwargs = dict(epsilon=0.2, reward=reward, scale_rewards=scale_rewards)

    ours = logits.clone().requires_grad_(True)
    loss, _ = grpo_rm_loss(ours, old_logits, targets, uniformity_weight=0.7, **kwargs)
    loss.backward()
    theirs = logits.clone().requires_grad_(True)
    expected = reference_loss(theirs, old_logits, targets, w=0.7, **kwargs)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-6)


def test_kl_term_matches_reference():
    torch.manual_seed(1)
    logits = torch.randn(4, 3, dtype=torch.float64)
    old = logits + 0.1 * torch.randn(4, 3, dtype=torch.float64)
    ref = torch.randn(4, 3, dtype=torch.float64)
    targets = torch.tensor([0, 2, 1, 1])
    ours = logits.clone().requires_grad_(True)
    loss, metrics = grpo_rm_loss(ours, old, targets, beta=0.3, ref_logits=ref)
    loss.backward()
    theirs = logits.clone().requires_grad_(True)
    expected = reference_loss(theirs, old, targets, beta=0.3, ref_logits=ref)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    torch.testing.assert_close(ours.grad, theirs.grad)
    assert "kl" in metrics and metrics["kl"].item() > 0


def test_invariant_to_a_constant_added_to_all_logits():
    torch.manual_seed(2)
    logits, old = torch.randn(8, 4), torch.randn(8, 4)
    targets = torch.randint(0, 4, (8,))
    base, _ = grpo_rm_loss(logits, old, targets)
    shifted, _ = grpo_rm_loss(logits + 7.5, old - 3.0, targets)
    assert shifted.item() == pytest.approx(base.item(), abs=1e-5)


def test_terms_clipped_on_the_binding_side_get_no_gradient():
    # Target 0: A_0 > 0 with ratio 1.8 > 1 + eps, A_1 < 0 with ratio 0.2 < 1 - eps: both clipped.
    old = torch.tensor([[0.5, 0.5]]).log()
    logits = torch.tensor([[0.9, 0.1]]).log().requires_grad_(True)
    loss, metrics = grpo_rm_loss(logits, old, torch.tensor([0]), reward="accuracy")
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0
    assert metrics["clip_ratio/region_mean"].item() == 1.0


def test_ratio_outside_the_range_on_the_non_binding_side_still_gets_gradient():
    # Target 0 moved *down* (ratio 0.2 with A_0 > 0): min picks the unclipped term.
    old = torch.tensor([[0.5, 0.5]]).log()
    logits = torch.tensor([[0.1, 0.9]]).log().requires_grad_(True)
    loss, metrics = grpo_rm_loss(logits, old, torch.tensor([0]), reward="accuracy")
    loss.backward()
    assert logits.grad.abs().sum() > 0
    assert metrics["clip_ratio/region_mean"].item() == 0.0


def test_ignored_queries_are_excluded_and_get_no_gradient():
    torch.manual_seed(3)
    logits = torch.randn(5, 3, requires_grad=True)
    old = torch.randn(5, 3)
    targets = torch.tensor([0, 255, 2, 255, 1])
    loss, _ = grpo_rm_loss(logits, old, targets, ignore_index=255)
    loss.backward()
    keep = targets != 255
    subset, _ = grpo_rm_loss(logits.detach()[keep], old[keep], targets[keep], ignore_index=255)
    assert loss.item() == pytest.approx(subset.item(), abs=1e-6)
    assert torch.count_nonzero(logits.grad[~keep]) == 0


def test_all_ignored_batch_gives_zero_without_nan():
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    loss, metrics = grpo_rm_loss(logits, torch.randn(2, 4, 3, 3), torch.full((2, 3, 3), 255), ignore_index=255)
    loss.backward()
    assert loss.item() == 0.0
    assert not torch.isnan(logits.grad).any() and torch.count_nonzero(logits.grad) == 0
    assert all(not torch.isnan(v) for v in metrics.values())


def test_bf16_inputs_are_computed_in_float32():
    torch.manual_seed(4)
    logits, old = torch.randn(16, 10), torch.randn(16, 10)
    targets = torch.randint(0, 10, (16,))
    loss16, _ = grpo_rm_loss(logits.bfloat16(), old.bfloat16(), targets)
    loss32, _ = grpo_rm_loss(logits.bfloat16().float(), old.bfloat16().float(), targets)
    assert loss16.dtype == torch.float32
    assert loss16.item() == pytest.approx(loss32.item(), abs=1e-6)


def test_probability_gap_without_scaling_has_advantage_e_y_minus_old_probs():
    old_probs = torch.softmax(torch.randn(4, 6), dim=-1)
    targets = torch.tensor([0, 5, 2, 2])
    onehot = torch.nn.functional.one_hot(targets, 6).float()
    advantages = group_advantages(onehot - old_probs, "none")
    torch.testing.assert_close(advantages, onehot - old_probs)


def test_callable_reward_is_used():
    torch.manual_seed(5)
    logits, old = torch.randn(6, 4), torch.randn(6, 4)
    targets = torch.randint(0, 4, (6,))
    gap = lambda probs, t: torch.nn.functional.one_hot(t, probs.shape[-1]).float() - probs  # noqa: E731
    custom, _ = grpo_rm_loss(logits, old, targets, reward=gap)
    preset, _ = grpo_rm_loss(logits, old, targets, reward="probability-gap")
    assert custom.item() == pytest.approx(preset.item(), abs=1e-7)
    with pytest.raises(ValueError, match="shape"):
        grpo_rm_loss(logits, old, targets, reward=lambda p, t: p[:, :2])


def test_metrics_use_trl_names_and_zero_std_fraction():
    logits, old = torch.randn(4, 3), torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, 0])
    _, metrics = grpo_rm_loss(logits, old, targets, reward=lambda p, t: torch.zeros_like(p))
    assert set(metrics) == {"reward", "reward_std", "frac_reward_zero_std", "clip_ratio/low_mean",
                            "clip_ratio/high_mean", "clip_ratio/region_mean", "entropy"}
    assert metrics["frac_reward_zero_std"].item() == 1.0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        grpo_rm_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="unknown reward"):
        grpo_rm_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), reward="nope")
    with pytest.raises(ValueError, match="scale_rewards"):
        grpo_rm_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), scale_rewards="batch")
    with pytest.raises(ValueError, match="ref_logits"):
        grpo_rm_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), beta=0.1)


def test_cross_entropy_matches_torch_and_ignores():
    logits = torch.randn(2, 4, 3, 3)
    targets = torch.randint(0, 4, (2, 3, 3))
    targets[0, 0, 0] = 255
    loss, _ = cross_entropy_loss(logits, targets, ignore_index=255)
    expected = torch.nn.functional.cross_entropy(logits, targets, ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_integer_masks_of_any_integer_dtype():
    logits, old = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    mask = torch.tensor([[[0, 2], [255, 1]]])
    expected, _ = grpo_rm_loss(logits, old, mask, ignore_index=255)
    for dtype in (torch.uint8, torch.int32):
        loss, _ = grpo_rm_loss(logits, old, mask.to(dtype), ignore_index=255)
        assert loss.item() == expected.item()
