"""Property-based tests (hypothesis) of ``grpo_rm_loss``.

Each test states one property of the loss in METHOD.md and checks it on drawn inputs:

* loss, gradients and metrics are finite for logits up to +-1e4, C from 2 to 1000, float32 /
  bfloat16 / float16 inputs, [N, C] and [N, C, H, W] shapes, none, some or all queries ignored,
  every reward preset, ``scale_rewards`` and ``group_weighting`` value, with and without
  ``epsilon_high`` and the KL term;
* an all-ignored batch gives a loss of exactly 0 with zero (finite) gradients;
* ignored queries neither change the loss nor receive gradient;
* the loss is invariant to a constant added to one query's logits (current, old and ref each
  get their own constant per query);
* the KL term adds beta times a non-negative KL(pi || pi_ref), which is 0 for pi_ref = pi;
* terms clipped on the binding side (below 1 - epsilon, above 1 + epsilon_high) are constants
  of the current logits, whichever weights ``group_weighting`` gives them: they contribute no
  gradient, and moving probability between them leaves the loss unchanged; this still holds
  when the ratio overflows float32.

Tensor contents come from a ``torch.Generator`` seeded by hypothesis, so a failing example
is reproducible from the printed draw. ``derandomize=True`` makes CI runs identical and
``database=None`` keeps no example database (recent hypothesis still caches source constants
under ``.hypothesis/``).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from grpo_rm.objective import (
    GROUP_WEIGHTINGS,
    REWARD_PRESETS,
    SCALE_REWARDS,
    compute_rewards,
    group_advantages,
    grpo_rm_loss,
)

HALF_DTYPES = (torch.bfloat16, torch.float16)
DTYPES = (torch.float32,) + HALF_DTYPES


@pytest.fixture(scope="module", autouse=True)
def _one_intra_op_thread():
    """The tensors here are tiny: one thread is fastest, and spares the OpenMP spin-waiting that
    made this file ~9x slower on 2 busy cores. The previous setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _settings(max_examples: int):
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# ----------------------------------------------------------------------------- generators


def _logits(gen: torch.Generator, shape, mode: str, scale: float) -> torch.Tensor:
    """float32 logits of magnitude <= scale with a few shapes that stress softmax."""
    if mode == "uniform":
        return (torch.rand(shape, generator=gen) * 2 - 1) * scale
    if mode == "saturated":  # every logit is +-scale
        return torch.where(torch.rand(shape, generator=gen) < 0.5, -scale, scale)
    if mode == "peaked":  # one class at +scale, the rest at -scale
        winner = torch.rand(shape, generator=gen).argmax(dim=1, keepdim=True)
        return torch.full(shape, -scale).scatter(1, winner, scale)
    if mode == "constant":  # all +scale: the sum of a half tensor overflows, softmax is uniform
        return torch.full(shape, scale)
    raise AssertionError(mode)


def _targets(gen: torch.Generator, shape, num_classes: int, ignore_index: int, ignored: str) -> torch.Tensor:
    targets = torch.randint(0, num_classes, shape, generator=gen)
    # A class id equal to ignore_index (255 with C > 255) would be ignored; keep drawn labels valid.
    targets[targets == ignore_index] = (ignore_index + 1) % num_classes
    if ignored == "all":
        targets.fill_(ignore_index)
    elif ignored == "some":
        targets[torch.rand(shape, generator=gen) < 0.5] = ignore_index
    return targets


def _query_shape(spatial: bool, n: int, h: int, w: int, num_classes: int):
    """(logits shape, targets shape, per-query broadcast shape)."""
    if spatial:
        return (n, num_classes, h, w), (n, h, w), (n, 1, h, w)
    return (n * h * w, num_classes), (n * h * w,), (n * h * w, 1)


def _loss_with_grads(logits, old_logits, targets, **kwargs):
    leaf = logits.detach().clone().requires_grad_(True)
    loss, metrics = grpo_rm_loss(leaf, old_logits, targets, **kwargs)
    loss.backward()
    return loss.detach(), leaf.grad, metrics


# ----------------------------------------------------------------------------- finiteness


@st.composite
def finite_cases(draw):
    dtype = draw(st.sampled_from(DTYPES))
    return dict(
        dtype=dtype,
        num_classes=draw(st.one_of(st.integers(2, 8), st.integers(2, 1000), st.sampled_from([2, 1000]))),
        spatial=draw(st.booleans()),
        n=draw(st.integers(1, 3)),
        h=draw(st.integers(1, 3)),
        w=draw(st.integers(1, 3)),
        mode=draw(st.sampled_from(["uniform", "saturated", "peaked", "constant"])),
        scale=draw(st.sampled_from([1.0, 30.0, 1e3, 1e4])),
        # How far the old policy's logits sit from the current ones (the trust region the old
        # model defines). |log ratio| <= 2 * max|old - current|: ratio <= e^80 in float32, and
        # <= e^8 for half inputs (rounding to the half grid at most doubles the drift), whose
        # gradient must also fit the half range (fp16 max 65504).
        drift=draw(st.sampled_from([0.0, 2.0, 40.0] if dtype == torch.float32 else [0.0, 0.5, 2.0])),
        reward=draw(st.sampled_from(REWARD_PRESETS)),
        scale_rewards=draw(st.sampled_from(SCALE_REWARDS)),
        uniformity_weight=draw(st.floats(0.0, 2.0)),
        epsilon=draw(st.floats(0.01, 0.5)),
        epsilon_high=draw(st.one_of(st.none(), st.floats(0.01, 5.0))),
        group_weighting=draw(st.sampled_from(GROUP_WEIGHTINGS)),
        beta=draw(st.sampled_from([0.0, 0.0, 0.05, 1.0])),
        ignore_index=draw(st.sampled_from([-100, 255])),
        ignored=draw(st.sampled_from(["none", "some", "all"])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@_settings(max_examples=200)
@given(case=finite_cases())
def test_loss_grads_and_metrics_are_finite_for_logits_up_to_1e4_in_any_dtype(case):
    """Finite loss, gradient and metrics whatever the dtype, C, shape, preset or ignored pixels.

    The inputs stay in their half dtype (the loss upcasts internally); the gradient comes back
    in that dtype. The old logits are the current ones plus a bounded drift rounded to the input
    dtype, so the ratio stays bounded (e^80 at most): an unbounded ratio with a negative advantage
    makes the surrogate itself (rho * A) overflow float32, which is the method, not a numerical defect.
    """
    gen = torch.Generator().manual_seed(case["seed"])
    dtype, num_classes = case["dtype"], case["num_classes"]
    shape, target_shape, _ = _query_shape(case["spatial"], case["n"], case["h"], case["w"], num_classes)
    current = _logits(gen, shape, case["mode"], case["scale"]).to(dtype)
    drift = (torch.rand(shape, generator=gen) * 2 - 1) * case["drift"]
    old = (current.float() + drift).to(dtype)
    ref = _logits(gen, shape, case["mode"], case["scale"]).to(dtype) if case["beta"] > 0 else None
    targets = _targets(gen, target_shape, num_classes, case["ignore_index"], case["ignored"])

    loss, grad, metrics = _loss_with_grads(
        current, old, targets, epsilon=case["epsilon"], epsilon_high=case["epsilon_high"], reward=case["reward"],
        uniformity_weight=case["uniformity_weight"], scale_rewards=case["scale_rewards"],
        group_weighting=case["group_weighting"],
        ignore_index=case["ignore_index"], beta=case["beta"], ref_logits=ref,
    )

    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert torch.isfinite(loss), f"loss {loss}"
    assert grad is not None and grad.dtype == dtype and grad.shape == current.shape
    assert torch.isfinite(grad).all(), f"{(~torch.isfinite(grad)).sum()} non-finite gradient entries"
    bad = {name: value.item() for name, value in metrics.items() if not torch.isfinite(value)}
    assert not bad, f"non-finite metrics {bad}"


@_settings(max_examples=60)
@given(
    dtype=st.sampled_from(DTYPES),
    num_classes=st.integers(2, 1000),
    spatial=st.booleans(),
    n=st.integers(1, 3),
    hw=st.integers(1, 3),
    mode=st.sampled_from(["uniform", "saturated", "constant"]),
    scale=st.sampled_from([1.0, 1e4]),
    reward=st.sampled_from(REWARD_PRESETS),
    scale_rewards=st.sampled_from(SCALE_REWARDS),
    group_weighting=st.sampled_from(GROUP_WEIGHTINGS),
    beta=st.sampled_from([0.0, 0.1]),
    ignore_index=st.sampled_from([-100, 255]),
    seed=st.integers(0, 2**31 - 1),
)
def test_all_ignored_batch_gives_exactly_zero_loss_zero_grads_and_the_usual_metric_names(
    dtype, num_classes, spatial, n, hw, mode, scale, reward, scale_rewards, group_weighting, beta, ignore_index, seed
):
    """No valid query: loss 0 (not NaN), a connected graph with all-zero gradient, finite zero metrics.

    Metric names must match those of a non-empty batch so loggers see a fixed set of keys.
    """
    gen = torch.Generator().manual_seed(seed)
    shape, target_shape, _ = _query_shape(spatial, n, hw, hw, num_classes)
    current = _logits(gen, shape, mode, scale).to(dtype)
    old = _logits(gen, shape, mode, scale).to(dtype)
    ref = _logits(gen, shape, mode, scale).to(dtype) if beta > 0 else None
    targets = torch.full(target_shape, ignore_index)
    kwargs = dict(reward=reward, scale_rewards=scale_rewards, group_weighting=group_weighting,
                  ignore_index=ignore_index, beta=beta, ref_logits=ref)

    loss, grad, metrics = _loss_with_grads(current, old, targets, **kwargs)

    assert loss.item() == 0.0, f"loss {loss.item()}"
    assert grad is not None and grad.dtype == dtype
    assert torch.isfinite(grad).all() and torch.count_nonzero(grad) == 0
    assert all(value.item() == 0.0 for value in metrics.values()), metrics
    some_valid = targets.clone()
    some_valid.view(-1)[0] = 0
    _, reference_metrics = grpo_rm_loss(current.float(), old.float(), some_valid, **kwargs)
    assert set(metrics) == set(reference_metrics)


@_settings(max_examples=60)
@given(
    dtype=st.sampled_from(DTYPES),
    num_classes=st.integers(2, 300),
    spatial=st.booleans(),
    n=st.integers(1, 3),
    hw=st.integers(1, 3),
    reward=st.sampled_from(REWARD_PRESETS),
    scale_rewards=st.sampled_from(SCALE_REWARDS),
    group_weighting=st.sampled_from(GROUP_WEIGHTINGS),
    beta=st.sampled_from([0.0, 0.2]),
    ignore_index=st.sampled_from([-100, 255]),
    seed=st.integers(0, 2**31 - 1),
)
def test_ignored_queries_neither_change_the_loss_nor_receive_gradient(
    dtype, num_classes, spatial, n, hw, reward, scale_rewards, group_weighting, beta, ignore_index, seed
):
    """The loss on a batch with ignored pixels equals the loss on the valid queries alone.

    The valid queries are taken out by hand ([N, C, H, W] -> [N*H*W, C] with classes last), so
    this also checks that spatial logits are flattened query by query, and that ``batch`` scaling
    takes its std over valid queries only. Ignored queries get an exactly zero gradient; valid
    ones get the gradient of the valid-only loss.
    """
    gen = torch.Generator().manual_seed(seed)
    shape, target_shape, _ = _query_shape(spatial, n, hw, hw, num_classes)
    current = (torch.randn(shape, generator=gen) * 3).to(dtype)
    old = (current.float() + torch.randn(shape, generator=gen)).to(dtype)
    ref = (torch.randn(shape, generator=gen) * 3).to(dtype) if beta > 0 else None
    targets = _targets(gen, target_shape, num_classes, ignore_index, "some")
    valid = targets.reshape(-1) != ignore_index
    assume(bool(valid.any()) and not bool(valid.all()))
    kwargs = dict(reward=reward, scale_rewards=scale_rewards, group_weighting=group_weighting,
                  ignore_index=ignore_index, beta=beta)

    loss, grad, _ = _loss_with_grads(current, old, targets, ref_logits=ref, **kwargs)

    def rows(x):
        return None if x is None else x.movedim(1, -1).reshape(-1, num_classes)[valid]

    sub_loss, sub_grad, _ = _loss_with_grads(rows(current), rows(old), targets.reshape(-1)[valid],
                                             ref_logits=rows(ref), **kwargs)
    torch.testing.assert_close(loss, sub_loss)
    flat_grad = grad.movedim(1, -1).reshape(-1, num_classes)
    assert torch.count_nonzero(flat_grad[~valid]) == 0
    torch.testing.assert_close(flat_grad[valid], sub_grad)


# ----------------------------------------------------------------------------- shift invariance

# (grid step, largest |logit| and largest |shift|) per input dtype, chosen so that every
# logit, every shifted logit and every drifted logit is exactly representable in that dtype:
# float32 holds multiples of 1/64 up to 2^18 exactly, bfloat16 integers up to 256, float16
# multiples of 1/8 up to 256.
SHIFT_GRID = {torch.float32: (1 / 64, 10_000), torch.bfloat16: (1.0, 64), torch.float16: (1 / 8, 120)}


def _grid(gen: torch.Generator, shape, step: float, bound: float) -> torch.Tensor:
    k = int(bound / step)
    return torch.randint(-k, k + 1, shape, generator=gen, dtype=torch.float64) * step


@_settings(max_examples=100)
@given(
    dtype=st.sampled_from(DTYPES),
    num_classes=st.integers(2, 1000),
    spatial=st.booleans(),
    n=st.integers(1, 3),
    hw=st.integers(1, 3),
    reward=st.sampled_from(REWARD_PRESETS),
    scale_rewards=st.sampled_from(SCALE_REWARDS),
    uniformity_weight=st.floats(0.0, 2.0),
    epsilon=st.floats(0.05, 0.5),
    epsilon_high=st.one_of(st.none(), st.floats(0.05, 2.0)),
    group_weighting=st.sampled_from(GROUP_WEIGHTINGS),
    beta=st.sampled_from([0.0, 0.3]),
    ignored=st.sampled_from(["none", "some"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_loss_and_grads_are_invariant_to_a_per_query_constant_added_to_current_old_and_ref_logits(
    dtype, num_classes, spatial, n, hw, reward, scale_rewards, uniformity_weight, epsilon, epsilon_high,
    group_weighting, beta, ignored, seed
):
    """softmax(z + c) = softmax(z): adding c_q to query q's logits changes nothing.

    Current, old and ref logits each get their own constant per query (one per pixel for
    [N, C, H, W]), so an implementation that used raw logits anywhere (a ratio of
    exp(z - z_old), rewards from logits, a KL on logits) would fail. All values lie on a grid
    that the input dtype holds exactly (SHIFT_GRID), so the shift itself adds no rounding and
    the only differences left are float32 re-association inside the loss (then a cast back to
    the input dtype for the gradient); torch.testing.assert_close's per-dtype default
    tolerances (float32 for the loss, the input dtype for the gradient) cover exactly that.
    """
    gen = torch.Generator().manual_seed(seed)
    step, bound = SHIFT_GRID[dtype]
    shape, target_shape, per_query = _query_shape(spatial, n, hw, hw, num_classes)
    current = _grid(gen, shape, step, bound)
    # Old policy within 2 logits of the current one: ratios within e^+-4 keep gradients in fp16 range.
    old = current + _grid(gen, shape, step, 2.0)
    ref = _grid(gen, shape, step, bound)
    shifts = [_grid(gen, per_query, step, bound) for _ in range(3)]
    targets = _targets(gen, target_shape, num_classes, -100, ignored)
    kwargs = dict(epsilon=epsilon, epsilon_high=epsilon_high, reward=reward, uniformity_weight=uniformity_weight,
                  scale_rewards=scale_rewards, group_weighting=group_weighting, beta=beta)

    def in_dtype(x):
        y = x.to(dtype)
        assert torch.equal(y.double(), x), "test construction: value not exact in the input dtype"
        return y

    base_loss, base_grad, _ = _loss_with_grads(in_dtype(current), in_dtype(old), targets,
                                               ref_logits=in_dtype(ref), **kwargs)
    loss, grad, _ = _loss_with_grads(in_dtype(current + shifts[0]), in_dtype(old + shifts[1]), targets,
                                     ref_logits=in_dtype(ref + shifts[2]), **kwargs)

    assert torch.isfinite(base_loss) and torch.isfinite(base_grad).all()
    torch.testing.assert_close(loss, base_loss)
    torch.testing.assert_close(grad, base_grad)


@_settings(max_examples=60)
@given(
    dtype=st.sampled_from(DTYPES),
    num_classes=st.integers(2, 1000),
    spatial=st.booleans(),
    n=st.integers(1, 3),
    hw=st.integers(1, 3),
    scale=st.sampled_from([1.0, 10.0, 1e4]),
    reward=st.sampled_from(REWARD_PRESETS),
    scale_rewards=st.sampled_from(SCALE_REWARDS),
    group_weighting=st.sampled_from(GROUP_WEIGHTINGS),
    beta=st.floats(0.01, 2.0),
    ignored=st.sampled_from(["none", "some"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_kl_term_adds_beta_times_the_mean_kl_which_is_nonnegative_and_zero_for_ref_equal_to_current(
    dtype, num_classes, spatial, n, hw, scale, reward, scale_rewards, group_weighting, beta, ignored, seed
):
    """loss(beta) - loss(0) = beta * KL, KL = mean over valid queries of KL(pi || pi_ref) >= 0.

    The KL metric is checked against a float64 computation from the same (dtype) inputs, so a
    reversed KL, a KL on raw logits or a wrong sign on the term fails; KL is 0 when ref = current.
    """
    gen = torch.Generator().manual_seed(seed)
    shape, target_shape, _ = _query_shape(spatial, n, hw, hw, num_classes)
    current = ((torch.rand(shape, generator=gen) * 2 - 1) * scale).to(dtype)
    old = (current.float() + torch.rand(shape, generator=gen) * 2 - 1).to(dtype)
    ref = ((torch.rand(shape, generator=gen) * 2 - 1) * scale).to(dtype)
    targets = _targets(gen, target_shape, num_classes, -100, ignored)
    valid = targets.reshape(-1) != -100
    assume(bool(valid.any()))
    kwargs = dict(reward=reward, scale_rewards=scale_rewards, group_weighting=group_weighting)

    without, _ = grpo_rm_loss(current, old, targets, **kwargs)
    with_kl, metrics = grpo_rm_loss(current, old, targets, beta=beta, ref_logits=ref, **kwargs)

    def logp64(x):
        return torch.log_softmax(x.movedim(1, -1).reshape(-1, num_classes)[valid].double(), dim=-1)

    expected_kl = (logp64(current).exp() * (logp64(current) - logp64(ref))).sum(dim=-1).mean().item()
    kl = metrics["kl"].item()
    assert kl >= 0.0
    assert kl == pytest.approx(expected_kl, rel=1e-4, abs=1e-5)
    assert (with_kl - without).item() == pytest.approx(beta * kl, rel=1e-4, abs=1e-5 * (1 + abs(without.item())))
    _, same_metrics = grpo_rm_loss(current, old, targets, beta=beta, ref_logits=current.clone(), **kwargs)
    assert same_metrics["kl"].item() == 0.0


# ----------------------------------------------------------------------------- clipping
#
# Per class, the surrogate term is t(rho) = min(rho * A, clip(rho, 1 - eps, 1 + eps_high) * A)
# (eps_high = eps unless epsilon_high is given).
#   A > 0: t = A * min(rho, 1 + eps_high). For rho > 1 + eps_high it is the constant (1 + eps_high) * A.
#   A < 0: t = A * max(rho, 1 - eps). For rho < 1 - eps it is the constant (1 - eps) * A.
# Those are the terms "clipped on the binding side": on an open set around such a rho the term
# does not depend on rho at all, so it contributes nothing to d loss / d logits. Every other
# term (rho inside the range, or outside it on the non-binding side, where min picks the
# unclipped product) equals rho * A. A query's terms are summed with weights w_i, 1/C
# (group_weighting uniform) or pi_old_i (old_policy), which do not depend on the current logits.
# With pi = softmax(z), rho_i = pi_i / pi_old_i and d rho_i / d z_j = rho_i (delta_ij - pi_j), so for Q queries
#   d loss / d z_j = -(1 / Q) * (act_j w_j A_j rho_j - pi_j * sum_i act_i w_i A_i rho_i)
# where act_i is 0 for binding-clipped terms and 1 otherwise. The tests below check that
# formula against autograd, and its finite counterpart: moving probability between
# binding-clipped classes, keeping each on its binding side and every other class's
# probability fixed, leaves the loss unchanged.


def _advantages(old_logits: torch.Tensor, targets, reward, uniformity_weight, scale_rewards) -> torch.Tensor:
    old_logprobs = torch.log_softmax(old_logits.double(), dim=-1)
    rewards = compute_rewards(old_logprobs.exp(), targets, reward, uniformity_weight, old_logprobs=old_logprobs)
    return group_advantages(rewards, scale_rewards)


def _upper(epsilon: float, epsilon_high) -> float:
    return epsilon if epsilon_high is None else epsilon_high


def _binding(log_ratio: torch.Tensor, advantages: torch.Tensor, epsilon: float, epsilon_high):
    high = (advantages > 0) & (log_ratio > math.log1p(_upper(epsilon, epsilon_high)))
    low = (advantages < 0) & (log_ratio < math.log1p(-epsilon))
    return high, low


def _analytic_loss_and_grad(logits, old_logits, targets, *, epsilon, epsilon_high=None, reward, uniformity_weight,
                            scale_rewards, group_weighting="uniform"):
    """float64 loss and d loss / d logits of [Q, C] inputs, with binding-clipped terms as constants."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    old_logp = torch.log_softmax(old_logits.double(), dim=-1)
    log_ratio = logp - old_logp
    advantages = _advantages(old_logits, targets, reward, uniformity_weight, scale_rewards)
    high, low = _binding(log_ratio, advantages, epsilon, epsilon_high)
    active = ~(high | low)
    # Only active terms need rho; zeroing the others' log ratio keeps an overflowing rho out.
    active_terms = torch.where(active, log_ratio, 0.0).exp() * advantages * active
    upper = _upper(epsilon, epsilon_high)
    terms = active_terms + high * (1 + upper) * advantages + low * (1 - epsilon) * advantages
    q, c = logits.shape
    weights = torch.full_like(logp, 1 / c) if group_weighting == "uniform" else old_logp.exp()
    loss = -(weights * terms).sum(dim=-1).mean()
    weighted = weights * active_terms
    grad = -(weighted - logp.exp() * weighted.sum(dim=-1, keepdim=True)) / q
    return loss, grad, advantages, log_ratio, high | low


@st.composite
def clip_cases(draw):
    return dict(
        num_queries=draw(st.integers(1, 3)),
        num_classes=draw(st.integers(4, 64)),
        epsilon=draw(st.floats(0.05, 0.4)),
        epsilon_high=draw(st.one_of(st.none(), st.floats(0.05, 1.0))),
        reward=draw(st.sampled_from(REWARD_PRESETS)),
        scale_rewards=draw(st.sampled_from(SCALE_REWARDS)),
        group_weighting=draw(st.sampled_from(GROUP_WEIGHTINGS)),
        uniformity_weight=draw(st.floats(0.0, 1.5)),
        spread=draw(st.floats(0.2, 1.5)),  # how far the current policy has moved from the old one
        target_boost=draw(st.floats(-1.0, 2.0)),  # pushes the target's ratio up (binding when A > 0)
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _clip_inputs(case):
    """float32 [Q, C] current logits (normalised log-probs), old logits and targets."""
    gen = torch.Generator().manual_seed(case["seed"])
    q, c = case["num_queries"], case["num_classes"]
    old = torch.randn(q, c, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, c, (q,), generator=gen)
    log_current = old + case["spread"] * torch.randn(q, c, generator=gen, dtype=torch.float64)
    log_current[torch.arange(q), targets] += case["target_boost"]
    return torch.log_softmax(log_current, dim=-1).float(), old.float(), targets


def _not_near_a_clip_boundary(log_ratio, advantages, epsilon, epsilon_high=None):
    """Classes whose binding status float32 and float64 could disagree on are filtered out."""
    edges = torch.tensor([math.log1p(_upper(epsilon, epsilon_high)), math.log1p(-epsilon)], dtype=torch.float64)
    return bool((log_ratio.unsqueeze(-1) - edges).abs().min() > 1e-4) and bool(advantages.abs().min() > 1e-5)


@_settings(max_examples=100)
@given(case=clip_cases())
def test_terms_clipped_on_the_binding_side_contribute_no_gradient(case):
    """Autograd equals -(1/Q)(act*w*A*rho - pi * sum(act*w*A*rho)), with act = 0 on binding-clipped terms.

    Drawn inputs contain binding-clipped terms (ratio > 1 + eps_high with A > 0, or < 1 - eps with
    A < 0), terms inside the range, and terms outside it on the non-binding side (which must
    keep their gradient). Letting binding-clipped terms through, or clipping non-binding ones,
    changes the gradient by w_i A_i rho_i (e_i - pi) / Q and fails the comparison; so does clipping
    at 1 + eps where epsilon_high asks for another upper bound, or weighting the terms otherwise.
    """
    logits, old, targets = _clip_inputs(case)
    kwargs = dict(epsilon=case["epsilon"], epsilon_high=case["epsilon_high"], reward=case["reward"],
                  uniformity_weight=case["uniformity_weight"], scale_rewards=case["scale_rewards"],
                  group_weighting=case["group_weighting"])
    expected_loss, expected_grad, advantages, log_ratio, binding = _analytic_loss_and_grad(
        logits, old, targets, **kwargs)
    assume(_not_near_a_clip_boundary(log_ratio, advantages, case["epsilon"], case["epsilon_high"]))
    assume(bool(binding.any()))

    loss, grad, metrics = _loss_with_grads(logits, old, targets, **kwargs)

    scale = expected_grad.abs().max().item()
    torch.testing.assert_close(loss.double(), expected_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-4, atol=1e-5 * scale)
    assert metrics["clip_ratio/region_mean"].item() == pytest.approx(binding.double().mean().item())


@_settings(max_examples=100)
@given(case=clip_cases(), fraction=st.floats(0.1, 0.9), move_to_target=st.booleans())
def test_moving_probability_between_binding_clipped_classes_leaves_the_loss_unchanged(
    case, fraction, move_to_target
):
    """A finite perturbation of the current logits that only changes binding-clipped terms.

    In query 0, probability delta moves from a binding-clipped class k to another binding-clipped
    class l; every other class keeps its probability, so every other ratio (and every
    advantage and weight, which only depend on the old policy) is unchanged. delta is small enough
    that k and l stay on their binding side (a falling ratio stays < 1 - eps when A < 0 and must
    stay > 1 + eps_high when A > 0; a rising one the reverse), so by the case analysis above both
    terms are the same constants before and after, and the loss must not move. With
    move_to_target, l is the target when its term is binding (A > 0, ratio > 1 + eps_high), so
    both clip sides are exercised. Control: with clipping effectively off (huge eps) the same
    perturbation must change the loss by exactly -(1/Q) sum_i w_i A_i (rho'_i - rho_i).
    """
    logits, old, targets = _clip_inputs(case)
    eps, eps_high = case["epsilon"], case["epsilon_high"]
    upper = _upper(eps, eps_high)
    kwargs = dict(reward=case["reward"], uniformity_weight=case["uniformity_weight"],
                  scale_rewards=case["scale_rewards"], group_weighting=case["group_weighting"])
    _, _, advantages, log_ratio, _ = _analytic_loss_and_grad(logits, old, targets, epsilon=eps,
                                                             epsilon_high=eps_high, **kwargs)
    assume(_not_near_a_clip_boundary(log_ratio, advantages, eps, eps_high))
    margin = 0.02
    probs = torch.softmax(logits[0].double(), dim=-1)
    old_probs = torch.softmax(old[0].double(), dim=-1)
    ratio, adv = probs / old_probs, advantages[0]
    high = (adv > 0) & (ratio > (1 + upper) * (1 + margin))
    low = (adv < 0) & (ratio < (1 - eps) * (1 - margin))
    # How much each binding-clipped class can give away / take in and stay on its binding side.
    can_give = torch.where(high, probs - (1 + upper) * (1 + margin) * old_probs, torch.where(low, probs, 0.0))
    can_take = torch.where(low, (1 - eps) * (1 - margin) * old_probs - probs, torch.where(high, math.inf, 0.0))
    target = int(targets[0])
    if move_to_target and bool(high[target]):
        receiver = target
    else:
        receiver = int(torch.where(low, can_take, -1.0).argmax())
    giver = int(torch.where(torch.arange(len(probs)) == receiver, -1.0, can_give).argmax())
    assume(bool(high[receiver] | low[receiver]) and bool(high[giver] | low[giver]) and giver != receiver)
    delta = fraction * min(can_give[giver].item(), can_take[receiver].item())
    moved = probs.clone()
    moved[giver] -= delta
    moved[receiver] += delta
    perturbed = logits.clone()
    perturbed[0] = moved.log().float()

    base, _ = grpo_rm_loss(logits, old, targets, epsilon=eps, epsilon_high=eps_high, **kwargs)
    after, metrics = grpo_rm_loss(perturbed, old, targets, epsilon=eps, epsilon_high=eps_high, **kwargs)
    assert metrics["clip_ratio/region_mean"].item() > 0
    torch.testing.assert_close(after, base, rtol=1e-5, atol=1e-6)

    wide = 2 * max(ratio.max().item(), (moved / old_probs).max().item()) + 1
    base_wide, _ = grpo_rm_loss(logits, old, targets, epsilon=wide, **kwargs)
    after_wide, _ = grpo_rm_loss(perturbed, old, targets, epsilon=wide, **kwargs)
    new_ratio = torch.softmax(perturbed[0].double(), dim=-1) / old_probs
    weights = 1 / logits.shape[1] if case["group_weighting"] == "uniform" else old_probs
    expected_change = -(weights * adv * (new_ratio - ratio)).sum().item() / logits.shape[0]
    assert (after_wide - base_wide).item() == pytest.approx(expected_change, rel=1e-3, abs=1e-6)


@_settings(max_examples=60)
@given(
    dtype=st.sampled_from(DTYPES),
    num_queries=st.integers(1, 3),
    num_classes=st.integers(2, 200),
    old_target_logit=st.floats(-1e4, -120.0),
    epsilon=st.floats(0.05, 0.4),
    epsilon_high=st.one_of(st.none(), st.floats(0.05, 5.0)),
    reward=st.sampled_from(REWARD_PRESETS),
    scale_rewards=st.sampled_from(SCALE_REWARDS),
    group_weighting=st.sampled_from(GROUP_WEIGHTINGS),
    uniformity_weight=st.floats(0.0, 1.5),
    seed=st.integers(0, 2**31 - 1),
)
def test_binding_clipped_terms_stay_finite_and_gradient_free_when_the_ratio_overflows(
    dtype, num_queries, num_classes, old_target_logit, epsilon, epsilon_high, reward, scale_rewards, group_weighting,
    uniformity_weight, seed
):
    """The old model gave the target ~exp(-120..-1e4); the current one gives it O(1/C).

    The target's ratio (>= e^90) overflows float32, but its advantage is positive (reward 1
    against rewards <= 0), so its term is the constant (1 + eps_high) * A: the loss and gradient are
    finite and equal the float64 formula in which that term has no gradient. A zero-advantage
    group (constant rewards) with the same overflowing ratio must give loss 0 and zero gradient.
    """
    gen = torch.Generator().manual_seed(seed)
    old = torch.randn(num_queries, num_classes, generator=gen)
    targets = torch.randint(0, num_classes, (num_queries,), generator=gen)
    old[torch.arange(num_queries), targets] = old_target_logit
    logits = torch.randn(num_queries, num_classes, generator=gen)
    logits, old = logits.to(dtype), old.to(dtype)
    kwargs = dict(epsilon=epsilon, epsilon_high=epsilon_high, reward=reward, uniformity_weight=uniformity_weight,
                  scale_rewards=scale_rewards, group_weighting=group_weighting)
    expected_loss, expected_grad, advantages, log_ratio, binding = _analytic_loss_and_grad(
        logits, old, targets, **kwargs)
    assert bool(binding[torch.arange(num_queries), targets].all()) and bool((log_ratio.max(dim=-1).values > 90).all())
    assume(_not_near_a_clip_boundary(log_ratio, advantages, epsilon, epsilon_high))

    loss, grad, metrics = _loss_with_grads(logits, old, targets, **kwargs)

    assert torch.isfinite(loss) and torch.isfinite(grad).all(), (loss, grad)
    assert all(torch.isfinite(value) for value in metrics.values()), metrics
    torch.testing.assert_close(loss.double(), expected_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), expected_grad.to(dtype).double(),
                               **({} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-5}))

    zero_loss, zero_grad, _ = _loss_with_grads(logits, old, targets, epsilon=epsilon, epsilon_high=epsilon_high,
                                               group_weighting=group_weighting,
                                               reward=lambda probs, labels: torch.zeros_like(probs))
    assert zero_loss.item() == 0.0 and torch.isfinite(zero_grad).all() and torch.count_nonzero(zero_grad) == 0
