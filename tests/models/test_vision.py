import json

import pytest
import torch
from transformers import AutoModel

from grpo_rm.models import VisionEncoder, load_encoder
from grpo_rm.processing import ImageProcessing as Preprocessing


@pytest.mark.parametrize("fixture", ["tiny_dinov2", "tiny_dinov2_registers", "tiny_vit"])
def test_class_and_patch_tokens(fixture, request):
    path = request.getfixturevalue(fixture)
    encoder = load_encoder(path)
    pixels = torch.randn(2, 3, 16, 24)
    output = encoder(pixels)
    hidden = AutoModel.from_pretrained(path)(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
    registers = getattr(encoder.config, "num_register_tokens", 0)
    assert output.grid_size == (4, 6)
    assert output.tokens.shape == (2, 24, 16)
    torch.testing.assert_close(output.cls_token, hidden[:, 0])
    # Registers sit between the class token and the patches and must never be patch tokens.
    torch.testing.assert_close(output.tokens, hidden[:, 1 + registers:])


def test_register_tokens_are_excluded(tiny_dinov2_registers):
    encoder = load_encoder(tiny_dinov2_registers)
    assert encoder.config.num_register_tokens == 4
    pixels = torch.randn(1, 3, 16, 16)
    hidden = encoder.model(pixel_values=pixels).last_hidden_state
    assert hidden.shape[1] == 1 + 4 + 16
    output = encoder(pixels)
    registers = hidden[:, 1:5]
    for register in registers[0]:
        assert not any(torch.allclose(register, patch) for patch in output.tokens[0])


def test_image_size_not_multiple_of_patch_names_nearest(tiny_dinov2):
    encoder = load_encoder(tiny_dinov2)
    with pytest.raises(ValueError, match=r"image_size 30 is not a multiple of the patch size 4.*\[28, 32\]"):
        encoder.check_image_size(30)
    with pytest.raises(ValueError, match="nearest valid sizes"):
        encoder(torch.randn(1, 3, 18, 16))


def test_preprocessing_from_checkpoint_and_defaults(tmp_path, tiny_vit, tiny_dinov2):
    dinov2_processor = {"crop_size": {"height": 224, "width": 224}, "do_center_crop": True,
                        "size": {"shortest_edge": 256}, "image_mean": [0.1, 0.2, 0.3], "image_std": [1, 2, 3]}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(dinov2_processor))
    p = Preprocessing.from_pretrained(str(tmp_path), default_size=518)
    assert (p.image_size, p.resize_size, p.image_mean) == (224, 256, (0.1, 0.2, 0.3))
    assert p.with_image_size(112).resize_size == 128

    defaults = Preprocessing.from_pretrained(tiny_vit, default_size=16)
    assert (defaults.image_size, defaults.crop_pct) == (16, 1.0)
    assert defaults.image_mean == (0.485, 0.456, 0.406)

    saved = Preprocessing.from_pretrained(tiny_dinov2, default_size=99)
    assert (saved.image_size, saved.image_mean) == (16, (0.5, 0.5, 0.5))


def test_train_last_n_blocks_and_freeze(tiny_dinov2):
    encoder = load_encoder(tiny_dinov2)
    encoder.set_trainable(freeze_backbone=False, train_last_n_blocks=1)
    trainable = {name for name, p in encoder.model.named_parameters() if p.requires_grad}
    assert any(name.startswith("encoder.layer.1.") for name in trainable)
    assert not any(name.startswith(("encoder.layer.0.", "embeddings.")) for name in trainable)
    assert any(name.startswith("layernorm") for name in trainable)
    encoder.set_trainable(freeze_backbone=True, train_last_n_blocks=None)
    assert not any(p.requires_grad for p in encoder.parameters())
    with pytest.raises(ValueError, match="train_last_n_blocks=5"):
        load_encoder(tiny_dinov2).set_trainable(False, 5)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_encoder(str(tmp_path))


def test_integer_sizes_of_older_processor_configs(tmp_path):
    # ViT/DeiT checkpoints store plain integers: resize 256 (square), crop 224.
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": 256, "crop_size": 224, "do_center_crop": True}))
    p = Preprocessing.from_pretrained(str(tmp_path), default_size=384)
    assert (p.image_size, p.resize_size) == (224, 256)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": 224}))
    assert Preprocessing.from_pretrained(str(tmp_path), default_size=384).image_size == 224


@pytest.mark.parametrize("fixture", ["tiny_dinov2", "tiny_dinov2_registers", "tiny_vit"])
@pytest.mark.parametrize("train_last_n_blocks", [None, 2, 1, 0])
def test_prefix_then_tail_is_the_transformers_forward(fixture, train_last_n_blocks, request):
    """Bitwise, also the earlier layers a multi-layer head reads (3: the embeddings' output, both blocks')."""
    encoder = load_encoder(request.getfixturevalue(fixture))
    encoder.set_trainable(freeze_backbone=False, train_last_n_blocks=train_last_n_blocks)
    pixels = torch.randn(2, 3, 16, 24)
    reference = encoder.model(pixel_values=pixels, interpolate_pos_encoding=True, output_hidden_states=True)
    first_patch = 1 + getattr(encoder.config, "num_register_tokens", 0)
    state = encoder.prefix(pixels, num_layers=3)
    frozen = 2 - train_last_n_blocks if train_last_n_blocks is not None else None
    assert encoder.frozen_blocks() == frozen and state.next_block == (frozen or 0)
    assert state.hidden_states[-1].requires_grad == (frozen is None)  # a frozen prefix runs without autograd
    for output in (encoder.tail(state, num_layers=3), encoder(pixels, num_layers=3)):
        assert torch.equal(output.cls_token, reference.last_hidden_state[:, 0])
        assert torch.equal(output.tokens, reference.last_hidden_state[:, first_patch:])
        *earlier, last = output.layer_tokens
        for tokens, hidden in zip(earlier, reference.hidden_states[:2], strict=True):
            assert torch.equal(tokens, encoder.model.layernorm(hidden)[:, first_patch:])
        assert torch.equal(last, output.tokens)
        assert output.grid_size == (4, 6) and output.input_size == (16, 24)


def test_an_architecture_that_cannot_split_runs_whole_and_says_so(tiny_dinov2, monkeypatch, caplog):
    monkeypatch.setattr(VisionEncoder, "splittable_model_types", frozenset())
    encoder = load_encoder(tiny_dinov2)
    with caplog.at_level("INFO", logger="grpo_rm.models.encoders"):
        encoder.set_trainable(freeze_backbone=False, train_last_n_blocks=1)
    assert "cannot run its first blocks apart" in caplog.text
    assert encoder.frozen_blocks() is None
    pixels = torch.randn(2, 3, 16, 16)
    reference = encoder.model(pixel_values=pixels, output_hidden_states=True)
    output = encoder(pixels, num_layers=2)
    assert torch.equal(output.tokens, reference.last_hidden_state[:, 1:])
    assert torch.equal(output.layer_tokens[0], encoder.model.layernorm(reference.hidden_states[-2])[:, 1:])
