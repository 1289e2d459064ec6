
import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from grpo_rm.processing import ImageProcessing as Preprocessing
from grpo_rm.config import DataArguments
from grpo_rm.data.segmentation import VOC_CLASSES, SegmentationDataset, load_segmentation_splits
from grpo_rm.data.transforms import SegmentationEvalTransform, SegmentationTrainTransform
from tests.seg_fixtures import write_generic, write_voc


def test_joint_transform_keeps_image_and_mask_aligned():
    # The image's red channel encodes the mask, so any misalignment (a flip, crop or scale applied
    # to only one of them) shows up as a mismatch.
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 5, (20, 28))
    image = Image.fromarray(np.stack([mask * 50, np.zeros_like(mask), np.zeros_like(mask)], -1).astype(np.uint8))
    preprocessing = Preprocessing(16, image_mean=(0, 0, 0), image_std=(1, 1, 1), resample=0)
    for seed in range(20):
        torch.manual_seed(seed)
        transform = SegmentationTrainTransform(preprocessing, scale_range=(0.6, 1.6), hflip_prob=0.5)
        pixels, out_mask = transform(image, mask)
        assert pixels.shape == (3, 16, 16) and out_mask.shape == (16, 16) and out_mask.dtype == torch.int64
        decoded = torch.round(pixels[0] * 255 / 50).long()
        inside = out_mask != 255
        assert torch.equal(decoded[inside], out_mask[inside])
        assert bool((pixels[0][~inside] == 0).all())  # padding: black image, ignored mask


def test_flip_reaches_both():
    mask = np.zeros((16, 16), dtype=np.int64)
    mask[:, :4] = 1
    image = Image.fromarray((np.stack([mask * 200] * 3, -1)).astype(np.uint8))
    transform = SegmentationTrainTransform(Preprocessing(16, (0, 0, 0), (1, 1, 1), resample=0), (1.0, 1.0), 1.0)
    pixels, out_mask = transform(image, mask)
    assert bool((out_mask[:, -4:] == 1).all()) and bool((pixels[0][:, -4:] > 0.5).all())


def test_eval_transform_keeps_full_resolution_mask():
    mask = np.arange(12 * 20).reshape(12, 20) % 3
    pixels, out = SegmentationEvalTransform(Preprocessing(8))(Image.new("RGB", (20, 12)), mask)
    assert pixels.shape == (3, 8, 13) and torch.equal(out, torch.from_numpy(mask))


def test_voc_layout(tmp_path):
    root = write_voc(tmp_path / "voc", train=5, val=3)
    splits = load_segmentation_splits(DataArguments(dataset_name=str(root), train_val_split=0))
    assert splits.class_names == VOC_CLASSES and splits.sizes() == {"train": 5, "validation": 3, "test": 3}
    dataset = SegmentationDataset(splits.train, splits.image_column, splits.mask_column, 21,
                                  lambda image, mask, generator: (image, mask), "train")
    _, mask = dataset[0]
    assert set(np.unique(mask)) <= {0, 1, 2, 255}


def test_generic_layout_with_class_names_and_ade_reduce_labels(tmp_path):
    splits = load_segmentation_splits(DataArguments(dataset_name=str(write_generic(tmp_path / "generic"))))
    assert splits.class_names == ["background", "red", "green"]
    assert splits.sizes()["test"] == 6 and splits.validation_source == "0.1 of train"

    ade = tmp_path / "ade"
    for split in ("training", "validation"):
        (ade / "images" / split).mkdir(parents=True)
        (ade / "annotations" / split).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8)).save(ade / "images" / split / f"ADE_{i}.jpg")
            Image.fromarray(np.array([[0, 1, 2, 3]] * 8, dtype=np.uint8).repeat(2, axis=1)).save(
                ade / "annotations" / split / f"ADE_{i}.png")
    args = DataArguments(dataset_name=str(ade), reduce_labels=True)
    splits = load_segmentation_splits(args)
    assert splits.class_names == ["0", "1", "2"]  # inferred from the reduced training masks
    dataset = SegmentationDataset(splits.test, splits.image_column, splits.mask_column, 3,
                                  lambda image, mask, generator: (image, mask), "test", reduce_labels=True)
    assert np.unique(dataset[0][1]).tolist() == [0, 1, 2, 255]


def test_hf_dataset_with_mask_column(tmp_path):
    images = [Image.new("RGB", (6, 6)) for _ in range(6)]
    masks = [Image.fromarray(np.full((6, 6), i % 2, dtype=np.uint8)) for i in range(6)]
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"pixel_values": images, "annotation": masks}),
        "test": datasets.Dataset.from_dict({"pixel_values": images[:2], "annotation": masks[:2]}),
    }).save_to_disk(str(tmp_path / "hf"))
    splits = load_segmentation_splits(DataArguments(dataset_name=str(tmp_path / "hf")))
    assert (splits.image_column, splits.mask_column) == ("pixel_values", "annotation")
    assert splits.class_names == ["0", "1"]


def test_malformed_masks_are_named(tmp_path):
    root = write_voc(tmp_path / "voc", train=3, val=2)
    bad = root / "SegmentationClass" / "val_001.png"
    Image.fromarray(np.full((32, 32), 7, dtype=np.uint8)).save(bad)
    splits = load_segmentation_splits(DataArguments(dataset_name=str(root), train_val_split=0))
    dataset = SegmentationDataset(splits.test, splits.image_column, splits.mask_column, 3,
                                  lambda image, mask, generator: (image, mask), "test")
    with pytest.raises(ValueError, match=r"mask .*val_001\.png has values \[7\] that are neither class indices 0\.\.2"):
        dataset[1]
    Image.new("RGB", (32, 32), (128, 0, 0)).save(bad)
    with pytest.raises(ValueError, match=r"val_001\.png is a RGB image; masks must hold class indices"):
        dataset[1]
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(bad)
    with pytest.raises(ValueError, match=r"val_001\.png is 10x10 but its image is 32x32"):
        dataset[1]
    (root / "SegmentationClass" / "train_000.png").unlink()
    with pytest.raises(ValueError, match=r"images without masks \['train_000'\]"):
        load_segmentation_splits(DataArguments(dataset_name=str(root)))


def test_digits_seg_is_deterministic_with_documented_classes():
    first = load_segmentation_splits(DataArguments(dataset_name="digits-seg"))
    second = load_segmentation_splits(DataArguments(dataset_name="digits-seg", train_val_split=0.5))
    assert first.class_names == ["background"] + [str(d) for d in range(10)]
    assert first.sizes() == {"train": 600, "validation": 100, "test": 200}
    assert first.test[0]["mask"] == second.test[0]["mask"]


def test_reduce_labels_uses_the_configured_ignore_index(tmp_path):
    from grpo_rm.data.segmentation import decode_mask

    path = tmp_path / "m.png"
    Image.fromarray(np.array([[0, 1, 2, 255]], dtype=np.uint8)).save(path)
    assert decode_mask({"path": str(path), "bytes": None}, "x", True, 250).tolist() == [[250, 0, 1, 250]]
