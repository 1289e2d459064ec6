"""Weight interpolation (WiSE-FT): exact ends, the mean in the middle, integer buffers, refused inputs."""

import pytest
import torch

from grpo_rm.models import interpolate_state_dicts


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit: -0.0 differs from +0.0 here, unlike under ``torch.equal``."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.reshape(-1).view(torch.uint8),
                                                                      b.reshape(-1).view(torch.uint8))


@pytest.fixture
def two_state_dicts():
    generator = torch.Generator().manual_seed(0)
    pretrained = {"weight": torch.randn(4, 3, generator=generator),
                  "signed_zero_and_inf": torch.tensor([-0.0, 0.0, float("inf"), 1.0]),
                  "half": torch.randn(5, generator=generator).half(),
                  "position_ids": torch.arange(6)}
    fine_tuned = {"weight": torch.randn(4, 3, generator=generator),
                  "signed_zero_and_inf": torch.tensor([0.0, -0.0, 2.0, float("-inf")]),
                  "half": torch.randn(5, generator=generator).half(),
                  "position_ids": torch.arange(6).flip(0)}
    return pretrained, fine_tuned


def test_the_ends_are_the_inputs_bit_for_bit(two_state_dicts):
    pretrained, fine_tuned = two_state_dicts
    originals = {name: tensor.clone() for name, tensor in {**pretrained, **fine_tuned}.items()}
    at_zero = interpolate_state_dicts(pretrained, fine_tuned, 0.0)
    at_one = interpolate_state_dicts(pretrained, fine_tuned, 1)
    for name in ("weight", "signed_zero_and_inf", "half"):
        assert same_bits(at_zero[name], pretrained[name]), name
        assert same_bits(at_one[name], fine_tuned[name]), name
        assert at_zero[name].data_ptr() != pretrained[name].data_ptr()  # new tensors: the inputs stay as they were
    # An integer buffer is not mixed: it is the fine-tuned model's at every alpha.
    assert same_bits(at_zero["position_ids"], fine_tuned["position_ids"])
    assert all(same_bits(originals[name], tensor) for name, tensor in {**pretrained, **fine_tuned}.items())


def test_the_middle_is_the_mean_in_each_dtype(two_state_dicts):
    pretrained, fine_tuned = two_state_dicts
    halfway = interpolate_state_dicts(pretrained, fine_tuned, 0.5)
    for name in ("weight", "signed_zero_and_inf", "half"):
        mean = ((pretrained[name].double() + fine_tuned[name].double()) / 2).to(fine_tuned[name].dtype)
        assert same_bits(halfway[name], mean), name
    assert same_bits(halfway["position_ids"], fine_tuned["position_ids"])
    quarter = interpolate_state_dicts(pretrained, fine_tuned, 0.25)["weight"]
    torch.testing.assert_close(quarter, 0.75 * pretrained["weight"] + 0.25 * fine_tuned["weight"])


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alphas_outside_the_unit_interval_are_refused(two_state_dicts, alpha):
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        interpolate_state_dicts(*two_state_dicts, alpha)


def test_other_architectures_are_refused_naming_both_sources(two_state_dicts):
    pretrained, fine_tuned = two_state_dicts
    with pytest.raises(ValueError, match=r"runs/base and runs/tuned are not the same architecture \(only in "
                                         r"runs/tuned: extra; other shapes: weight: \(4, 3\) vs \(3, 4\)\)"):
        interpolate_state_dicts(pretrained, {**fine_tuned, "weight": fine_tuned["weight"].T, "extra": torch.ones(1)},
                                0.5, "runs/base", "runs/tuned")
