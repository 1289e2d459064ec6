import datasets
import numpy as np
import pytest
from PIL import Image

from grpo_rm.processing import ImageProcessing as Preprocessing
from grpo_rm.config import DataArguments
from grpo_rm.data import EvalTransform, ImageDataset, load_classification_splits
from grpo_rm.data.digits import load_digits_dataset


def test_digits_fixed_disjoint_split():
    first, second = load_digits_dataset(), load_digits_dataset()
    assert {k: len(v) for k, v in first.items()} == {"train": 1257, "validation": 180, "test": 360}
    assert first["test"]["label"] == second["test"]["label"]
    pixels = {split: {np.asarray(img).tobytes() + bytes([lab]) for img, lab in zip(d["image"], d["label"])}
              for split, d in first.items()}
    # load_digits has a few duplicate images, so compare (image, label) multiset sizes loosely
    assert len(pixels["train"] & pixels["test"]) < 10
    image = first["train"][0]["image"]
    assert image.size == (8, 8) and image.mode == "L"


def test_imagefolder_with_val_uses_val_as_test_and_carves_validation(imagefolder):
    splits = load_classification_splits(DataArguments(dataset_name=imagefolder, train_val_split=0.25))
    assert splits.class_names == ["blue", "green", "red"]
    assert splits.sizes() == {"train": 36, "validation": 12, "test": 18}
    assert splits.validation_source == "0.25 of train"
    dataset = ImageDataset(splits, "test", EvalTransform(Preprocessing(8)))
    pixels, label = dataset[0]
    assert pixels.shape == (3, 8, 8) and 0 <= label < 3


def test_parquet_folder_with_custom_columns(parquet_folder):
    with pytest.raises(ValueError, match=r"image column 'image' not found; the dataset has columns \['img', 'digit'\]"):
        load_classification_splits(DataArguments(dataset_name=parquet_folder, image_column_name="image"))
    with pytest.raises(ValueError, match=r"no label column among \['img', 'digit'\]"):
        load_classification_splits(DataArguments(dataset_name=parquet_folder))
    splits = load_classification_splits(DataArguments(dataset_name=parquet_folder, image_column_name="img",
                                                      label_column_name="digit", max_train_samples=10))
    assert splits.class_names == ["r", "g", "b"]
    assert len(splits.train) == 10 and len(splits.test) == 12


def test_string_labels_and_keep_classes(tmp_path):
    images = [Image.new("RGB", (4, 4), (i * 20, 0, 0)) for i in range(12)]
    labels = ["cat", "dog", "emu"] * 4
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"image": images, "label": labels}),
        "test": datasets.Dataset.from_dict({"image": images[:6], "label": labels[:6]}),
    }).save_to_disk(str(tmp_path / "ds"))
    splits = load_classification_splits(DataArguments(dataset_name=str(tmp_path / "ds"), train_val_split=0))
    assert splits.class_names == ["cat", "dog", "emu"]
    assert splits.validation_source.startswith("test split")
    kept = load_classification_splits(DataArguments(dataset_name=str(tmp_path / "ds"), keep_classes=["emu", "cat"]))
    assert kept.class_names == ["emu", "cat"]
    assert sorted(set(kept.test["label"])) == [0, 1] and len(kept.test) == 4
    with pytest.raises(ValueError, match=r"keep_classes \['yak'\]"):
        load_classification_splits(DataArguments(dataset_name=str(tmp_path / "ds"), keep_classes=["yak"]))


def test_label_out_of_range_is_named(tmp_path):
    images = [Image.new("RGB", (4, 4))] * 4
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    train = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0, 1]}, features=features)
    test = datasets.Dataset.from_dict({"image": images, "label": [0, -1, 0, 1]}, features=features)
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(ValueError, match=r"label -1 in row 1 of split 'test' is out of range for 2 classes"):
        load_classification_splits(DataArguments(dataset_name=str(tmp_path / "ds")))


def test_missing_and_malformed_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_classification_splits(DataArguments(dataset_name=str(tmp_path / "does-not-exist")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a dataset folder"):
        load_classification_splits(DataArguments(dataset_name=str(tmp_path / "empty")))


def test_corrupt_image_is_named(tmp_path, imagefolder):
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(imagefolder, root)
    (root / "val" / "red" / "0.png").write_bytes(b"not a png")
    splits = load_classification_splits(DataArguments(dataset_name=str(root)))
    dataset = ImageDataset(splits, "test", EvalTransform(Preprocessing(8)))
    with pytest.raises(ValueError, match=r"cannot read image .*val/red/0\.png"):
        for index in range(len(dataset)):
            dataset[index]


def test_hub_style_parquet_layout(tmp_path, parquet_folder):
    import shutil

    (tmp_path / "data").mkdir()
    for split in ("train", "test"):
        shutil.copy(f"{parquet_folder}/{split}.parquet", tmp_path / "data" / f"{split}-00000-of-00001.parquet")
    splits = load_classification_splits(DataArguments(dataset_name=str(tmp_path), image_column_name="img",
                                                      label_column_name="digit"))
    assert len(splits.test) == 12 and splits.class_names == ["r", "g", "b"]


def test_unlabelled_test_split_is_skipped_and_single_class_refused(tmp_path):
    images = [Image.new("RGB", (4, 4), (i * 30, 0, 0)) for i in range(8)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    split = lambda labels: datasets.Dataset.from_dict({"image": images[: len(labels)], "label": labels}, features=features)  # noqa: E731
    datasets.DatasetDict({"train": split([0, 1] * 4), "validation": split([1, 0, 1, 0]), "test": split([-1] * 4)}).save_to_disk(
        str(tmp_path / "hidden-test"))
    splits = load_classification_splits(DataArguments(dataset_name=str(tmp_path / "hidden-test")))
    assert splits.test["label"] == [1, 0, 1, 0]  # the labelled validation split becomes the test split
    with pytest.raises(ValueError, match="at least 2"):
        load_classification_splits(DataArguments(dataset_name=str(tmp_path / "hidden-test"), keep_classes=["a"]))


def test_keep_classes_relabels_the_classlabel_feature():
    splits = load_classification_splits(DataArguments(dataset_name="digits", keep_classes=["7", "2"]))
    assert splits.train.features["label"].names == ["7", "2"]
