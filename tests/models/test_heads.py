import pytest
import torch

from grpo_rm.models import EncoderOutput
from grpo_rm.models import pool
from grpo_rm.models.heads import ClassificationHead


def output():
    torch.manual_seed(0)
    return EncoderOutput(cls_token=torch.randn(2, 8), tokens=torch.randn(2, 6, 8), grid_size=(2, 3))


def test_features_cls_and_cls_plus_mean():
    out = output()
    torch.testing.assert_close(pool(out, "cls"), out.cls_token)
    both = pool(out, "cls+mean")
    torch.testing.assert_close(both[:, :8], out.cls_token)
    torch.testing.assert_close(both[:, 8:], out.tokens.sum(dim=1) / 6)


def test_masked_mean_and_max_ignore_padding_as_sentence_transformers_does():
    torch.manual_seed(0)
    tokens = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = EncoderOutput(cls_token=tokens[:, 0], tokens=tokens, token_mask=mask)
    # Independent: each row's real tokens only.
    torch.testing.assert_close(pool(out, "mean")[0], tokens[0, :3].mean(dim=0))
    torch.testing.assert_close(pool(out, "mean")[1], tokens[1].mean(dim=0))
    torch.testing.assert_close(pool(out, "max")[0], tokens[0, :3].max(dim=0).values)
    padded_large = tokens.clone()
    padded_large[0, 3:] = 100.0  # padding must never win the max or move the mean
    out_large = EncoderOutput(cls_token=tokens[:, 0], tokens=padded_large, token_mask=mask)
    torch.testing.assert_close(pool(out_large, "max"), pool(out, "max"))
    torch.testing.assert_close(pool(out_large, "mean"), pool(out, "mean"))


@pytest.mark.parametrize("head_type", ["linear", "mlp"])
@pytest.mark.parametrize("pooling", ["cls", "mean", "max", "cls+mean"])
def test_head_shapes(head_type, pooling):
    head = ClassificationHead(8, 5, head_type, pooling, mlp_hidden_dim=12)
    assert head(output()).shape == (2, 5)
    assert head.settings()["head_type"] == head_type


def test_unknown_head_type():
    with pytest.raises(ValueError, match="head_type='conv'"):
        ClassificationHead(8, 5, "conv")


def test_segmentation_head_projecting_before_upsampling_equals_after_in_eval():
    from grpo_rm.models.heads import SegmentationHead

    torch.manual_seed(0)
    head = SegmentationHead(8, 5, num_layers=2, batchnorm=True)
    head.norm.running_mean.uniform_(-1, 1)
    head.norm.running_var.uniform_(0.5, 2)
    head.eval()
    layers = [torch.randn(2, 6, 8), torch.randn(2, 6, 8)]
    out = EncoderOutput(torch.randn(2, 8), layers[1], grid_size=(2, 3), input_size=(8, 12), layer_tokens=layers)
    logits = head(out)
    assert logits.shape == (2, 5, 8, 12)
    grid = torch.cat(layers, -1).transpose(1, 2).reshape(2, 16, 2, 3)
    upsampled = torch.nn.functional.interpolate(grid, size=(8, 12), mode="bilinear", align_corners=False)
    expected = head.classifier(head.norm(upsampled))
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
