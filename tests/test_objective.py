"""grpo_rm_loss against hand-computed values and an independent float64 implementation of METHOD.md."""

import math

import pytest
import torch

from grpo_rm.objective import compute_rewards, cross_entropy_loss, group_advantages, grpo_rm_loss

PRESETS = ["accuracy", "accuracy+uniformity", "probability-gap", "margin"]


def _sample_std(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def reference_loss(logits, old_logits, targets, epsilon=0.2, reward="accuracy+uniformity", w=1.0,
                   scale_rewards="group", ignore_index=-100, beta=0.0, ref_logits=None, epsilon_high=None,
                   group_weighting="uniform"):
    """METHOD.md and the README's variants written out query by query, class by class, in float64 Python
    arithmetic on torch scalars. Rewards come first for every query, since ``batch`` scaling needs them all."""
    num_classes = logits.shape[1]
    if logits.dim() == 4:
        logits = logits.permute(0, 2, 3, 1).reshape(-1, num_classes)
        old_logits = old_logits.permute(0, 2, 3, 1).reshape(-1, num_classes)
        ref_logits = None if ref_logits is None else ref_logits.permute(0, 2, 3, 1).reshape(-1, num_classes)
        targets = targets.reshape(-1)
    upper = 1 + (epsilon if epsilon_high is None else epsilon_high)
    queries = []  # (q, old probabilities, rewards) of every valid query
    for q in range(logits.shape[0]):
        y = int(targets[q])
        if y == ignore_index:
            continue
        old = torch.exp(old_logits[q].double()) / torch.exp(old_logits[q].double()).sum()
        old = old.detach()
        rewards = []
        for i in range(num_classes):
            acc = 1.0 if i == y else 0.0
            if reward == "accuracy":
                rewards.append(acc)
            elif reward == "accuracy+uniformity":
                rewards.append(acc + w * (0.0 if i == y else -float(old[i])))
            elif reward == "margin":
                rewards.append(1.0 if i == y else -w * float(old[i]) / (float(old[i]) + float(old[y])))
            else:
                rewards.append(acc - float(old[i]))
        queries.append((q, old, rewards))
    batch_std = _sample_std([r for _, _, rewards in queries for r in rewards])
    per_query = []
    for q, old, rewards in queries:
        z = logits[q].double()
        pi = torch.exp(z) / torch.exp(z).sum()
        mean = sum(rewards) / num_classes
        divisor = {"group": _sample_std(rewards) + 1e-4, "batch": batch_std + 1e-4, "none": 1.0}[scale_rewards]
        advantages = [(r - mean) / divisor for r in rewards]
        terms = []
        for i in range(num_classes):
            rho = pi[i] / old[i]
            clipped = torch.clamp(rho, 1 - epsilon, upper)
            term = torch.minimum(rho * advantages[i], clipped * advantages[i])
            terms.append(term / num_classes if group_weighting == "uniform" else old[i] * term)
        objective = sum(terms)
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


def test_epsilon_high_moves_only_the_upper_clip_bound():
    # The three-class case above: ratios 1.2 (A > 0), 0.8333 and 0.75 (A < 0), lower bound 1 - 0.1 = 0.9.
    old_probs, new_probs = torch.tensor([[0.5, 0.3, 0.2]]), torch.tensor([[0.6, 0.25, 0.15]])
    centred = [5 / 6, -7 / 15, -11 / 30]
    std = math.sqrt(sum(c * c for c in centred) / 2)
    adv = [c / (std + 1e-4) for c in centred]
    for epsilon_high, upper_term, high_clipped in [(0.3, 1.2, 0.0), (0.15, 1.15, 1 / 3), (None, 1.1, 1 / 3)]:
        loss, metrics = grpo_rm_loss(new_probs.log(), old_probs.log(), torch.tensor([0]), epsilon=0.1,
                                     epsilon_high=epsilon_high)
        assert loss.item() == pytest.approx(-(upper_term * adv[0] + 0.9 * adv[1] + 0.9 * adv[2]) / 3, abs=1e-6)
        assert metrics["clip_ratio/high_mean"].item() == pytest.approx(high_clipped)
        assert metrics["clip_ratio/low_mean"].item() == pytest.approx(2 / 3)
        assert metrics["clip_ratio/region_mean"].item() == pytest.approx(2 / 3 + high_clipped)


def test_batch_scaling_centres_per_group_and_divides_by_the_std_of_all_rewards():
    rewards = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], dtype=torch.float64)
    # All six rewards: mean 0.5, squared deviations 0.25 * 5 + 2.25 = 3.5, Bessel variance 3.5 / 5.
    expected = torch.tensor([[2 / 3, -1 / 3, -1 / 3], [4 / 3, -2 / 3, -2 / 3]], dtype=torch.float64)
    expected = expected / (math.sqrt(0.7) + 1e-4)
    torch.testing.assert_close(group_advantages(rewards, "batch"), expected)
    # Group scaling would give both groups the same advantages; batch scaling keeps their 1:2 spread.
    group = group_advantages(rewards, "group")
    torch.testing.assert_close(group[0], group[1], rtol=1e-3, atol=0.0)


def test_old_policy_weighting_at_ratio_one_is_the_exact_policy_gradient():
    old = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]).log()
    targets = torch.tensor([0, 2])
    logits = old.clone().requires_grad_(True)
    loss, _ = grpo_rm_loss(logits, old, targets, reward="accuracy", scale_rewards="none",
                           group_weighting="old_policy")
    loss.backward()
    probs = old.exp()
    advantages = torch.nn.functional.one_hot(targets, 3).float() - 1 / 3
    # -J = -(1/Q) sum_q sum_i pi_i A_i; d/dz_j = -(1/Q) pi_j (A_j - sum_i pi_i A_i)
    expected_loss = -(probs * advantages).sum(dim=-1).mean()
    expected_grad = -probs * (advantages - (probs * advantages).sum(dim=-1, keepdim=True)) / 2
    assert loss.item() == pytest.approx(expected_loss.item(), abs=1e-7)
    torch.testing.assert_close(logits.grad, expected_grad)


def test_margin_reward_is_the_pairwise_preference_over_the_label_and_survives_underflow():
    old_probs = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    rewards = compute_rewards(old_probs, torch.tensor([1]), "margin", uniformity_weight=0.5)
    torch.testing.assert_close(rewards, torch.tensor([[-0.5 * 0.5 / 0.8, 1.0, -0.5 * 0.2 / 0.5]], dtype=torch.float64))
    # Label and class 2 both underflow to probability 0 in float32; their logit gap is -2.
    old_logits = torch.tensor([[1e4, 0.0, -2.0]])
    old_logprobs = torch.log_softmax(old_logits, dim=-1)
    rewards = compute_rewards(old_logprobs.exp(), torch.tensor([1]), "margin", old_logprobs=old_logprobs)
    torch.testing.assert_close(rewards, torch.tensor([[-1.0, 1.0, -1 / (1 + math.e ** 2)]]))
    logits = (old_logits + torch.tensor([[0.0, 0.5, -0.5]])).requires_grad_(True)
    loss, metrics = grpo_rm_loss(logits, old_logits, torch.tensor([1]), reward="margin")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert all(torch.isfinite(value) for value in metrics.values())


@pytest.mark.parametrize("reward", PRESETS)
@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("group_weighting", ["uniform", "old_policy"])
@pytest.mark.parametrize("epsilon_high", [None, 0.28])
def test_matches_float64_reference_values_and_gradients(reward, scale_rewards, spatial, group_weighting,
                                                         epsilon_high):
    torch.manual_seed(0)
    shape = (3, 5, 2, 3) if spatial else (6, 5)
    logits = torch.randn(shape, dtype=torch.float64) * 1.5
    old_logits = logits.detach() + 0.4 * torch.randn(shape, dtype=torch.float64)
    target_shape = (shape[0],) + shape[2:]
    targets = torch.randint(0, 5, target_shape)
    targets.view(-1)[1] = -100
    kwargs = dict(epsilon=0.2, reward=reward, scale_rewards=scale_rewards, group_weighting=group_weighting,
                  epsilon_high=epsilon_high)

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
        grpo_rm_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), scale_rewards="token")
    with pytest.raises(ValueError, match="group_weighting"):
        grpo_rm_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), group_weighting="sampled")
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
