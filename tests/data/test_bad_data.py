"""Bad data stops at loading time with the file, class or split named, or (skip_bad_images) is left out and counted."""

import logging

import datasets
import pytest
from PIL import Image

from grpo_rm.config import DataArguments
from grpo_rm.data import EvalTransform, ImageDataset, load_classification_splits
from grpo_rm.data.segmentation import load_segmentation_splits
from grpo_rm.processing import ImageProcessing as Preprocessing
from tests.seg_fixtures import write_generic


def write_tree(root, counts):
    """An ImageFolder tree: counts = {split: {class: number of images}}; 0 makes an empty class folder."""
    for split, classes in counts.items():
        for name, count in classes.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(root / split / name / f"{i}.png")
    return root


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_png_is_named(tmp_path, imagefolder):
    import shutil

    root = shutil.copytree(imagefolder, tmp_path / "tree")
    cut_in_half(root / "val" / "red" / "3.png")
    splits = load_classification_splits(DataArguments(dataset_name=str(root)))
    dataset = ImageDataset(splits, "test", EvalTransform(Preprocessing(8)))
    with pytest.raises(ValueError, match=r"cannot read image .*val/red/3\.png: image file is truncated"):
        for index in range(len(dataset)):
            dataset[index]


def test_skip_bad_images_leaves_them_out_and_counts_them(tmp_path, imagefolder, caplog):
    import shutil

    root = shutil.copytree(imagefolder, tmp_path / "tree")
    cut_in_half(root / "val" / "red" / "3.png")
    (root / "train" / "blue" / "0.png").write_bytes(b"not a png")
    args = DataArguments(dataset_name=str(root), train_val_split=0, skip_bad_images=True)
    with caplog.at_level(logging.WARNING, logger="grpo_rm.data.loading"):
        splits = load_classification_splits(args)
    assert splits.sizes() == {"train": 47, "validation": 17, "test": 17}
    # validation is the test split here: its bad file counts once
    assert splits.skipped_bad_images == 2
    assert sorted(splits.skipped_bad_image_paths) == sorted([str(root / "train" / "blue" / "0.png"),
                                                             str(root / "val" / "red" / "3.png")])
    assert "left out 2 unreadable image(s)" in caplog.text and "train/blue/0.png" in caplog.text
    dataset = ImageDataset(splits, "test", EvalTransform(Preprocessing(8)))
    assert all(dataset[index][0].shape == (3, 8, 8) for index in range(len(dataset)))


def test_skip_bad_images_that_empties_a_split_is_an_error(tmp_path):
    root = write_tree(tmp_path / "tree", {"train": {"a": 3, "b": 3}, "test": {"a": 1, "b": 1}})
    for path in (root / "test").rglob("*.png"):
        path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"the test split of dataset .* has no examples after skipping 2 unreadable"):
        load_classification_splits(DataArguments(dataset_name=str(root), skip_bad_images=True))


def test_skip_bad_images_in_segmentation_masks(tmp_path):
    root = write_generic(tmp_path / "generic")
    cut_in_half(root / "test" / "masks" / "2.png")
    splits = load_segmentation_splits(DataArguments(dataset_name=str(root), skip_bad_images=True))
    assert splits.skipped_bad_image_paths == [str(root / "test" / "masks" / "2.png")]
    assert splits.sizes()["test"] == 5


@pytest.mark.parametrize("counts, split_folder", [
    ({"train": {"a": 3, "b": 3, "c": 0}, "val": {"a": 2, "b": 2, "c": 2}}, "val"),  # empty class folder in train
    ({"train": {"a": 3, "b": 3}, "test": {"a": 2, "b": 2, "c": 2}}, "test"),  # a class only in test
])
def test_class_without_training_images_is_named(tmp_path, counts, split_folder):
    root = write_tree(tmp_path / "tree", counts)
    split = "validation" if split_folder == "val" else "test"
    with pytest.raises(ValueError, match=rf"class 'c' has 2 example\(s\) in the {split} split of dataset .* but none "
                                         rf"in train; add images to {root}/train/c or remove the folder "
                                         rf"{root}/{split_folder}/c$"):
        load_classification_splits(DataArguments(dataset_name=str(root)))
    kept = load_classification_splits(DataArguments(dataset_name=str(root), keep_classes=["a", "b"]))
    assert kept.class_names == ["a", "b"]


def test_class_without_training_examples_outside_imagefolder(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["x", "y", "z"])})
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a", "b"] * 3, "label": [0, 1] * 3}, features=features),
        "test": datasets.Dataset.from_dict({"text": ["c", "a"], "label": [2, 0]}, features=features),
    }).save_to_disk(str(tmp_path / "ds"))
    from grpo_rm.data import load_text_classification_splits

    with pytest.raises(ValueError, match=r"class 'z' has 1 example\(s\) in the test split .* none in train; add "
                                         r"training examples of it, or leave it out with --keep_classes"):
        load_text_classification_splits(DataArguments(dataset_name=str(tmp_path / "ds")))


def test_empty_split_folder_is_named(tmp_path):
    root = write_tree(tmp_path / "tree", {"train": {"a": 3, "b": 3}, "test": {"a": 0, "b": 0}})
    with pytest.raises(ValueError, match=rf"ImageFolder split folder {root}/test holds no images; add images to it"):
        load_classification_splits(DataArguments(dataset_name=str(root)))


def test_empty_split_file_is_named(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
    datasets.Dataset.from_dict({"text": ["a", "b"] * 4, "label": [0, 1] * 4}).to_parquet(str(tmp_path / "train.parquet"))
    datasets.Dataset.from_dict({"text": [], "label": []}, features=features).to_parquet(str(tmp_path / "test.parquet"))
    from grpo_rm.data import load_text_classification_splits

    with pytest.raises(ValueError, match=r"the test split of dataset .* has no rows; add examples to its file\(s\)"):
        load_text_classification_splits(DataArguments(dataset_name=str(tmp_path)))


def test_split_emptied_by_keep_classes_is_named(tmp_path):
    images = [Image.new("RGB", (4, 4), (i * 20, 0, 0)) for i in range(6)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"image": images, "label": [0, 1, 2] * 2}, features=features),
        "test": datasets.Dataset.from_dict({"image": images[:2], "label": [2, 2]}, features=features),
    }).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(ValueError, match=r"the test split of dataset .*ds' has no examples with keep_classes "
                                         r"\['a', 'b'\]"):
        load_classification_splits(DataArguments(dataset_name=str(tmp_path / "ds"), keep_classes=["a", "b"]))


def test_integer_label_outside_the_class_range_is_named(tmp_path):
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 2]}),
        "test": datasets.Dataset.from_dict({"text": ["a", "b"], "label": [1, 3]}),
    }).save_to_disk(str(tmp_path / "ds"))
    from grpo_rm.data import load_text_classification_splits

    with pytest.raises(ValueError, match=r"label 3 in row 1 of split 'test' is out of range for 3 classes"):
        load_text_classification_splits(DataArguments(dataset_name=str(tmp_path / "ds")))


def test_decompression_bomb_header_is_named(tmp_path, monkeypatch):
    from grpo_rm.data.loading import decode_image

    path = tmp_path / "huge.png"
    Image.new("L", (2, 2)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1)  # a corrupt header can claim billions of pixels
    with pytest.raises(ValueError, match=r"cannot read image .*huge\.png: Image size \(4 pixels\) exceeds"):
        decode_image({"path": str(path), "bytes": None}, "row 0")
