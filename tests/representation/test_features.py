import torch

from grpo_rm.config import DataArguments
from grpo_rm.data import EvalTransform
from grpo_rm.models import load_encoder, pool
from grpo_rm.representation.features import FeatureExtractor
from grpo_rm.tasks import labelled_data


def read(extractor, data_args):
    return labelled_data(extractor.modality, data_args, extractor.processor)


def test_features_match_the_encoder_and_are_cached(tmp_path, tiny_dinov2, imagefolder, monkeypatch):
    extractor = FeatureExtractor.from_pretrained(tiny_dinov2, "cls+mean", cache_dir=tmp_path)
    data = read(extractor, DataArguments(dataset_name=imagefolder))
    test_rows = data.loaders["test"].dataset.split
    first = extractor(data, "test")
    assert first.features.shape == (18, 32) and first.labels.tolist() == test_rows["label"]
    # Independent computation of one row.
    encoder = load_encoder(tiny_dinov2).eval()
    from grpo_rm.data.loading import decode_image

    pixels = EvalTransform(extractor.processor)(decode_image(test_rows[3]["image"], "row 3"))
    with torch.no_grad():
        expected = pool(encoder(pixels[None]), "cls+mean")[0]
    torch.testing.assert_close(first.features[3], expected, rtol=1e-4, atol=1e-5)

    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    monkeypatch.setattr(extractor, "encoder", None)  # a cache hit must not touch the model
    torch.testing.assert_close(extractor(data, "test").features, first.features)


def test_a_model_in_memory_and_its_saved_run_share_features(tmp_path, tiny_dinov2, imagefolder):
    from grpo_rm.config import ModelArguments
    from grpo_rm.tasks import build_model

    model = build_model(ModelArguments(model_name_or_path=tiny_dinov2), ["blue", "green", "red"])
    model.save_pretrained(tmp_path / "run")
    in_memory = FeatureExtractor.for_model(model, str(tmp_path / "run"), cache_dir=tmp_path / "cache")
    assert not model.encoder.training
    features = in_memory(read(in_memory, DataArguments(dataset_name=imagefolder)), "test")
    in_memory.restore_mode()
    assert model.encoder.training  # given back as it was
    reloaded = FeatureExtractor.from_pretrained(str(tmp_path / "run"), cache_dir=tmp_path / "cache")
    again = reloaded(read(reloaded, DataArguments(dataset_name=imagefolder)), "test")
    assert again.cache_file == features.cache_file  # the same weights find the same cached features
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


def test_cache_key_changes_with_what_changes_the_numbers(tmp_path, tiny_dinov2, imagefolder):
    base = FeatureExtractor.from_pretrained(tiny_dinov2, "cls", cache_dir=tmp_path)
    data = read(base, DataArguments(dataset_name=imagefolder))
    mean = FeatureExtractor.from_pretrained(tiny_dinov2, "cls+mean", cache_dir=tmp_path)
    larger = FeatureExtractor.from_pretrained(tiny_dinov2, "cls", image_size=20, cache_dir=tmp_path)
    keys = {
        base._cache_file(data, "test"),
        base._cache_file(data, "train"),
        base._cache_file(read(base, DataArguments(dataset_name=imagefolder, max_eval_samples=5)), "test"),
        mean._cache_file(data, "test"),
        larger._cache_file(read(larger, DataArguments(dataset_name=imagefolder)), "test"),
    }
    assert len(keys) == 5
    augmented = read(base, DataArguments(dataset_name=imagefolder, hflip_prob=0.0))
    assert base._cache_file(augmented, "test") == base._cache_file(data, "test")


def test_folder_regenerated_in_place_is_not_served_from_cache(tmp_path, tiny_dinov2, imagefolder):
    import shutil

    from PIL import Image

    root = tmp_path / "tree"
    shutil.copytree(imagefolder, root)
    data = DataArguments(dataset_name=str(root))
    extractor = FeatureExtractor.from_pretrained(tiny_dinov2, cache_dir=tmp_path / "cache")
    assert len(extractor(read(extractor, data), "test").labels) == 18
    for i in range(4):
        Image.new("RGB", (12, 12), (0, 0, 200)).save(root / "val" / "blue" / f"new{i}.png")
    assert len(extractor(read(extractor, data), "test").labels) == 22


def test_home_relative_model_paths_are_expanded(monkeypatch, tmp_path, tiny_dinov2):
    import shutil

    from grpo_rm.config import ModelArguments

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(tiny_dinov2, tmp_path / "enc")
    assert ModelArguments(model_name_or_path="~/enc").model_name_or_path == str(tmp_path / "enc")
    extractor = FeatureExtractor.from_pretrained("~/enc", cache_dir=tmp_path / "cache")
    assert extractor.processor.image_mean == (0.5, 0.5, 0.5)  # the saved processor, not ImageNet defaults
