import torch

from grpo_rm.backbones import load_encoder
from grpo_rm.config import DataArguments
from grpo_rm.data import EvalTransform, load_classification_splits
from grpo_rm.features import FeatureExtractor
from grpo_rm.heads import image_features


def test_features_match_the_encoder_and_are_cached(tmp_path, tiny_dinov2, imagefolder, monkeypatch):
    data = DataArguments(dataset_name=imagefolder)
    splits = load_classification_splits(data)
    extractor = FeatureExtractor(tiny_dinov2, "cls+mean", cache_dir=tmp_path)
    first = extractor(splits, "test", data)
    assert first.features.shape == (18, 32) and first.labels.tolist() == splits.test["label"]
    # Independent computation of one row.
    encoder = load_encoder(tiny_dinov2).eval()
    from grpo_rm.data.loading import decode_image

    pixels = EvalTransform(extractor.preprocessing)(decode_image(splits.test[3]["image"], "row 3"))
    with torch.no_grad():
        expected = image_features(encoder(pixels[None]), "cls+mean")[0]
    torch.testing.assert_close(first.features[3], expected, rtol=1e-4, atol=1e-5)

    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    monkeypatch.setattr(extractor, "encoder", None)  # a cache hit must not touch the model
    torch.testing.assert_close(extractor(splits, "test", data).features, first.features)


def test_cache_key_changes_with_what_changes_the_numbers(tmp_path, tiny_dinov2, imagefolder):
    data = DataArguments(dataset_name=imagefolder)
    base = FeatureExtractor(tiny_dinov2, "cls", cache_dir=tmp_path)
    keys = {
        base._cache_file(data, "test"),
        base._cache_file(data, "train"),
        base._cache_file(DataArguments(dataset_name=imagefolder, max_eval_samples=5), "test"),
        FeatureExtractor(tiny_dinov2, "cls+mean", cache_dir=tmp_path)._cache_file(data, "test"),
        FeatureExtractor(tiny_dinov2, "cls", image_size=20, cache_dir=tmp_path)._cache_file(data, "test"),
    }
    assert len(keys) == 5
    augmented = DataArguments(dataset_name=imagefolder, hflip_prob=0.0)
    assert base._cache_file(augmented, "test") == base._cache_file(data, "test")
