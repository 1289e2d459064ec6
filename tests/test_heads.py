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


def test_segmentation_head_projecting_before_upsampling_equals_after_in_eval():
    from grpo_rm.heads import SegmentationHead

    torch.manual_seed(0)
    head = SegmentationHead(8, 5, num_layers=2, batchnorm=True)
    head.norm.running_mean.uniform_(-1, 1)
    head.norm.running_var.uniform_(0.5, 2)
    head.eval()
    layers = [torch.randn(2, 6, 8), torch.randn(2, 6, 8)]
    out = EncoderOutput(torch.randn(2, 8), layers[1], (2, 3), layers)
    logits = head(out, size=(8, 12))
    assert logits.shape == (2, 5, 8, 12)
    grid = torch.cat(layers, -1).transpose(1, 2).reshape(2, 16, 2, 3)
    upsampled = torch.nn.functional.interpolate(grid, size=(8, 12), mode="bilinear", align_corners=False)
    expected = head.classifier(head.norm(upsampled))
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
