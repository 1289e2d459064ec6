import json

import pytest
import torch
from transformers import AutoModel

from grpo_rm.config import ModelArguments
from grpo_rm.models import EncoderWithHead
from grpo_rm.tasks import build_model


def test_save_and_load_round_trip(tmp_path, tiny_dinov2):
    model = build_model(ModelArguments(model_name_or_path=tiny_dinov2, head_type="mlp", pooling="cls+mean"),
                             ["a", "b", "c"])
    model.save_pretrained(tmp_path / "run")
    loaded = EncoderWithHead.from_pretrained(tmp_path / "run")
    pixels = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(loaded.eval()(pixel_values=pixels), model.eval()(pixel_values=pixels))
    assert loaded.class_names == ["a", "b", "c"]
    assert loaded.processor == model.processor
    # The directory is also a plain transformers encoder checkpoint.
    encoder = AutoModel.from_pretrained(tmp_path / "run")
    assert encoder.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert not (tmp_path / "run" / ".saving").exists()


def test_saved_head_is_reused_only_when_it_fits(tmp_path, tiny_dinov2):
    model = build_model(ModelArguments(model_name_or_path=tiny_dinov2), ["a", "b"])
    with torch.no_grad():
        model.head.layers.weight.fill_(0.25)
    model.save_pretrained(tmp_path)
    again = build_model(ModelArguments(model_name_or_path=str(tmp_path)), ["a", "b"])
    torch.testing.assert_close(again.head.layers.weight, model.head.layers.weight)
    with pytest.raises(ValueError, match=r"class_names: checkpoint \['a', 'b'\], requested \['a', 'b', 'c'\].*ignore_mismatched_sizes"):
        build_model(ModelArguments(model_name_or_path=str(tmp_path)), ["a", "b", "c"])
    fresh = build_model(ModelArguments(model_name_or_path=str(tmp_path), ignore_mismatched_sizes=True), ["x", "y", "z"])
    assert fresh.head.num_labels == 3


def test_encoder_checkpoint_is_not_a_classifier(tiny_dinov2):
    with pytest.raises(FileNotFoundError, match="encoder checkpoint, not a grpo-rm model"):
        EncoderWithHead.from_pretrained(tiny_dinov2)


def test_head_for_another_encoder_is_rejected(tmp_path, tiny_dinov2):
    model = build_model(ModelArguments(model_name_or_path=tiny_dinov2), ["a", "b"])
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "head_config.json").read_text())
    config["hidden_size"] = 32
    (tmp_path / "head_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="encoder of width 32"):
        EncoderWithHead.from_pretrained(tmp_path)


def test_bad_image_size(tiny_dinov2):
    with pytest.raises(ValueError, match=r"image_size 18 .*\[16, 20\]"):
        build_model(ModelArguments(model_name_or_path=tiny_dinov2, image_size=18), ["a", "b"])


def test_checkpoint_saved_in_bfloat16_trains_in_float32(tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    from tests.conftest import TINY

    Dinov2Model(Dinov2Config(**TINY)).to(torch.bfloat16).save_pretrained(tmp_path)
    model = build_model(ModelArguments(model_name_or_path=str(tmp_path)), ["a", "b"])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model(pixel_values=torch.randn(1, 3, 16, 16)).dtype == torch.float32
