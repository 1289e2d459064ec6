"""Tiny models and datasets written to disk, so tests go through the same loading code as users."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    ViTConfig,
    ViTModel,
)

from grpo_rm.processing import ImageProcessing as Preprocessing  # noqa: E402

TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, patch_size=4, image_size=16)


def save_tiny(model, directory, processor=True):
    model.save_pretrained(directory)
    if processor:
        Preprocessing(16, image_mean=(0.5,) * 3, image_std=(0.5,) * 3).save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def tiny_dinov2(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return save_tiny(Dinov2Model(Dinov2Config(**TINY)), tmp_path_factory.mktemp("tiny-dinov2"))


@pytest.fixture(scope="session")
def tiny_dinov2_registers(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    config = Dinov2WithRegistersConfig(**TINY, num_register_tokens=4)
    return save_tiny(Dinov2WithRegistersModel(config), tmp_path_factory.mktemp("tiny-dinov2-reg"))


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return save_tiny(ViTModel(ViTConfig(**TINY)), tmp_path_factory.mktemp("tiny-vit"), processor=False)


def make_images(rng, count, size=(12, 10), mode="RGB"):
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return [Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode) for _ in range(count)]


def colour_image(rng, label, size=(12, 12)):
    """A noisy image whose dominant colour channel is its class: learnable in a few steps."""
    array = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
    array[..., label] += 180
    return Image.fromarray(array)


@pytest.fixture(scope="session")
def imagefolder(tmp_path_factory):
    """train/ and val/ with classes red, green, blue (coloured noise)."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 16), ("val", 6)):
        for label, name in enumerate(("blue", "green", "red")):
            channel = {"red": 0, "green": 1, "blue": 2}[name]
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                colour_image(rng, channel).save(root / split / name / f"{i}.png")
    return str(root)


@pytest.fixture(scope="session")
def parquet_folder(tmp_path_factory):
    """train.parquet and test.parquet with an Image feature and a ClassLabel, like the shared MNIST subset."""
    root = tmp_path_factory.mktemp("parquet")
    rng = np.random.default_rng(1)
    features = datasets.Features({"img": datasets.Image(), "digit": datasets.ClassLabel(names=["r", "g", "b"])})
    for split, count in (("train", 30), ("test", 12)):
        labels = [i % 3 for i in range(count)]
        images = [colour_image(rng, label) for label in labels]
        datasets.Dataset.from_dict({"img": images, "digit": labels}, features=features).to_parquet(
            str(root / f"{split}.parquet")
        )
    return str(root)


@pytest.fixture(scope="session")
def small_dinov2(tmp_path_factory):
    """A little wider than ``tiny_dinov2``: enough to learn digits-seg in a few epochs."""
    import torch

    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=48, num_hidden_layers=3, num_attention_heads=3, intermediate_size=96,
                          patch_size=4, image_size=32)
    return save_tiny(Dinov2Model(config), tmp_path_factory.mktemp("small-dinov2"), processor=False)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    from tests.text_fixtures import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory):
    from tests.text_fixtures import save_tiny_distilbert

    return save_tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert"))


@pytest.fixture(scope="session")
def text_parquet(tmp_path_factory):
    """train.parquet / test.parquet: 3 learnable topics (sports, food, tech), a ClassLabel column."""
    from tests.text_fixtures import write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text-parquet"), kind="parquet")


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory):
    from tests.text_fixtures import write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text-csv"), kind="csv")


@pytest.fixture(scope="session")
def text_pairs(tmp_path_factory):
    """premise / hypothesis pairs labelled same / different topic."""
    from tests.text_fixtures import write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text-pairs"), kind="parquet", pair=True)
