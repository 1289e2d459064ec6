import pytest
import torch

from grpo_rm.backbones import EncoderOutput
from grpo_rm.heads import ClassificationHead, image_features


def output():
    torch.manual_seed(0)
    return EncoderOutput(cls_token=torch.randn(2, 8), patch_tokens=torch.randn(2, 6, 8), grid_size=(2, 3))


def test_features_cls_and_cls_plus_mean():
    out = output()
    torch.testing.assert_close(image_features(out, "cls"), out.cls_token)
    both = image_features(out, "cls+mean")
    torch.testing.assert_close(both[:, :8], out.cls_token)
    torch.testing.assert_close(both[:, 8:], out.patch_tokens.sum(dim=1) / 6)


@pytest.mark.parametrize("head_type", ["linear", "mlp"])
@pytest.mark.parametrize("head_input", ["cls", "cls+mean"])
def test_head_shapes(head_type, head_input):
    head = ClassificationHead(8, 5, head_type, head_input, mlp_hidden_dim=12)
    assert head(output()).shape == (2, 5)
    assert head.settings()["head_type"] == head_type


def test_unknown_head_type():
    with pytest.raises(ValueError, match="head_type='conv'"):
        ClassificationHead(8, 5, "conv")
