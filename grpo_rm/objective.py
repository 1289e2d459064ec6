"""The training objectives as pure functions of tensors.

``grpo_rm_loss`` implements GRPO-RM (arXiv:2511.15256) as specified in the project's
METHOD.md: the group of a query is the whole set of C classes, the policy is the
head's softmax, rewards come from the label and the *old* policy, and the loss is
the negative clipped surrogate. ``cross_entropy_loss`` is the supervised baseline
with the same call shape, so a trainer can swap one for the other.

Nothing here knows about models, configs or files.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Callable, NamedTuple, Union

import torch
import torch.nn.functional as F

RewardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

REWARD_PRESETS = ("accuracy", "accuracy+uniformity", "probability-gap", "margin")
SCALE_REWARDS = ("group", "batch", "none")
GROUP_WEIGHTINGS = ("uniform", "old_policy")
ADVANTAGE_STD_EPS = 1e-4

# METHOD.md's objective as the paper specifies it: the defaults of ``grpo_rm_loss`` below and of the ``paper``
# preset (``grpo_rm.methods.presets``), written here once.
PAPER_SETTINGS = MappingProxyType({
    "epsilon": 0.2,
    "epsilon_high": None,  # None: the clip is symmetric, [1 - epsilon, 1 + epsilon]
    "beta": 0.0,
    "reward": "accuracy+uniformity",
    "uniformity_weight": 1.0,
    "scale_rewards": "group",
    "group_weighting": "uniform",
})


class LossOutput(NamedTuple):
    """The scalar loss to back-propagate and detached scalar metrics to log."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """Half-precision values upcast to float32; float32 and float64 ones (exact tests) unchanged."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def _flatten_queries(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, C] or [N, C, *spatial] logits -> [queries, C]; targets -> [queries]."""
    if logits.dim() < 2:
        raise ValueError(f"logits must have shape [N, C] or [N, C, H, W], got {tuple(logits.shape)}")
    expected_targets = logits.shape[:1] + logits.shape[2:]
    if tuple(targets.shape) != tuple(expected_targets):
        raise ValueError(
            f"targets shape {tuple(targets.shape)} does not match logits shape {tuple(logits.shape)}; "
            f"expected {tuple(expected_targets)}"
        )
    num_classes = logits.shape[1]
    # Masks often arrive as uint8/int32; indexing ops need int64.
    return logits.movedim(1, -1).reshape(-1, num_classes), targets.reshape(-1).long()


def _valid_query_mask(targets: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    valid = targets != ignore_index
    out_of_range = valid & ((targets < 0) | (targets >= num_classes))
    if bool(out_of_range.any()):
        bad = targets[out_of_range].unique()[:5].tolist()
        raise ValueError(
            f"target values {bad} are outside [0, {num_classes}) and are not ignore_index={ignore_index}"
        )
    return valid


def compute_rewards(
    old_probs: torch.Tensor,
    targets: torch.Tensor,
    reward: Union[str, RewardFn] = PAPER_SETTINGS["reward"],
    uniformity_weight: float = PAPER_SETTINGS["uniformity_weight"],
    old_logprobs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reward of every class of every query: [Q, C] from old probabilities [Q, C] and labels [Q].

    ``old_logprobs`` (the log of ``old_probs``) is what ``margin`` reads when given: it keeps the
    logit gap of classes whose probabilities underflow to 0, where a log of ``old_probs`` gives -inf - -inf.
    """
    is_target = F.one_hot(targets, old_probs.shape[-1]).to(old_probs.dtype)
    if callable(reward):
        rewards = reward(old_probs, targets)
        if not isinstance(rewards, torch.Tensor) or rewards.shape != old_probs.shape:
            got = tuple(rewards.shape) if isinstance(rewards, torch.Tensor) else type(rewards).__name__
            raise ValueError(f"reward callable must return a tensor of shape {tuple(old_probs.shape)}, got {got}")
        return rewards.to(old_probs.dtype)
    if reward == "accuracy":
        return is_target
    if reward == "accuracy+uniformity":
        return is_target - uniformity_weight * old_probs * (1.0 - is_target)
    if reward == "probability-gap":
        return is_target - old_probs
    if reward == "margin":
        # sigmoid(log pi_i - log pi_y) = pi_i / (pi_i + pi_y): how strongly the old model prefers class i to the label.
        old_logprobs = old_probs.log() if old_logprobs is None else old_logprobs
        gap = old_logprobs - old_logprobs.gather(-1, targets.unsqueeze(-1))
        return torch.where(is_target.bool(), 1.0, -uniformity_weight * torch.sigmoid(gap)).to(old_probs.dtype)
    raise ValueError(f"unknown reward {reward!r}; choose one of {REWARD_PRESETS} or pass a callable")


def group_advantages(rewards: torch.Tensor, scale_rewards: str = PAPER_SETTINGS["scale_rewards"]) -> torch.Tensor:
    """Group-relative advantages over the class dimension of [Q, C] rewards.

    Every mode subtracts each group's mean. ``group`` divides by each group's std, ``batch`` by the std
    of all Q*C rewards (TRL's ``scale_rewards="batch"``), ``none`` by nothing; stds are Bessel-corrected.
    """
    centred = rewards - rewards.mean(dim=-1, keepdim=True)
    if scale_rewards == "group":
        return centred / (rewards.std(dim=-1, keepdim=True) + ADVANTAGE_STD_EPS)
    if scale_rewards == "batch":
        return centred / (rewards.std() + ADVANTAGE_STD_EPS)
    if scale_rewards == "none":
        return centred
    raise ValueError(f"unknown scale_rewards {scale_rewards!r}; choose one of {SCALE_REWARDS}")


def grpo_rm_loss(
    logits: torch.Tensor,
    old_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    epsilon: float = PAPER_SETTINGS["epsilon"],
    epsilon_high: float | None = PAPER_SETTINGS["epsilon_high"],
    reward: Union[str, RewardFn] = PAPER_SETTINGS["reward"],
    uniformity_weight: float = PAPER_SETTINGS["uniformity_weight"],
    scale_rewards: str = PAPER_SETTINGS["scale_rewards"],
    group_weighting: str = PAPER_SETTINGS["group_weighting"],
    ignore_index: int = -100,
    beta: float = PAPER_SETTINGS["beta"],
    ref_logits: torch.Tensor | None = None,
) -> LossOutput:
    """GRPO-RM loss: minus the mean over queries of the clipped group surrogate minus beta*KL.

    ``logits`` and ``old_logits`` are [N, C] (classification) or [N, C, H, W] (one query
    per pixel); ``targets`` are [N] or [N, H, W]. Queries labelled ``ignore_index`` are
    left out of every mean. Math runs in float32 for half-precision inputs, else in the inputs' dtype.

    The ratio is clipped to [1 - epsilon, 1 + epsilon_high] (``epsilon_high=None``: epsilon). A query's
    C class terms are averaged (``group_weighting="uniform"``) or weighted by the old policy's
    probabilities (``"old_policy"``: the expectation, under pi_old, of sampled GRPO's per-sample term).
    """
    if group_weighting not in GROUP_WEIGHTINGS:
        raise ValueError(f"unknown group_weighting {group_weighting!r}; choose one of {GROUP_WEIGHTINGS}")
    if old_logits.shape != logits.shape:
        raise ValueError(f"old_logits shape {tuple(old_logits.shape)} != logits shape {tuple(logits.shape)}")
    if beta > 0 and (ref_logits is None or ref_logits.shape != logits.shape):
        raise ValueError("beta > 0 needs ref_logits with the same shape as logits")
    flat_logits, flat_targets = _flatten_queries(logits, targets)
    num_classes = flat_logits.shape[-1]
    valid = _valid_query_mask(flat_targets, num_classes, ignore_index)

    logp = F.log_softmax(at_least_float32(flat_logits[valid]), dim=-1)
    old_logp = F.log_softmax(at_least_float32(_flatten_queries(old_logits, targets)[0][valid].detach()), dim=-1)
    valid_targets = flat_targets[valid]
    num_queries = valid_targets.numel()
    if num_queries == 0:
        # Multiplying keeps the graph connected so every rank still runs backward (DDP). Summing in
        # float32 matters: a half sum overflows (eight fp16 logits of 1e4) and inf * 0 is NaN.
        zero = at_least_float32(logits).sum() * 0.0
        metrics = {name: zero.detach() for name in _metric_names(beta)}
        return LossOutput(zero, metrics)

    old_probs = old_logp.exp()
    rewards = compute_rewards(old_probs, valid_targets, reward, uniformity_weight, old_logprobs=old_logp)
    advantages = group_advantages(rewards, scale_rewards)

    # Where A >= 0 the term min(rho*A, clip(rho)*A) = A*min(rho, 1+eps_high) does not depend on rho above
    # 1+eps_high, so log rho is capped there (at a point still above the clip). Without the cap an old
    # probability near 0 overflows rho to inf, and inf*0 turns the zero gradient of that clipped
    # term (exp's backward) or the term itself (A = 0) into NaN. Values, gradients and clip metrics
    # are unchanged wherever rho was finite. With A < 0 a huge rho is the method's own (unbounded) term.
    high = epsilon if epsilon_high is None else epsilon_high
    log_ratio = logp - old_logp
    log_ratio = torch.where(advantages >= 0, log_ratio.clamp(max=math.log1p(high) + 1.0), log_ratio)
    ratio = torch.exp(log_ratio)
    clipped_ratio = torch.clamp(ratio, 1.0 - epsilon, 1.0 + high)
    terms = torch.minimum(ratio * advantages, clipped_ratio * advantages)
    if group_weighting == "uniform":
        surrogate = terms.mean(dim=-1)
    else:
        surrogate = (old_probs * terms).sum(dim=-1)

    objective = surrogate
    probs = logp.exp()
    kl = None
    if beta > 0:
        ref_logp = F.log_softmax(at_least_float32(_flatten_queries(ref_logits, targets)[0][valid].detach()), dim=-1)
        kl = (probs * (logp - ref_logp)).sum(dim=-1)
        objective = objective - beta * kl
    loss = -objective.mean()

    with torch.no_grad():
        # Clip fractions count (query, class) terms, whatever group_weighting weighs them by.
        low_clipped = (ratio < 1.0 - epsilon) & (advantages < 0)
        high_clipped = (ratio > 1.0 + high) & (advantages > 0)
        # Per group in every scale_rewards mode (TRL logs the batch std under "batch"): a group with
        # constant rewards has zero advantages whatever the scaling, and this counts such groups.
        reward_std = rewards.std(dim=-1)
        metrics = {
            # Expected reward of the policy that produced the group (the old policy),
            # which is what TRL's sampled `reward` estimates.
            "reward": (old_probs * rewards).sum(dim=-1).mean(),
            "reward_std": reward_std.mean(),
            "frac_reward_zero_std": (reward_std < 1e-8).float().mean(),
            "clip_ratio/low_mean": low_clipped.float().mean(),
            "clip_ratio/high_mean": high_clipped.float().mean(),
            "clip_ratio/region_mean": (low_clipped | high_clipped).float().mean(),
            "entropy": -(probs * logp).sum(dim=-1).mean(),
        }
        if kl is not None:
            metrics["kl"] = kl.mean()
    return LossOutput(loss, metrics)


def _metric_names(beta: float) -> list[str]:
    names = [
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "clip_ratio/low_mean",
        "clip_ratio/high_mean",
        "clip_ratio/region_mean",
        "entropy",
    ]
    return names + ["kl"] if beta > 0 else names


def cross_entropy_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Supervised baseline with the same shapes and return type as ``grpo_rm_loss``."""
    flat_logits, flat_targets = _flatten_queries(logits, targets)
    valid = _valid_query_mask(flat_targets, flat_logits.shape[-1], ignore_index)
    if not bool(valid.any()):
        zero = at_least_float32(logits).sum() * 0.0  # a half-precision sum can overflow, and inf * 0 is NaN
        return LossOutput(zero, {"entropy": zero.detach()})
    valid_logits = at_least_float32(flat_logits[valid])
    loss = F.cross_entropy(valid_logits, flat_targets[valid], label_smoothing=label_smoothing)
    logp = F.log_softmax(valid_logits, dim=-1)
    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum(dim=-1).mean()
    return LossOutput(loss, {"entropy": entropy})
